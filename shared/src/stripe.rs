//! Stripe, the pure parts: webhook signature verification (HMAC-SHA256 over
//! `"<t>.<raw body>"`, any `v1` of any configured secret, constant-time
//! compare, 300 s tolerance both ways), the checkout amount policy, and the
//! form encoding Stripe's API takes.

use hmac::{Hmac, KeyInit, Mac};

pub const TOLERANCE_SECS: i64 = 300;
/// Credit packs the plan sells (USD).
pub const PACKS_USD: &[i64] = &[5, 10, 25, 50, 100];

#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    MissingHeader,
    Malformed,
    NoV1,
    NoMatch,
    TooOld,
    TooNew,
}

/// Verifies a `Stripe-Signature` header against the raw body. Timestamps more
/// than the tolerance in the future are refused too: a signature minted ahead of
/// time is as replayable as an old one.
pub fn verify_signature(header: Option<&str>, body: &[u8], secrets: &[String], now_secs: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (k, v) = item.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {} // v0 and future schemes are ignored
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoV1);
    }
    let mut payload = format!("{t}.").into_bytes();
    payload.extend_from_slice(body);
    let matched = secrets.iter().any(|secret| {
        signatures.iter().any(|sig| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
            mac.update(&payload);
            mac.verify_slice(sig).is_ok()
        })
    });
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    if now_secs - t > TOLERANCE_SECS {
        return Err(SignatureError::TooOld);
    }
    if t - now_secs > TOLERANCE_SECS {
        return Err(SignatureError::TooNew);
    }
    Ok(())
}

/// The `Stripe-Signature` header Stripe would send for `body` (tests, tools).
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a requested top-up (whole cents) against the configured bounds.
pub fn checkout_amount_cents(credits_usd: &serde_json::Value, min_usd: i64, max_usd: i64) -> Result<i64, String> {
    let micros = crate::money::Micros::from_json_usd(credits_usd).map_err(|e| format!("`credits_usd`: {e}"))?;
    if micros.0 % 10_000 != 0 {
        return Err("`credits_usd` must be whole cents.".into());
    }
    let cents = micros.0 / 10_000;
    if cents < min_usd * 100 || cents > max_usd * 100 {
        return Err(format!("`credits_usd` must be between {min_usd} and {max_usd}."));
    }
    Ok(cents)
}

/// `application/x-www-form-urlencoded`, as Stripe's API expects.
pub fn form_encode(fields: &[(&str, String)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect::<Vec<_>>().join("&")
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_800_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;

    fn verify(header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        verify_signature(header, body, &[SECRET.to_string()], NOW)
    }

    #[test]
    fn the_signature_matrix() {
        let good = sign(BODY, SECRET, NOW);
        assert_eq!(verify(Some(&good), BODY), Ok(()));
        assert_eq!(verify(None, BODY), Err(SignatureError::MissingHeader));
        assert_eq!(verify(Some("garbage"), BODY), Err(SignatureError::Malformed));
        assert_eq!(verify(Some("t=abc,v1=00"), BODY), Err(SignatureError::Malformed));
        let v0_only = good.replace("v1=", "v0=");
        assert_eq!(verify(Some(&v0_only), BODY), Err(SignatureError::NoV1));
        assert_eq!(verify(Some(&sign(BODY, "whsec_other", NOW)), BODY), Err(SignatureError::NoMatch));
        let bad_v1 = sign(BODY, "whsec_other", NOW).split_once(",v1=").unwrap().1.to_string();
        let one_good_one_bad = format!("{good},v1={bad_v1}");
        assert_eq!(verify(Some(&one_good_one_bad), BODY), Ok(()));
        let reordered = format!("v1={bad_v1},{good}");
        assert_eq!(verify(Some(&reordered), BODY), Ok(()));
        assert_eq!(verify(Some(&sign(BODY, SECRET, NOW - 301)), BODY), Err(SignatureError::TooOld));
        assert_eq!(verify(Some(&sign(BODY, SECRET, NOW - 300)), BODY), Ok(()));
        assert_eq!(verify(Some(&sign(BODY, SECRET, NOW + 301)), BODY), Err(SignatureError::TooNew));
        let reserialised = br#"{"id": "evt_1", "type": "checkout.session.completed"}"#;
        assert_eq!(verify(Some(&good), reserialised), Err(SignatureError::NoMatch));
    }

    #[test]
    fn any_of_several_secrets_during_rotation() {
        let header = sign(BODY, "whsec_new", NOW);
        assert_eq!(verify_signature(Some(&header), BODY, &["whsec_old".into(), "whsec_new".into()], NOW), Ok(()));
    }

    #[test]
    fn checkout_amounts() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(checkout_amount_cents(&v("25"), 5, 500), Ok(2500));
        assert_eq!(checkout_amount_cents(&v("12.34"), 5, 500), Ok(1234));
        assert!(checkout_amount_cents(&v("4.99"), 5, 500).is_err());
        assert!(checkout_amount_cents(&v("501"), 5, 500).is_err());
        assert!(checkout_amount_cents(&v("10.001"), 5, 500).is_err());
        assert!(checkout_amount_cents(&v("\"ten\""), 5, 500).is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("metadata[user_id]", "u 1".into()), ("success_url", "https://x.ai/a?b=c&d".into())]),
            "metadata%5Buser_id%5D=u%201&success_url=https%3A%2F%2Fx.ai%2Fa%3Fb%3Dc%26d"
        );
    }
}
