//! A randomized billing auditor in the spirit of TigerBeetle's VOPR: from a
//! seed, a workload of top-ups (some delivered twice), admin credits (some
//! replayed), chats of every shape (streams, abandoned streams, upstream
//! faults, providers that ignore `max_tokens`), refunds, disputes (some
//! redelivered late), key revocations, concurrent bursts and USDC top-ups on
//! the stack's local chain (confirmed early, late, several times at once, or
//! left to the chain scan) and keyless calls paid with x402 (some retried
//! concurrently with the same authorization) runs against the real stack;
//! then every user's books are checked against invariants:
//!
//! - balance == Σ ledger;
//! - no usage debit without its usage row, and no usage row without its debit;
//! - every charge ≤ its hold (from the settlement log lines);
//! - a price is never below the provider's cost unless flagged `needs_review`;
//! - each payment credited once, and top-ups == what was paid (card and USDC,
//!   and the treasury received exactly what was credited in USDC);
//! - usage never took a wallet below zero (for users without refunds or disputes);
//! - no hold left open once the workload has settled;
//! - the x402 payer's account: Σ ledger == balance, each authorization
//!   credited once, and its credits == what left its address on chain;
//!   the treasury received exactly the USDC top-ups and x402 payments credited.
//!
//! The same seed gives the same workload (timing, and so interleavings, vary).

mod check;
mod x402;

use crate::Stack;
use check::check;
use x402::{check_x402, x402_call};
use serde_json::{json, Value};

/// xorshift64*: small, seedable, good enough to draw a workload.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A paid Checkout Session of the workload.
struct Payment {
    user: usize,
    payment_intent: String,
    cents: i64,
    refunded: i64,
    disputed: bool,
}

struct User {
    id: String,
    key: String,
    key_id: String,
    had_refund_or_dispute: bool,
    /// USDC base units this user's linked address sent to the treasury.
    usdc_sent: i64,
    /// Plan invoices paid (each grants `PLAN_INCLUDED` once), and the end of
    /// the last paid period (0: never subscribed).
    plan_invoices: i64,
    plan_end: i64,
}

/// The auditor's plan: included credit per period and what rolls over.
const PLAN_PRICE: &str = "price_audit_plan";
const PLAN_INCLUDED: i64 = 3_000_000;
const PLAN_ROLLOVER_CAP: i64 = 1_000_000;

#[derive(Debug, Default)]
pub struct Report {
    pub ops: usize,
    pub chats: usize,
    pub payments: usize,
    pub usdc_top_ups: usize,
    pub x402_calls: usize,
    /// Plan periods paid (the first subscription included).
    pub plan_periods: usize,
    pub users: usize,
}

const MODELS: &[&str] = &["openai/gpt-4o-mini", "anthropic/claude-haiku-4.5", "mock/output-only", "mock/no-max", "openai/gpt-4o"];

