//! Reattaching to a stream whose connection was lost (wallet/replay.rs): the
//! rest, after the last event the client got, in the stream's own dialect.
//! - `GET /v1/chat/completions/{request_id}/stream` and
//!   `GET /v1/messages/{request_id}/stream`, with `Last-Event-ID` (or
//!   `?after=N`; neither: from the start);
//! - `GET /v1/responses/{id}?stream=true&starting_after=N`, OpenAI's contract:
//!   `{id}` is the response id (or our request id) and `N` a
//!   `sequence_number`, which is our event id less one (both count every
//!   data event the upstream sent, from 0 and from 1).
//!
//! Any key of the user who started it (`gateway:use`); the user's wallet
//! object runs the stream and answers. Reading costs nothing: the request
//! was held and is settled once, whatever the number of readers.

use dexto_shared::auth::{authenticate, KeyLookup};
use dexto_shared::dialects::Dialect;
use dexto_shared::error::GatewayError;
use dexto_shared::http::rejected_in;
use dexto_shared::sse::parse_event_id;
use dexto_shared::wallet::ReattachRequest;
use dexto_shared::wallet_client::WalletClient;
use worker::{Env, Request, Response, Result};

/// A reattach request's route: the dialect, the stream's id, and whether the
/// position is OpenAI's `starting_after` (a sequence number).
pub struct Route<'a> {
    dialect: Dialect,
    id: &'a str,
    sequence: bool,
}

/// The route of `path` (with `query`), if it is a reattach.
pub fn route<'a>(path: &'a str, query: &[(String, String)]) -> Option<Route<'a>> {
    let plain = |prefix: &str| path.strip_prefix(prefix)?.strip_suffix("/stream").filter(|id| valid(id));
    if let Some(id) = plain("/v1/chat/completions/") {
        return Some(Route { dialect: Dialect::Chat, id, sequence: false });
    }
    if let Some(id) = plain("/v1/messages/") {
        return Some(Route { dialect: Dialect::Messages, id, sequence: false });
    }
    let id = path.strip_prefix("/v1/responses/").filter(|id| valid(id))?;
    let streamed = query.iter().any(|(k, v)| k == "stream" && v == "true");
    streamed.then_some(Route { dialect: Dialect::Responses, id, sequence: true })
}

/// Our request ids and the upstream's response ids: letters, digits, `_`, `-`.
fn valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 96 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub async fn handle(req: Request, env: Env, route: Route<'_>, query: &[(String, String)]) -> Result<Response> {
    match run(&req, &env, &route, query).await {
        Ok(resp) => Ok(resp),
        Err(err) => rejected_in(route.dialect, &err, route.id, serde_json::json!({"reattach": true})),
    }
}

async fn run(req: &Request, env: &Env, route: &Route<'_>, query: &[(String, String)]) -> std::result::Result<Response, GatewayError> {
    let headers = crate::inference::auth_headers(req.headers(), route.dialect);
    let caller = authenticate(&headers, env, KeyLookup::Cached, "gateway:use").await?;
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let position = match route.sequence {
        true => param("starting_after"),
        false => req.headers().get("Last-Event-ID").ok().flatten().or_else(|| param("after")),
    };
    let after = match position {
        None => 0,
        Some(v) => {
            let n = parse_event_id(&v).ok_or_else(|| GatewayError::BadRequest(format!("`{v}` is not an event position of this stream: send the last one you received, or nothing to start over.")))?;
            n + u64::from(route.sequence)
        }
    };
    let request = ReattachRequest { request_id: route.id.to_string(), after, dialect: route.dialect };
    WalletClient::for_user(env, &caller.user_id)?.reattach(&request).await
}
