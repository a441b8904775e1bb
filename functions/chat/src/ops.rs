//! `GET /__ops` (admin token): this isolate's platform-operation counters
//! (shared/src/workers/ops.rs) and how much background work is still running.
//! A local instrument for the cost model (tests/tests/cost_model.rs): locally
//! this isolate runs the chat Worker and every wallet object. No route leads
//! here in production (the zone routes only `/v1/*` to this Worker).

use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response};
use worker::{Env, Request, Response, Result};

pub fn handle(req: &Request, env: &Env) -> Result<Response> {
    if dexto_shared::auth::admin(req.headers(), env).is_err() {
        // Not for callers without the operator's token: as if it were not there.
        return error_response(&GatewayError::NotFound("Unknown path.".into()), None);
    }
    json_response(200, &serde_json::json!({"ops": dexto_shared::ops::snapshot(), "busy": dexto_shared::ops::busy_now()}))
}
