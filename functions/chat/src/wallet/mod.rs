//! `WalletDO`: one Durable Object per user, the single writer of that user's
//! balance. It answers the chat path's one pre-upstream call (key status +
//! rate limit + hold, together) and settles afterwards; credits from the admin
//! API (and later Stripe) go through it too. Its SQLite storage is the source of
//! truth; D1 receives every change through the outbox (see `outbox.rs`).

mod key_use;
mod outbox;
mod rate_limit;
mod store;

use dexto_shared::http::json_response;
use dexto_shared::ids::new_id;
use dexto_shared::money::Micros;
use dexto_shared::wallet::*;
use outbox::LedgerEntry;
use rate_limit::RateLimiter;
use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use store::Store;
use worker::*;

/// Retry delay for a failed D1 projection.
const FLUSH_RETRY_MS: i64 = 5_000;
/// Projection passes one flush runs before leaving the rest to the next one.
const MAX_PASSES: usize = 8;

#[durable_object]
pub struct WalletDO {
    state: State,
    env: Env,
    store: Store,
    limiter: RefCell<RateLimiter>,
    flushing: Rc<Cell<bool>>,
}

impl DurableObject for WalletDO {
    fn new(state: State, env: Env) -> Self {
        let store = Store::open(state.storage().sql()).expect("wallet schema");
        let limiter = RefCell::new(RateLimiter::from_env(&env));
        Self { state, env, store, limiter, flushing: Rc::new(Cell::new(false)) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match path.as_str() {
            "/hold" => self.hold(body(&mut req).await?).await,
            "/settle" => self.settle(body(&mut req).await?).await,
            "/release" => self.release(body(&mut req).await?),
            "/credit" => self.credit(body(&mut req).await?).await,
            "/adjust" => self.adjust(body(&mut req).await?).await,
            "/status" => self.change_status(body(&mut req).await?).await,
            "/state" => self.snapshot().await,
            _ => Response::error("unknown wallet operation", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.flush_now().await;
        Response::ok("flushed")
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
        #[derive(serde::Deserialize)]
        struct Known {
            balance_micros: Option<i64>,
            version: Option<i64>,
            status: String,
        }
        let known: Option<Known> = db
            .prepare(
                "SELECT b.balance_micros, b.version, u.status FROM users u
                 LEFT JOIN balances b ON b.user_id = u.id WHERE u.id = ?1",
            )
            .bind(&[user_id.into()])?
            .first(None)
            .await?;
        let known = known.ok_or("unknown user")?;
        #[derive(serde::Deserialize)]
        struct KeyId {
            id: String,
        }
        let revoked: Vec<String> = db
            .prepare("SELECT id FROM api_keys WHERE user_id = ?1 AND status = 'revoked'")
            .bind(&[user_id.into()])?
            .all()
            .await?
            .results::<KeyId>()?
            .into_iter()
            .map(|k| k.id)
            .collect();
        // D1 was awaited: another request may have initialised the wallet meanwhile;
        // init_wallet re-checks in the same synchronous turn as its insert.
        self.store.init_wallet(
            user_id,
            Micros(known.balance_micros.unwrap_or(0)),
            known.version.unwrap_or(0),
            known.status == "suspended",
            &revoked,
        )
    }

    async fn hold(&self, req: HoldRequest) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        // From here to the reply: no await, so check and reserve are one atomic turn.
        let wallet = self.store.wallet()?.ok_or("wallet missing")?;
        let outcome = if wallet.suspended != 0 {
            HoldOutcome::UserSuspended
        } else if self.store.is_key_revoked(&req.key_id)? {
            HoldOutcome::KeyRevoked
        } else if wallet.frozen != 0 {
            HoldOutcome::Frozen
        } else if let Err(retry_after_secs) = self.limiter.borrow_mut().take(req.now_ms) {
            HoldOutcome::RateLimited { retry_after_secs }
        } else {
            let available = Micros(wallet.balance).saturating_sub(self.store.held_total(req.now_ms)?);
            if req.amount > available {
                HoldOutcome::Insufficient { available: available.max(Micros::ZERO) }
            } else {
                self.store.put_hold(&req.request_id, &req.key_id, req.amount, req.now_ms, req.ttl_ms)?;
                self.store.touch_key(&req.key_id, req.now_ms)?;
                HoldOutcome::Held { balance: Micros(wallet.balance), available_after: available.saturating_sub(req.amount) }
            }
        };
        let mut resp = reply(&outcome)?;
        if let Some(remaining) = self.limiter.borrow().remaining() {
            resp.headers_mut().set("X-RateLimit-Remaining", &remaining.to_string())?;
        }
        Ok(resp)
    }

    async fn settle(&self, req: SettleRequest) -> Result<Response> {
        let usage = req.usage;
        self.ensure_wallet(&usage.user_id).await?;
        let reference = format!("usage:{}", usage.request_id);
        if let Some(balance) = self.store.applied(&reference)? {
            return reply(&SettleOutcome { balance, replay: true });
        }
        self.store.drop_hold(&usage.request_id)?;
        let debit = Micros(-usage.user_price.0);
        let balance = self.store.apply_change(&reference, debit, usage.created_at, |seq, balance| {
            entry_json(LedgerEntry {
                id: new_id("cl_"),
                user_id: usage.user_id.clone(),
                seq,
                kind: "usage".into(),
                amount: debit.0,
                balance_after: balance.0,
                reference: reference.clone(),
                reason: Some(usage.model.clone()),
                created_at: usage.created_at,
                usage: Some(usage.clone()),
                payment: None,
            })
        })?;
        self.schedule_flush();
        reply(&SettleOutcome { balance, replay: false })
    }

    fn release(&self, req: ReleaseRequest) -> Result<Response> {
        self.store.drop_hold(&req.request_id)?;
        reply(&serde_json::json!({ "released": true }))
    }

    async fn credit(&self, req: CreditRequest) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        if let Some(balance) = self.store.applied(&req.reference)? {
            return reply(&CreditOutcome { balance, replay: true });
        }
        let c = Change { user_id: &req.user_id, kind: &req.kind, reason: &req.reason, now_ms: req.now_ms, payment: &req.payment };
        let balance = self.apply_money(&c, &req.reference, req.amount)?;
        reply(&CreditOutcome { balance, replay: false })
    }

    /// Applies the difference between `cumulative` and what `group` has applied
    /// so far, as one ledger entry. Totals only grow in magnitude (Stripe's
    /// `amount_refunded` is cumulative), so an older, smaller total arriving
    /// late is a no-op — it never gives money back.
    async fn adjust(&self, req: AdjustRequest) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        let done = self.store.adjusted(&req.group)?;
        let grows = req.cumulative.0.signum() * done.0.signum() >= 0 && req.cumulative.0.abs() > done.0.abs();
        let delta = Micros(req.cumulative.0 - done.0);
        let reference = format!("{}:{}", req.group, req.cumulative.0);
        if !grows || self.store.applied(&reference)?.is_some() {
            let balance = Micros(self.store.wallet()?.map_or(0, |w| w.balance));
            return reply(&CreditOutcome { balance, replay: true });
        }
        let c = Change { user_id: &req.user_id, kind: &req.kind, reason: &req.reason, now_ms: req.now_ms, payment: &req.payment };
        let balance = self.apply_money(&c, &reference, delta)?;
        self.store.set_adjusted(&req.group, req.cumulative)?;
        reply(&CreditOutcome { balance, replay: false })
    }

