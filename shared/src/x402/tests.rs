use super::*;
use crate::chain::Address;
use serde_json::{json, Value};

const USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const TREASURY: &str = "0x1111111111111111111111111111111111111111";
const PAYER: &str = "0x2222222222222222222222222222222222222222";
const NONCE: &str = "0xabababababababababababababababababababababababababababababababab";
const NOW: i64 = 1_800_000_000;

fn offer() -> Offer {
    Offer {
        network: "eip155:8453".into(),
        asset: Address::parse(USDC).unwrap(),
        pay_to: Address::parse(TREASURY).unwrap(),
        max_timeout_secs: 300,
        schemes: vec![Scheme::Upto, Scheme::Exact],
        asset_name: "USD Coin".into(),
        asset_version: "2".into(),
        facilitator: Some(Address::parse("0x3333333333333333333333333333333333333333").unwrap()),
    }
}

fn exact(value: &str, valid_before: i64) -> Value {
    json!({
        "x402Version": 2,
        "accepted": offer().requirements(Scheme::Exact, Micros(value.parse().unwrap())),
        "payload": {"signature": "0x1234", "authorization": {
            "from": PAYER, "to": TREASURY, "value": value, "validAfter": "0",
            "validBefore": valid_before.to_string(), "nonce": NONCE}},
    })
}

fn upto(amount: &str) -> Value {
    json!({
        "x402Version": 2,
        "accepted": offer().requirements(Scheme::Upto, Micros(amount.parse().unwrap())),
        "payload": {"signature": "0x1234", "permit2Authorization": {
            "from": PAYER, "permitted": {"token": USDC, "amount": amount},
            "spender": "0x4020615294c913F045dc10f0a5cdEbd86c280001", "nonce": "12345678901234567890",
            "deadline": (NOW + 300).to_string(),
            "witness": {"to": TREASURY, "facilitator": "0x3333333333333333333333333333333333333333", "validAfter": "0"}}},
    })
}

#[test]
fn the_offer_lists_every_scheme_for_the_hold_in_base_units() {
    let required = offer().payment_required(Micros(12_345), "https://api.dexto.ai/v1/chat/completions", "pay");
    assert_eq!(required["x402Version"], 2);
    let accepts = required["accepts"].as_array().unwrap();
    assert_eq!(accepts.len(), 2);
    assert_eq!(accepts[0]["scheme"], "upto");
    assert_eq!(accepts[0]["amount"], "12345");
    assert_eq!(accepts[0]["network"], "eip155:8453");
    assert_eq!(accepts[0]["payTo"], TREASURY);
    assert_eq!(accepts[0]["asset"], USDC);
    assert_eq!(accepts[0]["extra"]["facilitatorAddress"], "0x3333333333333333333333333333333333333333");
    assert_eq!(accepts[1]["scheme"], "exact");
    assert_eq!(accepts[1]["extra"], json!({"name": "USD Coin", "version": "2"}));
}

#[test]
fn an_exact_payment_is_read_with_its_payer_amount_and_reference() {
    let p = read_payment(&exact("20000", NOW + 300), &offer(), Micros(12_345), NOW).unwrap();
    assert_eq!(p.scheme, Scheme::Exact);
    assert_eq!(p.payer, Address::parse(PAYER).unwrap());
    assert_eq!(p.authorized, Micros(20_000));
    assert_eq!(p.reference(), format!("x402:exact:{PAYER}:{NONCE}"));
}

#[test]
fn an_upto_payment_is_read_from_its_permit() {
    let p = read_payment(&upto("12345"), &offer(), Micros(12_345), NOW).unwrap();
    assert_eq!((p.scheme, p.authorized, p.valid_before), (Scheme::Upto, Micros(12_345), NOW + 300));
    assert_eq!(p.nonce, "12345678901234567890");
    let mut padded = upto("12345");
    padded["payload"]["permit2Authorization"]["nonce"] = json!("0012345678901234567890");
    assert_eq!(read_payment(&padded, &offer(), Micros(12_345), NOW).unwrap().reference(), p.reference(), "one nonce, one reference");
}

