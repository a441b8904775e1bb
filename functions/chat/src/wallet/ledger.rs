//! The part of the wallet object that outlives a single request: settling
//! (synchronous, exactly once per request id), the D1 projection after each
//! change, the alarm, and the set of exchanges running in this incarnation of
//! the object. Cloned into the exchange's stream pump and the projection task.

use super::generation_ids::GenerationIds;
use crate::deadlines::Deadlines;
use super::outbox::{self, LedgerEntry};
use super::store::Store;
use super::key_use;
use super::replay::Replays;
use dexto_shared::http::now_ms;
use dexto_shared::ids::new_id;
use dexto_shared::money::Micros;
use dexto_shared::plans::buckets::included_share_of_spend;
use dexto_shared::wallet::{SettleOutcome, UsageRecord, X402_KEY_ID};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use worker::{Env, Error, Result, State, Storage};

/// How long the projection after a usage settlement waits before it starts
/// (see `schedule_flush_after_settlement`).
const SETTLE_FLUSH_DELAY_MS: u64 = 20;
/// Projection passes one flush runs before leaving the rest to the next one.
const MAX_PASSES: usize = 8;
/// A busy wallet's next pass waits this long after the last one: the
/// settlements of that time share one D1 batch and commit instead of a few
/// each (a commit's pages, not its rows, are most of the projection's cost:
/// locally they were the largest single item in the gateway's CPU profile).
/// The D1 mirror then trails a hot wallet by at most this much more; readers
/// that must see every settlement ask the object (`/state` flushes first).
const PASS_SPACING_MS: u64 = 100;

/// A background step every projection pass runs after the ledger's own
/// (the wallet's keyless payments: `x402_settle::step`), given at
/// construction: the ledger runs it without depending on what it does.
pub type Step = for<'a> fn(&'a Ledger) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>;

#[derive(Clone)]
pub struct Ledger {
    state: Rc<State>,
    /// The object's one `Store` (its memory of rows must be the only one).
    store: Rc<Store>,
    /// Streams running or recently ended, for readers that reattach.
    pub replays: Replays,
    /// Running exchanges' generation ids, for the sweep.
    pub generation_ids: Rc<GenerationIds>,
    /// Running exchanges' deadlines, on one timer (deadlines.rs).
    pub deadlines: Deadlines,
    pub env: Env,
    flushing: Rc<Cell<bool>>,
    /// Request ids whose exchange runs in this incarnation. In-memory on
    /// purpose: after a restart it is empty, which is exactly the set of
    /// exchanges still alive.
    live: Rc<RefCell<HashSet<String>>>,
    /// The alarm time this incarnation last set (saves a storage read per hold).
    pub(super) alarm_at: Rc<Cell<Option<i64>>>,
    started: Rc<Cell<bool>>,
    /// x402 payments being settled by this incarnation (never sent twice at
    /// once), and whether any may wait for settlement (None: not looked yet).
    pub x402_settling: Rc<RefCell<HashSet<String>>>,
    pub x402_waiting: Rc<Cell<Option<bool>>>,
    x402_step: Step,
    /// One upstream-limit update at a time (read the key's spending, then
    /// set its limit): two interleaved, the older could land last and take
    /// back room a newer keyless hold was given.
    pub limit_lock: Rc<futures::lock::Mutex<()>>,
    /// Test hook (DEXTO_TEST_HOOKS=1): requests whose owner's settlement is
    /// to fail midway, once (atomic.rs rolls it back; the sweep settles).
    pub failing_settlements: Rc<RefCell<HashSet<String>>>,
}

impl Ledger {
    pub fn new(state: State, env: Env, x402_step: Step) -> Ledger {
        // The raw storage object too: writes with options (generation_ids.rs).
        let raw = state._inner();
        let storage = raw.storage().map(wasm_bindgen::JsValue::from).expect("object storage");
        let state = Rc::new(State::from(raw));
        Ledger {
            deadlines: Deadlines::new(state.clone()),
            store: Rc::new(Store::open(state.storage().sql(), storage.clone()).expect("wallet schema")),
            generation_ids: Rc::new(GenerationIds::new(storage)),
            state,
            replays: Replays::default(),
            env,
            flushing: Rc::new(Cell::new(false)),
            live: Rc::default(),
            alarm_at: Rc::default(),
            started: Rc::default(),
            x402_settling: Rc::default(),
            x402_waiting: Rc::default(),
            x402_step,
            limit_lock: Rc::default(),
            failing_settlements: Rc::default(),
        }
    }