/// Runs `ops` operations drawn from `seed`, then checks the invariants.
/// Err carries every violation found (the caller prints the seed with it).
pub fn run(s: &Stack, seed: u64, ops: usize) -> Result<Report, String> {
    let mut rng = Rng::new(seed);
    let mut users: Vec<User> = (0..3)
        .map(|i| {
            let u = s.new_user("0");
            // Dev account i of the stack's chain is this user's wallet.
            let wallet = dexto_shared::chain::testing::TestWallet::from_hex(&s.chain.accounts[i].private_key);
            let linked = crate::siwe::link(s, &wallet, &u.id, &s.session_token(&u.id, "audit@example.com"));
            assert_eq!(linked.status, 200, "link: {}", linked.body);
            User { id: u.id, key: u.key, key_id: u.key_id, had_refund_or_dispute: false, usdc_sent: 0, plan_invoices: 0, plan_end: 0 }
        })
        .collect();
    let plan = json!({"id": "audit-plan", "name": "Audit", "stripe_price_id": PLAN_PRICE, "price_cents": 300,
        "included_usd": "3", "rollover": true, "rollover_cap_usd": "1"});
    assert_eq!(s.admin("POST", "/admin/plans", Some(plan)).status, 200);
    // One subscriber from the start; the workload renews (and subscribes others).
    plan_period(s, &mut rng, &mut users[0]);
    let treasury_before = s.chain.usdc_balance(&s.chain.treasury);
    // Dev account 3 pays keyless calls with x402 (its own address account).
    let payer = &s.chain.accounts[3];
    let payer_before = s.chain.usdc_balance(&payer.address);
    let mut payments: Vec<Payment> = Vec::new();
    let mut report = Report { users: users.len(), ..Report::default() };
    for _ in 0..ops {
        report.ops += 1;
        let who = rng.below(users.len() as u64) as usize;
        match rng.below(100) {
            0..=14 => payments.push(top_up(s, &mut rng, who, &users[who])),
            15..=19 => admin_credit(s, &mut rng, &users[who]),
            20..=59 => {
                report.chats += 1;
                chat(s, &mut rng, &users[who]);
            }
            60..=67 => {
                report.chats += 4;
                burst(s, &mut rng, &users[who], 4);
            }
            68..=75 => refund(s, &mut rng, &mut payments, &mut users),
            76..=83 => dispute(s, &mut rng, &mut payments, &mut users),
            84..=87 => rotate_key(s, &mut users[who]),
            88..=93 => {
                report.usdc_top_ups += 1;
                crypto_top_up(s, &mut rng, who, &mut users[who]);
            }
            94..=97 => {
                report.x402_calls += 1;
                x402_call(s, &mut rng, payer);
            }
            _ => plan_period(s, &mut rng, &mut users[who]),
        }
        // Subscribers renew now and then, between whatever else happens.
        if users[who].plan_end > 0 && rng.chance(10) {
            plan_period(s, &mut rng, &mut users[who]);
        }
    }
    report.payments = payments.len();
    report.plan_periods = users.iter().map(|u| u.plan_invoices as usize).sum();
    // What is not final yet becomes final; the chain scan credits what nobody confirmed.
    s.chain.mine(64);
    s.run_cron();
    let mut result = check(s, &users, &payments);
    let x402_credited = match check_x402(s, payer, payer_before) {
        Ok(credited) => credited,
        Err(v) => {
            result = Err(result.err().map_or(v.clone(), |w| format!("{w}\n{v}")));
            0
        }
    };
    let credited = s.d1(&format!("SELECT COALESCE(SUM(amount_micros), 0) AS total FROM credit_ledger WHERE kind = 'crypto_topup' AND user_id IN ({})", quoted(&users)));
    let received = s.chain.usdc_balance(&s.chain.treasury) - treasury_before;
    if credited[0]["total"].as_i64().map(|c| c + x402_credited) != Some(received as i64) {
        let mismatch = format!("USDC credited {} + x402 {x402_credited} != received by the treasury {received}", credited[0]["total"]);
        result = Err(result.err().map_or(mismatch.clone(), |v| format!("{v}\n{mismatch}")));
    }
    result.map(|_| report)
}

fn quoted(users: &[User]) -> String {
    users.iter().map(|u| format!("'{}'", u.id)).collect::<Vec<_>>().join(",")
}

/// A USDC transfer from the user's linked address to the treasury: confirmed
/// before it is final, once final (1–3 confirms at once: exactly one credits),
/// or never (the chain scan finds it).
fn crypto_top_up(s: &Stack, rng: &mut Rng, who: usize, u: &mut User) {
    let amount = *rng.pick(&[1_000_000i64, 2_500_000, 7_000_000]);
    let receipt = s.chain.usdc_transfer(&s.chain.accounts[who].address, &s.chain.treasury, amount as u128);
    let tx = receipt["transactionHash"].as_str().unwrap().to_string();
    u.usdc_sent += amount;
    let token = s.session_token(&u.id, "audit@example.com");
    let confirm = || crate::siwe::post(s, "/api/billing/crypto/confirm", &json!({"tx_hash": tx}), Some(&token)).status;
    match rng.below(3) {
        0 => {}
        1 => assert_eq!(confirm(), 202, "not final yet"),
        _ => {
            s.chain.mine(64);
            let n = 1 + rng.below(3) as usize;
            let answers: Vec<u16> = std::thread::scope(|scope| {
                let calls: Vec<_> = (0..n).map(|_| scope.spawn(confirm)).collect();
                calls.into_iter().map(|c| c.join().unwrap()).collect()
            });
            assert_eq!(answers.iter().filter(|&&c| c == 200).count(), 1, "one credit: {answers:?}");
        }
    }
}

