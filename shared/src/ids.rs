//! Random identifiers from the OS RNG (getrandom: `crypto.getRandomValues` on wasm).

/// `len` random bytes; panics only if the platform RNG is unavailable, which on
/// Workers and Linux cannot happen short of a broken runtime.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("OS random number generator unavailable");
    buf
}

/// `prefix` + 24 hex chars (96 random bits): request ids, ledger row ids, key ids.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<12>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = new_id("req_");
        let b = new_id("req_");
        assert!(a.starts_with("req_") && a.len() == 28);
        assert_ne!(a, b);
    }
}
