use super::personal_sign::{signer, SignatureError};
use super::siwe::{Expect, Refusal, SiweMessage};
use super::testing::{siwe_message, TestWallet};
use super::Address;
use crate::time;

/// anvil's first development account (public knowledge, never funded for real).
const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ANVIL_ADDRESS_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

#[test]
fn eip55_checksums_match_the_published_vectors() {
    for spelled in ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"] {
        let address = Address::parse(&spelled.to_lowercase()).unwrap();
        assert_eq!(address.checksummed(), spelled);
        assert_eq!(Address::parse_checksummed(spelled), Ok(address));
    }
    assert!(Address::parse_checksummed("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_err(), "lower case is not the checksum");
    assert!(Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_err(), "a mistyped mixed case");
    assert!(Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA").is_err());
}

#[test]
fn a_key_signs_as_its_own_address_and_nothing_else_verifies() {
    let wallet = TestWallet::from_hex(ANVIL_KEY_0);
    assert_eq!(wallet.address().checksummed(), ANVIL_ADDRESS_0, "anvil's account 0");
    let signature = wallet.sign("hello");
    assert_eq!(signer(b"hello", &signature), Ok(wallet.address()));
    assert_ne!(signer(b"hellp", &signature), Ok(wallet.address()), "another message recovers another key");
    assert_eq!(signer(b"hello", "0x1234"), Err(SignatureError::Malformed));
    let mut bad_v = signature.clone();
    bad_v.replace_range(130..132, "05");
    assert_eq!(signer(b"hello", &bad_v), Err(SignatureError::Malformed));
}

#[test]
fn a_malleated_high_s_signature_is_refused() {
    let wallet = TestWallet::from_hex(ANVIL_KEY_0);
    let signature = hex::decode(&wallet.sign("hello")[2..]).unwrap();
    // s' = n − s, v flipped: the same signature in its malleated form.
    let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let s = &signature[32..64];
    let mut high = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = n[i] as i16 - s[i] as i16 - borrow;
        borrow = (d < 0) as i16;
        high[i] = (d + 256 * borrow) as u8;
    }
    let mut malleated = signature[..32].to_vec();
    malleated.extend_from_slice(&high);
    malleated.push(if signature[64] == 27 { 28 } else { 27 });
    assert_eq!(signer(b"hello", &format!("0x{}", hex::encode(malleated))), Err(SignatureError::HighS));
}

fn now() -> i64 {
    time::parse("2026-12-04T12:00:00Z").unwrap().ms
}

fn expect() -> Expect<'static> {
    Expect { domain: "api.dexto.ai", chain_id: 8453, now_ms: now(), max_age_ms: 10 * 60_000 }
}

fn message(issued_at: &str) -> String {
    siwe_message("api.dexto.ai", &TestWallet::from_hex(ANVIL_KEY_0).address(), 8453, "abcd1234efgh", issued_at)
}

#[test]
fn a_well_formed_message_parses_field_by_field() {
    let text = format!("{}\nExpiration Time: 2026-12-04T12:10:00Z\nNot Before: 2026-12-04T11:59:00Z\nRequest ID: r-1\nResources:\n- ipfs://x\n- https://api.dexto.ai/a", message("2026-12-04T11:59:30Z"));
    let m = SiweMessage::parse(&text).unwrap();
    assert_eq!((m.domain.as_str(), m.address.checksummed().as_str(), m.statement.as_deref()), ("api.dexto.ai", ANVIL_ADDRESS_0, Some("Sign in to Dexto.")));
    assert_eq!((m.uri.as_str(), m.chain_id, m.nonce.as_str()), ("http://api.dexto.ai/dashboard", 8453, "abcd1234efgh"));
    assert_eq!((m.expiration_ms, m.request_id.as_deref(), m.resources.len()), (Some(now() + 600_000), Some("r-1"), 2));
    assert_eq!(m.check(&expect()), Ok(()));
    // Without a statement: two blank lines.
    let bare = text.replace("Sign in to Dexto.\n", "");
    assert_eq!(SiweMessage::parse(&bare).unwrap().statement, None);
}

