//! `GET /v1/chat/completions/{request_id}/stream`: the rest of a stream whose
//! connection was lost, after the event named by `Last-Event-ID` (or
//! `?after=N`; none: from the start). Any key of the user who started it
//! (`gateway:use`); the user's wallet object runs the stream and answers
//! (wallet/replay.rs). Reading costs nothing: the request was held and is
//! settled once, whatever the number of readers.

use dexto_shared::auth::{authenticate, KeyLookup};
use dexto_shared::error::GatewayError;
use dexto_shared::http::rejected;
use dexto_shared::sse::parse_event_id;
use dexto_shared::wallet::ReattachRequest;
use dexto_shared::wallet_client::WalletClient;
use worker::{Env, Request, Response, Result};

pub async fn handle(req: Request, env: Env, request_id: &str) -> Result<Response> {
    match run(&req, &env, request_id).await {
        Ok(resp) => Ok(resp),
        Err(err) => rejected(&err, request_id, serde_json::json!({"reattach": true})),
    }
}

async fn run(req: &Request, env: &Env, request_id: &str) -> std::result::Result<Response, GatewayError> {
    let caller = authenticate(req.headers(), env, KeyLookup::Cached, "gateway:use").await?;
    let header = req.headers().get("Last-Event-ID").ok().flatten();
    let query = dexto_shared::url_query::pairs(&req.inner().url()).into_iter().find(|(k, _)| k == "after").map(|(_, v)| v);
    let after = match header.or(query) {
        None => 0,
        Some(v) => parse_event_id(&v).ok_or_else(|| GatewayError::BadRequest(format!("`{v}` is not an event id of this stream: send the last `id:` you received, or nothing to start over.")))?,
    };
    WalletClient::for_user(env, &caller.user_id)?.reattach(&ReattachRequest { request_id: request_id.to_string(), after }).await
}

/// The request id in `/v1/chat/completions/{id}/stream`.
pub fn request_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/v1/chat/completions/")?.strip_suffix("/stream")?;
    (id.starts_with("req_") && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then_some(id)
}