    /// A credit or debit that is not usage: ledger entry, and (same turn) a
    /// request for the upstream key's limit to follow the new balance.
    fn apply_money(&self, c: &Change, reference: &str, amount: Micros) -> Result<Micros> {
        let balance = self.store.apply_change(reference, amount, c.now_ms, |seq, balance| {
            entry_json(LedgerEntry {
                id: new_id("cl_"),
                user_id: c.user_id.to_string(),
                seq,
                kind: c.kind.to_string(),
                amount: amount.0,
                balance_after: balance.0,
                reference: reference.to_string(),
                reason: c.reason.clone(),
                created_at: c.now_ms,
                usage: None,
                payment: c.payment.clone(),
            })
        })?;
        let token = self.store.wallet()?.map(|w| w.seq).unwrap_or(0);
        self.store.request_limit_sync(balance, token)?;
        self.schedule_flush();
        Ok(balance)
    }

    async fn change_status(&self, req: StatusChange) -> Result<Response> {
        self.ensure_wallet(&req.user_id).await?;
        if let Some(key_id) = &req.revoke_key_id {
            self.store.revoke_key(key_id)?;
        }
        self.store.set_flags(req.suspended, req.frozen)?;
        reply(&serde_json::json!({ "ok": true }))
    }

    /// The authoritative state, after projecting everything pending into D1 so
    /// that readers of the ledger see what the wallet has applied.
    async fn snapshot(&self) -> Result<Response> {
        self.flush_now().await;
        let now = dexto_shared::http::now_ms();
        let Some(wallet) = self.store.wallet()? else {
            return reply(&WalletState {
                balance: Micros::ZERO,
                available: Micros::ZERO,
                open_holds: vec![],
                pending_outbox: 0,
                frozen: false,
                suspended: false,
            });
        };
        let held = self.store.held_total(now)?;
        reply(&WalletState {
            balance: Micros(wallet.balance),
            available: Micros(wallet.balance).saturating_sub(held),
            open_holds: self.store.open_holds(now)?,
            pending_outbox: self.store.outbox_len()?,
            frozen: wallet.frozen != 0,
            suspended: wallet.suspended != 0,
        })
    }

