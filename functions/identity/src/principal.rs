//! Who is calling the control plane: a Supabase session (people, dashboard,
//! CLI login) or a DEXTO_API_KEY (CLI), read fresh from D1 — never cached here.

use dexto_shared::auth::{self, Caller, KeyLookup};
use dexto_shared::error::GatewayError;
use dexto_shared::http::bearer_token;
use dexto_shared::session::{self, SessionUser};
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

pub async fn session(req: &Request, env: &Env) -> Result<SessionUser, GatewayError> {
    session::authenticate(req.headers(), env).await
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
