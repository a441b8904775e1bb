//! `WalletDO`: one Durable Object per user, the single writer of that user's
//! balance. It owns every chat exchange of its user (`exchange.rs`: key
//! status + rate limit + hold in one turn, then the upstream call, the reply
//! and the settlement), so billing outlives the client and the chat Worker;
//! the sweep (`sweep.rs`) settles holds whose exchange died with an earlier
//! incarnation of the object. Credits from the admin API and Stripe go
//! through it too. Its SQLite storage is the source of truth; D1 receives every
//! change through the outbox (see `outbox.rs`).

mod alarm;
mod client_pipe;
mod exchange;
mod generation_ids;
mod held;
mod key_use;
mod ledger;
mod money_requests;
mod outbox;
mod pipe;
mod plan_step;
mod prompt_memory;
mod rate_limit;
mod replay;
mod store;
mod sweep;
mod x402_settle;

use dexto_shared::caps::tightest;
use dexto_shared::error::GatewayError;
use dexto_shared::hold::HoldPlan;
use dexto_shared::http::{error_response_in, json_response};
use dexto_shared::money::Micros;
use dexto_shared::wallet::*;
use rate_limit::RateLimiter;
use serde::de::DeserializeOwned;
use std::rc::Rc;
use ledger::{Change, Ledger};
use std::cell::RefCell;
use store::Store;
use worker::*;

/// The outcome of `admit`. Built once per request and taken apart at once:
/// boxing the larger variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Admission {
    Refused(GatewayError),
    Held { terms: ExchangeTerms, max_tokens: u64, clamped: bool, balance: Micros, rate_limit_remaining: Option<u32>, prompt_bound: Option<serde_json::Value> },
}

#[durable_object]
pub struct WalletDO {
    env: Env,
    store: Rc<Store>,
    limiter: RefCell<RateLimiter>,
    /// The plan rate `limiter` was built for (None: the gateway's default).
    limiter_rate: std::cell::Cell<Option<u32>>,
    /// Keys with their own rate limit: one bucket each (in memory, approximate).
    key_limiters: RefCell<std::collections::HashMap<String, RateLimiter>>,
    /// What outlives a request: storage, the flush flag, the live exchanges.
    ledger: Ledger,
}

impl DurableObject for WalletDO {
    fn new(state: State, env: Env) -> Self {
        let limiter = RefCell::new(RateLimiter::from_env(&env));
        let ledger = Ledger::new(state, env.clone(), x402_settle::step);
        let store = ledger.store();
        Self { env, store, limiter, limiter_rate: Default::default(), key_limiters: RefCell::default(), ledger }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        dexto_shared::ops::count(|o| o.do_requests += 1);
        self.ledger.first_contact();
        let path = req.path();
        match path.as_str() {
            "/exchange" => exchange::handle(self, req.bytes().await?).await,
            "/sweep" => reply(&sweep::run(&self.ledger, true).await),
            "/reattach" => {
                let r: ReattachRequest = body(&mut req).await?;
                pipe::reattach(&self.ledger, &r.request_id, r.after).or_else(|e| error_response_in(r.dialect, &e, None))
            }
            "/settle" => self.settle(body(&mut req).await?).await,
            "/release" => self.release(body(&mut req).await?),
            "/credit" => self.credit(body(&mut req).await?).await,
            "/adjust" => self.adjust(body(&mut req).await?).await,
            "/plan" => self.plan(body(&mut req).await?).await,
            "/status" => self.change_status(body(&mut req).await?).await,
            "/caps" => self.caps(body(&mut req).await?).await,
            "/state" => self.snapshot().await,
            _ => Response::error("unknown wallet operation", 404),
        }
    }

    /// Projects pending changes, settles holds past their deadline, and
    /// re-arms itself for whatever is left.
    async fn alarm(&self) -> Result<Response> {
        dexto_shared::ops::count(|o| o.do_requests += 1);
        self.ledger.alarm_fired();
        self.ledger.flush_now().await;
        sweep::run(&self.ledger, false).await;
        self.ledger.rearm().await;
        Response::ok("swept")
    }
}

async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    req.json().await
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response> {
    json_response(200, &serde_json::to_value(value)?)
}

