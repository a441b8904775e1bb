//! The APIs behind the pages, over service bindings (in-process, no network
//! hop), called as the signed-in user: `Authorization: Bearer <their access
//! token>` (Supabase's or a Sign-In with Ethereum one). The dashboard has no
//! storage binding of its own, so every rule (ownership, audit, limits) is
//! the API's, applied once.

use crate::respond::PageError;
use dexto_shared::error::GatewayError;
use serde_json::Value;
use worker::{Env, Headers, Method, Request, RequestInit, Response};

pub struct Backend<'a> {
    env: &'a Env,
    /// None before sign-in (verifying a wallet's signature).
    token: Option<&'a str>,
    origin: String,
    client_ip: Option<String>,
    /// Sent as `Idempotency-Key` (a form's, so a double submit acts once).
    idempotency_key: Option<String>,
}

impl<'a> Backend<'a> {
    pub fn new(env: &'a Env, req: &Request, session: &'a crate::signed_in::Session) -> Backend<'a> {
        Backend::with_token(env, req, Some(session.token.expose()))
    }

    /// As the holder of `token` (a session being checked or ended), or
    /// nobody (`None`).
    pub fn with_token(env: &'a Env, req: &Request, token: Option<&'a str>) -> Backend<'a> {
        let client_ip = req.headers().get("CF-Connecting-IP").ok().flatten();
        Backend { env, token, origin: crate::signed_in::own_origin(req), client_ip, idempotency_key: None }
    }

    pub fn with_idempotency_key(mut self, key: Option<String>) -> Backend<'a> {
        self.idempotency_key = key.filter(|k| !k.is_empty());
        self
    }

    pub async fn get(&self, service: &str, path: &str) -> Result<Value, PageError> {
        self.call(service, Method::Get, path, None).await
    }

    pub async fn send(&self, service: &str, method: Method, path: &str, body: Value) -> Result<Value, PageError> {
        self.call(service, method, path, Some(body)).await
    }

    /// A JSON call; a non-2xx answer becomes `PageError::Api` with the API's
    /// own (client-facing) message.
    async fn call(&self, service: &str, method: Method, path: &str, body: Option<Value>) -> Result<Value, PageError> {
        self.call_with_status(service, method, path, body).await.map(|(_, value)| value)
    }

    /// A JSON call and its (2xx) status, for APIs whose 200 and 202 differ.
    pub async fn call_with_status(&self, service: &str, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), PageError> {
        let mut resp = self.raw(service, method, path, body).await?;
        let status = resp.status_code();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            // A session API refusing the session: it ended (revoked). Not so
            // for CHAT, which wants an API key when the model list is private
            // (MODELS_PUBLIC = "false"), nor for a call made without one.
            if status == 401 && service != "CHAT" && self.token.is_some() {
                return Err(PageError::SignIn { next: "/dashboard".into() });
            }
            let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or("The request failed.").to_string();
            return Err(PageError::Api { status, message });
        }
        Ok((status, value))
    }

    /// The API's response as it is (streamed exports).
    pub async fn raw(&self, service: &str, method: Method, path: &str, body: Option<Value>) -> Result<Response, PageError> {
        let internal = |e: worker::Error| PageError::Gateway(GatewayError::Internal(format!("backend {service}: {e}")));
        let headers = Headers::new();
        if let Some(token) = self.token {
            // Not the runtime's error text: it could carry the secret value.
            headers.set("Authorization", &format!("Bearer {token}")).map_err(|_| internal(worker::Error::from("authorization header")))?;
        }
        if let Some(ip) = &self.client_ip {
            headers.set("CF-Connecting-IP", ip).map_err(internal)?;
        }
        if let Some(key) = &self.idempotency_key {
            headers.set("Idempotency-Key", key).map_err(internal)?;
        }
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(b) = body {
            init.headers.set("Content-Type", "application/json").map_err(internal)?;
            init.with_body(Some(b.to_string().into()));
        }
        let req = Request::new_with_init(&format!("{}{path}", self.origin), &init).map_err(internal)?;
        self.env.service(service).map_err(internal)?.fetch_request(req).await.map_err(internal)
    }
}