    /// On the first request of an incarnation: makes sure the alarm covers the
    /// holds an earlier incarnation left (platforms that keep alarms across
    /// restarts need nothing; local `wrangler dev` drops them on exit).
    pub fn first_contact(&self) {
        if !self.started.replace(true) {
            let me = self.clone();
            self.spawn(async move { me.rearm().await });
        }
    }

    pub fn store(&self) -> Rc<Store> {
        self.store.clone()
    }

    pub(super) fn storage(&self) -> Storage {
        self.state.storage()
    }

    pub fn live_insert(&self, request_id: &str) {
        if self.live.borrow_mut().insert(request_id.to_string()) {
            dexto_shared::ops::busy(1);
        }
    }

    pub fn live_remove(&self, request_id: &str) {
        if self.live.borrow_mut().remove(request_id) {
            dexto_shared::ops::busy(-1);
        }
    }

    pub fn is_live(&self, request_id: &str) -> bool {
        self.live.borrow().contains(request_id)
    }

    /// Debits the usage and ends its hold, once per request id: a replay
    /// (the owner and the sweep, or a retried call) returns the first result.
    /// All of its writes or none (store/atomic.rs): a settlement that fails
    /// leaves the hold for the sweep.
    pub fn settle(&self, usage: &UsageRecord) -> Result<SettleOutcome> {
        let store = self.store();
        self.live_remove(&usage.request_id);
        let outcome = store.atomically(|| self.settle_rows(&store, usage))?;
        self.generation_ids.forget(&usage.request_id)?;
        if !outcome.replay {
            self.schedule_flush_after_settlement();
        }
        Ok(outcome)
    }

    fn settle_rows(&self, store: &Store, usage: &UsageRecord) -> Result<SettleOutcome> {
        let reference = format!("usage:{}", usage.request_id);
        if let Some(balance) = store.applied(&reference)? {
            store.drop_hold(&usage.request_id)?;
            return Ok(SettleOutcome { balance, replay: true });
        }
        store.drop_hold(&usage.request_id)?;
        // Same turn as the debit: a keyless charge's payment falls due for it.
        if usage.key_id == X402_KEY_ID && store.x402_fall_due(&usage.request_id, usage.user_price)?.is_some() {
            self.x402_waiting.set(Some(true));
        }
        // Same turn as the debit: spend caps see it exactly once.
        store.add_spend(&usage.key_id, usage.created_at, usage.user_price)?;
        if self.failing_settlements.borrow_mut().remove(&usage.request_id) {
            return Err("test hook: the settlement failed midway".into());
        }
        let debit = Micros(-usage.user_price.0);
        // Included credit is spent first; the rest is purchased credit. A
        // keyless call is paid by its x402 payment, booked as purchased
        // credit: it must not spend the claiming user's included credit.
        let included = store.wallet()?.map_or(Micros::ZERO, |w| Micros(w.included));
        let from_included = match usage.key_id == X402_KEY_ID {
            true => Micros::ZERO,
            false => Micros(-included_share_of_spend(included, usage.user_price).0),
        };
        let balance = store.apply_change(&reference, debit, from_included, usage.created_at, |seq, after| {
            serde_json::to_string(&LedgerEntry {
                id: new_id("cl_"),
                user_id: usage.user_id.clone(),
                seq,
                kind: "usage".into(),
                amount: debit.0,
                balance_after: after.total.0,
                included: after.included_moved.0,
                included_after: Some(after.included.0),
                reference: reference.clone(),
                reason: Some(usage.model.clone()),
                created_at: usage.created_at,
                usage: Some(usage.clone()),
                payment: None,
            })
            .expect("ledger entry serialises")
        })?;
        let balance = self.expire_held_rest(usage.created_at)?.unwrap_or(balance);
        Ok(SettleOutcome { balance, replay: false })
    }

