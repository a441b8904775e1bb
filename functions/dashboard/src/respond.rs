//! The one place a dashboard outcome becomes HTTP: pages and redirects carry
//! the same security headers; every error is rendered as a page (or JSON for
//! the status endpoint) without internal detail.

use dexto_shared::error::GatewayError;
use dexto_shared::web::csrf::CsrfError;
use dexto_shared::web::html::esc;
use worker::{Headers, Response};

pub enum PageError {
    /// No valid session: go and sign in, then come back to `next`.
    SignIn { next: String },
    /// A state change that did not prove it came from our own page.
    Csrf(CsrfError),
    /// An API answered with an error (its status and message are the user's to see).
    Api { status: u16, message: String },
    Gateway(GatewayError),
}

impl From<GatewayError> for PageError {
    fn from(e: GatewayError) -> Self {
        PageError::Gateway(e)
    }
}

impl From<worker::Error> for PageError {
    fn from(e: worker::Error) -> Self {
        PageError::Gateway(GatewayError::Internal(e.to_string()))
    }
}

pub type PageResult = Result<Page, PageError>;

/// What a handler produces; `cookies` are `Set-Cookie` values (session refresh).
pub struct Page {
    pub status: u16,
    pub body: PageBody,
    pub cookies: Vec<String>,
}

pub enum PageBody {
    Html(String),
    Json(serde_json::Value),
    Redirect(String),
    /// An API response passed through (exports), with its own content type.
    Passthrough(Response),
}

impl Page {
    pub fn html(body: String) -> Page {
        Page { status: 200, body: PageBody::Html(body), cookies: Vec::new() }
    }
    pub fn redirect(to: impl Into<String>) -> Page {
        Page { status: 303, body: PageBody::Redirect(to.into()), cookies: Vec::new() }
    }
    pub fn with_cookies(mut self, cookies: Vec<String>) -> Page {
        self.cookies.extend(cookies);
        self
    }
}

/// The CSP: our own script and style only, no inline anything, no framing,
/// forms post to us (and, through our redirect, to Stripe Checkout).
pub fn csp(checkout_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self' {checkout_origin}; frame-ancestors 'none'; base-uri 'none'"
    )
}

pub fn into_response(page: Page, csp: &str) -> worker::Result<Response> {
    let headers = Headers::new();
    let mut resp = match page.body {
        PageBody::Html(html) => {
            headers.set("Content-Type", "text/html; charset=utf-8")?;
            Response::from_html(html)?
        }
        PageBody::Json(v) => Response::from_json(&v)?,
        PageBody::Redirect(to) => {
            headers.set("Location", &to)?;
            Response::empty()?
        }
        PageBody::Passthrough(resp) => resp,
    };
    for (name, value) in [
        ("Content-Security-Policy", csp),
        ("X-Frame-Options", "DENY"),
        // Session ids, user codes and filters are in our URLs: never send them to
        // another origin. (Not `no-referrer`: it makes browsers send `Origin:
        // null` with our own form posts, which the CSRF check must refuse.)
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
    ] {
        resp.headers_mut().set(name, value)?;
    }
    // Pages hold account data: never cached. Assets set their own.
    if !resp.headers().has("Cache-Control")? {
        resp.headers_mut().set("Cache-Control", "no-store")?;
    }
    for (name, value) in headers.entries() {
        resp.headers_mut().set(&name, &value)?;
    }
    for cookie in &page.cookies {
        resp.headers_mut().append("Set-Cookie", cookie)?;
    }
    Ok(resp.with_status(page.status))
}

/// What an error tells the user: its status, a title and a message without
/// internal detail. Internal errors are logged by the caller with the path.
fn describe(err: PageError) -> (u16, &'static str, String) {
    match err {
        PageError::SignIn { .. } => (401, "Sign in again", "Your session has ended; sign in again.".into()),
        PageError::Csrf(e) => (403, "Request refused", e.message().to_string()),
        PageError::Api { status, message } => (status, "Something went wrong", message),
        PageError::Gateway(e) => {
            let status = e.status();
            let message = if status >= 500 { "The service is unavailable right now. Try again in a moment.".to_string() } else { e.message() };
            (status, "Something went wrong", message)
        }
    }
}

impl PageError {
    pub fn status(&self) -> u16 {
        match self {
            PageError::SignIn { .. } => 401,
            PageError::Csrf(_) => 403,
            PageError::Api { status, .. } => *status,
            PageError::Gateway(e) => e.status(),
        }
    }
}

/// Errors as pages: the status the API chose, its message (escaped).
pub fn error_page(err: PageError) -> Page {
    if let PageError::SignIn { next } = err {
        return Page::redirect(format!("/dashboard/login?next={}", dexto_shared::url_query::encode(&next)));
    }
    let (status, title, message) = describe(err);
    let body = crate::layout::bare(
        title,
        &format!(r#"<h1>{}</h1><p class="error" role="alert">{}</p><p><a href="/dashboard">Back to the dashboard</a></p>"#, esc(title), esc(&message)),
    );
    Page { status, body: PageBody::Html(body), cookies: Vec::new() }
}

/// Errors for a page script's `fetch`: the same status and message, as the
/// APIs' JSON error shape.
pub fn error_json(err: PageError) -> Page {
    let (status, _, message) = describe(err);
    Page { status, body: PageBody::Json(serde_json::json!({"error": {"message": message}})), cookies: Vec::new() }
}
