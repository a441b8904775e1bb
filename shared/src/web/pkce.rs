//! PKCE (RFC 7636) for the Supabase sign-in: a random verifier kept in an
//! httpOnly cookie, its S256 challenge sent to the authorize endpoint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A verifier from 32 random bytes (43 characters, within RFC 7636's 43–128).
pub fn verifier(random: [u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(verifier([0u8; 32]).len(), 43);
    }
}