    /// Projects the outbox after the reply has gone (the DO stays alive for it).
    fn schedule_flush(&self) {
        if self.flushing.replace(true) {
            return; // the running flush loops until the outbox is empty
        }
        let (storage, env, flag) = (self.state.storage(), self.env.clone(), self.flushing.clone());
        self.state.wait_until(project(storage, env, flag));
    }

    async fn flush_now(&self) {
        self.flushing.set(true);
        project(self.state.storage(), self.env.clone(), self.flushing.clone()).await;
    }
}

/// Drains the outbox into D1, then brings the upstream key's limit in line
/// with the balance; on failure leaves what is pending and sets an alarm to retry.
async fn project(storage: Storage, env: Env, flushing: Rc<Cell<bool>>) {
    let store = Store::attach(storage.sql());
    // Changes that land while this pass awaits D1 or the management API do not
    // start their own pass (the flag is set), so loop until nothing is pending.
    for _ in 0..MAX_PASSES {
        if let Err(e) = project_once(&store, &env, &storage).await {
            flushing.set(false);
            dexto_shared::log::event("wallet.flush_failed", serde_json::json!({ "error": e.to_string() }));
            let _ = storage.set_alarm(dexto_shared::http::now_ms() + FLUSH_RETRY_MS).await;
            return;
        }
        let pending = store.outbox_len().unwrap_or(1) > 0 || store.pending_limit_sync().map_or(true, |p| p.is_some());
        if !pending {
            break;
        }
    }
    flushing.set(false);
    // Anything still pending after MAX_PASSES (a steady stream of writes) is
    // picked up by the next write's pass, or by this alarm.
    if store.outbox_len().unwrap_or(0) > 0 {
        let _ = storage.set_alarm(dexto_shared::http::now_ms() + FLUSH_RETRY_MS).await;
    }
}

async fn project_once(store: &Store, env: &Env, storage: &Storage) -> Result<()> {
    outbox::flush(store, &env.d1("DB")?).await?;
    sync_upstream_limit(store, env).await?;
    key_use::project(store, env, storage).await
}

async fn sync_upstream_limit(store: &Store, env: &Env) -> Result<()> {
    let (Some((balance, token)), Some(wallet)) = (store.pending_limit_sync()?, store.wallet()?) else {
        return Ok(());
    };
    dexto_shared::openrouter_keys::sync_limit(env, &wallet.user_id, balance)
        .await
        .map_err(|e| Error::from(format!("limit sync: {e:?}")))?;
    store.clear_limit_sync(token)
}

/// What a non-usage balance change records besides its amount.
struct Change<'a> {
    user_id: &'a str,
    kind: &'a str,
    reason: &'a Option<String>,
    now_ms: i64,
    payment: &'a Option<PaymentEffect>,
}

fn entry_json(entry: LedgerEntry) -> String {
    serde_json::to_string(&entry).expect("ledger entry serialises")
}

