//! Who is calling the control plane: a Supabase session (people, dashboard,
//! CLI login) or a DEXTO_API_KEY (CLI), read fresh from D1 — never cached here.

use dexto_shared::auth::{self, Caller, KeyLookup};
use dexto_shared::error::GatewayError;
use dexto_shared::http::bearer_token;
use dexto_shared::device;
use dexto_shared::session::{self, CliSession, SessionUser};
use worker::{Env, Request};

pub enum Principal {
    Session(SessionUser),
    Key(Caller),
}

impl Principal {
    pub fn user_id(&self) -> &str {
        match self {
            Principal::Session(s) => &s.id,
            Principal::Key(k) => &k.user_id,
        }
    }
}

/// A full session (a device token gets 403: see `session::authenticate`).
pub async fn session(req: &Request, env: &Env) -> Result<SessionUser, GatewayError> {
    session::authenticate(req.headers(), env).await
}

/// A full session or a device token, for the endpoints the 1.6.9–1.7.x CLIs
/// call with their device login; with a device token only the CLI's key
/// (`device::CLI_KEY_NAME`) may be listed, revoked or issued, and one issued.
pub async fn cli_session(req: &Request, env: &Env) -> Result<CliSession, GatewayError> {
    session::authenticate_cli(req.headers(), env).await
}

/// Refuses a device token anything but the CLI's own key.
pub fn only_cli_key(cli: &CliSession, key_name: &str) -> Result<(), GatewayError> {
    match &cli.device {
        Some(_) if key_name != device::CLI_KEY_NAME => Err(GatewayError::Forbidden(device::DEVICE_TOKEN_REFUSED.into())),
        _ => Ok(()),
    }
}

/// Before a key is issued: a device token claims its one key (403 after
/// that). Returns how the key.create audit row names the path.
pub async fn claim_issuance(env: &Env, cli: &CliSession, via: &'static str) -> Result<&'static str, GatewayError> {
    match &cli.device {
        Some(grant) => {
            dexto_shared::device_token::claim_key(env, grant).await?;
            Ok("device_login")
        }
        None => Ok(via),
    }
}

/// A session token or an API key, told apart by the key prefix.
pub async fn session_or_key(req: &Request, env: &Env) -> Result<Principal, GatewayError> {
    match bearer_token(req.headers()) {
        Some(t) if t.starts_with(dexto_shared::apikey::KEY_PREFIX) => {
            Ok(Principal::Key(auth::authenticate(req.headers(), env, KeyLookup::Fresh, "gateway:use").await?))
        }
        _ => Ok(Principal::Session(session(req, env).await?)),
    }
}
