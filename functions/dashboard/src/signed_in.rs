//! Who is signed in (the `Session` a page is rendered for) and where the
//! browser called from. Depends on nothing else of the dashboard's request
//! handling, so the API client (`backend.rs`) and the cookie session
//! (`session.rs`) can both use it.

use dexto_shared::secret::Secret;
use worker::Request;

pub struct Session {
    pub token: Secret<String>,
    pub user_id: String,
    /// Who is signed in, as shown: the email, else the wallet address.
    pub name: String,
    pub csrf: String,
    /// `Set-Cookie` values to send back (after a refresh).
    pub cookies: Vec<String>,
}

impl crate::layout::Viewer for Session {
    fn name(&self) -> &str {
        &self.name
    }
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Our own origin, as the browser sees it (the edge forwards the public URL).
pub fn own_origin(req: &Request) -> String {
    dexto_shared::url_query::origin(&req.inner().url()).unwrap_or_default()
}

