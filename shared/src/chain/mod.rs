//! Ethereum, as far as the gateway needs it: addresses (EIP-55), Keccak-256,
//! personal-message signatures (EIP-191) and their signer, and Sign-In with
//! Ethereum messages (EIP-4361). Pure Rust, unit-tested natively; the Workers
//! glue (nonces, sessions, JSON-RPC) lives with the Workers.

pub mod address;
pub mod erc20;
pub mod personal_sign;
pub mod siwe;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use address::Address;

/// Keccak-256 (Ethereum's hash; not NIST SHA3-256, which pads differently).
pub fn keccak256(bytes: &[u8]) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    Keccak256::digest(bytes).into()
}
