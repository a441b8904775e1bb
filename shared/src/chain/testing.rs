//! A wallet for tests: signs personal messages (EIP-191) with a known key,
//! as `personal_sign` in a browser wallet would.

use super::{personal_sign::message_hash, Address};
use k256::ecdsa::SigningKey;

pub struct TestWallet {
    key: SigningKey,
}

impl TestWallet {
    /// From a 32-byte private key in hex (`0x` optional), e.g. one of anvil's
    /// well-known development accounts.
    pub fn from_hex(private_key: &str) -> TestWallet {
        let bytes = hex::decode(private_key.trim_start_matches("0x")).expect("hex private key");
        TestWallet { key: SigningKey::from_slice(&bytes).expect("valid secp256k1 key") }
    }

    pub fn address(&self) -> Address {
        Address::of_public_key(self.key.verifying_key().to_sec1_point(false).as_bytes()).expect("uncompressed key")
    }

    /// `0x` + r ‖ s ‖ v (v = 27 or 28), the way wallets return it.
    pub fn sign(&self, message: &str) -> String {
        let (signature, recovery) = self.key.sign_prehash_recoverable(&message_hash(message.as_bytes()));
        let mut raw = signature.to_bytes().to_vec();
        raw.push(27 + recovery.to_byte());
        format!("0x{}", hex::encode(raw))
    }
}

/// An EIP-4361 message with the fields every sign-in needs.
pub fn siwe_message(domain: &str, address: &Address, chain_id: u64, nonce: &str, issued_at: &str) -> String {
    siwe_message_stating("Sign in to Dexto.", domain, address, chain_id, nonce, issued_at)
}

/// The same with another statement (a link names the account: `siwe::link_statement`).
pub fn siwe_message_stating(statement: &str, domain: &str, address: &Address, chain_id: u64, nonce: &str, issued_at: &str) -> String {
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\n{statement}\n\nURI: http://{domain}/dashboard\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {issued_at}"
    )
}
