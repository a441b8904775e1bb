//! "Pay with USDC", the billing page's part for crypto top-ups: where to send
//! (chain, token, treasury), which senders count (the account's linked
//! addresses), a form to confirm a transfer by its hash, and the account's
//! transfers. The billing API decides everything (`GET /api/billing/crypto`,
//! `POST /api/billing/crypto/confirm`); when it answers 404, crypto top-ups
//! are not configured and the part is left out.

use crate::backend::Backend;
use crate::layout::{self, csrf_field};
use crate::respond::{PageError, PageResult};
use crate::session::{check_csrf, Session};
use dexto_shared::money::Micros;
use dexto_shared::web::html::{esc, usd, when};
use serde_json::{json, Value};
use worker::{Env, Method, Request};

/// The part as HTML (empty when crypto top-ups are off); `outcome` is the
/// result of a confirmation just made, shown at its top.
pub async fn section(api: &Backend<'_>, session: &Session, outcome: Option<&str>) -> Result<String, PageError> {
    let (overview, linked) = futures::join!(api.get("BILLING", "/api/billing/crypto"), api.get("IDENTITY", "/api/auth/siwe/addresses"));
    let overview = match overview {
        Err(PageError::Api { status: 404, .. }) => return Ok(String::new()),
        other => other?,
    };
    let addresses: String = linked?["data"].as_array().into_iter().flatten().map(|a| format!("<li><code>{}</code></li>", esc(text(&a["address"])))).collect();
    let addresses = if addresses.is_empty() {
        r#"<p class="empty" id="usdc-no-address">No address is linked to this account yet, so no transfer can be credited to it: link your wallet first.</p>"#.to_string()
    } else {
        format!(r#"<p>Only USDC sent from this account's linked addresses is credited:</p><ul id="usdc-addresses">{addresses}</ul>"#)
    };
    let chain_id = overview["chain_id"].as_u64().unwrap_or(0);
    Ok(format!(
        r#"<section aria-labelledby="usdc-h" id="usdc"><h2 id="usdc-h">Pay with USDC</h2>{outcome}
<p>Send USDC on {chain} to the address below; 1 USDC adds $1.00 of credit once the transfer is final.</p>
<dl class="facts"><dt>Send to</dt><dd><code id="usdc-treasury">{treasury}</code> <button type="button" class="link" data-copy="usdc-treasury">Copy</button> <span class="copied" role="status"></span></dd>
<dt>Token</dt><dd><code id="usdc-token">{token}</code></dd><dt>Chain ID</dt><dd id="usdc-chain">{chain_id}</dd></dl>
{addresses}
<p><button type="button" class="button secondary" id="siwe-link" data-csrf="{csrf_token}" data-statement="{statement}" hidden>Link a wallet</button> <span id="siwe-link-status" role="status"></span></p>
<form method="post" action="/dashboard/settings/billing/crypto" class="stack">{csrf}
<label for="tx-hash">Sent it? Paste the transaction hash</label>
<input id="tx-hash" name="tx_hash" required pattern="0x[0-9a-fA-F]{{64}}" placeholder="0x…" autocomplete="off" spellcheck="false">
<button type="submit">Confirm payment</button></form>
{transfers}</section>"#,
        outcome = outcome.unwrap_or(""),
        chain = esc(&chain_name(chain_id)),
        treasury = esc(text(&overview["treasury"])),
        token = esc(text(&overview["token"])),
        csrf = csrf_field(session),
        csrf_token = esc(&session.csrf),
        statement = esc(&dexto_shared::chain::siwe::link_statement(&session.user_id)),
        transfers = transfers_table(&overview["transfers"]),
    ))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn chain_name(chain_id: u64) -> String {
    match chain_id {
        1 => "Ethereum".into(),
        8453 => "Base".into(),
        84532 => "Base Sepolia".into(),
        other => format!("chain {other}"),
    }
}

fn status_label(status: &str) -> &str {
    match status {
        "pending" => "pending: credited once final",
        "crediting" => "being credited",
        "credited" => "credited",
        "unclaimed" => "unclaimed: the sender is not linked",
        "dropped" => "dropped: left the chain before it was final",
        other => other,
    }
}

fn transfers_table(transfers: &Value) -> String {
    let rows: String = transfers
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let status = text(&t["status"]);
            format!(
                r#"<tr data-tx="{tx}"><td>{seen}</td><td><code>{tx}</code></td><td><code>{from}</code></td><td class="num">{amount}</td><td class="status" data-status="{status}">{label}</td></tr>"#,
                seen = esc(&when(t["seen_at"].as_i64())),
                tx = esc(text(&t["tx_hash"])),
                from = esc(text(&t["from_address"])),
                amount = usd(Micros(t["amount_micros"].as_i64().unwrap_or(0))),
                status = esc(status),
                label = esc(status_label(status)),
            )
        })
        .collect();
    layout::table("usdc-transfers", &["Seen", "Transaction", "From", "Credit", "Status"], &rows, "No USDC transfers yet.")
}

/// `POST …/billing/crypto` (CSRF; form: tx_hash): asks the billing API to
/// credit the transfer, and shows the billing page with what it said —
/// credited, pending until final, or why not (with the API's status).
/// `POST /dashboard/settings/billing/wallet` (JSON `{message, signature,
/// csrf}`, sent by the billing page's script once the wallet has signed):
/// links the wallet's address to this account. Answers JSON.
pub async fn link_wallet(req: &mut Request, env: &Env, session: &Session) -> PageResult {
    let body = dexto_shared::http::json_object(req).await?;
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    check_csrf(req, session, Some(&field("csrf")))?;
    let signed = json!({"message": field("message"), "signature": field("signature")});
    let linked = Backend::new(env, req, session).send("IDENTITY", Method::Post, "/api/auth/siwe/link", signed).await?;
    Ok(crate::respond::Page { status: 200, body: crate::respond::PageBody::Json(json!({"address": linked["address"]})), cookies: Vec::new() })
}

/// Confirms the transaction hash a form posted: the status to answer with
/// and the outcome to show at the top of the billing page.
pub async fn confirm(req: &mut Request, env: &Env, session: &Session) -> Result<(u16, String), PageError> {
    let form = crate::form::read(req).await?;
    check_csrf(req, session, form.get("csrf").map(String::as_str))?;
    let body = json!({"tx_hash": form.get("tx_hash").map(|h| h.trim()).unwrap_or("")});
    let answer = Backend::new(env, req, session).call_with_status("BILLING", Method::Post, "/api/billing/crypto/confirm", Some(body)).await;
    match answer {
        Ok((200, v)) => {
            let credited: i64 = v["credits"].as_array().into_iter().flatten().filter_map(|c| c["amount_micros"].as_i64()).sum();
            Ok((200, format!(r#"<p class="notice" role="status" id="usdc-result">Payment credited: {} added to your balance.</p>"#, usd(Micros(credited)))))
        }
        Ok((_, v)) => Ok((200, format!(r#"<p class="notice" role="status" id="usdc-result">{}</p>"#, esc(v["message"].as_str().unwrap_or("Seen on chain, not final yet: it is credited once final."))))),
        Err(PageError::Api { status, message }) if (400..500).contains(&status) => {
            Ok((status, format!(r#"<p class="error" role="alert" id="usdc-result">{}</p>"#, esc(&message))))
        }
        Err(other) => Err(other),
    }
}