impl WalletDO {
    /// Loads the wallet row from D1 on first use of this object (new user, or
    /// after a storage reset). Afterwards D1 is never read on the request path.
    async fn ensure_wallet(&self, user_id: &str) -> Result<()> {
        if self.store.wallet()?.is_some() {
            return Ok(());
        }
        let db = self.env.d1("DB")?;
        dexto_shared::ops::count(|o| o.d1_queries += 2); // first use of the object only
        #[derive(serde::Deserialize)]
        struct Known {
            balance_micros: Option<i64>,
            included_micros: Option<i64>,
            version: Option<i64>,
            status: String,
        }
        let d1 = |e: GatewayError| worker::Error::RustError(format!("{e:?}"));
        let known: Option<Known> = dexto_shared::db::first(
            &db,
            "SELECT b.balance_micros, b.included_micros, b.version, u.status FROM users u
             LEFT JOIN balances b ON b.user_id = u.id WHERE u.id = ?1",
            &[user_id.into()],
        )
        .await
        .map_err(d1)?;
        let known = known.ok_or("unknown user")?;
        #[derive(serde::Deserialize)]
        struct KeyId {
            id: String,
        }
        let revoked: Vec<String> = dexto_shared::db::all::<KeyId>(&db, "SELECT id FROM api_keys WHERE user_id = ?1 AND status = 'revoked'", &[user_id.into()])
            .await
            .map_err(d1)?
            .into_iter()
            .map(|k| k.id)
            .collect();
        // D1 was awaited: another request may have initialised the wallet meanwhile;
        // init_wallet re-checks in the same synchronous turn as its insert.
        self.store.init_wallet(
            user_id,
            Micros(known.balance_micros.unwrap_or(0)),
            Micros(known.included_micros.unwrap_or(0)),
            known.version.unwrap_or(0),
            known.status == "suspended",
            &revoked,
        )
    }

    /// Key and user checks, rate limit, and the hold sized by the quote —
    /// synchronous, so checking and reserving are one atomic turn, at `now`
    /// on this object's clock. The wallet must have been ensured first.
    fn admit(&self, req: &ExchangeRequest, now: i64) -> Result<Admission> {
        let wallet = self.store.wallet()?.ok_or("wallet missing")?;
        let refuse = |e| Ok(Admission::Refused(e));
        if wallet.suspended != 0 {
            return refuse(GatewayError::UserSuspended);
        }
        if self.store.is_key_revoked(&req.terms.key_id)? {
            return refuse(GatewayError::InvalidAuth);
        }
        if wallet.frozen != 0 {
            return refuse(GatewayError::WalletFrozen);
        }
        // The plan's defaults, where it has them, else the gateway's.
        self.store.note_free_limits(req.free_limits);
        let plan = self.store.plan_limits()?;
        let max_concurrent = plan.max_concurrent.map_or_else(|| rate_limit::max_concurrent(&self.env), u64::from);
        if max_concurrent > 0 && self.store.open_hold_count()? >= max_concurrent {
            return refuse(GatewayError::TooManyConcurrent { limit: max_concurrent });
        }
        if let Some(per_minute) = req.key_rate_limit {
            let mut buckets = self.key_limiters.borrow_mut();
            let bucket = buckets.entry(req.terms.key_id.clone()).or_insert_with(|| RateLimiter::per_key(per_minute));
            if !bucket.has_rate(per_minute) {
                *bucket = RateLimiter::per_key(per_minute);
            }
            if let Err(retry_after_secs) = bucket.take(now) {
                return refuse(GatewayError::RateLimited { retry_after_secs });
            }
        }
        if self.limiter_rate.get() != plan.rate_limit_per_minute {
            self.limiter_rate.set(plan.rate_limit_per_minute);
            *self.limiter.borrow_mut() = plan.rate_limit_per_minute.map_or_else(|| RateLimiter::from_env(&self.env), RateLimiter::per_key);
        }
        if let Err(retry_after_secs) = self.limiter.borrow_mut().take(now) {
            return refuse(GatewayError::RateLimited { retry_after_secs });
        }
        if let Some(payment) = &req.terms.x402 {
            if let Err(e) = self.payment_usable(payment, Micros(wallet.balance)) {
                return refuse(e);
            }
        }
        // A keyless call's payment backs its hold; the balance is not touched.
        let available = match &req.terms.x402 {
            Some(payment) => payment.authorized,
            None => Micros(wallet.balance).saturating_sub(self.store.held_total()?),
        };
        // A cap bounds the hold like the balance does (clamping included).
        let uses = self.store.cap_uses(self.store.caps(Some(&req.terms.key_id))?, now)?;
        let cap = tightest(&uses).filter(|c| c.headroom() < available.max(Micros::ZERO));
        let affordable = cap.map_or(available, |c| c.headroom());
        let (tightened, prompt_bound) = prompt_memory::tightened(&self.store, req)?.unzip();
        match tightened.as_ref().unwrap_or(&req.quote).plan(affordable) {
            HoldPlan::Insufficient { .. } if cap.is_some() => refuse(GatewayError::SpendCapReached(cap.expect("checked").refusal(now))),
            HoldPlan::Insufficient { needed, floor_tokens } => refuse(GatewayError::InsufficientCredits {
                available: available.max(Micros::ZERO),
                needed: Some((needed, floor_tokens)),
            }),
            HoldPlan::Held { amount, max_tokens, clamped } => {
                let id = &req.terms.request_id;
                let prompt_memo = req.quote.prints.as_ref().map(|p| p.memo());
                let terms = ExchangeTerms { hold: amount, prompt_memo, ..req.terms.clone() };
                let terms_text = serde_json::to_string(&terms)?;
                self.store.atomically(|| {
                    self.store.put_hold(id, &req.terms.key_id, amount, now, req.ttl_ms, &terms_text)?;
                    if let Some(payment) = &terms.x402 {
                        self.store.x402_hold(payment, id, now)?;
                    }
                    self.store.touch_key(&req.terms.key_id, now)
                })?;
                self.ledger.live_insert(id);
                Ok(Admission::Held {
                    terms,
                    max_tokens,
                    clamped,
                    balance: Micros(wallet.balance),
                    rate_limit_remaining: self.limiter.borrow().remaining(),
                    prompt_bound,
                })
            }
        }
    }

