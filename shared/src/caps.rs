//! Spend caps: a user or one of their keys may spend at most a limit per UTC
//! day, calendar month, or ever. Enforced by the wallet object in the same
//! turn as the hold: what a window has spent plus what is held now plus the
//! new hold must fit, so no amount of concurrency exceeds a cap (open holds
//! count against it). A cap also clamps a request's output, like the balance.

use crate::money::Micros;
use crate::time::{month_start, next_month_start, rfc3339, DAY_MS};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Daily,
    Monthly,
    Lifetime,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Daily, Window::Monthly, Window::Lifetime];

    pub fn parse(text: &str) -> Option<Window> {
        match text {
            "daily" => Some(Window::Daily),
            "monthly" => Some(Window::Monthly),
            "lifetime" => Some(Window::Lifetime),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Daily => "daily",
            Window::Monthly => "monthly",
            Window::Lifetime => "lifetime",
        }
    }

    /// Start of the window that contains `now_ms` (UTC).
    pub fn start(self, now_ms: i64) -> i64 {
        match self {
            Window::Daily => now_ms.div_euclid(DAY_MS) * DAY_MS,
            Window::Monthly => month_start(now_ms),
            Window::Lifetime => 0,
        }
    }

    /// When the window containing `now_ms` ends (None: never).
    pub fn reset_at(self, now_ms: i64) -> Option<i64> {
        match self {
            Window::Daily => Some(self.start(now_ms) + DAY_MS),
            Window::Monthly => Some(next_month_start(now_ms)),
            Window::Lifetime => None,
        }
    }
}

/// Whose spending a cap bounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "scope", content = "key_id", rename_all = "snake_case")]
pub enum Scope {
    User,
    Key(String),
}

impl Scope {
    /// Storage form: `user` or `key:<id>`.
    pub fn as_storage(&self) -> String {
        match self {
            Scope::User => "user".into(),
            Scope::Key(id) => format!("key:{id}"),
        }
    }

    pub fn from_storage(text: &str) -> Option<Scope> {
        match text {
            "user" => Some(Scope::User),
            _ => text.strip_prefix("key:").filter(|id| !id.is_empty()).map(|id| Scope::Key(id.to_string())),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Scope::User => "account's",
            Scope::Key(_) => "key's",
        }
    }
}

/// Who set a cap, and so who may change it. A user's own caps and an
/// operator's are stored apart: a user can set, raise or remove only their
/// own; where both bound the same scope and window, both are checked, so the
/// lower binds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    #[default]
    User,
    Operator,
    /// The user's plan's monthly cap ("Plans"): not stored as a cap, it
    /// follows the plan.
    Plan,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::User => "user",
            Owner::Operator => "operator",
            Owner::Plan => "plan",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    #[serde(flatten)]
    pub scope: Scope,
    pub window: Window,
    pub limit: Micros,
    #[serde(default)]
    pub owner: Owner,
}

/// A cap with what counts against it right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapUse {
    #[serde(flatten)]
    pub cap: Cap,
    /// Settled spending in the current window.
    pub spent: Micros,
    /// Open holds that count against it.
    pub held: Micros,
}

impl CapUse {
    /// What a new hold may still take under this cap (never negative).
    pub fn headroom(&self) -> Micros {
        self.cap.limit.saturating_sub(self.spent).saturating_sub(self.held).max(Micros::ZERO)
    }

    /// The refusal a client sees when this cap is what stops a request: which
    /// cap, its window, and when it resets.
    pub fn refusal(&self, now_ms: i64) -> String {
        let used = self.spent.saturating_add(self.held);
        let reset = match self.cap.window.reset_at(now_ms) {
            Some(at) => format!("it resets at {}", rfc3339(at)),
            None => "it does not reset".into(),
        };
        let remedy = match self.cap.owner {
            Owner::User => "Raise the cap (PUT /api/caps) to continue.",
            Owner::Operator => "This cap was set by Dexto for your account; contact support@dexto.ai to change it.",
            Owner::Plan => "This cap comes with your plan; change plan in the dashboard (Settings → Billing) to raise it.",
        };
        format!(
            "Spend cap reached: this {} {} cap is ${} and ${} is spent or reserved; {reset}. {remedy}",
            self.cap.scope.describe(),
            self.cap.window.as_str(),
            self.cap.limit.usd_trimmed(),
            used.usd_trimmed(),
        )
    }
}

/// A cap change as the session and admin APIs take it:
/// `{"scope": "user" | "key", "key_id"?: "…", "window": "daily" | "monthly" | "lifetime", "limit_usd": 5 | null}`
/// (`null` removes the cap).
pub fn parse_change(body: &serde_json::Value) -> Result<(Scope, Window, Option<Micros>), String> {
    let scope = match body.get("scope").and_then(|v| v.as_str()).unwrap_or("user") {
        "user" => Scope::User,
        "key" => match body.get("key_id").and_then(|v| v.as_str()) {
            Some(id) if !id.is_empty() && id.len() <= 100 => Scope::Key(id.to_string()),
            _ => return Err("`key_id` is required when `scope` is \"key\".".into()),
        },
        other => return Err(format!("`scope` must be \"user\" or \"key\", not `{other}`.")),
    };
    let window = body
        .get("window")
        .and_then(|v| v.as_str())
        .and_then(Window::parse)
        .ok_or("`window` must be \"daily\", \"monthly\" or \"lifetime\".")?;
    let limit = match body.get("limit_usd") {
        None => return Err("`limit_usd` is required (a USD amount, or null to remove the cap).".into()),
        Some(serde_json::Value::Null) => None,
        Some(v) => {
            let m = Micros::from_json_usd(v).map_err(|e| format!("`limit_usd`: {e}"))?;
            if m < Micros::ZERO || m > Micros(1_000_000 * 1_000_000) {
                return Err("`limit_usd` must be between 0 and 1000000.".into());
            }
            Some(m)
        }
    };
    Ok((scope, window, limit))
}

