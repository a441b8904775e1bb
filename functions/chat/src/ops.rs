//! `GET /__ops` (admin token): this isolate's platform-operation counters
//! (shared/src/workers/ops.rs) and how much background work is still running.
//! A local instrument for the cost model (tests/tests/cost_model.rs): locally
//! this isolate runs the chat Worker and every wallet object. No route leads
//! here in production (the zone routes only `/v1/*` to this Worker).

use dexto_shared::error::GatewayError;
use dexto_shared::http::{bearer_token, error_response, json_response};
use dexto_shared::secret::constant_time_eq;
use worker::{Env, Request, Response, Result};

pub fn handle(req: &Request, env: &Env) -> Result<Response> {
    let expected = env.secret("ADMIN_TOKEN").map(|s| s.to_string()).unwrap_or_default();
    let presented = bearer_token(req.headers()).unwrap_or_default();
    if expected.len() < 16 || !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return error_response(&GatewayError::NotFound("Unknown path.".into()), None);
    }
    json_response(200, &serde_json::json!({"ops": dexto_shared::ops::snapshot(), "busy": dexto_shared::ops::busy_now()}))
}
