//! `/dashboard/models`: the catalogue with our prices (after markup), per
//! million tokens, computed exactly from the per-token decimal strings.

use crate::backend::Backend;
use crate::layout;
use crate::respond::{Page, PageResult};
use crate::session::Session;
use dexto_shared::money::Picos;
use dexto_shared::web::html::esc;
use serde_json::Value;
use worker::{Env, Request};

fn per_million(price: &Value) -> String {
    match price.as_str().and_then(|p| Picos::parse_usd(p).ok()) {
        Some(p) => format!("${}", p.times(1_000_000).usd_decimal()),
        None => "–".into(),
    }
}

pub async fn page(req: &Request, env: &Env, session: &Session) -> PageResult {
    let models = match Backend::new(env, req, session).get("CHAT", "/v1/models").await {
        // MODELS_PUBLIC = "false": the list is for API keys only.
        Err(crate::respond::PageError::Api { status: 401, .. }) => {
            let body = r#"<h1>Models</h1><p class="empty">On this server the model list is available with an API key: <code>GET /v1/models</code>.</p>"#;
            return Ok(Page::html(layout::page("Models", session, "/dashboard/models", body)));
        }
        other => other?,
    };
    let rows: String = models["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(m["id"].as_str().unwrap_or("")),
                esc(m["display"].as_str().unwrap_or("")),
                m["context_length"].as_i64().map_or_else(|| "–".into(), |c| c.to_string()),
                per_million(&m["pricing"]["prompt"]),
                per_million(&m["pricing"]["completion"]),
            )
        })
        .collect();
    let headers = ["Model id", "Name", "Context", "Input per 1M tokens", "Output per 1M tokens"];
    let table = layout::table("models", &headers, &rows, "No models are available right now.");
    let body = format!(r#"<h1>Models</h1><p>Prices include our margin; you are charged exactly what each call used.</p>{table}"#);
    Ok(Page::html(layout::page("Models", session, "/dashboard/models", &body)))
}