/// The caps as the APIs show them.
pub fn to_json(uses: &[CapUse], now_ms: i64) -> serde_json::Value {
    let list: Vec<serde_json::Value> = uses
        .iter()
        .map(|u| {
            let (scope, key_id) = match &u.cap.scope {
                Scope::User => ("user", None),
                Scope::Key(k) => ("key", Some(k.as_str())),
            };
            serde_json::json!({
                "scope": scope, "key_id": key_id, "window": u.cap.window.as_str(),
                "limit_usd": u.cap.limit.as_json_usd(), "spent_usd": u.spent.as_json_usd(),
                "held_usd": u.held.as_json_usd(), "remaining_usd": u.headroom().as_json_usd(),
                "resets_at": u.cap.window.reset_at(now_ms).map(rfc3339),
                "set_by": u.cap.owner.as_str(),
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

/// The cap with the least headroom, if any cap applies.
pub fn tightest(uses: &[CapUse]) -> Option<&CapUse> {
    uses.iter().min_by_key(|u| u.headroom())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_30_1530: i64 = 1_796_052_600_000; // 2026-11-30T15:30:00Z

    #[test]
    fn windows_start_and_reset_in_utc() {
        assert_eq!(rfc3339(Window::Daily.start(NOV_30_1530)), "2026-11-30T00:00:00Z");
        assert_eq!(rfc3339(Window::Daily.reset_at(NOV_30_1530).unwrap()), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(Window::Monthly.start(NOV_30_1530)), "2026-11-01T00:00:00Z");
        assert_eq!(rfc3339(Window::Monthly.reset_at(NOV_30_1530).unwrap()), "2026-12-01T00:00:00Z");
        assert_eq!((Window::Lifetime.start(NOV_30_1530), Window::Lifetime.reset_at(NOV_30_1530)), (0, None));
        // Rollover: a millisecond past midnight is the next day's window.
        let midnight = Window::Daily.reset_at(NOV_30_1530).unwrap();
        assert_ne!(Window::Daily.start(midnight - 1), Window::Daily.start(midnight));
        assert_eq!(Window::Daily.start(midnight), midnight);
    }

    #[test]
    fn headroom_counts_spending_and_open_holds() {
        let u = CapUse { cap: Cap { scope: Scope::Key("k1".into()), window: Window::Daily, limit: Micros(5_000_000), owner: Owner::User }, spent: Micros(3_000_000), held: Micros(1_500_000) };
        assert_eq!(u.headroom(), Micros(500_000));
        let over = CapUse { spent: Micros(6_000_000), ..u.clone() };
        assert_eq!(over.headroom(), Micros::ZERO, "a cap lowered below the spending leaves nothing");
        let msg = u.refusal(NOV_30_1530);
        assert!(msg.contains("key's daily cap is $5.00") && msg.contains("$4.50 is spent or reserved") && msg.contains("2026-12-01T00:00:00Z"), "{msg}");
        assert_eq!(tightest(&[u.clone(), over.clone()]), Some(&over));
        let operators = CapUse { cap: Cap { owner: Owner::Operator, ..u.cap.clone() }, ..u.clone() };
        let msg = operators.refusal(NOV_30_1530);
        assert!(msg.contains("set by Dexto") && !msg.contains("PUT /api/caps"), "a user cannot raise an operator's cap: {msg}");
        let plans = CapUse { cap: Cap { owner: Owner::Plan, ..u.cap.clone() }, ..u.clone() };
        assert!(plans.refusal(NOV_30_1530).contains("comes with your plan"));
    }

    #[test]
    fn scopes_round_trip_through_storage() {
        for s in [Scope::User, Scope::Key("key_1".into())] {
            assert_eq!(Scope::from_storage(&s.as_storage()), Some(s));
        }
        assert_eq!(Scope::from_storage("key:"), None);
        assert_eq!(Window::parse("weekly"), None);
    }

    #[test]
    fn cap_changes_are_parsed_with_clear_errors() {
        use serde_json::json;
        assert_eq!(parse_change(&json!({"window": "daily", "limit_usd": 5})), Ok((Scope::User, Window::Daily, Some(Micros(5_000_000)))));
        assert_eq!(
            parse_change(&json!({"scope": "key", "key_id": "key_1", "window": "lifetime", "limit_usd": null})),
            Ok((Scope::Key("key_1".into()), Window::Lifetime, None))
        );
        for (body, needle) in [
            (json!({"scope": "key", "window": "daily", "limit_usd": 1}), "key_id"),
            (json!({"scope": "team", "window": "daily", "limit_usd": 1}), "scope"),
            (json!({"window": "weekly", "limit_usd": 1}), "window"),
            (json!({"window": "daily"}), "limit_usd"),
            (json!({"window": "daily", "limit_usd": -1}), "between"),
        ] {
            assert!(parse_change(&body).unwrap_err().contains(needle), "{body}");
        }
    }
}
