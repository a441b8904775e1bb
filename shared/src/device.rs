//! Device login (RFC 8628 style), the pure parts: user and device codes,
//! settings, and the claims of the session handed to RFC 8628-generation CLIs.
//! The wire shapes per CLI generation are in `device_protocol.rs`; storage and
//! HTTP in the identity Worker (`functions/identity/src/device.rs`).

use serde_json::{json, Value};
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

/// Lifetime of the session handed to RFC 8628-generation CLIs. They use it
/// once, to provision a DEXTO_API_KEY; no refresh token is issued.
pub const SESSION_TTL_SECS: i64 = 3600;

/// Claims of a Supabase-shaped access token that this gateway's session
/// verification accepts (`jwt::verify`: iss, aud, role, sub, exp).
pub fn session_claims(sub: &str, email: &str, issuer: &str, audience: &str, now_secs: i64) -> Value {
    json!({
        "sub": sub, "email": email, "iss": issuer, "aud": audience, "role": "authenticated",
        "iat": now_secs, "exp": now_secs + SESSION_TTL_SECS, "amr": [{"method": "device_code", "timestamp": now_secs}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{self, KeySet, Policy};

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
    fn session_claims_pass_the_gateways_own_verification() {
        let iss = "https://proj.supabase.co/auth/v1";
        let now = 1_800_000_000;
        let token = jwt::sign_hs256(&session_claims("user-1", "a@example.com", iss, "authenticated", now), b"secret");
        let policy = Policy { issuer: iss, audience: "authenticated", hs256_secret: Some(b"secret") };
        let claims = jwt::verify(&token, &KeySet::default(), &policy, now + 60).unwrap();
        assert_eq!((claims.sub.as_str(), claims.email.as_deref(), claims.exp), ("user-1", Some("a@example.com"), now + SESSION_TTL_SECS));
        assert_eq!(jwt::verify(&token, &KeySet::default(), &policy, now + SESSION_TTL_SECS), Err(jwt::JwtError::Expired));
    }
}
