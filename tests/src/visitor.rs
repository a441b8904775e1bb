//! A signed-in dashboard visitor without a browser: the session and CSRF
//! cookies, as the sign-in sets them, and form POSTs from our own page.

use crate::{HttpResponse, Stack};

pub struct Visitor {
    cookie: String,
    csrf: String,
}

impl Visitor {
    /// Signed in with `token` (a session token, e.g. `Stack::session_token`).
    pub fn with_session(token: &str) -> Visitor {
        let csrf = dexto_shared::ids::new_id("csrf-").repeat(2);
        Visitor { cookie: format!("__Host-dexto_session={token}; __Host-dexto_csrf={csrf}"), csrf }
    }

    pub fn get(&self, s: &Stack, path: &str) -> HttpResponse {
        crate::get_with(&format!("{}{path}", s.base), &[("Cookie", &self.cookie)])
    }

    /// A form POST from our own page (same origin, the session's CSRF secret).
    pub fn post(&self, s: &Stack, path: &str, fields: &[(&str, &str)]) -> HttpResponse {
        let mut form: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", dexto_shared::url_query::encode(v))).collect();
        form.push(format!("csrf={}", self.csrf));
        let headers = [("Cookie", self.cookie.as_str()), ("Origin", s.base.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
        crate::post(&format!("{}{path}", s.base), &headers, form.join("&").as_bytes())
    }
}