    /// An x402 payment may back a hold once, and not while its payer owes a
    /// payment that failed to settle.
    fn payment_usable(&self, payment: &dexto_shared::x402::Authorized, balance: Micros) -> Result<(), GatewayError> {
        let storage = |e: worker::Error| GatewayError::Internal(format!("wallet: {e}"));
        if self.store.x402_seen(&payment.reference).map_err(storage)? {
            return Err(dexto_shared::x402::replayed());
        }
        let owed = self.store.x402_owed(balance).map_err(storage)?;
        if owed > Micros::ZERO {
            return Err(GatewayError::PaymentRefused {
                code: "x402_debt",
                message: format!(
                    "An earlier payment of {} (${}) could not be settled, so keyless calls from this address are refused until it is: \
                     keep USDC and its allowance in place for the retry, or sign in with this address and add credit.",
                    payment.payer,
                    owed.usd_trimmed()
                ),
            });
        }
        Ok(())
    }

    async fn settle(&self, req: SettleRequest) -> Result<Response> {
        self.ensure_wallet(&req.usage.user_id).await?;
        reply(&self.ledger.settle(&req.usage)?)
    }

    fn release(&self, req: ReleaseRequest) -> Result<Response> {
        self.ledger.release(&req.request_id)?;
        reply(&serde_json::json!({ "released": true }))
    }

    fn apply_money(&self, c: &Change, reference: &str, amount: Micros) -> Result<Micros> {
        self.ledger.apply_money(c, reference, amount)
    }

    /// Moves of the included bucket, in one synchronous turn (no `.await`
    /// after the wallet is ensured): a renewal's expiry and grant cannot be
    /// split by a settlement, and each step is applied once by reference.
    async fn plan(&self, req: PlanRequest) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        let mut moved = Vec::with_capacity(req.steps.len());
        let mut stopped = false;
        for step in &req.steps {
            if let PlanStep::StopIfRenewedAfter { period_end } = step {
                stopped = self.store.granted_until()?.is_some_and(|granted| granted > *period_end);
                moved.push(None);
                if stopped {
                    break;
                }
                continue;
            }
            moved.push(plan_step::apply(self, &req, step)?);
        }
        let wallet = self.store.wallet()?.ok_or("wallet missing")?;
        reply(&PlanOutcome { balance: Micros(wallet.balance), included: Micros(wallet.included), moved, stopped })
    }

    /// Sets or removes a spend cap; answers every cap with its use now.
    async fn caps(&self, req: CapChange) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        if let Some((scope, window, limit)) = &req.change {
            self.store.set_cap(req.owner, scope, *window, *limit)?;
        }
        // This object's clock, as admission and settlements read the windows.
        reply(&self.store.cap_uses(self.store.caps(None)?, dexto_shared::http::now_ms())?)
    }

    async fn change_status(&self, req: StatusChange) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        if let Some(key_id) = &req.revoke_key_id {
            // One transaction: the replacement is bound by the old key's caps
            // before the old key stops.
            self.store.atomically(|| {
                if let Some(new_key) = &req.replaced_by {
                    self.store.carry_key_over(key_id, new_key)?;
                }
                self.store.revoke_key(key_id, req.replaced_by.as_deref())
            })?;
        }
        self.store.set_flags(req.suspended, req.frozen)?;
        reply(&serde_json::json!({ "ok": true }))
    }

    /// The authoritative state, after projecting everything pending into D1 so
    /// that readers of the ledger see what the wallet has applied.
    async fn snapshot(&self) -> Result<Response> {
        self.ledger.flush_now().await;
        let Some(wallet) = self.store.wallet()? else {
            return reply(&WalletState {
                balance: Micros::ZERO,
                included: Micros::ZERO,
                available: Micros::ZERO,
                open_holds: vec![],
                pending_outbox: 0,
                frozen: false,
                suspended: false,
                caps: vec![],
            });
        };
        let held = self.store.held_total()?;
        reply(&WalletState {
            balance: Micros(wallet.balance),
            included: Micros(wallet.included),
            available: Micros(wallet.balance).saturating_sub(held),
            open_holds: self.store.open_holds()?,
            pending_outbox: self.store.outbox_len()?,
            frozen: wallet.frozen != 0,
            suspended: wallet.suspended != 0,
            caps: self.store.cap_uses(self.store.caps(None)?, dexto_shared::http::now_ms())?,
        })
    }

}

