//! An Ethereum address: 20 bytes, written as EIP-55 mixed-case hex. Accounts
//! are keyed by the checksummed form, so one address is one spelling.

use super::keccak256;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// Not `0x` followed by 40 hex digits.
    Malformed,
    /// Mixed case that is not the EIP-55 checksum (a mistyped address).
    BadChecksum,
}

impl Address {
    /// Any well-formed spelling: all lower case, all upper case, or a valid
    /// EIP-55 checksum (mixed case must be the checksum).
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let hex_part = text.strip_prefix("0x").ok_or(AddressError::Malformed)?;
        if hex_part.len() != 40 || !hex_part.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(AddressError::Malformed);
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| AddressError::Malformed)?;
        let address = Address(bytes);
        let mixed = hex_part.bytes().any(|c| c.is_ascii_lowercase()) && hex_part.bytes().any(|c| c.is_ascii_uppercase());
        if mixed && address.checksummed() != text {
            return Err(AddressError::BadChecksum);
        }
        Ok(address)
    }

    /// Only the EIP-55 spelling (what EIP-4361 requires in a message).
    pub fn parse_checksummed(text: &str) -> Result<Address, AddressError> {
        let address = Address::parse(text)?;
        if address.checksummed() != text {
            return Err(AddressError::BadChecksum);
        }
        Ok(address)
    }

    /// The address of an uncompressed secp256k1 public key (65 bytes, 0x04…):
    /// the last 20 bytes of the Keccak-256 of its 64 coordinate bytes.
    pub fn of_public_key(uncompressed: &[u8]) -> Option<Address> {
        let coordinates = uncompressed.strip_prefix(&[0x04])?;
        if coordinates.len() != 64 {
            return None;
        }
        let hash = keccak256(coordinates);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&hash[12..]);
        Some(Address(bytes))
    }

    /// EIP-55: hex digit i is upper case when nibble i of
    /// keccak256(lower-case hex) is 8 or more.
    pub fn checksummed(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }

    /// `0x` + 40 lower-case hex digits (how JSON-RPC logs spell topics).
    pub fn lower(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.checksummed())
    }
}
