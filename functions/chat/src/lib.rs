//! `dexto-chat`: the data plane (`/v1/chat/completions`) and the `WalletDO`
//! Durable Object class that owns every user's balance and holds.

mod catalogue;
mod completions;
mod config;
mod metering;
mod streaming;
mod upstream;
mod wallet;

use dexto_shared::error::GatewayError;
use dexto_shared::http::error_response;
use worker::{event, Context, Env, Method, Request, Response, Result};

pub use wallet::WalletDO;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    match (req.method(), req.path().as_str()) {
        (Method::Post, "/v1/chat/completions") => completions::handle(req, env, ctx).await,
        (_, "/v1/chat/completions") => error_response(&GatewayError::MethodNotAllowed, None),
        _ => error_response(&GatewayError::NotFound("Unknown path.".into()), None),
    }
}