    /// Ends a hold without a charge (nothing billable happened); all of it or
    /// nothing, as a settlement.
    pub fn release(&self, request_id: &str) -> Result<()> {
        self.live_remove(request_id);
        let store = self.store();
        store.atomically(|| {
            if store.is_x402_hold(request_id)? {
                store.x402_release(request_id)?;
            }
            store.drop_hold(request_id)?;
            self.expire_held_rest(now_ms()).map(|_| ())
        })?;
        self.generation_ids.forget(request_id)
    }

    /// A fall-back to the free plan kept included credit that open holds
    /// might spend (store/held_rest.rs): once the last of them has ended,
    /// what is left expires. The balance after, if it moved.
    fn expire_held_rest(&self, now_ms: i64) -> Result<Option<Micros>> {
        let store = self.store();
        let Some(reference) = store.held_rest()? else { return Ok(None) };
        if store.held_total()? > Micros::ZERO {
            return Ok(None);
        }
        store.set_held_rest(None)?;
        let wallet = store.wallet()?.ok_or("wallet not initialised")?;
        let rest = format!("{reference}:held_rest");
        if wallet.included <= 0 || store.applied(&rest)?.is_some() {
            return Ok(None);
        }
        let gone = Micros(-wallet.included);
        let reason = Some("Included credit calls held when the plan ended, expired once they settled".to_string());
        let c = Change { user_id: &wallet.user_id, kind: "plan_expiry", reason: &reason, now_ms, payment: &None, included: gone };
        self.apply_money(&c, &rest, gone).map(Some)
    }

    /// A credit or debit that is not usage (`c.included` of it moves the
    /// included bucket): ledger entry, and (same turn) a request for the
    /// upstream key's limit to follow the new balance.
    pub fn apply_money(&self, c: &Change, reference: &str, amount: Micros) -> Result<Micros> {
        let store = self.store();
        store.atomically(|| self.apply_money_rows(&store, c, reference, amount))
    }

    fn apply_money_rows(&self, store: &Store, c: &Change, reference: &str, amount: Micros) -> Result<Micros> {
        let balance = store.apply_change(reference, amount, c.included, c.now_ms, |seq, after| {
            serde_json::to_string(&LedgerEntry {
                id: new_id("cl_"),
                user_id: c.user_id.to_string(),
                seq,
                kind: c.kind.to_string(),
                amount: amount.0,
                balance_after: after.total.0,
                included: after.included_moved.0,
                included_after: Some(after.included.0),
                reference: reference.to_string(),
                reason: c.reason.clone(),
                created_at: c.now_ms,
                usage: None,
                payment: c.payment.clone(),
            })
            .expect("ledger entry serialises")
        })?;
        let token = store.wallet()?.map(|w| w.seq).unwrap_or(0);
        store.request_limit_sync(balance, token)?;
        self.schedule_flush();
        Ok(balance)
    }

    /// Projects the outbox after the reply has gone (pending I/O keeps the
    /// object alive for it). Payments project at once: the webhook that
    /// follows a credit (a refund, a dispute) finds the payment in D1.
    pub fn schedule_flush(&self) {
        self.start_flush(None);
    }

    /// The projection after a usage settlement starts `SETTLE_FLUSH_DELAY_MS`
    /// later: a pass spawned at once would run its synchronous part (reading
    /// the outbox, building the D1 batch) before the runtime takes this
    /// request's reply, and on a busy wallet the settlements that land
    /// meanwhile share one pass. The entries are durable in the object's
    /// storage either way, and readers of the ledger flush first (`/state`).
    pub fn schedule_flush_after_settlement(&self) {
        self.start_flush(Some(SETTLE_FLUSH_DELAY_MS));
    }

    fn start_flush(&self, delay_ms: Option<u64>) {
        if self.flushing.replace(true) {
            return; // the running flush loops until the outbox is empty
        }
        let me = self.clone();
        dexto_shared::ops::busy(1);
        self.state.wait_until(async move {
            if let Some(ms) = delay_ms {
                worker::Delay::from(std::time::Duration::from_millis(ms)).await;
            }
            me.project(Some(PASS_SPACING_MS)).await;
            dexto_shared::ops::busy(-1);
        });
    }

