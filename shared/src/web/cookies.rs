//! The dashboard's cookies. Names carry the `__Host-` prefix: the browser
//! accepts them only with `Secure`, `Path=/` and no `Domain`, so a sibling
//! subdomain cannot plant or overwrite them.

/// Access token (the Supabase JWT), httpOnly.
pub const SESSION: &str = "__Host-dexto_session";
/// Refresh token, httpOnly.
pub const REFRESH: &str = "__Host-dexto_refresh";
/// Per-session CSRF secret, echoed by forms (httpOnly: the server writes it into the page).
pub const CSRF: &str = "__Host-dexto_csrf";
/// PKCE verifier + where to go after sign-in, for the ten minutes a sign-in takes.
pub const PKCE: &str = "__Host-dexto_pkce";

/// The value of cookie `name` in a `Cookie` header.
pub fn get<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').map(str::trim).find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// A `Set-Cookie` value: httpOnly, Secure, SameSite=Lax, Path=/.
pub fn set(name: &str, value: &str, max_age_seconds: i64) -> String {
    format!("{name}={value}; Max-Age={max_age_seconds}; Path=/; Secure; HttpOnly; SameSite=Lax")
}

/// Deletes a cookie.
pub fn clear(name: &str) -> String {
    set(name, "", 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exact_names_only() {
        let h = "a=1; __Host-dexto_session=tok.en; __Host-dexto_sessionx=no";
        assert_eq!(get(h, SESSION), Some("tok.en"));
        assert_eq!(get(h, "a"), Some("1"));
        assert_eq!(get(h, "b"), None);
    }

    #[test]
    fn set_is_host_only_secure_httponly() {
        let c = set(SESSION, "v", 60);
        assert!(c.contains("Path=/") && c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Domain"));
        assert!(clear(SESSION).contains("Max-Age=0"));
    }
}
