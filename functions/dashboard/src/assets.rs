//! The dashboard's one stylesheet and one script, compiled into the Worker
//! (a few KB; no framework, no build step) and cached by version.

use crate::respond::{Page, PageBody, PageError, PageResult};
use dexto_shared::error::GatewayError;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

pub fn serve(name: &str) -> PageResult {
    let (body, content_type) = match name {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(PageError::Gateway(GatewayError::NotFound("No such asset.".into()))),
    };
    let mut resp = worker::Response::ok(body)?;
    resp.headers_mut().set("Content-Type", content_type)?;
    // Versioned URLs (`?v=`), so an hour of caching never mixes releases.
    resp.headers_mut().set("Cache-Control", "public, max-age=3600")?;
    Ok(Page { status: 200, body: PageBody::Passthrough(resp), cookies: Vec::new() })
}
