//! A native mock of the OpenRouter API for tests and local development.
//!
//! Speaks the upstream shapes the gateway depends on, deterministically:
//! generation in OpenRouter's three dialects (OpenAI Chat Completions at
//! `/chat/completions`, Anthropic Messages at `/messages`, OpenAI Responses
//! at `/responses`; streamed or not, one token and price model and one set of
//! faults for all three, see `generate`), the model catalogue and management
//! keys, plus per-request fault injection (see [`faults`]) and a request log
//! under `/__mock` that names each generation request's dialect. Routes are
//! served both at `/` and under `/api/v1` (the dialects also under `/v1`,
//! where Anthropic's and OpenAI's clients put them). The same
//! server also plays a Supabase project's JWKS endpoint and Stripe's Checkout
//! Session and Refund APIs (create, retrieve, list; payments and refunds made
//! out of band through `/__mock/stripe/*`), so the gateway's other upstreams
//! are real HTTP in tests too.

// Helpers return a finished error `Response` as their `Err`; boxing it would
// only add noise at every call site of a test server.
#![allow(clippy::result_large_err)]

pub mod catalogue;
pub mod faults;
mod generate;
mod generation;
mod key_store;
mod keys;
pub mod money;
mod recorder;
mod runtime;
mod stripe;
mod stripe_checkout;
mod stripe_subscriptions;
mod supabase;
pub mod supabase_auth;
mod util;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use generate::Dialect;

pub const DEFAULT_MANAGEMENT_KEY: &str = "sk-or-v1-mgmt-dev-0000";
pub const MANAGEMENT_KEY_ENV: &str = "MOCK_OPENROUTER_MANAGEMENT_KEY";

/// Shared server state.
pub struct App {
    management_key: String,
    recorder: recorder::Recorder,
    keys: key_store::KeyStore,
    generations: generation::Generations,
    runtime: runtime::RuntimeFaults,
    ids: Ids,
    jwks: supabase::Jwks,
    stripe: stripe::Stripe,
    auth: supabase_auth::Auth,
    checkout: stripe_checkout::Checkout,
    subscriptions: stripe_subscriptions::Subscriptions,
}

impl App {
    fn new() -> App {
        App {
            management_key: std::env::var(MANAGEMENT_KEY_ENV)
                .unwrap_or_else(|_| DEFAULT_MANAGEMENT_KEY.to_string()),
            recorder: Default::default(),
            keys: key_store::KeyStore::from_env(),
            generations: Default::default(),
            runtime: Default::default(),
            ids: Ids::new(),
            jwks: Default::default(),
            stripe: Default::default(),
            auth: Default::default(),
            checkout: Default::default(),
            subscriptions: Default::default(),
        }
    }

    /// Random-looking hex for ids (Checkout Sessions).
    fn ids_hex(&self, len: usize) -> String {
        self.ids.random_hex(len)
    }
}

/// The request's generation id, set by the middleware so the body's `id`
/// and the `X-Generation-Id` header agree.
#[derive(Clone)]
pub(crate) struct GenerationId(pub String);

/// Process-wide sequence: ids never repeat within a process even across
/// several mock instances (tests often start one per test).
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// Id and secret generation without a RNG crate: std's randomly keyed
/// SipHash over a counter.
struct Ids {
    hasher: RandomState,
    instance: u32,
    counter: AtomicU64,
}

impl Ids {
    fn new() -> Ids {
        let hasher = RandomState::new();
        let mut h = hasher.build_hasher();
        h.write_u32(std::process::id());
        h.write_u64(util::now_ms());
        Ids {
            instance: h.finish() as u32,
            hasher,
            counter: AtomicU64::new(0),
        }
    }

    /// `gen-<unix secs>-<instance tag><sequence>`: unique, roughly ordered.
    fn generation_id(&self) -> String {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        format!("gen-{}-{:08x}{seq:08}", util::now_secs(), self.instance)
    }

    fn random_hex(&self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            let mut h = self.hasher.build_hasher();
            h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
            s.push_str(&format!("{:016x}", h.finish()));
        }
        s.truncate(len);
        s
    }
}

/// The OpenRouter-compatible routes, mounted twice (root and `/api/v1`).
fn api_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/chat/completions", generate::route(Dialect::Chat))
        .route("/messages", generate::route(Dialect::Messages))
        .route("/responses", generate::route(Dialect::Responses))
        .route("/models", get(runtime::models))
        .route("/keys", post(keys::create).get(keys::list))
        .route(
            "/keys/{hash}",
            get(keys::get_one).patch(keys::update).delete(keys::delete),
        )
        .route("/key", get(keys::current))
        .route("/credits", get(keys::credits))
        .route("/generation", get(generation::get))
}

