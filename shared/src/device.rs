//! Device login (RFC 8628 style), the pure parts: user and device codes,
//! settings, the device token handed to RFC 8628-generation CLIs, what the
//! logging-in client says it is, and when an approval needs a second
//! confirmation.
//! The wire shapes per CLI generation are in `device_protocol.rs`; storage and
//! HTTP in the identity Worker (`functions/identity/src/device.rs`).

use sha2::{Digest, Sha256};

/// Crockford base32: no I, L, O or U, so what is read aloud or copied from a
/// terminal is what gets typed. 8 symbols × 5 bits = 40 bits of entropy.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const USER_CODE_SYMBOLS: usize = 8;

/// A fresh user code (`7K3M-Q9ZT`) from 40 bits of OS randomness.
pub fn new_user_code() -> String {
    user_code_from_bytes(crate::ids::random_bytes::<5>())
}

/// 40 random bits → 8 symbols of 5 bits each, grouped 4-4.
pub fn user_code_from_bytes(bytes: [u8; 5]) -> String {
    let bits = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let symbols: String = (0..USER_CODE_SYMBOLS).rev().map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect();
    format!("{}-{}", &symbols[..4], &symbols[4..])
}

/// The canonical form of a typed user code, or None if it cannot be one:
/// case, spaces and hyphens are ignored, and the look-alikes Crockford maps
/// (O → 0, I/L → 1) are folded, so `abcd efgh` and `ABCD-EFGH` are one code.
pub fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > 32 {
        return None;
    }
    let mut symbols = String::with_capacity(USER_CODE_SYMBOLS);
    for c in input.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        symbols.push(c);
    }
    (symbols.len() == USER_CODE_SYMBOLS).then(|| format!("{}-{}", &symbols[..4], &symbols[4..]))
}

/// A fresh device code: 32 bytes of OS randomness, hex. Only its SHA-256 is stored.
pub fn new_device_code() -> String {
    hex::encode(crate::ids::random_bytes::<32>())
}

/// The stored form of a device code (lowercase hex SHA-256). The code is a
/// 256-bit random secret, so a plain hash is enough to make a database leak
/// useless for polling.
pub fn device_code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// A presented device code worth looking up (anything else is unknown).
pub fn plausible_device_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 128
}

/// Device-login settings (Worker vars; see docs/ARCHITECTURE.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `DEVICE_LOGIN_ENABLED`: anything but false/0/off/no keeps it on.
    pub enabled: bool,
    /// `DEVICE_CODE_TTL_SECONDS` (default 600, 1..=3600).
    pub ttl_secs: i64,
    /// `DEVICE_POLL_INTERVAL_SECONDS` (default 5, 1..=60).
    pub interval_secs: i64,
}

impl DeviceConfig {
    pub fn from_vars(enabled: Option<&str>, ttl: Option<&str>, interval: Option<&str>) -> DeviceConfig {
        let number = |v: Option<&str>, default: i64, max: i64| v.and_then(|v| v.trim().parse::<i64>().ok()).filter(|n| (1..=max).contains(n)).unwrap_or(default);
        let off = enabled.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "off" | "no"));
        DeviceConfig { enabled: !off, ttl_secs: number(ttl, 600, 3600), interval_secs: number(interval, 5, 60) }
    }
}

/// Polls may arrive this much earlier than `interval` after the previous one
/// without a slow-down: the two requests may be timed by different machines.
pub const POLL_TOLERANCE_MS: i64 = 250;

/// What a device login may yield to 1.6.9–1.7.x CLIs, whose poll expects a
/// Supabase-style session: an opaque *device token* (`dxd_` + 32 random
/// bytes, hex; only its SHA-256 is stored, in D1 `device_tokens`). It is not
/// a JWT, so no Supabase project and no session verifier takes it for a
/// session; the control plane accepts it only where the CLI needs it
/// (`session::authenticate_cli`): provisioning the CLI's key once, and
/// reading balance and usage. Everywhere else it gets 403
/// [`DEVICE_TOKEN_REFUSED`].
pub const DEVICE_TOKEN_PREFIX: &str = "dxd_";

