//! The API dialects the gateway serves — OpenAI Chat Completions, Anthropic
//! Messages, OpenAI Responses — as small adapters at the edges of the one
//! exchange (ARCHITECTURE, "API dialects (design)"). A dialect reads its
//! request into the `ChatRequest` the quote prices (`read`), names the
//! upstream path and the output-ceiling field (`set_output_limit`), reads its
//! usage into the `UpstreamUsage` settlement bills (`usage`, `stream_meter`)
//! and wraps the one `GatewayError` mapping in its own envelope (`errors`).
//! Holds, settlement, caps and the ledger never know which dialect spoke.

mod errors;
mod messages_request;
pub mod model_aliases;
mod output_limit;
mod prompt_tally;
mod responses_request;
mod stream_meter;
mod upstream_errors;
mod usage;
/// The readers', meters' and envelopes' tests (by module), kept apart so
/// each module stays short.
#[cfg(test)]
mod tests;

pub use errors::{anthropic_error_type, StreamFailure, TOP_UP_HINT};
pub use upstream_errors::redact_upstream_error;
pub use output_limit::set_output_limit;
pub use stream_meter::DialectMeter;
pub use usage::{from_messages_usage, from_responses_usage};

use crate::chat_request::{ChatRequest, RequestError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// `POST /v1/chat/completions` (OpenAI Chat Completions).
    #[default]
    Chat,
    /// `POST /v1/messages` (Anthropic Messages: Claude Code, Anthropic SDKs).
    Messages,
    /// `POST /v1/responses` (OpenAI Responses, stateless: Codex CLI).
    Responses,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Chat, Dialect::Messages, Dialect::Responses];

    /// The dialect served at a gateway path (`/v1/messages?beta=true` too).
    pub fn from_path(path: &str) -> Option<Dialect> {
        match path.split('?').next().unwrap_or(path) {
            "/v1/chat/completions" => Some(Dialect::Chat),
            "/v1/messages" => Some(Dialect::Messages),
            "/v1/responses" => Some(Dialect::Responses),
            _ => None,
        }
    }

    /// The upstream path, under `OPENROUTER_BASE_URL` (OpenRouter serves all three).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Dialect::Chat => "/chat/completions",
            Dialect::Messages => "/messages",
            Dialect::Responses => "/responses",
        }
    }

    /// The name usage rows record (and the serde spelling).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Chat => "chat",
            Dialect::Messages => "messages",
            Dialect::Responses => "responses",
        }
    }

    /// The field that carries the output ceiling the hold covers, as
    /// forwarded. Chat also reads `max_completion_tokens` (which wins);
    /// Messages requires `max_tokens`; Responses has `max_output_tokens`.
    pub fn limit_field(self) -> &'static str {
        match self {
            Dialect::Chat | Dialect::Messages => "max_tokens",
            Dialect::Responses => "max_output_tokens",
        }
    }

    /// Reads a request body into what the quote prices, refusing what cannot
    /// be priced before the call (400 naming the feature, 413 when too large).
    pub fn read(self, body: &[u8]) -> Result<ChatRequest, RequestError> {
        match self {
            Dialect::Chat => ChatRequest::parse(body),
            Dialect::Messages => messages_request::read(body),
            Dialect::Responses => responses_request::read(body),
        }
    }

    /// OpenRouter's generation id (`gen-…`, what `GET /generation?id=`
    /// takes) from the id of a reply in this dialect: Messages wraps it as
    /// `msg_gen-…`, Responses as `resp_gen-…`. Any other id is kept whole.
    pub fn generation_id(self, reply_id: &str) -> String {
        let prefix = match self {
            Dialect::Chat => "",
            Dialect::Messages => "msg_",
            Dialect::Responses => "resp_",
        };
        match reply_id.strip_prefix(prefix) {
            Some(id) if id.starts_with("gen-") => id.to_string(),
            _ => reply_id.to_string(),
        }
    }
}

#[cfg(test)]
mod dialect_tests {
    use super::*;

    #[test]
    fn each_dialect_names_its_path_ceiling_and_usage_name() {
        let table: Vec<_> = Dialect::ALL.iter().map(|d| (d.upstream_path(), d.limit_field(), d.name())).collect();
        assert_eq!(
            table,
            [("/chat/completions", "max_tokens", "chat"), ("/messages", "max_tokens", "messages"), ("/responses", "max_output_tokens", "responses")]
        );
        for d in Dialect::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.name(), "terms carry the same name");
        }
        assert_eq!(Dialect::default(), Dialect::Chat, "terms written before dialects were chat");
    }

    #[test]
    fn gateway_paths_name_their_dialect() {
        assert_eq!(Dialect::from_path("/v1/messages?beta=true"), Some(Dialect::Messages));
        assert_eq!(Dialect::from_path("/v1/responses"), Some(Dialect::Responses));
        assert_eq!(Dialect::from_path("/v1/chat/completions"), Some(Dialect::Chat));
        assert_eq!(Dialect::from_path("/v1/messages/count_tokens"), None);
    }

    #[test]
    fn generation_ids_are_unwrapped_only_around_openrouters() {
        assert_eq!(Dialect::Messages.generation_id("msg_gen-1712-ab01"), "gen-1712-ab01");
        assert_eq!(Dialect::Responses.generation_id("resp_gen-1712-ab01"), "gen-1712-ab01");
        assert_eq!(Dialect::Chat.generation_id("gen-1712-ab01"), "gen-1712-ab01");
        assert_eq!(Dialect::Messages.generation_id("msg_01XFDUDYJgAACzvnptvVoYEL"), "msg_01XFDUDYJgAACzvnptvVoYEL");
        assert_eq!(Dialect::Responses.generation_id("msg_gen-1"), "msg_gen-1", "another dialect's prefix is not ours");
    }
}
