//! Form bodies (`application/x-www-form-urlencoded`), size-capped.

use dexto_shared::http::{read_body, CONTROL_BODY_LIMIT};
use std::collections::HashMap;
use worker::Request;

pub async fn read(req: &mut Request) -> Result<HashMap<String, String>, crate::respond::PageError> {
    let body = read_body(req, CONTROL_BODY_LIMIT).await?;
    let text = String::from_utf8_lossy(&body);
    Ok(dexto_shared::url_query::pairs(&format!("?{text}")).into_iter().collect())
}
