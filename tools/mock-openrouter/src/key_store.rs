//! The keys the provisioning API issued, in memory, and — when
//! `MOCK_OPENROUTER_KEYS_FILE` names a file — kept there across restarts, as
//! OpenRouter keeps them: `npm run dev` restarted on its old state finds the
//! upstream keys its wallets minted before (their limits, their usage). Tests
//! start a fresh mock per stack and set no file.

use crate::money::Usd;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pub const KEYS_FILE_ENV: &str = "MOCK_OPENROUTER_KEYS_FILE";

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub secret: String,
    pub hash: String,
    pub name: String,
    pub label: String,
    pub disabled: bool,
    #[serde(with = "usd_text_opt")]
    pub limit: Option<Usd>,
    pub limit_reset: Option<String>,
    pub include_byok_in_limit: bool,
    #[serde(with = "usd_text")]
    pub usage: Usd,
    #[serde(with = "usd_text")]
    pub byok_usage: Usd,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// What the file holds: the keys in creation order and the secrets of keys
/// deleted since (chat with them stays refused after a restart too).
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Saved {
    keys: Vec<KeyRecord>,
    deleted: HashSet<String>,
}

#[derive(Default)]
pub struct KeyStore {
    saved: Mutex<Saved>,
    file: Option<PathBuf>,
}

/// A change to the keys, written to the file (if any) when it is dropped.
pub(crate) struct Change<'a> {
    guard: MutexGuard<'a, Saved>,
    file: Option<&'a PathBuf>,
}

impl KeyStore {
    /// The store `MOCK_OPENROUTER_KEYS_FILE` names (read if it exists), else
    /// one in memory only. A file that cannot be read is an error: starting
    /// empty would silently forget the keys it was meant to keep.
    pub fn from_env() -> KeyStore {
        match std::env::var_os(KEYS_FILE_ENV).filter(|f| !f.is_empty()) {
            Some(file) => KeyStore::open(PathBuf::from(file)),
            None => KeyStore::default(),
        }
    }

    fn open(file: PathBuf) -> KeyStore {
        let saved = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => panic!("{}: {e}", file.display()),
        };
        KeyStore { saved: Mutex::new(saved), file: Some(file) }
    }

    /// The keys, to read.
    pub(crate) fn keys(&self) -> MutexGuard<'_, Saved> {
        self.saved.lock().unwrap()
    }

    /// The keys, to change; saved once the change is dropped.
    pub(crate) fn change(&self) -> Change<'_> {
        Change { guard: self.saved.lock().unwrap(), file: self.file.as_ref() }
    }

    /// Whether chat with this bearer must be refused: a key this mock issued
    /// that was deleted or disabled since.
    pub fn refuses(&self, secret: &str) -> bool {
        let saved = self.saved.lock().unwrap();
        saved.deleted.contains(secret) || saved.keys.iter().any(|k| k.secret == secret && k.disabled)
    }

    /// Whether a key this mock issued has spent its `limit` (nothing remains).
    pub fn spent_out(&self, secret: &str) -> bool {
        let saved = self.saved.lock().unwrap();
        saved.keys.iter().any(|k| k.secret == secret && k.spent_out())
    }

    /// Adds a chat request's charge to the key it was made with, if the key
    /// was issued by this mock. `byok_upstream` is the provider's own charge.
    pub fn charge(&self, secret: &str, cost: Usd, byok_upstream: Option<Usd>) {
        if !self.saved.lock().unwrap().keys.iter().any(|k| k.secret == secret) {
            return; // not ours: nothing to save
        }
        let mut change = self.change();
        if let Some(k) = change.keys_mut().iter_mut().find(|k| k.secret == secret) {
            k.usage += cost;
            if let Some(b) = byok_upstream {
                k.byok_usage += b;
            }
        }
    }
}

impl Saved {
    pub(crate) fn list(&self) -> &[KeyRecord] {
        &self.keys
    }
}

impl Change<'_> {
    pub(crate) fn keys_mut(&mut self) -> &mut Vec<KeyRecord> {
        &mut self.guard.keys
    }

    /// Removes the key at `i`; chat with its secret is refused from now on.
    pub(crate) fn delete(&mut self, i: usize) {
        let removed = self.guard.keys.remove(i);
        self.guard.deleted.insert(removed.secret);
    }
}

impl Drop for Change<'_> {
    /// Written whole to a temporary file and renamed over the old one: a
    /// mock killed mid-write leaves the previous state, never half of one.
    fn drop(&mut self) {
        let Some(file) = self.file else { return };
        let text = serde_json::to_vec(&*self.guard).expect("keys serialise");
        let tmp = file.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, file)) {
            eprintln!("mock-openrouter: could not save keys to {}: {e}", file.display());
        }
    }
}

/// Amounts as exact decimal text in the file (`Usd` serialises as a JSON
/// number for the API, which would come back through a float).
mod usd_text {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Usd, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_decimal())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let text = String::deserialize(d)?;
        Usd::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not an amount: {text}")))
    }
}

mod usd_text_opt {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Option<Usd>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|u| u.to_decimal()).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usd>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => Usd::parse(&text).map(Some).ok_or_else(|| serde::de::Error::custom(format!("not an amount: {text}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_store_comes_back_with_its_keys_amounts_and_deletions() {
        let dir = std::env::temp_dir().join(format!("mock-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys.json");
        let record = |secret: &str| KeyRecord {
            secret: secret.into(),
            hash: format!("h-{secret}"),
            name: "n".into(),
            label: "l".into(),
            disabled: false,
            limit: Usd::parse("1.000000000000001"),
            limit_reset: None,
            include_byok_in_limit: false,
            usage: Usd::parse("0.000000000000003").unwrap(),
            byok_usage: Usd::ZERO,
            created_at: "2026-12-05T00:00:00Z".into(),
            updated_at: None,
        };
        let first = KeyStore::open(file.clone());
        first.change().keys_mut().extend([record("a"), record("b")]);
        first.change().delete(1);
        first.charge("a", Usd::parse("0.5").unwrap(), None);

        let again = KeyStore::open(file.clone());
        let saved = again.keys();
        assert_eq!(saved.list().len(), 1);
        assert_eq!(saved.list()[0].usage, Usd::parse("0.500000000000003").unwrap());
        assert_eq!(saved.list()[0].limit, Usd::parse("1.000000000000001"));
        drop(saved);
        assert!(again.refuses("b"), "a deleted key stays refused");
        assert!(!again.refuses("a"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
