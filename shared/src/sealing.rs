//! Encryption at rest for upstream (OpenRouter) keys: AES-256-GCM with a fresh
//! random 96-bit nonce per value. Stored form: base64(nonce ‖ ciphertext ‖ tag),
//! with the id of the key that sealed it kept beside it so keys can rotate.

use crate::secret::Secret;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// A named 256-bit data-encryption key.
#[derive(Clone)]
pub struct SealingKey {
    pub id: String,
    key: Secret<[u8; 32]>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SealError {
    BadKey,
    UnknownKeyId,
    Corrupt,
}

impl SealingKey {
    /// Parses a base64-encoded 32-byte key (`ENCRYPTION_KEY`).
    pub fn from_base64(id: &str, text: &str) -> Result<SealingKey, SealError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(SealingKey { id: id.to_string(), key: Secret::new(key) })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.expose().into())
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce_bytes = crate::ids::random_bytes::<12>();
        let ct = self.cipher().encrypt(&Nonce::from(nonce_bytes), plaintext.as_bytes()).expect("AES-GCM encryption cannot fail");
        STANDARD.encode([&nonce_bytes[..], &ct].concat())
    }
}

/// Opens a sealed value with whichever of `keys` has `key_id`.
pub fn open(sealed: &str, key_id: &str, keys: &[SealingKey]) -> Result<Secret<String>, SealError> {
    let key = keys.iter().find(|k| k.id == key_id).ok_or(SealError::UnknownKeyId)?;
    let raw = STANDARD.decode(sealed).map_err(|_| SealError::Corrupt)?;
    if raw.len() < 12 + 16 {
        return Err(SealError::Corrupt);
    }
    let (nonce, ct) = raw.split_at(12);
    let pt = key.cipher().decrypt(&Nonce::try_from(nonce).map_err(|_| SealError::Corrupt)?, ct).map_err(|_| SealError::Corrupt)?;
    String::from_utf8(pt).map(Secret::new).map_err(|_| SealError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> SealingKey {
        SealingKey::from_base64(id, &STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let k = key("k1", 1);
        let a = k.seal("sk-or-v1-secret");
        let b = k.seal("sk-or-v1-secret");
        assert_ne!(a, b, "nonces differ");
        assert!(!a.contains("sk-or"));
        assert_eq!(open(&a, "k1", std::slice::from_ref(&k)).unwrap().expose(), "sk-or-v1-secret");
    }

    #[test]
    fn rotation_and_tampering() {
        let (old, new) = (key("k1", 1), key("k2", 2));
        let sealed = old.seal("v");
        assert_eq!(open(&sealed, "k1", &[new.clone(), old.clone()]).unwrap().expose(), "v");
        assert_eq!(open(&sealed, "k1", std::slice::from_ref(&new)).unwrap_err(), SealError::UnknownKeyId);
        assert_eq!(open(&sealed, "k2", &[new]).unwrap_err(), SealError::Corrupt, "wrong key fails authentication");
        let mut raw = STANDARD.decode(&sealed).unwrap();
        raw[14] ^= 1;
        assert_eq!(open(&STANDARD.encode(raw), "k1", &[old]).unwrap_err(), SealError::Corrupt);
        assert_eq!(SealingKey::from_base64("x", "c2hvcnQ=").err(), Some(SealError::BadKey));
    }
}
