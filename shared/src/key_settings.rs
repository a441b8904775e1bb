//! Per-key settings a user or operator may give a key: a name, an expiry, and
//! the models it may call. Parsed here (pure, unit-tested); stored in D1
//! `api_keys`; enforced by API-key authentication (expiry) and the chat path
//! (models).

use serde_json::Value;

/// Most models one key may be limited to.
pub const MAX_ALLOWED_MODELS: usize = 50;

/// A change to a key's settings: each field `None` = leave as is;
/// `Some(None)` = clear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySettings {
    pub name: Option<String>,
    pub expires_at: Option<Option<i64>>,
    pub allowed_models: Option<Option<Vec<String>>>,
    /// Requests per minute this key may make (on top of the user's limit).
    pub rate_limit_per_minute: Option<Option<u32>>,
}

impl KeySettings {
    /// From `{"name"?, "expires_at"?: RFC 3339 | null, "allowed_models"?: [ids] | null}`.
    /// `now_ms`: an expiry must lie in the future.
    pub fn parse(body: &Value, now_ms: i64) -> Result<KeySettings, String> {
        let name = match body.get("name") {
            None => None,
            Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 100 => Some(n.trim().to_string()),
            Some(_) => return Err("`name` must be 1–100 characters.".into()),
        };
        let expires_at = match body.get("expires_at") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(t)) => {
                let at = crate::time::parse(t).map(|p| p.ms).ok_or("`expires_at` must be an RFC 3339 time, e.g. 2027-01-31T00:00:00Z.")?;
                if at <= now_ms {
                    return Err("`expires_at` must be in the future.".into());
                }
                Some(Some(at))
            }
            Some(_) => return Err("`expires_at` must be an RFC 3339 time or null.".into()),
        };
        let allowed_models = match body.get("allowed_models") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_ALLOWED_MODELS => {
                let ids = list
                    .iter()
                    .map(|m| m.as_str().filter(|s| !s.is_empty() && s.len() <= 200 && !s.contains(char::is_whitespace)).map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("`allowed_models` must list model ids such as `openai/gpt-4o`.")?;
                Some(Some(ids))
            }
            Some(_) => return Err(format!("`allowed_models` must be 1–{MAX_ALLOWED_MODELS} model ids, or null.")),
        };
        let rate_limit_per_minute = match body.get("rate_limit_per_minute") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=100_000).contains(&n) => Some(Some(n as u32)),
                _ => return Err("`rate_limit_per_minute` must be 1 to 100000, or null.".into()),
            },
        };
        Ok(KeySettings { name, expires_at, allowed_models, rate_limit_per_minute })
    }
}

/// Stored form of an allow-list: space-separated ids.
pub fn models_to_storage(models: &[String]) -> String {
    models.join(" ")
}

pub fn models_from_storage(text: Option<&str>) -> Option<Vec<String>> {
    text.map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>()).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_796_052_600_000; // 2026-11-30T15:30:00Z

    #[test]
    fn parses_changes_and_clears() {
        let s = KeySettings::parse(&json!({"name": " laptop ", "expires_at": "2027-01-31T00:00:00Z", "allowed_models": ["openai/gpt-4o-mini"]}), NOW).unwrap();
        assert_eq!(s.name.as_deref(), Some("laptop"));
        assert_eq!(s.expires_at, Some(Some(1_801_353_600_000)));
        assert_eq!(s.allowed_models, Some(Some(vec!["openai/gpt-4o-mini".to_string()])));
        assert_eq!(KeySettings::parse(&json!({"rate_limit_per_minute": 30}), NOW).unwrap().rate_limit_per_minute, Some(Some(30)));
        assert!(KeySettings::parse(&json!({"rate_limit_per_minute": 0}), NOW).is_err());
        let clear = KeySettings::parse(&json!({"expires_at": null, "allowed_models": null}), NOW).unwrap();
        assert_eq!((clear.expires_at, clear.allowed_models, clear.name), (Some(None), Some(None), None));
        assert_eq!(KeySettings::parse(&json!({}), NOW).unwrap(), KeySettings::default());
    }

    #[test]
    fn refuses_with_clear_messages() {
        for (body, needle) in [
            (json!({"expires_at": "2020-01-01T00:00:00Z"}), "future"),
            (json!({"expires_at": "tomorrow"}), "RFC 3339"),
            (json!({"allowed_models": []}), "allowed_models"),
            (json!({"allowed_models": ["a b"]}), "model ids"),
            (json!({"name": ""}), "name"),
        ] {
            assert!(KeySettings::parse(&body, NOW).unwrap_err().contains(needle), "{body}");
        }
        assert_eq!(models_from_storage(Some("a/b c/d")), Some(vec!["a/b".into(), "c/d".into()]));
        assert_eq!(models_from_storage(Some(" ")), None);
        assert_eq!(models_to_storage(&["a/b".into(), "c/d".into()]), "a/b c/d");
    }
}