    /// Runs `task` after the current request's reply (a stream pump).
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + 'static) {
        self.state.wait_until(task);
    }

    pub async fn flush_now(&self) {
        self.flushing.set(true);
        self.project(None).await;
    }

    /// Drains the outbox into D1, brings the upstream key's limit in line with
    /// the balance, and projects key use. The steps are independent: one that
    /// fails does not hold up the others, and is retried with capped
    /// exponential backoff (a permanent failure costs one attempt an hour).
    /// Passes after the first wait `spacing` (background passes only: a
    /// reader that flushes first does not wait for a hot wallet's batches).
    async fn project(&self, spacing: Option<u64>) {
        let store = self.store();
        // Changes that land while this pass awaits D1 or the management API do not
        // start their own pass (the flag is set), so loop until nothing is pending.
        for _ in 0..MAX_PASSES {
            let now = now_ms();
            let mut failed = false;
            // The ledger itself: always attempted (a new change may find D1 back).
            let result = match self.env.d1("DB") {
                Ok(db) => outbox::flush(&store, &db).await.map(|_| ()),
                Err(e) => Err(e),
            };
            failed |= step(&store, "outbox", now, result);
            if store.retry_at("limit_sync").ok().flatten().is_none_or(|at| at <= now) {
                let result = self.sync_upstream_limit(&store).await;
                failed |= step(&store, "limit_sync", now, result);
            }
            if store.retry_at("key_use").ok().flatten().is_none_or(|at| at <= now) {
                let result = match key_use::project(&store, &self.env).await {
                    Ok(Some(next)) => self.arm(next).await,
                    other => other.map(|_| ()),
                };
                failed |= step(&store, "key_use", now, result);
            }
            if self.x402_waiting.get() != Some(false) && store.retry_at("x402").ok().flatten().is_none_or(|at| at <= now) {
                let result = (self.x402_step)(self).await;
                failed |= step(&store, "x402", now, result);
            }
            let pending = store.outbox_len().unwrap_or(1) > 0 || store.pending_limit_sync().map_or(true, |p| p.is_some());
            if failed || !pending {
                break;
            }
            if let Some(ms) = spacing {
                worker::Delay::from(std::time::Duration::from_millis(ms)).await;
            }
        }
        self.flushing.set(false);
        // Anything still pending (a steady stream of writes, or a step in
        // backoff) is picked up by the next write's pass, or by the alarm.
        self.rearm().await;
    }

    async fn sync_upstream_limit(&self, store: &Store) -> Result<()> {
        let _one_at_a_time = self.limit_lock.lock().await;
        let (Some((balance, token)), Some(wallet)) = (store.pending_limit_sync()?, store.wallet()?) else {
            return Ok(());
        };
        dexto_shared::openrouter_keys::sync_limit(&self.env, &wallet.user_id, store.upstream_room(balance)?)
            .await
            .map_err(|e| Error::from(format!("limit sync: {e:?}")))?;
        store.clear_limit_sync(token)
    }
}

/// What a non-usage balance change records besides its amount.
pub struct Change<'a> {
    pub user_id: &'a str,
    pub kind: &'a str,
    pub reason: &'a Option<String>,
    pub now_ms: i64,
    pub payment: &'a Option<dexto_shared::wallet::PaymentEffect>,
    /// How much of the amount moves the included bucket (0: purchased credit).
    pub included: Micros,
}

/// Books a step's outcome: clears its failure streak, or extends it and
/// logs. Returns whether it failed.
fn step(store: &Store, name: &str, now: i64, result: Result<()>) -> bool {
    match result {
        Ok(()) => {
            if store.retry_at(name).ok().flatten().is_some() {
                let _ = store.step_succeeded(name);
            }
            false
        }
        Err(e) => {
            let failures = store.step_failed(name, now).unwrap_or(1);
            dexto_shared::log::event("wallet.flush_failed", serde_json::json!({ "step": name, "failures": failures, "error": e.to_string() }));
            true
        }
    }
}