fn top_up(s: &Stack, rng: &mut Rng, who: usize, u: &User) -> Payment {
    let cents = *rng.pick(&[500, 1000, 2500]);
    let token = s.session_token(&u.id, "audit@example.com");
    let r = s.call("POST", "/api/billing/checkout-session", &token, Some(json!({"credits_usd": cents as f64 / 100.0})));
    assert_eq!(r.status, 200, "checkout: {}", r.body);
    let session = r.json()["checkout_session_id"].as_str().unwrap().to_string();
    let pi = dexto_shared::ids::new_id("pi_");
    let event = |kind: &str| {
        json!({"id": dexto_shared::ids::new_id("evt_"), "object": "event", "type": kind, "data": {"object": {
            "id": session, "object": "checkout.session", "amount_total": cents, "currency": "usd",
            "client_reference_id": u.id, "metadata": {"user_id": u.id}, "mode": "payment",
            "payment_status": "paid", "payment_intent": pi}}})
    };
    let completed = event("checkout.session.completed");
    // Delivered once, twice, or as both events that may credit it.
    for _ in 0..=rng.below(2) {
        assert_eq!(s.webhook(&completed, &[]).status, 200);
    }
    if rng.chance(30) {
        assert_eq!(s.webhook(&event("checkout.session.async_payment_succeeded"), &[]).status, 200);
    }
    Payment { user: who, payment_intent: pi, cents, refunded: 0, disputed: false }
}

/// A plan period paid: the next (ten-minute, long past) period of the
/// user's subscription, its `invoice.paid` delivered once or twice. The
/// renewal expires the previous period (rollover up to the cap) and grants
/// this one; the final cron's period pass expires the last.
fn plan_period(s: &Stack, rng: &mut Rng, u: &mut User) {
    let start = if u.plan_end > 0 { u.plan_end } else { crate::now_ms() / 1000 * 1000 - 30 * crate::plans::DAY_MS };
    let end = start + 600_000;
    let invoice = crate::plans::invoice_paid(&u.id, &format!("sub_audit_{}", u.id), PLAN_PRICE, 300, start, end);
    for _ in 0..=rng.below(2) {
        assert_eq!(s.webhook(&invoice, &[]).status, 200);
    }
    u.plan_invoices += 1;
    u.plan_end = end;
}

fn admin_credit(s: &Stack, rng: &mut Rng, u: &User) {
    let key = dexto_shared::ids::new_id("audit-");
    let body = json!({"amount_usd": *rng.pick(&[0.5, 1.0, 2.0]), "reason": "audit", "idempotency_key": key});
    for _ in 0..=rng.below(2) {
        let r = s.admin("POST", &format!("/admin/users/{}/credits", u.id), Some(body.clone()));
        assert_eq!(r.status, 200, "admin credit: {}", r.body);
    }
}

/// A random chat body: model, output limit, and upstream behaviour.
fn chat_body(rng: &mut Rng, stream: bool) -> Value {
    let model = *rng.pick(MODELS);
    let fault = match rng.below(10) {
        0 => "[[mock:tokens=3000,ignore_max=1]]",
        1 => "[[mock:no_usage=1]]",
        2 => "[[mock:no_cost=1]]",
        3 => "[[mock:status=503]]",
        4 => "[[mock:error_after=2]]",
        5 => "[[mock:drop_after=2]]",
        6 => "[[mock:tokens=200]]",
        _ => "",
    };
    let mut body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": format!("audit {fault}")}]});
    if rng.chance(50) {
        body["max_tokens"] = json!(1 + rng.below(2_000));
    }
    body
}

