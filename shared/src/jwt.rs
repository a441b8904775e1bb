//! Supabase access-token verification (pure; the Worker glue that fetches the
//! JWKS lives in `session.rs`). Signatures are checked by RustCrypto crates
//! (p256, rsa, hmac); this module only parses the compact form and applies the
//! policy:
//! - algorithms are pinned: ES256 and RS256 only with a JWKS key of the matching
//!   type and `kid`; HS256 only with the configured legacy secret. `none`, any
//!   other alg, and HS256 "signed" with a public key are refused;
//! - `exp` in the future, `aud` contains the audience, `iss` equals the issuer,
//!   `role` is `authenticated`, `sub` is present.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Verifier as _;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    UnsupportedAlg(String),
    UnknownKid,
    BadSignature,
    Expired,
    WrongAudience,
    WrongIssuer,
    WrongRole,
    MissingSubject,
}

#[derive(Clone, Debug)]
enum PublicKey {
    Ec(p256::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

#[derive(Clone, Debug)]
struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

/// Public keys from a JWKS document; unusable entries are skipped.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

impl KeySet {
    pub fn from_jwks(doc: &Value) -> KeySet {
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|k| {
                let field = |name: &str| k.get(name).and_then(Value::as_str);
                let key = match (field("kty")?, field("crv")) {
                    ("EC", Some("P-256")) => {
                        let (x, y) = (b64(field("x")?)?, b64(field("y")?)?);
                        if x.len() != 32 || y.len() != 32 {
                            return None;
                        }
                        let point = [&[0x04][..], &x, &y].concat();
                        PublicKey::Ec(p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok()?)
                    }
                    ("RSA", _) => {
                        let n = rsa::BigUint::from_bytes_be(&b64(field("n")?)?);
                        let e = rsa::BigUint::from_bytes_be(&b64(field("e")?)?);
                        PublicKey::Rsa(rsa::RsaPublicKey::new(n, e).ok()?)
                    }
                    _ => return None,
                };
                Some(Jwk { kid: field("kid").map(str::to_string), key })
            })
            .collect();
        KeySet { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            // Without a kid, only an unambiguous single key may be used.
            None => (self.keys.len() == 1).then(|| &self.keys[0]),
        }
    }
}

/// What a token must satisfy.
pub struct Policy<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub hs256_secret: Option<&'a [u8]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionClaims {
    pub sub: String,
    pub email: Option<String>,
    pub exp: i64,
}

/// The header's `alg` and `kid`, to decide which key to look up before verifying.
pub fn peek_header(token: &str) -> Result<(String, Option<String>), JwtError> {
    let header_b64 = token.split('.').next().ok_or(JwtError::Malformed)?;
    let header: Value = serde_json::from_slice(&b64(header_b64).ok_or(JwtError::Malformed)?).map_err(|_| JwtError::Malformed)?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or(JwtError::Malformed)?.to_string();
    Ok((alg, header.get("kid").and_then(Value::as_str).map(str::to_string)))
}

/// Whether verification failed only because no JWKS key has this kid (the
/// caller may refetch the JWKS once and retry).
pub fn needs_key(token: &str, keys: &KeySet) -> bool {
    matches!(peek_header(token), Ok((alg, kid)) if (alg == "ES256" || alg == "RS256") && keys.find(kid.as_deref()).is_none())
}

pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now_secs: i64) -> Result<SessionClaims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let signing_input = &token[..h.len() + 1 + p.len()];
    let signature = b64(s).ok_or(JwtError::Malformed)?;
    let (alg, kid) = peek_header(token)?;
    match alg.as_str() {
        "ES256" => match keys.find(kid.as_deref()).map(|k| &k.key) {
            Some(PublicKey::Ec(key)) => {
                let sig = p256::ecdsa::Signature::from_slice(&signature).map_err(|_| JwtError::BadSignature)?;
                key.verify(signing_input.as_bytes(), &sig).map_err(|_| JwtError::BadSignature)?;
            }
            Some(PublicKey::Rsa(_)) => return Err(JwtError::UnsupportedAlg(alg)),
            None => return Err(JwtError::UnknownKid),
        },
        "RS256" => match keys.find(kid.as_deref()).map(|k| &k.key) {
            Some(PublicKey::Rsa(key)) => {
                let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key.clone());
                let sig = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).map_err(|_| JwtError::BadSignature)?;
                rsa::signature::Verifier::verify(&verifier, signing_input.as_bytes(), &sig).map_err(|_| JwtError::BadSignature)?;
            }
            Some(PublicKey::Ec(_)) => return Err(JwtError::UnsupportedAlg(alg)),
            None => return Err(JwtError::UnknownKid),
        },
        // HS256 only with the configured shared secret: a public JWKS key is never
        // used as an HMAC secret (the classic algorithm-confusion attack).
        "HS256" => {
            let secret = policy.hs256_secret.ok_or_else(|| JwtError::UnsupportedAlg(alg.clone()))?;
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| JwtError::BadSignature)?;
            mac.update(signing_input.as_bytes());
            mac.verify_slice(&signature).map_err(|_| JwtError::BadSignature)?;
        }
        _ => return Err(JwtError::UnsupportedAlg(alg)),
    }
    let claims: Value = serde_json::from_slice(&b64(p).ok_or(JwtError::Malformed)?).map_err(|_| JwtError::Malformed)?;
    check_claims(&claims, policy, now_secs)
}

