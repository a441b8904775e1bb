//! Device login on the wire, per Dexto CLI generation (exact shapes in
//! `../shared/reference/dexto-client.md`). Both generations are served on both
//! path families (`/auth/device/*`, `/api/auth/device/*`); the poll body tells
//! them apart. These are protocol bodies the CLIs parse, not the OpenAI error
//! envelope, so they are built here and nowhere else.
//!
//! | poll outcome | 1.6.9–1.7.x (`device_code`) | 1.8.0+ (`deviceCode`) |
//! |---|---|---|
//! | waiting | 400 `authorization_pending` | 200 `{"status":"pending"}` |
//! | too fast | 429 `slow_down` | 429 `{"status":"slow_down"}` |
//! | expired | 400 `expired_token` | 400 `expired` / `expired_token` |
//! | denied | 400 `access_denied` | 400 `denied` / `access_denied` |
//! | unknown or already used | 400 `invalid_grant` | 400 `invalid` / `invalid_grant` |
//! | approved | 200 Supabase-style session (a device token) | 200 `approved` + `fullKey` |
//!
//! 403 and 404 are never used here: every CLI reads them as "device login is
//! disabled on this server".

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// 1.6.9–1.7.x: `{"device_code"}`, RFC 8628 errors, gets a Supabase-style
    /// session whose access token is a device token.
    Rfc8628,
    /// 1.8.0+: `{"deviceCode"}`, `{"status": …}` answers, gets a DEXTO_API_KEY.
    Status,
}

/// The generation and device code of a poll body (`deviceCode` wins if both).
pub fn parse_poll(body: &Value) -> Option<(Generation, String)> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    field("deviceCode").map(|c| (Generation::Status, c)).or_else(|| field("device_code").map(|c| (Generation::Rfc8628, c)))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after_secs: Option<i64>,
}

/// Why a poll gets no credential (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    InvalidRequest,
    Pending,
    SlowDown { interval_secs: i64 },
    Expired,
    Denied,
    /// Unknown device code, or one whose credential was already handed out.
    InvalidGrant,
}

impl Refusal {
    fn rfc8628(self) -> (u16, &'static str, &'static str) {
        use Refusal::*;
        match self {
            InvalidRequest => (400, "invalid_request", "The body must be JSON with `device_code` (or `deviceCode`)."),
            Pending => (400, "authorization_pending", "Waiting for the user to approve the code."),
            SlowDown { .. } => (429, "slow_down", "Polling faster than the interval; wait longer between polls."),
            Expired => (400, "expired_token", "The device code expired; start the login again."),
            Denied => (400, "access_denied", "The user denied this login."),
            InvalidGrant => (400, "invalid_grant", "Unknown or already used device code."),
        }
    }

    fn status_word(self) -> &'static str {
        use Refusal::*;
        match self {
            Pending => "pending",
            SlowDown { .. } => "slow_down",
            Expired => "expired",
            Denied => "denied",
            InvalidRequest | InvalidGrant => "invalid",
        }
    }
}

pub fn refusal(generation: Generation, why: Refusal) -> Reply {
    let (mut status, error, description) = why.rfc8628();
    if generation == Generation::Status && why == Refusal::Pending {
        status = 200;
    }
    let interval = match why {
        Refusal::SlowDown { interval_secs } => Some(interval_secs),
        _ => None,
    };
    let mut body = match (generation, why) {
        (Generation::Rfc8628, _) => json!({"error": error, "error_description": description}),
        // 1.8.0+ must see no `error` field while it should keep polling.
        (Generation::Status, Refusal::Pending | Refusal::SlowDown { .. }) => json!({"status": why.status_word()}),
        (Generation::Status, _) => json!({"status": why.status_word(), "error": error, "error_description": description}),
    };
    if let Some(secs) = interval {
        body["interval"] = json!(secs);
    }
    Reply { status, body, retry_after_secs: interval }
}

/// The key handed to a 1.8.0+ CLI.
pub struct IssuedKeyView<'a> {
    pub id: &'a str,
    pub full_key: &'a str,
    pub display: &'a str,
    pub name: &'a str,
    pub scopes: &'a [String],
}

pub fn key_issued(k: &IssuedKeyView) -> Reply {
    let api_key = json!({"id": k.id, "keyDisplay": k.display, "name": k.name, "scopes": k.scopes, "status": "active"});
    Reply { status: 200, body: json!({"status": "approved", "fullKey": k.full_key, "apiKey": api_key}), retry_after_secs: None }
}

/// The Supabase-style session handed to a 1.6.9–1.7.x CLI: its access token
/// is a device token (`device::DEVICE_TOKEN_PREFIX`), good only for
/// provisioning the CLI's key and reading balance and usage. No refresh
/// token: there is nothing to refresh into.
pub fn session_issued(access_token: &str, expires_in: i64, now_secs: i64, user_id: &str, email: &str) -> Reply {
    let body = json!({
        "access_token": access_token, "token_type": "bearer", "expires_in": expires_in,
        "expires_at": now_secs + expires_in, "refresh_token": null, "user": {"id": user_id, "email": email},
    });
    Reply { status: 200, body, retry_after_secs: None }
}

/// `verificationUriComplete`: the page URL with the user code prefilled.
pub fn verification_uri_complete(verification_uri: &str, user_code: &str) -> String {
    let sep = if verification_uri.contains('?') { '&' } else { '?' };
    format!("{verification_uri}{sep}user_code={user_code}")
}

