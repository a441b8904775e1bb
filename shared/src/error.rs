//! The gateway's public error type: every failure a client can see, mapped to an
//! HTTP status and the OpenAI envelope `{"error":{"message","type","code"}}` in
//! this one place. Messages are written for clients: no upstream keys, URLs,
//! stack traces or prompts ever appear in them.

use crate::money::Micros;
use serde_json::{json, Value};

/// Who caused a failure; decides whether it is billed and how it is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    Client,
    Upstream,
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    MissingAuth,
    InvalidAuth,
    /// A credential that was good and has run out: the message says how to
    /// get a new one (a 401 all the same: clients treat it as bad auth).
    Expired(Credential),
    /// A Sign-In with Ethereum message or signature that does not prove who
    /// signed it here and now: `code` says which check failed.
    SignInRefused { code: &'static str, message: String },
    Forbidden(String),
    UserSuspended,
    BadRequest(String),
    PayloadTooLarge { limit_bytes: usize },
    NotFound(String),
    ModelNotFound(String),
    MethodNotAllowed,
    /// The request conflicts with the resource's state (e.g. a device code already decided).
    Conflict(String),
    /// `needed`: the least hold this request would have been accepted with
    /// (its prompt bound and `floor_tokens` of output), when known.
    InsufficientCredits { available: Micros, needed: Option<(Micros, u64)> },
    /// A move of `asked` out of the wallet (to a direct key) that the
    /// available credit does not cover.
    InsufficientToMove { available: Micros, asked: Micros },
    WalletFrozen,
    RateLimited { retry_after_secs: u32 },
    /// The user already has `limit` requests in flight.
    TooManyConcurrent { limit: u64 },
    /// A spend cap stops the request: the message names the cap, its window
    /// and when it resets (`caps::CapUse::refusal`).
    SpendCapReached(String),
    /// An x402 payment that cannot pay for this request (invalid, expired,
    /// replayed, too small, or its payer owes a failed settlement): `code`
    /// says which. Answered as x402's `PaymentRequired`.
    PaymentRefused { code: &'static str, message: String },
    /// Upstream refused the request as malformed (4xx that is the client's doing).
    UpstreamRejected { status: u16 },
    UpstreamUnavailable,
    UpstreamTimeout,
    /// A non-streamed reply larger than the gateway buffers (it is billed as
    /// the upstream reports; the client is told to stream).
    UpstreamResponseTooLarge { limit_bytes: usize },
    /// Detail is for logs only; the client sees a generic message.
    Internal(String),
}

/// What kind of credential expired, which decides how to replace it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A `DEXTO_API_KEY` created with an expiry.
    ApiKey,
    /// A sign-in: a Supabase or wallet session token, or a CLI device token.
    Session,
}

