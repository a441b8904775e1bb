//! Sign-In with Ethereum (EIP-4361): the message a wallet signs, parsed
//! strictly (its fixed line layout, field order and formats), and checked
//! against what this server expects: its own domain and origin, the chain,
//! and the message's validity window. The nonce (single use) and the
//! signature are checked by the caller, which owns storage.

use super::address::Address;
use crate::time;

/// What the key of our sign-in sessions is derived for (`jwt::derived_hs256_key`)
/// from `ENCRYPTION_KEY` when `SESSION_SIGNING_SECRET` is not set.
pub const SESSION_KEY_PURPOSE: &str = "dexto siwe session v1";

const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiweMessage {
    pub scheme: Option<String>,
    pub domain: String,
    pub address: Address,
    pub statement: Option<String>,
    pub uri: String,
    pub version: String,
    pub chain_id: u64,
    pub nonce: String,
    pub issued_at_ms: i64,
    pub expiration_ms: Option<i64>,
    pub not_before_ms: Option<i64>,
    pub request_id: Option<String>,
    pub resources: Vec<String>,
}

/// What this server accepts.
pub struct Expect<'a> {
    /// Its own host (RFC 3986 authority, e.g. `api.dexto.ai`).
    pub domain: &'a str,
    pub chain_id: u64,
    pub now_ms: i64,
    /// How old `Issued At` may be (the nonce's lifetime).
    pub max_age_ms: i64,
}

/// Why a sign-in is refused; each says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    WrongDomain { expected: String },
    WrongUri { expected: String },
    WrongChain { expected: u64, got: u64 },
    Expired,
    NotYetValid,
    IssuedInFuture,
    TooOld,
    BadSignature(String),
    UnknownNonce,
    /// A link must be signed over `link_statement` of the caller's account.
    WrongStatement { expected: String },
}

/// The statement a wallet signs to be linked to `account`: naming the
/// account, so a signature made for signing in (or for another account)
/// cannot link the wallet to someone else's.
pub fn link_statement(account: &str) -> String {
    format!("Link this wallet to the Dexto account {account}.")
}

impl Refusal {
    /// The reason, in one word, for logs and the error's code.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed_message",
            Refusal::WrongDomain { .. } => "wrong_domain",
            Refusal::WrongUri { .. } => "wrong_uri",
            Refusal::WrongChain { .. } => "wrong_chain",
            Refusal::Expired => "expired_message",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::IssuedInFuture => "issued_in_future",
            Refusal::TooOld => "stale_message",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::UnknownNonce => "nonce_invalid",
            Refusal::WrongStatement { .. } => "wrong_statement",
        }
    }

    pub fn message(&self) -> String {
        let fresh = "Get a fresh nonce (GET /api/auth/siwe/nonce) and sign a new message.";
        match self {
            Refusal::Malformed(what) => format!("The Sign-In with Ethereum message is malformed ({what}); sign an EIP-4361 message as produced by a SIWE library."),
            Refusal::WrongDomain { expected } => format!("The message was made for another site; sign one whose domain is `{expected}`."),
            Refusal::WrongUri { expected } => format!("The message's URI is not on this site; use a URI on `{expected}`."),
            Refusal::WrongChain { expected, got } => format!("The message names chain {got}; this gateway signs in on chain {expected}: switch your wallet's network and sign again."),
            Refusal::Expired => format!("The message has expired. {fresh}"),
            Refusal::NotYetValid => "The message is not valid yet (Not Before is in the future); sign one without it or wait.".into(),
            Refusal::IssuedInFuture => "The message's Issued At is in the future; check your device's clock and sign again.".into(),
            Refusal::TooOld => format!("The message was issued too long ago. {fresh}"),
            Refusal::BadSignature(what) => format!(
                "The signature is not valid for this message and address ({what}); sign the exact message text with that address (personal_sign). Smart-contract wallets (EIP-1271) are not supported yet."
            ),
            Refusal::UnknownNonce => format!("The nonce is unknown, expired or already used. {fresh}"),
            Refusal::WrongStatement { expected } => format!("To link a wallet, sign a message whose statement is exactly `{expected}`."),
        }
    }
}

impl From<Refusal> for crate::error::GatewayError {
    fn from(refusal: Refusal) -> Self {
        crate::error::GatewayError::SignInRefused { code: refusal.reason(), message: refusal.message() }
    }
}

/// Clock skew tolerated on `Issued At` and `Not Before`.
const SKEW_MS: i64 = 60_000;