/// The complete application (fresh state each call).
pub fn router() -> Router {
    let app = Arc::new(App::new());
    let api = api_routes();
    Router::new()
        .merge(api.clone())
        .nest("/api/v1", api)
        .route("/v1/messages", generate::route(Dialect::Messages))
        .route("/v1/responses", generate::route(Dialect::Responses))
        .route(
            "/__mock/requests",
            get(recorder::list).delete(recorder::clear),
        )
        .route(
            "/__mock/faults",
            get(runtime::show).post(runtime::set).delete(runtime::clear),
        )
        .route("/__mock/health", get(|| async { "ok" }))
        .route("/__mock/jwks", axum::routing::put(supabase::put))
        .route("/auth/v1/.well-known/jwks.json", get(supabase::get))
        .route("/auth/v1/user", get(supabase::user))
        .route("/auth/v1/authorize", get(supabase_auth::authorize_page).post(supabase_auth::authorize_submit))
        .route("/auth/v1/otp", post(supabase_auth::otp))
        .route("/auth/v1/verify", get(supabase_auth::verify))
        .route("/auth/v1/token", post(supabase_auth::token))
        .route("/auth/v1/logout", post(supabase_auth::logout))
        .route("/__mock/auth", axum::routing::put(supabase_auth::configure))
        .route("/__mock/auth/mailbox", get(supabase_auth::mailbox))
        .route("/c/pay/{id}", get(stripe_checkout::page).post(stripe_checkout::pay))
        .route("/__mock/stripe/webhook", axum::routing::put(stripe_checkout::configure))
        .route("/__mock/stripe/deliver", post(stripe_checkout::deliver_held))
        .route("/v1/checkout/sessions", post(stripe::create_checkout_session).get(stripe::list_sessions))
        .route("/v1/checkout/sessions/{id}", get(stripe::retrieve_session))
        .route("/v1/refunds", get(stripe::list_refunds))
        .route("/v1/invoices", get(stripe::list_invoices))
        .route("/__mock/stripe/invoices", post(stripe::add_invoice))
        .route("/v1/subscriptions/{id}", get(stripe_subscriptions::retrieve).post(stripe_subscriptions::update))
        .route("/v1/billing_portal/sessions", post(stripe_subscriptions::portal))
        .route("/__mock/stripe/subscriptions", post(stripe_subscriptions::create))
        .route("/__mock/stripe/sessions/{id}/pay", post(stripe::pay))
        .route("/__mock/stripe/refunds", post(stripe::refund))
        .fallback(|| async { util::error_response(404, "Not Found", None) })
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        // Bodies are buffered by `observe`; large prompts are legitimate.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

/// Internal marker from a generation handler to `observe`: omit `X-Generation-Id`.
pub(crate) const HIDE_GENERATION: &str = "x-mock-hide-generation";

/// Runs on every request: assigns the generation id (echoed as
/// `X-Generation-Id` on every response), records the request, and applies
/// header-driven faults to other routes (generation routes handle their own,
/// since their directives may also come from message text).
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let id = app.ids.generation_id();
    let (mut parts, body) = req.into_parts();
    let mut resp = match axum::body::to_bytes(body, usize::MAX).await {
        Err(_) => util::error_response(400, "Could not read request body", None),
        Ok(bytes) => {
            let path = parts.uri.path().to_string();
            let is_mock = path.starts_with("/__mock");
            let dialect = Dialect::from_path(&path);
            if !is_mock {
                let full = parts
                    .uri
                    .path_and_query()
                    .map_or(path.as_str(), |p| p.as_str());
                app.recorder
                    .record(parts.method.as_str(), full, dialect, &parts.headers, &bytes);
            }
            let faults = faults::Faults::from_header(&parts.headers);
            if is_mock || dialect.is_some() {
                parts.extensions.insert(GenerationId(id.clone()));
                next.run(Request::from_parts(parts, Body::from(bytes)))
                    .await
            } else {
                if let Some(ms) = faults.delay_ms {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                match faults::injected_status_response(&faults) {
                    Some(r) => r,
                    None if faults.drop_after.is_some() => faults::aborted_response(),
                    None => {
                        next.run(Request::from_parts(parts, Body::from(bytes)))
                            .await
                    }
                }
            }
        }
    };
    // A generation reply asks for no header with `hide_generation` (see generate/mod.rs).
    if resp.headers_mut().remove(HIDE_GENERATION).is_none() {
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-generation-id", v);
        }
    }
    resp
}

/// Serves `app` (the mock's `router()`) on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // No Nagle delay: SSE frames must leave as soon as they are written, or
    // the client sees ~40 ms stalls (Nagle + delayed ACK) that are not the server's.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

/// Binds `127.0.0.1:0`, serves on a dedicated thread with its own
/// multi-thread runtime, and returns the address. For non-async test
/// harnesses; the server lives until the process exits.
pub fn spawn_in_background() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let addr = listener.local_addr().expect("local addr");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("mock-openrouter-{}", addr.port()))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = ready_tx.send(());
                if let Err(e) = serve(listener, router()).await {
                    eprintln!("mock-openrouter: server error: {e}");
                }
            });
        })
        .expect("spawn mock-openrouter thread");
    ready_rx
        .recv()
        .expect("mock-openrouter thread failed to start");
    addr
}