/// One chat. An abandoned stream is read for one event and dropped: its
/// exchange goes on and settles without a reader.
fn chat(s: &Stack, rng: &mut Rng, u: &User) {
    let stream = rng.chance(40);
    let body = chat_body(rng, stream);
    if !stream {
        let r = s.chat(&u.key, &body);
        assert!(matches!(r.status, 200 | 402 | 403 | 429 | 502 | 504), "chat: {} {}", r.status, r.body);
        return;
    }
    read_or_walk_away(rng, s.stream(&u.key, &body));
}

/// Reads a stream to its end, or (30%) one event and walks away: its
/// exchange goes on and settles without a reader.
fn read_or_walk_away(rng: &mut Rng, mut sse: crate::SseReader) {
    if sse.status != 200 {
        return;
    }
    if rng.chance(30) {
        let _ = sse.next_event();
        return;
    }
    while sse.next_event().is_some() {}
}

fn burst(s: &Stack, rng: &mut Rng, u: &User, n: usize) {
    let bodies: Vec<Value> = (0..n).map(|_| chat_body(rng, false)).collect();
    std::thread::scope(|scope| {
        for body in &bodies {
            scope.spawn(|| s.chat(&u.key, body));
        }
    });
}

fn refund(s: &Stack, rng: &mut Rng, payments: &mut [Payment], users: &mut [User]) {
    let open: Vec<usize> = (0..payments.len()).filter(|i| payments[*i].refunded < payments[*i].cents).collect();
    if open.is_empty() {
        return;
    }
    let p = &mut payments[*rng.pick(&open)];
    // Cumulative, like Stripe's `amount_refunded`; sometimes an older total arrives again.
    p.refunded = (p.refunded + 100 * (1 + rng.below(5) as i64)).min(p.cents);
    let amount = if rng.chance(20) { p.refunded / 2 } else { p.refunded };
    let event = json!({"id": dexto_shared::ids::new_id("evt_"), "type": "charge.refunded", "data": {"object": {
        "id": format!("ch_{}", p.payment_intent), "object": "charge", "payment_intent": p.payment_intent,
        "currency": "usd", "amount_refunded": amount}}});
    assert_eq!(s.webhook(&event, &[]).status, 200);
    users[p.user].had_refund_or_dispute = true;
}

fn dispute(s: &Stack, rng: &mut Rng, payments: &mut [Payment], users: &mut [User]) {
    let open: Vec<usize> = (0..payments.len()).filter(|i| !payments[*i].disputed).collect();
    if open.is_empty() {
        return;
    }
    let p = &mut payments[*rng.pick(&open)];
    p.disputed = true;
    users[p.user].had_refund_or_dispute = true;
    let event = |kind: &str, status: &str| {
        json!({"id": dexto_shared::ids::new_id("evt_"), "type": kind, "data": {"object": {
            "id": format!("dp_{}", p.payment_intent), "object": "dispute", "payment_intent": p.payment_intent,
            "amount": p.cents, "status": status}}})
    };
    let created = event("charge.dispute.created", "needs_response");
    assert_eq!(s.webhook(&created, &[]).status, 200);
    let outcome = *rng.pick(&["won", "lost", "won"]);
    assert_eq!(s.webhook(&event("charge.dispute.closed", outcome), &[]).status, 200);
    if rng.chance(50) {
        assert_eq!(s.webhook(&created, &[]).status, 200, "a late redelivery of `created`");
    }
}

fn rotate_key(s: &Stack, u: &mut User) {
    let r = s.admin("POST", &format!("/admin/keys/{}/revoke", u.key_id), None);
    assert_eq!(r.status, 200, "revoke: {}", r.body);
    let k = s.admin("POST", &format!("/admin/users/{}/keys", u.id), Some(json!({"name": "audit"})));
    assert_eq!(k.status, 201, "key: {}", k.body);
    u.key = k.json()["key"].as_str().unwrap().to_string();
    u.key_id = k.json()["id"].as_str().unwrap().to_string();
}

