//! EIP-191 personal messages (`personal_sign`, what wallets sign for
//! Sign-In with Ethereum): the hash a wallet signs, and the address that
//! signed, recovered from a 65-byte `r ‖ s ‖ v` signature.

use super::{keccak256, Address};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// Not `0x` + 130 hex digits, or `v` not 0, 1, 27 or 28.
    Malformed,
    /// `s` in the upper half of the curve order: a malleated copy of a
    /// signature (EIP-2), never what a wallet produces.
    HighS,
    /// No public key recovers from it.
    Unrecoverable,
}

/// keccak256("\x19Ethereum Signed Message:\n" ‖ len(message) ‖ message).
pub fn message_hash(message: &[u8]) -> [u8; 32] {
    let mut prefixed = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    prefixed.extend_from_slice(message);
    keccak256(&prefixed)
}

/// The address whose key signed `message` with `signature_hex`.
pub fn signer(message: &[u8], signature_hex: &str) -> Result<Address, SignatureError> {
    let hex_part = signature_hex.strip_prefix("0x").unwrap_or(signature_hex);
    if hex_part.len() != 130 {
        return Err(SignatureError::Malformed);
    }
    let mut raw = [0u8; 65];
    hex::decode_to_slice(hex_part, &mut raw).map_err(|_| SignatureError::Malformed)?;
    let v = match raw[64] {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return Err(SignatureError::Malformed),
    };
    let signature = Signature::from_slice(&raw[..64]).map_err(|_| SignatureError::Malformed)?;
    if signature.normalize_s() != signature {
        return Err(SignatureError::HighS);
    }
    let recovery = RecoveryId::from_byte(v).ok_or(SignatureError::Malformed)?;
    let key = VerifyingKey::recover_from_prehash(&message_hash(message), &signature, recovery).map_err(|_| SignatureError::Unrecoverable)?;
    Address::of_public_key(key.to_sec1_point(false).as_bytes()).ok_or(SignatureError::Unrecoverable)
}