/// A session token refused: one that is ours in every respect but its age
/// is told to sign in again (`jwt` checks `exp` last).
impl From<crate::jwt::JwtError> for GatewayError {
    fn from(e: crate::jwt::JwtError) -> GatewayError {
        match e {
            crate::jwt::JwtError::Expired => GatewayError::Expired(Credential::Session),
            _ => GatewayError::InvalidAuth,
        }
    }
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        use GatewayError::*;
        match self {
            MissingAuth | InvalidAuth | Expired(_) | SignInRefused { .. } => 401,
            InsufficientCredits { .. } | InsufficientToMove { .. } | PaymentRefused { .. } => 402,
            // Not 402: every CLI release turns a 402 into "buy credit", which
            // cannot help a frozen wallet or a suspended account.
            Forbidden(_) | UserSuspended | WalletFrozen | SpendCapReached(_) => 403,
            NotFound(_) | ModelNotFound(_) => 404,
            MethodNotAllowed => 405,
            Conflict(_) => 409,
            PayloadTooLarge { .. } => 413,
            RateLimited { .. } | TooManyConcurrent { .. } => 429,
            BadRequest(_) => 400,
            UpstreamRejected { status } => *status,
            UpstreamUnavailable | UpstreamResponseTooLarge { .. } => 502,
            UpstreamTimeout => 504,
            Internal(_) => 500,
        }
    }

    pub fn blame(&self) -> Blame {
        use GatewayError::*;
        match self {
            UpstreamUnavailable | UpstreamTimeout | UpstreamResponseTooLarge { .. } => Blame::Upstream,
            Internal(_) => Blame::Internal,
            _ => Blame::Client,
        }
    }

    /// The OpenAI error `type` (`invalid_request_error`, `api_error`, …).
    pub fn error_type(&self) -> &'static str {
        self.kind().0
    }

    /// The stable machine code (`model_not_found`, `INSUFFICIENT_CREDITS`, …),
    /// whatever envelope carries it.
    pub fn code(&self) -> &'static str {
        self.kind().1
    }

    fn kind(&self) -> (&'static str, &'static str) {
        use GatewayError::*;
        match self {
            MissingAuth => ("authentication_error", "missing_api_key"),
            InvalidAuth => ("authentication_error", "invalid_api_key"),
            Expired(Credential::ApiKey) => ("authentication_error", "expired_api_key"),
            Expired(Credential::Session) => ("authentication_error", "session_expired"),
            SignInRefused { code, .. } => ("authentication_error", code),
            Forbidden(_) => ("permission_error", "forbidden"),
            UserSuspended => ("permission_error", "account_suspended"),
            BadRequest(_) => ("invalid_request_error", "invalid_request"),
            PayloadTooLarge { .. } => ("invalid_request_error", "payload_too_large"),
            NotFound(_) => ("invalid_request_error", "not_found"),
            ModelNotFound(_) => ("invalid_request_error", "model_not_found"),
            MethodNotAllowed => ("invalid_request_error", "method_not_allowed"),
            Conflict(_) => ("invalid_request_error", "conflict"),
            InsufficientCredits { .. } | InsufficientToMove { .. } => ("insufficient_quota", "INSUFFICIENT_CREDITS"),
            WalletFrozen => ("permission_error", "WALLET_FROZEN"),
            RateLimited { .. } => ("rate_limit_error", "rate_limited"),
            TooManyConcurrent { .. } => ("rate_limit_error", "too_many_concurrent_requests"),
            // Not 402: the CLI would say "buy credit", which does not lift a cap.
            SpendCapReached(_) => ("permission_error", "spend_cap_reached"),
            PaymentRefused { code, .. } => ("payment_required", code),
            UpstreamRejected { .. } => ("invalid_request_error", "upstream_rejected"),
            UpstreamUnavailable => ("api_error", "upstream_unavailable"),
            UpstreamTimeout => ("api_error", "upstream_timeout"),
            UpstreamResponseTooLarge { .. } => ("api_error", "upstream_response_too_large"),
            Internal(_) => ("api_error", "internal_error"),
        }
    }

    pub fn message(&self) -> String {
        use GatewayError::*;
        match self {
            MissingAuth => "Missing API key: send `Authorization: Bearer <DEXTO_API_KEY>`.".into(),
            InvalidAuth => "Invalid or revoked API key.".into(),
            Expired(Credential::ApiKey) => {
                "This API key has expired: create a new one on the dashboard's API keys page (/dashboard/keys).".into()
            }
            Expired(Credential::Session) => "Your sign-in has expired: sign in again (`dexto login`, or the dashboard).".into(),
            Forbidden(m) | BadRequest(m) | NotFound(m) | Conflict(m) | SpendCapReached(m) | SignInRefused { message: m, .. } | PaymentRefused { message: m, .. } => m.clone(),
            UserSuspended => "This account is suspended, so its keys cannot be used; adding credit will not lift this. Contact support@dexto.ai.".into(),
            PayloadTooLarge { limit_bytes } => format!("Request body exceeds {limit_bytes} bytes."),
            ModelNotFound(m) => format!("Model `{m}` does not exist or is not available."),
            MethodNotAllowed => "Method not allowed.".into(),
            // Every Dexto CLI release parses this exact sentence (trailing period included).
            InsufficientCredits { available, needed: None } => {
                format!("Insufficient credits. Balance: ${}.", available.usd_trimmed())
            }
            InsufficientCredits { available, needed: Some((needed, tokens)) } => format!(
                "Insufficient credits. Balance: ${}. This request needs at least ${} available \
                 (its prompt and {tokens} output tokens): add credit, shorten the prompt or lower max_tokens.",
                available.usd_trimmed(),
                needed.usd_trimmed()
            ),
            InsufficientToMove { available, asked } => format!(
                "Insufficient credits to move ${} to your direct key: ${} is available (your balance less requests in flight). \
                 Add credit or move less.",
                asked.usd_trimmed(),
                available.usd_trimmed()
            ),
            WalletFrozen => "Your wallet is frozen while a payment dispute (chargeback) on one of your top-ups is open; \
                 your credit is kept, but it cannot be spent until the dispute is resolved. \
                 Adding credit will not lift this: contact support@dexto.ai."
                .into(),
            RateLimited { retry_after_secs } => format!("Rate limit exceeded; retry after {retry_after_secs}s."),
            TooManyConcurrent { limit } => format!("Too many requests in flight: at most {limit} at a time per account. Retry when one finishes."),
            UpstreamRejected { status } => upstream_rejection_message(*status).into(),
            UpstreamUnavailable => "The model provider is unavailable; you were not charged. Please retry.".into(),
            UpstreamTimeout => "The model provider timed out; you were not charged. Please retry.".into(),
            UpstreamResponseTooLarge { limit_bytes } => format!(
                "The model's reply is larger than the {} MiB the gateway returns without streaming, so it could not be delivered; \
                 it is billed as the provider reports. Send \"stream\": true to receive large outputs.",
                limit_bytes / (1024 * 1024)
            ),
            Internal(_) => "Internal error.".into(),
        }
    }

    /// The OpenAI error envelope. The 402 also carries `balance` (USD) at the
    /// places every CLI generation looks for it.
    pub fn body(&self) -> Value {
        let (kind, code) = self.kind();
        let mut error = json!({"message": self.message(), "type": kind, "code": code});
        if let GatewayError::InsufficientCredits { available, needed } = self {
            error["balance"] = available.as_json_usd();
            if let Some((needed, _)) = needed {
                error["needed"] = needed.as_json_usd();
            }
        }
        if let GatewayError::InsufficientToMove { available, .. } = self {
            error["balance"] = available.as_json_usd();
        }
        json!({ "error": error })
    }

    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            GatewayError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            GatewayError::TooManyConcurrent { .. } => Some(1),
            _ => None,
        }
    }

    /// Maps an upstream HTTP error status to what the client sees. Upstream auth
    /// failures are ours (our key), so they are a 502, not the client's 401.
    pub fn from_upstream_status(status: u16, retry_after_secs: Option<u32>) -> GatewayError {
        match status {
            400 | 404 | 413 | 422 => GatewayError::UpstreamRejected { status },
            402 => GatewayError::UpstreamRejected { status: 402 },
            429 => GatewayError::RateLimited { retry_after_secs: retry_after_secs.unwrap_or(1) },
            408 | 504 | 524 => GatewayError::UpstreamTimeout,
            _ => GatewayError::UpstreamUnavailable,
        }
    }
}

