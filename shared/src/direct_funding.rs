//! Direct OpenRouter keys (the BYOK path), the pure part: the money moves
//! between a user's wallet and their direct key, the key's limit as a target
//! derived from those moves, and what is left unspent. The Workers side
//! (D1, the management API, the wallet) is `workers/direct_keys.rs`.
//!
//! Why a target: the key's `limit` is set to Σ funds − Σ reclaims/revokes
//! (pending moves included) rather than moved by deltas, so setting it twice
//! changes nothing and reconciliation can re-apply it after any crash.

use crate::money::{Micros, Picos};
use sha2::{Digest, Sha256};

/// The most one move may carry: a typo guard, not a policy.
pub const MAX_MOVE: Micros = Micros(10_000 * crate::money::MICROS_PER_USD);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveKind {
    /// Wallet → key: the wallet is debited, the limit raised.
    Fund,
    /// Key → wallet: the limit lowered first, then the wallet credited.
    Reclaim,
    /// The key revoked: what it did not spend goes back to the wallet.
    Revoke,
}

impl MoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Fund => "fund",
            MoveKind::Reclaim => "reclaim",
            MoveKind::Revoke => "revoke",
        }
    }

    pub fn parse(text: &str) -> Option<MoveKind> {
        [MoveKind::Fund, MoveKind::Reclaim, MoveKind::Revoke].into_iter().find(|k| k.as_str() == text)
    }

    /// The wallet's `/credit` reference of a move: unique per move, so a
    /// completion sent twice moves money once.
    pub fn wallet_reference(self, move_id: &str) -> String {
        format!("direct_{}:{move_id}", self.as_str())
    }

    /// The ledger row's kind.
    pub fn ledger_kind(self) -> &'static str {
        match self {
            MoveKind::Fund => "direct_key_fund",
            MoveKind::Reclaim => "direct_key_reclaim",
            MoveKind::Revoke => "direct_key_revoke",
        }
    }

    /// The wallet's side of a move of `amount`: a fund debits it, the others credit it.
    pub fn wallet_delta(self, amount: Micros) -> Micros {
        match self {
            MoveKind::Fund => Micros(-amount.0),
            MoveKind::Reclaim | MoveKind::Revoke => amount,
        }
    }
}

/// The id of a move asked for with an `Idempotency-Key`: the same user,
/// kind and key always name the same move, so a retried request finds the
/// move it already made instead of making another.
pub fn move_id(user_id: &str, kind: MoveKind, idempotency_key: &str) -> String {
    let digest = Sha256::digest(format!("{user_id}\n{}\n{idempotency_key}", kind.as_str()).as_bytes());
    format!("dkm_{}", &hex::encode(digest)[..32])
}

/// The id of a key's revoke move: one per key, whoever completes it.
pub fn revoke_move_id(key_id: &str) -> String {
    format!("dkm_revoke_{key_id}")
}

/// The key's limit: what was moved to it less what was taken back, never
/// below zero.
pub fn target_limit(moves: &[(MoveKind, Micros)]) -> Micros {
    let net: i64 = moves.iter().map(|(k, a)| if *k == MoveKind::Fund { a.0 } else { -a.0 }).sum();
    Micros(net.max(0))
}

/// What a key funded with `funded` has not spent, by its own counter
/// (`spent`, exact): rounded in the wallet's favour only by the sub-micro
/// part of the spending, never below zero.
pub fn unspent(funded: Micros, spent: Picos) -> Micros {
    Micros(funded.0.saturating_sub(spent.ceil_micros().0).max(0))
}

/// A move's amount from a request's `amount_usd` (a JSON number, exact to the
/// micro-dollar): positive, at most `MAX_MOVE`.
pub fn parse_amount(value: Option<&serde_json::Value>) -> Result<Micros, String> {
    let value = value.ok_or("`amount_usd` is required (a number of US dollars, e.g. 5 or 2.50).")?;
    let amount = Micros::from_json_usd(value).map_err(|e| format!("`amount_usd`: {e}."))?;
    if amount.0 <= 0 {
        return Err("`amount_usd` must be more than zero.".into());
    }
    if amount > MAX_MOVE {
        return Err(format!("`amount_usd` must be at most {} per move.", MAX_MOVE.usd_trimmed()));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_target_is_funds_less_what_was_taken_back() {
        assert_eq!(target_limit(&[]), Micros::ZERO);
        let moves = [(MoveKind::Fund, Micros(5_000_000)), (MoveKind::Fund, Micros(2_500_000)), (MoveKind::Reclaim, Micros(1_000_001))];
        assert_eq!(target_limit(&moves), Micros(6_499_999));
        assert_eq!(target_limit(&[(MoveKind::Fund, Micros(1)), (MoveKind::Revoke, Micros(3))]), Micros::ZERO, "never below zero");
    }

    #[test]
    fn unspent_rounds_spending_up_and_never_goes_negative() {
        assert_eq!(unspent(Micros(5_000_000), Picos::parse_usd("1.2345671").unwrap()), Micros(3_765_432));
        assert_eq!(unspent(Micros(5_000_000), Picos::ZERO), Micros(5_000_000));
        assert_eq!(unspent(Micros(1_000_000), Picos::parse_usd("1.5").unwrap()), Micros::ZERO, "overspent: nothing to take back");
    }

    #[test]
    fn idempotency_keys_name_one_move_per_user_and_kind() {
        let a = move_id("u1", MoveKind::Fund, "retry-1");
        assert_eq!(a, move_id("u1", MoveKind::Fund, "retry-1"));
        assert_ne!(a, move_id("u2", MoveKind::Fund, "retry-1"));
        assert_ne!(a, move_id("u1", MoveKind::Reclaim, "retry-1"));
        assert!(a.starts_with("dkm_") && a.len() == 36);
    }

    #[test]
    fn references_and_signs_per_kind() {
        assert_eq!(MoveKind::Fund.wallet_reference("dkm_1"), "direct_fund:dkm_1");
        assert_eq!(MoveKind::Fund.wallet_delta(Micros(7)), Micros(-7));
        assert_eq!(MoveKind::Reclaim.wallet_delta(Micros(7)), Micros(7));
        assert_eq!(MoveKind::parse("revoke"), Some(MoveKind::Revoke));
        assert_eq!(MoveKind::parse("other"), None);
    }

    #[test]
    fn amounts_are_exact_positive_and_bounded() {
        assert_eq!(parse_amount(Some(&json!(2.5))), Ok(Micros(2_500_000)));
        assert_eq!(parse_amount(Some(&json!(0.000001))), Ok(Micros(1)));
        assert!(parse_amount(None).is_err());
        assert!(parse_amount(Some(&json!(0))).is_err());
        assert!(parse_amount(Some(&json!(-1))).is_err());
        assert!(parse_amount(Some(&json!(0.0000001))).is_err(), "below a micro-dollar");
        assert!(parse_amount(Some(&json!(10_000.01))).is_err());
    }
}