/// Lifetime of a device token. The CLIs provision their key right after the
/// poll; they treat a token with under 5 minutes left as expiring, so this
/// leaves them 5 minutes of use. No refresh token is issued.
pub const DEVICE_TOKEN_TTL_SECS: i64 = 600;

/// The one key name a device token may provision, list or revoke: what every
/// CLI generation names its key.
pub const CLI_KEY_NAME: &str = "Dexto CLI Key";

/// The 403 a device token gets wherever it is not enough.
pub const DEVICE_TOKEN_REFUSED: &str =
    "A CLI device login can only provision the Dexto CLI key and read balance and usage. Sign in to the dashboard (/dashboard) to do this.";

/// A fresh device token. Only its SHA-256 ([`device_code_hash`]) is stored.
pub fn new_device_token() -> String {
    format!("{DEVICE_TOKEN_PREFIX}{}", hex::encode(crate::ids::random_bytes::<32>()))
}

/// Whether a bearer token is a device token (and not a Supabase session).
pub fn is_device_token(token: &str) -> bool {
    token.starts_with(DEVICE_TOKEN_PREFIX)
}

/// Approving a code older than this asks for a second confirmation: a login
/// the user started is approved within a minute or two, while a phisher's
/// code, sent on to a victim, has usually been waiting for a while.
pub const CONFIRM_AFTER_SECS: i64 = 180;

/// Whether approving a code issued at `created_at_ms` needs the second confirmation.
pub fn needs_confirmation(created_at_ms: i64, now_ms: i64) -> bool {
    now_ms - created_at_ms > CONFIRM_AFTER_SECS * 1000
}

/// "just now", "45 seconds ago", "1 minute ago", "7 minutes ago", "2 hours ago".
pub fn describe_age(secs: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match secs.max(0) {
        s if s < 10 => "just now".into(),
        s if s < 60 => plural(s, "second"),
        s if s < 3600 => plural(s / 60, "minute"),
        s => plural(s / 3600, "hour"),
    }
}

/// Text a client sent about itself: printable ASCII only, trimmed, at most `max` chars.
fn printable(raw: &str, max: usize) -> Option<String> {
    let text: String = raw.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(max).collect();
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// What the logging-in client says it is, shown on the approval page and
/// kept for audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// `client` (1.6.9–1.7.x) or `clientId` (1.8.0+), and its host when sent
    /// (`host`/`hostname`/`device_name`), e.g. `dexto-cli on my-laptop`.
    pub name: String,
    /// `X-Dexto-Version`, else a `version`/`clientVersion` field, else a
    /// `dexto…/1.2.3` User-Agent; None when the client did not say (the CLIs'
    /// start requests send none of these today).
    pub version: Option<String>,
}

