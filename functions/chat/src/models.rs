//! `GET /v1/models` and `GET /v1/models/{id}`: the catalogue as the caller may
//! use it (allow-list applied, our prices after markup) and how old it is.
//! Public unless `MODELS_PUBLIC = "false"`, then an API key is required.

use crate::config::Config;
use crate::{allowed, catalogue};
use dexto_shared::auth::{authenticate, KeyLookup};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response, now_ms};
use dexto_shared::model_list::{list_json, model_entry, model_id_from_path, Freshness};
use worker::{Context, Env, Request, Response, Result};

pub async fn handle(req: Request, env: Env, ctx: Context) -> Result<Response> {
    match run(&req, &env, &ctx).await {
        Ok(resp) => Ok(resp),
        Err(err) => {
            if let GatewayError::Internal(detail) = &err {
                dexto_shared::log::event("models.internal_error", serde_json::json!({"detail": detail}));
            }
            error_response(&err, None)
        }
    }
}

async fn run(req: &Request, env: &Env, ctx: &Context) -> std::result::Result<Response, GatewayError> {
    let config = Config::from_env(env);
    if !config.models_public {
        authenticate(req.headers(), env, KeyLookup::Fresh, "gateway:use").await?;
    }
    let catalogue = catalogue::current(env, &config, ctx).await?;
    let allow = allowed::current(env, &config).await?;
    let path = req.path();
    let mut body = match path.strip_prefix("/v1/models/") {
        None => list_json(&catalogue, &allow, config.markup, Freshness { now_ms: now_ms(), ttl_ms: config.catalogue_ttl_ms }),
        Some(raw) => {
            let id = model_id_from_path(raw);
            model_entry(&catalogue, &allow, config.markup, &id).ok_or(GatewayError::ModelNotFound(id))?
        }
    };
    if let Some(keyless) = crate::x402::Keyless::from_env(env).await {
        dexto_shared::x402::offer::advertise(&mut body, &keyless.offer);
    }
    let mut resp = json_response(200, &body).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let cache = if config.models_public { "public, max-age=60" } else { "private, max-age=60" };
    resp.headers_mut().set("Cache-Control", cache).map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(resp)
}