fn check_claims(claims: &Value, policy: &Policy, now_secs: i64) -> Result<SessionClaims, JwtError> {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == policy.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(policy.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::WrongAudience);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(policy.issuer) {
        return Err(JwtError::WrongIssuer);
    }
    if claims.get("role").and_then(Value::as_str) != Some("authenticated") {
        return Err(JwtError::WrongRole);
    }
    let sub = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 64).ok_or(JwtError::MissingSubject)?;
    // Last: `Expired` tells the holder to sign in again, so it is said only
    // of a token that is ours in every other respect.
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(JwtError::Malformed)?;
    if exp <= now_secs {
        return Err(JwtError::Expired);
    }
    Ok(SessionClaims {
        sub: sub.to_string(),
        email: claims.get("email").and_then(Value::as_str).map(str::to_string),
        exp,
    })
}

/// Signs HS256 tokens: for the local dev session token and for the session
/// handed to device-login clients of the RFC 8628 generation.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// An HS256 key for one `purpose`, derived from another secret (the
/// wallet sessions' key when no secret of its own is configured).
pub fn derived_hs256_key(base: &str, purpose: &str) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(base.as_bytes()).expect("HMAC accepts any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt_testing::*;
    use serde_json::json;

    const ISS: &str = "https://proj.supabase.co/auth/v1";
    const NOW: i64 = 1_800_000_000;

    fn policy(secret: Option<&'static [u8]>) -> Policy<'static> {
        Policy { issuer: ISS, audience: "authenticated", hs256_secret: secret }
    }

    fn keys() -> KeySet {
        KeySet::from_jwks(&jwks())
    }

    fn good() -> Value {
        claims("user-1", "a@example.com", ISS, NOW + 600)
    }

    #[test]
    fn accepts_es256_rs256_and_hs256() {
        let ks = keys();
        assert_eq!(ks.len(), 2);
        for token in [sign_es256(&good(), EC_KID), sign_rs256(&good(), RSA_KID)] {
            let c = verify(&token, &ks, &policy(None), NOW).unwrap();
            assert_eq!((c.sub.as_str(), c.email.as_deref()), ("user-1", Some("a@example.com")));
        }
        let hs = sign_hs256(&good(), b"legacy-secret");
        assert!(verify(&hs, &ks, &policy(Some(b"legacy-secret")), NOW).is_ok());
    }

    #[test]
    fn refuses_bad_claims() {
        let ks = keys();
        let cases = [
            (json!({"exp": NOW - 1}), JwtError::Expired),
            // Expiry is said only of a token that is ours in every other respect.
            (json!({"exp": NOW - 1, "aud": "anon"}), JwtError::WrongAudience),
            (json!({"aud": "anon"}), JwtError::WrongAudience),
            (json!({"iss": "https://evil.example/auth/v1"}), JwtError::WrongIssuer),
            (json!({"role": "anon"}), JwtError::WrongRole),
            (json!({"role": "service_role"}), JwtError::WrongRole),
            (json!({"sub": ""}), JwtError::MissingSubject),
        ];
        for (patch, expected) in cases {
            let mut c = good();
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            assert_eq!(verify(&sign_es256(&c, EC_KID), &ks, &policy(None), NOW).unwrap_err(), expected, "{patch}");
        }
        let mut no_exp = good();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify(&sign_es256(&no_exp, EC_KID), &ks, &policy(None), NOW).unwrap_err(), JwtError::Malformed, "never valid, so not `expired`");
        let mut aud_list = good();
        aud_list["aud"] = json!(["other", "authenticated"]);
        assert!(verify(&sign_es256(&aud_list, EC_KID), &ks, &policy(None), NOW).is_ok());
    }

    #[test]
    fn refuses_none_and_algorithm_confusion() {
        let ks = keys();
        let none = unsigned(&json!({"alg": "none", "typ": "JWT"}), &good());
        assert_eq!(verify(&none, &ks, &policy(Some(b"s")), NOW).unwrap_err(), JwtError::UnsupportedAlg("none".into()));
        // HS256 "signed" with the RSA public key: refused without a secret, and
        // fails the signature when a (different) secret is configured.
        let confused = sign_hs256(&good(), &rsa_public_der_like());
        assert_eq!(verify(&confused, &ks, &policy(None), NOW).unwrap_err(), JwtError::UnsupportedAlg("HS256".into()));
        assert_eq!(verify(&confused, &ks, &policy(Some(b"legacy-secret")), NOW).unwrap_err(), JwtError::BadSignature);
        // An ES256 header pointing at the RSA key (and vice versa).
        let es_on_rsa = sign_es256(&good(), RSA_KID);
        assert_eq!(verify(&es_on_rsa, &ks, &policy(None), NOW).unwrap_err(), JwtError::UnsupportedAlg("ES256".into()));
        let rs_on_ec = sign_rs256(&good(), EC_KID);
        assert_eq!(verify(&rs_on_ec, &ks, &policy(None), NOW).unwrap_err(), JwtError::UnsupportedAlg("RS256".into()));
    }

    #[test]
    fn refuses_unknown_kids_tampering_and_garbage() {
        let ks = keys();
        let unknown = sign_es256(&good(), "rotated-away");
        assert_eq!(verify(&unknown, &ks, &policy(None), NOW).unwrap_err(), JwtError::UnknownKid);
        assert!(needs_key(&unknown, &ks));
        assert!(!needs_key(&sign_es256(&good(), EC_KID), &ks));

        let token = sign_rs256(&good(), RSA_KID);
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut evil = good();
        evil["sub"] = json!("user-2");
        let forged = URL_SAFE_NO_PAD.encode(evil.to_string());
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), &ks, &policy(None), NOW).unwrap_err(), JwtError::BadSignature);

        for garbage in ["", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.e30"] {
            assert!(verify(garbage, &ks, &policy(None), NOW).is_err(), "{garbage}");
        }
    }
}