fn upstream_rejection_message(status: u16) -> &'static str {
    match status {
        400 | 422 => "The model provider rejected the request as invalid (check parameters such as max_tokens, tools and messages).",
        404 => "The model provider could not serve this model with these parameters.",
        413 => "The request is too large for this model's context window.",
        402 => "The upstream spend limit for this account is exhausted.",
        _ => "The model provider rejected the request.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_credits_body_satisfies_every_cli_release() {
        let body = GatewayError::InsufficientCredits { available: Micros(420_000), needed: None }.body();
        assert_eq!(
            body,
            json!({"error":{"code":"INSUFFICIENT_CREDITS","message":"Insufficient credits. Balance: $0.42.","type":"insufficient_quota","balance":0.42}})
        );
    }

    #[test]
    fn upstream_statuses_map_by_blame() {
        assert_eq!(GatewayError::from_upstream_status(401, None).status(), 502);
        assert_eq!(GatewayError::from_upstream_status(503, None).status(), 502);
        assert_eq!(GatewayError::from_upstream_status(524, None).status(), 504);
        assert_eq!(GatewayError::from_upstream_status(400, None).status(), 400);
        assert_eq!(GatewayError::from_upstream_status(429, Some(7)).retry_after_secs(), Some(7));
        assert_eq!(GatewayError::UpstreamTimeout.blame(), Blame::Upstream);
    }

    #[test]
    fn internal_detail_never_reaches_the_body() {
        let body = GatewayError::Internal("D1 said: secret sk-or-v1-xyz".into()).body().to_string();
        assert!(!body.contains("sk-or") && !body.contains("D1"));
    }
}
