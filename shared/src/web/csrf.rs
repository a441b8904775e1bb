//! Refusing cross-site state changes. A state-changing request that carries
//! the session cookie must (1) come from our own origin — `Origin` (or, when
//! a browser omits it, `Sec-Fetch-Site`) — and (2) echo the session's CSRF
//! secret in the form field `csrf`, compared in constant time. SameSite=Lax
//! alone is not enough: another port on the same host is the same *site*.

use crate::secret::constant_time_eq;

#[derive(Debug, PartialEq, Eq)]
pub enum CsrfError {
    ForeignOrigin,
    MissingToken,
    BadToken,
}

impl CsrfError {
    pub fn message(&self) -> &'static str {
        match self {
            CsrfError::ForeignOrigin => "Cross-site request refused.",
            CsrfError::MissingToken | CsrfError::BadToken => "Your form expired or did not come from this site. Reload the page and try again.",
        }
    }
}

/// (1) alone: `origin`: the `Origin` header; `fetch_site`: `Sec-Fetch-Site`;
/// `own`: our origin. (Where there is no session yet, this is all there is.)
pub fn same_origin(origin: Option<&str>, fetch_site: Option<&str>, own: &str) -> Result<(), CsrfError> {
    match (origin, fetch_site) {
        (Some(o), _) if o != own => Err(CsrfError::ForeignOrigin),
        (None, Some(site)) if site != "same-origin" && site != "none" => Err(CsrfError::ForeignOrigin),
        _ => Ok(()),
    }
}

/// (1) and (2).
pub fn check(origin: Option<&str>, fetch_site: Option<&str>, own: &str, cookie_secret: Option<&str>, form_token: Option<&str>) -> Result<(), CsrfError> {
    same_origin(origin, fetch_site, own)?;
    let (Some(secret), Some(token)) = (cookie_secret.filter(|s| !s.is_empty()), form_token) else {
        return Err(CsrfError::MissingToken);
    };
    if constant_time_eq(secret.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(CsrfError::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const OWN: &str = "https://app.dexto.ai";

    #[test]
    fn same_origin_with_token_passes() {
        assert_eq!(check(Some(OWN), Some("same-origin"), OWN, Some("s3cret"), Some("s3cret")), Ok(()));
        assert_eq!(check(None, None, OWN, Some("s3cret"), Some("s3cret")), Ok(()));
    }

    #[test]
    fn foreign_origin_refused_even_with_token() {
        assert_eq!(check(Some("http://127.0.0.1:9999"), None, OWN, Some("t"), Some("t")), Err(CsrfError::ForeignOrigin));
        assert_eq!(check(Some("null"), None, OWN, Some("t"), Some("t")), Err(CsrfError::ForeignOrigin));
        assert_eq!(check(None, Some("same-site"), OWN, Some("t"), Some("t")), Err(CsrfError::ForeignOrigin));
    }

    #[test]
    fn token_must_match() {
        assert_eq!(check(Some(OWN), None, OWN, Some("t"), None), Err(CsrfError::MissingToken));
        assert_eq!(check(Some(OWN), None, OWN, None, Some("t")), Err(CsrfError::MissingToken));
        assert_eq!(check(Some(OWN), None, OWN, Some("t1"), Some("t2")), Err(CsrfError::BadToken));
    }
}