impl SiweMessage {
    pub fn parse(text: &str) -> Result<SiweMessage, Refusal> {
        let bad = |what: &str| Refusal::Malformed(what.to_string());
        let lines: Vec<&str> = text.split('\n').collect();
        let header = lines.first().and_then(|l| l.strip_suffix(HEADER_SUFFIX)).ok_or_else(|| bad("first line"))?;
        let (scheme, domain) = match header.split_once("://") {
            Some((scheme, domain)) => (Some(scheme.to_string()), domain),
            None => (None, header),
        };
        if domain.is_empty() || domain.contains(char::is_whitespace) || domain.contains('/') {
            return Err(bad("domain"));
        }
        let address = Address::parse_checksummed(lines.get(1).ok_or_else(|| bad("address"))?).map_err(|_| bad("address: not an EIP-55 checksummed address"))?;
        if lines.get(2) != Some(&"") {
            return Err(bad("blank line after the address"));
        }
        let (statement, mut i) = match lines.get(3) {
            Some(&"") => (None, 4),
            Some(statement) if lines.get(4) == Some(&"") => (Some(statement.to_string()), 5),
            _ => return Err(bad("statement")),
        };
        let mut field = |name: &str| -> Option<String> {
            let value = lines.get(i)?.strip_prefix(name)?.strip_prefix(": ")?;
            i += 1;
            Some(value.to_string())
        };
        let uri = field("URI").ok_or_else(|| bad("URI"))?;
        let version = field("Version").filter(|v| v == "1").ok_or_else(|| bad("Version must be 1"))?;
        let chain_id = field("Chain ID").filter(|c| is_decimal(c)).and_then(|c| c.parse().ok()).ok_or_else(|| bad("Chain ID"))?;
        let nonce = field("Nonce").filter(|n| n.len() >= 8 && n.bytes().all(|c| c.is_ascii_alphanumeric())).ok_or_else(|| bad("Nonce"))?;
        let instant = |text: Option<String>, what: &str| -> Result<Option<i64>, Refusal> {
            text.map(|t| time::parse(&t).filter(|p| !p.date_only).map(|p| p.ms).ok_or_else(|| bad(what))).transpose()
        };
        let issued_at_ms = instant(field("Issued At"), "Issued At")?.ok_or_else(|| bad("Issued At"))?;
        let expiration_ms = instant(field("Expiration Time"), "Expiration Time")?;
        let not_before_ms = instant(field("Not Before"), "Not Before")?;
        let request_id = field("Request ID");
        let mut resources = Vec::new();
        if lines.get(i) == Some(&"Resources:") {
            i += 1;
            while let Some(resource) = lines.get(i).and_then(|l| l.strip_prefix("- ")) {
                resources.push(resource.to_string());
                i += 1;
            }
        }
        if i != lines.len() {
            return Err(bad("unexpected text after the fields"));
        }
        if !uri.contains(':') || uri.contains(char::is_whitespace) {
            return Err(bad("URI"));
        }
        Ok(SiweMessage { scheme, domain: domain.to_string(), address, statement, uri, version, chain_id, nonce, issued_at_ms, expiration_ms, not_before_ms, request_id, resources })
    }

    /// Everything but the nonce and the signature.
    pub fn check(&self, expect: &Expect) -> Result<(), Refusal> {
        if self.domain != expect.domain {
            return Err(Refusal::WrongDomain { expected: expect.domain.to_string() });
        }
        let authority = self.uri.split_once("://").map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| self.uri.starts_with(&format!("{s}://")));
        if authority != Some(expect.domain) || !scheme_ok {
            return Err(Refusal::WrongUri { expected: expect.domain.to_string() });
        }
        if self.chain_id != expect.chain_id {
            return Err(Refusal::WrongChain { expected: expect.chain_id, got: self.chain_id });
        }
        if self.expiration_ms.is_some_and(|at| at <= expect.now_ms) {
            return Err(Refusal::Expired);
        }
        if self.not_before_ms.is_some_and(|at| at > expect.now_ms + SKEW_MS) {
            return Err(Refusal::NotYetValid);
        }
        if self.issued_at_ms > expect.now_ms + SKEW_MS {
            return Err(Refusal::IssuedInFuture);
        }
        if self.issued_at_ms < expect.now_ms - expect.max_age_ms {
            return Err(Refusal::TooOld);
        }
        Ok(())
    }
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}
