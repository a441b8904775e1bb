//! Supabase Auth, as the dashboard uses it: the hosted sign-in's authorize
//! URL (PKCE), exchanging the returned code, refreshing a session, magic
//! links and sign-out. Tokens are `Secret`s: they never reach a log line.

use dexto_shared::error::GatewayError;
use dexto_shared::secret::Secret;
use dexto_shared::url_query::encode;
use serde_json::{json, Value};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

pub struct Supabase {
    base: String,
    anon_key: String,
    pub providers: Vec<String>,
}

pub struct Tokens {
    pub access: Secret<String>,
    pub refresh: Secret<String>,
    pub expires_in: i64,
}

impl Tokens {
    /// From a token grant's answer (`access_token`, `refresh_token`,
    /// `expires_in`): Supabase's, and Sign-In with Ethereum's alike.
    pub fn from_grant(v: &Value) -> Option<Tokens> {
        Some(Tokens {
            access: Secret::new(v["access_token"].as_str()?.to_string()),
            refresh: Secret::new(v["refresh_token"].as_str()?.to_string()),
            expires_in: v["expires_in"].as_i64().unwrap_or(3600),
        })
    }
}

impl Supabase {
    pub fn from_env(env: &Env) -> Supabase {
        let var = |n: &str| env.var(n).ok().map(|v| v.to_string()).unwrap_or_default();
        Supabase {
            base: var("SUPABASE_URL").trim_end_matches('/').to_string(),
            anon_key: var("SUPABASE_ANON_KEY"),
            providers: var("SUPABASE_AUTH_PROVIDERS").split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect(),
        }
    }

    /// Where the browser goes to sign in with `provider`; it comes back to
    /// `redirect_to?code=…`.
    pub fn authorize_url(&self, provider: &str, redirect_to: &str, challenge: &str) -> String {
        format!(
            "{}/auth/v1/authorize?provider={}&redirect_to={}&code_challenge={challenge}&code_challenge_method=s256",
            self.base,
            encode(provider),
            encode(redirect_to)
        )
    }

    /// Sends a magic link that leads to `redirect_to?code=…`.
    pub async fn send_magic_link(&self, email: &str, redirect_to: &str, challenge: &str) -> Result<(), GatewayError> {
        let body = json!({"email": email, "create_user": true, "code_challenge": challenge, "code_challenge_method": "s256"});
        let (status, _) = self.post(&format!("/auth/v1/otp?redirect_to={}", encode(redirect_to)), None, &body).await?;
        match status {
            200..=299 => Ok(()),
            429 => Err(GatewayError::RateLimited { retry_after_secs: 60 }),
            400..=499 => Err(GatewayError::BadRequest("That email address was not accepted.".into())),
            _ => Err(GatewayError::UpstreamUnavailable),
        }
    }

    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<Tokens, GatewayError> {
        self.token("pkce", &json!({"auth_code": code, "code_verifier": verifier})).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, GatewayError> {
        self.token("refresh_token", &json!({"refresh_token": refresh_token})).await
    }

    /// Ends this session at Supabase (its refresh token stops working); the
    /// user's other devices stay signed in (`scope=local`).
    pub async fn sign_out(&self, access_token: &str) -> Result<(), GatewayError> {
        self.post("/auth/v1/logout?scope=local", Some(access_token), &json!({})).await.map(|_| ())
    }

    async fn token(&self, grant: &str, body: &Value) -> Result<Tokens, GatewayError> {
        let (status, v) = self.post(&format!("/auth/v1/token?grant_type={grant}"), None, body).await?;
        match (status, Tokens::from_grant(&v)) {
            (200, Some(tokens)) => Ok(tokens),
            // Only a refused grant ends the session; a busy or failing
            // Supabase must not sign people out.
            (400 | 401 | 403 | 404, _) => Err(GatewayError::InvalidAuth),
            (429, _) => Err(GatewayError::RateLimited { retry_after_secs: 10 }),
            _ => Err(GatewayError::UpstreamUnavailable),
        }
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: &Value) -> Result<(u16, Value), GatewayError> {
        if self.base.is_empty() {
            return Err(GatewayError::Internal("SUPABASE_URL not configured".into()));
        }
        let internal = |e: worker::Error| GatewayError::Internal(format!("supabase: {e}"));
        let headers = Headers::new();
        headers.set("Content-Type", "application/json").map_err(internal)?;
        if !self.anon_key.is_empty() {
            headers.set("apikey", &self.anon_key).map_err(internal)?;
        }
        if let Some(token) = bearer {
            // Not the runtime's error text: it could carry the secret value.
            headers.set("Authorization", &format!("Bearer {token}")).map_err(|_| internal(worker::Error::from("authorization header")))?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.to_string().into()));
        let req = Request::new_with_init(&format!("{}{path}", self.base), &init).map_err(internal)?;
        let mut resp = Fetch::Request(req).send().await.map_err(|_| GatewayError::UpstreamUnavailable)?;
        let status = resp.status_code();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }
}
