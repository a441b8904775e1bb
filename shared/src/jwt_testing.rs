//! Token minting for tests only (feature `test-support`): fixed, test-only
//! ES256/RS256 keys and their JWKS, so unit and integration tests can sign
//! Supabase-shaped tokens. These keys protect nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};

/// A 2048-bit RSA key generated for these tests (hex: n, d, p, q).
const RSA_N: &[&str] = &[
    "e7a2224ece4af8124897c98095bccce7fbebd1ac6e2da5dfd0315d6f29481de66d96f4016be106258a8b8a30cfb35770",
    "9b58d9adf760a2502267adff1913ee021a37c3f87567c65a103f541d4e27e57d5bcc6c5545593c0f7feb11aa709a2577",
    "fd41c75f7a334d2fe74740edba5a1a3864bc9b272dd8a168033e053103fe58629d5596c4fa28ad8da1e0f4db63c1aeea",
    "03c3098e35311566507ddf9a7bd05032a8e245875fecb62a8a247fef9a5494f0bd95e4f45237eb5a76b257aa6c29a7c0",
    "dcd3cb291aa28eccfcea0245c9ac012a6638abf70da7efae319be5fcabb13b814eb647daa519d2549e9e55521142d7c3",
    "8c4fa0d3daf3a2cb2787a822dfee2587",
];
const RSA_D: &[&str] = &[
    "6483441ceb42b7e403312e84c8353dbb5ae38940282d51c1cdaf662a8300e2cca7786e18a1cdeb23663bc7f30765fcc7",
    "05fa27b76855bc0946ecb3a1b329a549af43cc9ba7a2a8fd52f890110965a19d64b4cfbbaed49a8de545c58c2ec18d09",
    "c4d182e8e8f793027afb3def0ac2e786da1bc7bdd8149d71ab9a819933f0ee3bc527dd6653229df8bf26169ed5954a2d",
    "141e210adde02585bab542f0e7d0802067cb0f8f38d0d7977992c1d0a799081c1ea42108632fe56f5465b2645630c8fc",
    "4cbdf7d6edf1029e7655de556d64a84c60478dc0cbb80f6c2e6fe0c73d3194d2a9e4c6f434b43afc809468d821b39829",
    "69cfc417a4895bf911ad5380e63f212d",
];
const RSA_P: &[&str] = &[
    "fd28190e38f1389239655badfb03da84e3124eaa23de820fed16127684fe49681ee583a6cb67dc861e17b2cdf26865f2",
    "360d9f75476d7c06380543a90cb22942e3ee1f237e2ad78a87a8c1b9ab57df6a0b3cf227cd8847a0813bc39d8447af84",
    "4c0f542f01158bf5baf2305f9205f6beab4bcf2038bb34d7338ca6d0a4f661d3",
];
const RSA_Q: &[&str] = &[
    "ea3c266f376bbd2a35347fc2e2307510f8912d5057d0f0bbabbfc9f3caf35a1e30914466e96ee09daa2809990feb6e17",
    "71c24f3d9b01e1809dda4d0df2a32ee33ef160cfe74866c3d8d3835fe87f22f88912d556b3b8fd1d54bc5fe6041169ec",
    "49941948f4c5ed17a82844778b5ecc9ee7e8a38a76607281089f6c42f3afa8fd",
];
/// A P-256 scalar for these tests.
const EC_SCALAR: [u8; 32] = [7u8; 32];

pub const EC_KID: &str = "test-es256";
pub const RSA_KID: &str = "test-rs256";

fn big(parts: &[&str]) -> rsa::BigUint {
    rsa::BigUint::parse_bytes(parts.concat().as_bytes(), 16).expect("fixture hex")
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_components(big(RSA_N), rsa::BigUint::from(65537u32), big(RSA_D), vec![big(RSA_P), big(RSA_Q)])
        .expect("fixture RSA key")
}

fn ec_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&EC_SCALAR).expect("fixture EC key")
}

/// The JWKS a Supabase project would publish for these keys.
pub fn jwks() -> Value {
    let point = ec_key().verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let rsa = rsa::RsaPublicKey::from(&rsa_key());
    use rsa::traits::PublicKeyParts;
    json!({"keys": [
        {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": EC_KID,
          "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]), "y": URL_SAFE_NO_PAD.encode(&bytes[33..65])},
        {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": RSA_KID,
          "n": URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be())},
    ]})
}

fn encode(header: &Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

pub fn sign_es256(claims: &Value, kid: &str) -> String {
    let input = encode(&json!({"alg": "ES256", "typ": "JWT", "kid": kid}), claims);
    let sig: p256::ecdsa::Signature = ec_key().sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

pub fn sign_rs256(claims: &Value, kid: &str) -> String {
    let input = encode(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims);
    let key = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(rsa_key());
    let sig = rsa::signature::Signer::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(rsa::signature::SignatureEncoding::to_vec(&sig)))
}

/// An unsigned token with the given header (for `alg: none` and confusion tests).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.", encode(header, claims))
}

/// Claims a Supabase access token carries.
pub fn claims(sub: &str, email: &str, issuer: &str, exp: i64) -> Value {
    json!({"sub": sub, "email": email, "iss": issuer, "aud": "authenticated", "role": "authenticated", "exp": exp, "iat": exp - 3600})
}

/// The public key bytes an attacker would use as an HMAC secret (alg confusion).
pub fn rsa_public_der_like() -> Vec<u8> {
    use rsa::traits::PublicKeyParts;
    rsa::RsaPublicKey::from(&rsa_key()).n().to_bytes_be()
}