#[test]
fn malformed_messages_say_which_part() {
    let good = message("2026-12-04T11:59:30Z");
    for (broken, part) in [
        (good.replace(" wants you", " want you"), "first line"),
        (good.replace(ANVIL_ADDRESS_0, &ANVIL_ADDRESS_0.to_lowercase()), "address"),
        (good.replace("Version: 1", "Version: 2"), "Version"),
        (good.replace("Chain ID: 8453", "Chain ID: 08453"), "Chain ID"),
        (good.replace("Nonce: abcd1234efgh", "Nonce: abc"), "Nonce"),
        (good.replace("Issued At: 2026-12-04T11:59:30Z", "Issued At: yesterday"), "Issued At"),
        (format!("{good}\nSurprise: 1"), "after the fields"),
        (good.replace('\n', "\r\n"), ""),
    ] {
        match SiweMessage::parse(&broken) {
            Err(Refusal::Malformed(what)) => assert!(what.contains(part), "{what} vs {part}"),
            other => panic!("{part}: {other:?}"),
        }
    }
}

#[test]
fn each_check_refuses_with_its_reason() {
    let parse = |text: &str| SiweMessage::parse(text).unwrap();
    let fresh = message("2026-12-04T11:59:30Z");
    let refused = |text: String| parse(&text).check(&expect()).unwrap_err().reason();
    assert_eq!(refused(fresh.replace("api.dexto.ai wants", "evil.example wants")), "wrong_domain");
    assert_eq!(refused(fresh.replace("URI: http://api.dexto.ai/", "URI: http://evil.example/")), "wrong_uri");
    assert_eq!(refused(fresh.replace("Chain ID: 8453", "Chain ID: 1")), "wrong_chain");
    assert_eq!(refused(format!("{fresh}\nExpiration Time: 2026-12-04T11:59:59Z")), "expired_message");
    assert_eq!(refused(format!("{fresh}\nNot Before: 2026-12-04T12:30:00Z")), "not_yet_valid");
    assert_eq!(refused(message("2026-12-04T12:05:00Z")), "issued_in_future");
    assert_eq!(refused(message("2026-12-04T11:40:00Z")), "stale_message");
    assert!(Refusal::WrongChain { expected: 8453, got: 1 }.message().contains("switch your wallet's network"));
}

mod erc20 {
    use super::super::erc20::*;
    use super::super::Address;
    use serde_json::json;

    fn addr(n: u8) -> Address {
        Address([n; 20])
    }

    fn log(token: &Address, from: &Address, to: &Address, amount: u128) -> serde_json::Value {
        json!({"address": token.lower(), "topics": [TRANSFER_TOPIC, address_topic(from), address_topic(to)],
            "data": format!("0x{amount:064x}"), "blockNumber": "0x10", "blockHash": "0xAB", "transactionHash": "0xCD", "logIndex": "0x2"})
    }

    fn receipt(status: &str, logs: Vec<serde_json::Value>) -> RpcReceipt {
        serde_json::from_value(json!({"status": status, "blockNumber": "0x10", "blockHash": "0xab", "transactionHash": "0xcd", "logs": logs})).unwrap()
    }

    #[test]
    fn a_usdc_transfer_to_the_treasury_is_read_exactly() {
        let (usdc, treasury, payer) = (addr(1), addr(2), addr(3));
        let r = receipt("0x1", vec![log(&usdc, &payer, &treasury, 12_345_678)]);
        let Payment::ToTreasury(transfers) = judge(&r, &usdc, &treasury) else { panic!() };
        let t = &transfers[0];
        assert_eq!((t.from, t.to, t.amount, t.log_index, t.block_number), (payer, treasury, 12_345_678, 2, 16));
        assert_eq!(t.micros(), Some(crate::money::Micros(12_345_678)), "1 base unit = 1 µ$");
        assert_eq!(t.reference(8453), "usdc:8453:0xcd:2");
    }