/// The start answer: camelCase for every generation plus the snake_case
/// twins (and `verificationUrl*` spellings) older releases read.
pub fn start_body(device_code: &str, user_code: &str, verification_uri: &str, expires_in: i64, interval: i64) -> Value {
    let complete = verification_uri_complete(verification_uri, user_code);
    json!({
        "deviceCode": device_code, "device_code": device_code,
        "userCode": user_code, "user_code": user_code,
        "verificationUri": verification_uri, "verificationUrl": verification_uri,
        "verification_uri": verification_uri, "verification_url": verification_uri,
        "verificationUriComplete": complete, "verificationUrlComplete": complete,
        "verification_uri_complete": complete,
        "expiresIn": expires_in, "expires_in": expires_in,
        "interval": interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Generation::*;

    #[test]
    fn the_body_tells_the_generation() {
        assert_eq!(parse_poll(&json!({"device_code": "abc"})), Some((Rfc8628, "abc".into())));
        assert_eq!(parse_poll(&json!({"deviceCode": "abc"})), Some((Status, "abc".into())));
        assert_eq!(parse_poll(&json!({"deviceCode": "new", "device_code": "old"})), Some((Status, "new".into())));
        for bad in [json!({}), json!({"device_code": ""}), json!({"deviceCode": 5}), json!({"code": "x"})] {
            assert_eq!(parse_poll(&bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc8628_generation_gets_rfc_errors() {
        let pending = refusal(Rfc8628, Refusal::Pending);
        assert_eq!((pending.status, pending.body["error"].as_str()), (400, Some("authorization_pending")));
        let slow = refusal(Rfc8628, Refusal::SlowDown { interval_secs: 5 });
        assert_eq!((slow.status, slow.body["error"].as_str(), slow.retry_after_secs), (429, Some("slow_down"), Some(5)));
        for (why, code) in [
            (Refusal::Expired, "expired_token"),
            (Refusal::Denied, "access_denied"),
            (Refusal::InvalidGrant, "invalid_grant"),
            (Refusal::InvalidRequest, "invalid_request"),
        ] {
            let r = refusal(Rfc8628, why);
            assert_eq!((r.status, r.body["error"].as_str()), (400, Some(code)), "{why:?}");
            assert!(r.body.get("status").is_none());
        }
    }

    #[test]
    fn status_generation_waits_with_2xx_and_no_error_field() {
        let pending = refusal(Status, Refusal::Pending);
        assert_eq!((pending.status, &pending.body), (200, &json!({"status": "pending"})));
        let slow = refusal(Status, Refusal::SlowDown { interval_secs: 7 });
        assert_eq!((slow.status, &slow.body, slow.retry_after_secs), (429, &json!({"status": "slow_down", "interval": 7}), Some(7)));
        for (why, status, code) in [(Refusal::Expired, "expired", "expired_token"), (Refusal::Denied, "denied", "access_denied"), (Refusal::InvalidGrant, "invalid", "invalid_grant")] {
            let r = refusal(Status, why);
            assert_eq!((r.status, r.body["status"].as_str(), r.body["error"].as_str()), (400, Some(status), Some(code)));
        }
        for why in [Refusal::Pending, Refusal::SlowDown { interval_secs: 1 }, Refusal::Expired, Refusal::Denied, Refusal::InvalidGrant] {
            for g in [Rfc8628, Status] {
                assert!(![403, 404].contains(&refusal(g, why).status), "403/404 mean 'disabled' to every CLI");
            }
        }
    }

    #[test]
    fn approved_shapes() {
        let scopes = vec!["gateway:use".to_string()];
        let k = key_issued(&IssuedKeyView { id: "key_1", full_key: "dxk_x", display: "dxk_abcd…wxyz", name: "Dexto CLI Key", scopes: &scopes });
        assert_eq!(k.status, 200);
        assert_eq!(
            k.body,
            json!({"status": "approved", "fullKey": "dxk_x", "apiKey": {"id": "key_1", "keyDisplay": "dxk_abcd…wxyz", "name": "Dexto CLI Key", "scopes": ["gateway:use"], "status": "active"}})
        );
        let s = session_issued("jwt", 3600, 1000, "u1", "a@example.com");
        assert_eq!((s.status, &s.body["access_token"], &s.body["expires_in"], &s.body["expires_at"]), (200, &json!("jwt"), &json!(3600), &json!(4600)));
        assert!(s.body.get("error").is_none() && s.body["refresh_token"].is_null());
    }

    #[test]
    fn start_answers_every_spelling() {
        let b = start_body("dc", "ABCD-EFGH", "https://api.dexto.ai/device", 600, 5);
        let complete = "https://api.dexto.ai/device?user_code=ABCD-EFGH";
        for (k, v) in [
            ("deviceCode", json!("dc")),
            ("device_code", json!("dc")),
            ("userCode", json!("ABCD-EFGH")),
            ("user_code", json!("ABCD-EFGH")),
            ("verificationUri", json!("https://api.dexto.ai/device")),
            ("verificationUrl", json!("https://api.dexto.ai/device")),
            ("verification_uri", json!("https://api.dexto.ai/device")),
            ("verificationUriComplete", json!(complete)),
            ("verificationUrlComplete", json!(complete)),
            ("verification_uri_complete", json!(complete)),
            ("expiresIn", json!(600)),
            ("expires_in", json!(600)),
            ("interval", json!(5)),
        ] {
            assert_eq!(b[k], v, "{k}");
        }
        assert_eq!(verification_uri_complete("https://x/d?lang=en", "A"), "https://x/d?lang=en&user_code=A");
    }
}
