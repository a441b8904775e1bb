//! The invariants the auditor checks once its workload has settled.

use super::{quoted, Payment, User};
use crate::Stack;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Waits until nothing is held and the ledger is projected, then checks.
pub(super) fn check(s: &Stack, users: &[User], payments: &[Payment]) -> Result<(), String> {
    let mut violations = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for u in users {
        let view = loop {
            let v = s.user(&u.id);
            let settled = v["open_holds"].as_array().is_some_and(Vec::is_empty) && v["pending_ledger_rows"] == 0;
            if settled || Instant::now() > deadline {
                break v;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if !view["open_holds"].as_array().is_some_and(Vec::is_empty) {
            violations.push(format!("{}: holds still open: {}", u.id, view["open_holds"]));
        }
        if view["balance_micros"] != view["ledger_totals"]["net_micros"] {
            violations.push(format!("{}: balance {} != Σ ledger {}", u.id, view["balance_micros"], view["ledger_totals"]["net_micros"]));
        }
        // Plans: the same per bucket, and included credit never below zero.
        if view["included_micros"] != view["ledger_totals"]["included_net_micros"] {
            violations.push(format!("{}: included {} != Σ ledger (included) {}", u.id, view["included_micros"], view["ledger_totals"]["included_net_micros"]));
        }
        if view["included_micros"].as_i64().is_none_or(|i| i < 0) {
            violations.push(format!("{}: included credit {} below zero", u.id, view["included_micros"]));
        }
        // Every period has ended and the cron's pass ran: at most the rollover cap is left.
        if view["included_micros"].as_i64().is_some_and(|i| i > super::PLAN_ROLLOVER_CAP) {
            violations.push(format!("{}: included credit {} above the rollover cap after the period end", u.id, view["included_micros"]));
        }
    }
    let in_users = quoted(users);
    let orphan_debits = s.d1(&format!(
        "SELECT c.reference FROM credit_ledger c WHERE c.user_id IN ({in_users}) AND c.kind = 'usage'
         AND NOT EXISTS (SELECT 1 FROM usage_ledger u WHERE u.user_id = c.user_id AND 'usage:' || u.request_id = c.reference)"
    ));
    if !orphan_debits.is_empty() {
        violations.push(format!("usage debits without a usage row: {orphan_debits:?}"));
    }
    let unbilled = s.d1(&format!(
        "SELECT u.request_id FROM usage_ledger u WHERE u.user_id IN ({in_users}) AND u.user_price_micros > 0
         AND NOT EXISTS (SELECT 1 FROM credit_ledger c WHERE c.user_id = u.user_id AND c.reference = 'usage:' || u.request_id)"
    ));
    if !unbilled.is_empty() {
        violations.push(format!("charged usage rows without a ledger debit: {unbilled:?}"));
    }
    let below_cost = s.d1(&format!(
        "SELECT request_id, user_price_micros, provider_cost_micros FROM usage_ledger
         WHERE user_id IN ({in_users}) AND user_price_micros < provider_cost_micros AND billing_status = 'billed'"
    ));
    if !below_cost.is_empty() {
        violations.push(format!("billed below provider cost without review: {below_cost:?}"));
    }
    let doubled = s.d1(&format!(
        "SELECT user_id, reference, COUNT(*) AS n FROM credit_ledger WHERE user_id IN ({in_users}) AND kind IN ('topup', 'crypto_topup', 'plan_grant')
         GROUP BY user_id, reference HAVING COUNT(*) > 1"
    ));
    if !doubled.is_empty() {
        violations.push(format!("payments credited more than once: {doubled:?}"));
    }
    let topups = s.d1(&format!(
        "SELECT user_id, COALESCE(SUM(amount_micros), 0) AS total FROM credit_ledger WHERE user_id IN ({in_users}) AND kind = 'topup' GROUP BY user_id"
    ));
    let usdc = s.d1(&format!(
        "SELECT user_id, COALESCE(SUM(amount_micros), 0) AS total FROM credit_ledger WHERE user_id IN ({in_users}) AND kind = 'crypto_topup' GROUP BY user_id"
    ));
    // Every bucket move stays in its bucket: a usage row spends included
    // credit no larger than its price; grants and expiries move only it.
    let misfiled = s.d1(&format!(
        "SELECT user_id, reference, amount_micros, included_micros FROM credit_ledger WHERE user_id IN ({in_users}) AND (
           (kind = 'usage' AND (included_micros > 0 OR included_micros < amount_micros))
           OR (kind IN ('plan_grant', 'plan_expiry', 'plan_take_back') AND included_micros != amount_micros)
           OR (kind NOT IN ('usage', 'plan_grant', 'plan_expiry', 'plan_take_back') AND included_micros != 0))"
    ));
    if !misfiled.is_empty() {
        violations.push(format!("ledger rows moving the wrong bucket: {misfiled:?}"));
    }
    let negative = s.d1(&format!(
        "SELECT user_id, reference, balance_after_micros FROM credit_ledger WHERE user_id IN ({in_users}) AND kind = 'usage' AND balance_after_micros < 0"
    ));
    let grants = s.d1(&format!(
        "SELECT user_id, COALESCE(SUM(amount_micros), 0) AS total FROM credit_ledger WHERE user_id IN ({in_users}) AND kind = 'plan_grant' GROUP BY user_id"
    ));
    for (i, u) in users.iter().enumerate() {
        let granted = grants.iter().find(|r| r["user_id"] == u.id.as_str()).and_then(|r| r["total"].as_i64()).unwrap_or(0);
        if granted != u.plan_invoices * super::PLAN_INCLUDED {
            violations.push(format!("{}: plan grants {granted} != {} invoices × {}", u.id, u.plan_invoices, super::PLAN_INCLUDED));
        }
        let paid: i64 = payments.iter().filter(|p| p.user == i).map(|p| p.cents * 10_000).sum();
        let credited = topups.iter().find(|r| r["user_id"] == u.id.as_str()).and_then(|r| r["total"].as_i64()).unwrap_or(0);
        if credited != paid {
            violations.push(format!("{}: top-ups {credited} != paid {paid}", u.id));
        }
        let in_usdc = usdc.iter().find(|r| r["user_id"] == u.id.as_str()).and_then(|r| r["total"].as_i64()).unwrap_or(0);
        if in_usdc != u.usdc_sent {
            violations.push(format!("{}: USDC credited {in_usdc} != sent {}", u.id, u.usdc_sent));
        }
        let below_zero: Vec<&Value> = negative.iter().filter(|r| r["user_id"] == u.id.as_str()).collect();
        if !u.had_refund_or_dispute && !below_zero.is_empty() {
            violations.push(format!("{}: usage took the wallet below zero: {below_zero:?}", u.id));
        }
    }
    // Every settlement's charge ≤ its hold (one log line per settled request).
    let logs = s.logs();
    let user_ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    for line in logs.lines().filter(|l| l.contains("\"event\":\"chat.completion\"")) {
        let Some(start) = line.find('{') else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&line[start..]) else { continue };
        if !v["user_id"].as_str().is_some_and(|id| user_ids.contains(id)) {
            continue;
        }
        if v["price_micros"].as_i64() > v["hold_micros"].as_i64() {
            violations.push(format!("charge above its hold: {line}"));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations.join("\n"))
    }
}