    #[test]
    fn reverted_wrong_token_and_wrong_recipient_are_told_apart() {
        let (usdc, treasury, payer, other) = (addr(1), addr(2), addr(3), addr(4));
        assert_eq!(judge(&receipt("0x0", vec![log(&usdc, &payer, &treasury, 5)]), &usdc, &treasury), Payment::Reverted);
        assert_eq!(judge(&receipt("0x1", vec![log(&other, &payer, &treasury, 5)]), &usdc, &treasury), Payment::WrongToken);
        assert_eq!(judge(&receipt("0x1", vec![log(&usdc, &payer, &other, 5)]), &usdc, &treasury), Payment::WrongRecipient);
        assert_eq!(judge(&receipt("0x1", vec![]), &usdc, &treasury), Payment::WrongToken);
        assert_eq!(judge(&receipt("0x1", vec![log(&usdc, &payer, &treasury, 0)]), &usdc, &treasury), Payment::WrongToken, "a zero-value Transfer pays nothing");
    }

    #[test]
    fn an_authorization_pays_only_with_its_transfer_to_the_treasury_in_the_same_transaction() {
        let (usdc, treasury, payer, other) = (addr(1), addr(2), addr(3), addr(4));
        let nonce = format!("0x{}", "ab".repeat(32));
        assert_eq!(authorization_used_topic(), "0x98de503528ee59b575ef0c0a2576a82497bfc029a5685b209e9ec333479b10a5");
        let used = json!({"address": usdc.lower(), "topics": [authorization_used_topic(), address_topic(&payer), nonce], "data": "0x",
            "blockNumber": "0x10", "blockHash": "0xab", "transactionHash": "0xcd", "logIndex": "0x1"});
        let paid = |logs, amount| paid_by_authorization(&receipt("0x1", logs), &usdc, &treasury, &payer, &nonce, amount);
        assert!(paid(vec![used.clone(), log(&usdc, &payer, &treasury, 500)], 500));
        assert!(!paid(vec![used.clone(), log(&usdc, &payer, &other, 500), log(&usdc, &payer, &treasury, 500)], 500), "a payment not right after the use");
        assert!(!paid(vec![used.clone(), log(&usdc, &payer, &treasury, 500)], 501), "another amount");
        assert!(!paid(vec![used.clone(), log(&usdc, &payer, &other, 500)], 500), "the nonce spent on a transfer elsewhere");
        assert!(!paid(vec![log(&usdc, &payer, &treasury, 500)], 500), "a transfer without the authorization's use");
        assert!(!paid_by_authorization(&receipt("0x0", vec![used, log(&usdc, &payer, &treasury, 500)]), &usdc, &treasury, &payer, &nonce, 500));
    }

    #[test]
    fn an_x402_settlement_is_no_top_up() {
        let (usdc, treasury, payer) = (addr(1), addr(2), addr(3));
        let used = json!({"address": usdc.lower(), "topics": [authorization_used_topic(), address_topic(&payer), format!("0x{}", "ab".repeat(32))], "data": "0x"});
        let r = receipt("0x1", vec![used.clone(), log(&usdc, &payer, &treasury, 500)]);
        assert_eq!(judge(&r, &usdc, &treasury), Payment::X402);
        let proxy = Address::parse(X402_UPTO_PROXY).unwrap();
        let settled = json!({"address": proxy.lower(), "topics": [x402_settlement_topics()[1]], "data": "0x"});
        assert_eq!(judge(&receipt("0x1", vec![log(&usdc, &payer, &treasury, 500), settled]), &usdc, &treasury), Payment::X402);
        // The same use logged by another contract is nobody's settlement.
        let mut elsewhere = used;
        elsewhere["address"] = json!(payer.lower());
        assert!(matches!(judge(&receipt("0x1", vec![elsewhere, log(&usdc, &payer, &treasury, 500)]), &usdc, &treasury), Payment::ToTreasury(_)));
    }

    #[test]
    fn finality_by_tag_or_by_depth() {
        assert_eq!(final_through(Some(100), 164, 64), 100, "the tag wins");
        assert_eq!(final_through(None, 163, 64), 100, "block 100 has 64 confirmations at head 163");
        assert_eq!(final_through(None, 10, 64), 0);
    }

    #[test]
    fn amounts_beyond_a_ledger_row_are_not_money() {
        let t = Transfer { token: addr(1), from: addr(2), to: addr(3), amount: u128::from(u64::MAX), tx_hash: "0x".into(), log_index: 0, block_number: 0, block_hash: "0x".into() };
        assert_eq!(t.micros(), None);
    }
}