impl ClientInfo {
    pub fn from_start(body: &serde_json::Value, version_header: Option<&str>, user_agent: Option<&str>) -> ClientInfo {
        let field = |name: &str, max: usize| body.get(name).and_then(serde_json::Value::as_str).and_then(|v| printable(v, max));
        let client = field("client", 32).or_else(|| field("clientId", 32)).unwrap_or_else(|| "unknown".into());
        let name = match field("host", 40).or_else(|| field("hostname", 40)).or_else(|| field("device_name", 40)) {
            Some(host) => format!("{client} on {host}"),
            None => client,
        };
        let from_agent = user_agent.and_then(|ua| {
            ua.split_whitespace().find_map(|product| {
                let (who, version) = product.split_once('/')?;
                who.to_ascii_lowercase().starts_with("dexto").then_some(version)
            })
        });
        let version = version_header
            .and_then(|v| printable(v, 32))
            .or_else(|| field("version", 32))
            .or_else(|| field("clientVersion", 32))
            .or_else(|| from_agent.and_then(|v| printable(v, 32)));
        ClientInfo { name, version }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_codes_are_grouped_crockford_and_use_every_bit() {
        assert_eq!(user_code_from_bytes([0; 5]), "0000-0000");
        assert_eq!(user_code_from_bytes([0xff; 5]), "ZZZZ-ZZZZ");
        // 0x0842108421 = 00001 repeated eight times
        assert_eq!(user_code_from_bytes([0x08, 0x42, 0x10, 0x84, 0x21]), "1111-1111");
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        assert!(code.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        assert_ne!(new_user_code(), new_user_code());
    }

    #[test]
    fn typed_codes_normalise() {
        for typed in ["abcd-efgh", "ABCDEFGH", " abcd efgh ", "AB-CD-EF-GH"] {
            assert_eq!(normalize_user_code(typed).as_deref(), Some("ABCD-EFGH"), "{typed}");
        }
        assert_eq!(normalize_user_code("oIl0-0000").as_deref(), Some("0110-0000"));
        for bad in ["", "ABCD-EFG", "ABCD-EFGHJ", "ABCD-EFGU", "ABCD-ÉFGH", "ABCD_EFGH", &"A".repeat(40)] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn device_codes_are_random_and_stored_hashed() {
        let code = new_device_code();
        assert_eq!(code.len(), 64);
        assert_ne!(code, new_device_code());
        let hash = device_code_hash(&code);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, code);
        assert_eq!(hash, device_code_hash(&code));
        assert!(plausible_device_code(&code) && !plausible_device_code("") && !plausible_device_code(&"a".repeat(129)));
    }

    #[test]
    fn config_defaults_bounds_and_switch() {
        let d = DeviceConfig::from_vars(None, None, None);
        assert_eq!(d, DeviceConfig { enabled: true, ttl_secs: 600, interval_secs: 5 });
        let c = DeviceConfig::from_vars(Some("true"), Some("2"), Some("1"));
        assert_eq!((c.enabled, c.ttl_secs, c.interval_secs), (true, 2, 1));
        let bad = DeviceConfig::from_vars(Some(""), Some("0"), Some("600"));
        assert_eq!((bad.enabled, bad.ttl_secs, bad.interval_secs), (true, 600, 5));
        for off in ["false", "0", " OFF ", "no"] {
            assert!(!DeviceConfig::from_vars(Some(off), None, None).enabled, "{off}");
        }
    }

    #[test]
    fn device_tokens_are_random_prefixed_and_never_jwts() {
        let t = new_device_token();
        assert!(is_device_token(&t) && t.len() == 4 + 64, "{t}");
        assert_ne!(t, new_device_token());
        assert_eq!(t.split('.').count(), 1, "not a JWT: no session verifier parses it");
        assert!(!is_device_token("eyJhbGciOi.x.y") && !is_device_token("dxk_abc"));
    }

    #[test]
    fn old_codes_need_a_second_confirmation() {
        let issued = 1_000_000;
        assert!(!needs_confirmation(issued, issued + CONFIRM_AFTER_SECS * 1000));
        assert!(needs_confirmation(issued, issued + CONFIRM_AFTER_SECS * 1000 + 1));
        for (secs, text) in [(-3, "just now"), (9, "just now"), (10, "10 seconds ago"), (61, "1 minute ago"), (420, "7 minutes ago"), (7200, "2 hours ago")] {
            assert_eq!(describe_age(secs), text, "{secs}");
        }
    }

    #[test]
    fn client_info_from_every_generation() {
        let old = ClientInfo::from_start(&json!({"client": "dexto-cli", "host": "my-laptop"}), None, Some("node"));
        assert_eq!(old, ClientInfo { name: "dexto-cli on my-laptop".into(), version: None });
        let new = ClientInfo::from_start(&json!({"clientId": "dexto-cli"}), Some("1.10.4"), Some("dexto-cli/9.9.9"));
        assert_eq!(new, ClientInfo { name: "dexto-cli".into(), version: Some("1.10.4".into()) });
        let agent = ClientInfo::from_start(&json!({}), None, Some("Mozilla/5.0 dexto-cli/1.7.2 node/22"));
        assert_eq!(agent, ClientInfo { name: "unknown".into(), version: Some("1.7.2".into()) });
        let hostile = ClientInfo::from_start(&json!({"client": "<b>x</b>\n\u{202e}", "version": "  "}), Some(""), None);
        assert_eq!(hostile, ClientInfo { name: "<b>x</b>".into(), version: None }, "printable only; escaping is the page's");
    }
}
