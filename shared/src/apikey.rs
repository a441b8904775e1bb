//! DEXTO_API_KEY: `dxk_` + 64 lowercase hex chars (32 bytes from the OS RNG).
//! Only the SHA-256 of the whole key is stored; the display form is prefix + last 4.

use crate::secret::Secret;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "dxk_";
const RANDOM_HEX_LEN: usize = 64;

#[derive(Clone, Debug)]
pub struct ApiKey(Secret<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParseError {
    WrongPrefix,
    Malformed,
}

impl ApiKey {
    /// Parses a presented key. Anything not shaped like one of ours is refused
    /// before any storage lookup.
    pub fn parse(text: &str) -> Result<ApiKey, KeyParseError> {
        let body = text.strip_prefix(KEY_PREFIX).ok_or(KeyParseError::WrongPrefix)?;
        let well_formed = body.len() == RANDOM_HEX_LEN
            && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(KeyParseError::Malformed);
        }
        Ok(ApiKey(Secret::new(text.to_string())))
    }

    /// A fresh key from 32 bytes of OS randomness.
    pub fn generate() -> ApiKey {
        let bytes = crate::ids::random_bytes::<32>();
        ApiKey(Secret::new(format!("{KEY_PREFIX}{}", hex::encode(bytes))))
    }

    /// Lowercase hex SHA-256 of the full key: the only form that is stored.
    pub fn hash_hex(&self) -> String {
        hex::encode(Sha256::digest(self.0.expose().as_bytes()))
    }

    /// `dxk_1a2b` (prefix) and `9f0e` (last 4): safe to show and to log.
    pub fn display_parts(&self) -> (String, String) {
        let k = self.0.expose();
        (k[..8].to_string(), k[k.len() - 4..].to_string())
    }

    /// The plaintext, for the one response that hands a new key to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// `dxk_1a2b…9f0e`
pub fn display_form(prefix: &str, last4: &str) -> String {
    format!("{prefix}…{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_stably() {
        let k = ApiKey::generate();
        assert!(k.expose().starts_with("dxk_") && k.expose().len() == 68);
        let again = ApiKey::parse(k.expose()).unwrap();
        assert_eq!(k.hash_hex(), again.hash_hex());
        assert_eq!(k.hash_hex().len(), 64);
        assert_ne!(k.hash_hex(), ApiKey::generate().hash_hex());
    }

    #[test]
    fn known_hash() {
        let k = ApiKey::parse(&format!("dxk_{}", "0".repeat(64))).unwrap();
        let expected = hex::encode(Sha256::digest(format!("dxk_{}", "0".repeat(64))));
        assert_eq!(k.hash_hex(), expected);
        assert_eq!(k.display_parts(), ("dxk_0000".to_string(), "0000".to_string()));
    }

    #[test]
    fn refuses_malformed_keys() {
        assert_eq!(ApiKey::parse("sk-or-v1-abc").unwrap_err(), KeyParseError::WrongPrefix);
        assert_eq!(ApiKey::parse("dxk_short").unwrap_err(), KeyParseError::Malformed);
        assert_eq!(ApiKey::parse(&format!("dxk_{}", "G".repeat(64))).unwrap_err(), KeyParseError::Malformed);
        assert_eq!(ApiKey::parse(&format!("dxk_{}", "A".repeat(64))).unwrap_err(), KeyParseError::Malformed);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = ApiKey::generate();
        assert!(!format!("{k:?}").contains(&k.expose()[4..]));
    }
}