#[test]
fn payments_the_gateway_would_never_accept_are_refused_before_the_facilitator() {
    let code = |raw: &Value, hold: i64| read_payment(raw, &offer(), Micros(hold), NOW).unwrap_err().code;
    assert_eq!(code(&exact("12344", NOW + 300), 12_345), "x402_amount_too_low");
    assert_eq!(code(&exact("20000", NOW + 10), 1), "x402_expired");
    assert_eq!(code(&exact("20000", NOW + 100), 1), "x402_expired", "valid for less than the offer's window");
    assert!(read_payment(&exact("20000", NOW + 250), &offer(), Micros(1), NOW).is_ok(), "the window less the slack");
    let mut wrong_network = exact("20000", NOW + 300);
    wrong_network["accepted"]["network"] = json!("eip155:1");
    assert_eq!(code(&wrong_network, 1), "x402_wrong_network");
    let mut wrong_payee = exact("20000", NOW + 300);
    wrong_payee["payload"]["authorization"]["to"] = json!(PAYER);
    assert_eq!(code(&wrong_payee, 1), "x402_wrong_payee");
    let mut wrong_asset = upto("20000");
    wrong_asset["payload"]["permit2Authorization"]["permitted"]["token"] = json!(PAYER);
    assert_eq!(code(&wrong_asset, 1), "x402_wrong_asset");
    let mut unknown = exact("20000", NOW + 300);
    unknown["accepted"]["scheme"] = json!("deferred");
    assert_eq!(code(&unknown, 1), "x402_scheme_not_offered");
    let mut no_nonce = exact("20000", NOW + 300);
    no_nonce["payload"]["authorization"]["nonce"] = json!("7");
    assert_eq!(code(&no_nonce, 1), "x402_malformed");
    assert_eq!(code(&json!({"hello": 1}), 1), "x402_malformed");
    let only_exact = Offer { schemes: vec![Scheme::Exact], ..offer() };
    assert_eq!(read_payment(&upto("20000"), &only_exact, Micros(1), NOW).unwrap_err().code, "x402_scheme_not_offered");
}

#[test]
fn a_v1_payload_is_readdressed_to_the_exact_offer() {
    let v2 = exact("20000", NOW + 300);
    let v1 = json!({"x402Version": 1, "scheme": "exact", "network": "base", "payload": v2["payload"]});
    let p = read_payment(&v1, &offer(), Micros(100), NOW).unwrap();
    assert_eq!(p.payload["x402Version"], 2);
    assert_eq!(p.payload["accepted"]["amount"], "20000");
    assert_eq!(p.payload["accepted"]["scheme"], "exact");
    let elsewhere = json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": v2["payload"]});
    assert_eq!(read_payment(&elsewhere, &offer(), Micros(100), NOW).unwrap_err().code, "x402_wrong_network");
}

#[test]
fn upto_settles_the_price_and_exact_the_whole_authorization() {
    assert_eq!(settle_amount(Scheme::Upto, Micros(20_000), Micros(7_001)), Micros(7_001));
    assert_eq!(settle_amount(Scheme::Upto, Micros(20_000), Micros::ZERO), Micros::ZERO);
    assert_eq!(settle_amount(Scheme::Upto, Micros(20_000), Micros(30_000)), Micros(20_000));
    assert_eq!(settle_amount(Scheme::Exact, Micros(20_000), Micros(7_001)), Micros(20_000));
}

#[test]
fn headers_round_trip_in_any_base64_alphabet() {
    let value = json!({"x402Version": 2, "a": "b?>"});
    assert_eq!(decode_header(&encode_header(&value)), Some(value.clone()));
    use base64::Engine;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    assert_eq!(decode_header(&url_safe), Some(value));
    assert_eq!(decode_header("not base64!"), None);
    assert_eq!(parse_base_units("0012"), Some(Micros(12)));
    assert_eq!(parse_base_units("-1"), None);
    assert_eq!(parse_base_units("99999999999999999999"), None);
}
