//! The public origin's routing table: path (exact, or as a prefix followed by
//! `/`) → the service binding of the Worker that serves it. Used by the edge
//! Worker; kept here so it is unit-tested natively.

pub const ROUTES: &[(&str, &str)] = &[
    ("/v1", "CHAT"),
    ("/admin", "ADMIN"),
    ("/api/provision", "IDENTITY"),
    ("/api/keys", "IDENTITY"),
    ("/api/caps", "IDENTITY"),
    ("/api/audit", "IDENTITY"),
    ("/keys", "IDENTITY"),
    ("/api/openrouter-key", "IDENTITY"),
    ("/api/openrouter-provision", "IDENTITY"),
    ("/api/auth/device", "IDENTITY"),
    ("/api/auth/siwe", "IDENTITY"),
    ("/auth/device", "IDENTITY"),
    ("/device", "DASHBOARD"),
    ("/api/billing", "BILLING"),
    ("/api/stripe", "BILLING"),
    ("/billing", "DASHBOARD"),
    ("/dashboard", "DASHBOARD"),
    ("/me/usage", "USAGE"),
    ("/api/account/usage", "USAGE"),
];

pub fn service_for(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|(prefix, _)| path == *prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
        .map(|(_, binding)| *binding)
}

#[cfg(test)]
mod tests {
    use super::service_for;

    #[test]
    fn routes_by_whole_segments() {
        assert_eq!(service_for("/v1/chat/completions"), Some("CHAT"));
        assert_eq!(service_for("/keys/validate"), Some("IDENTITY"));
        assert_eq!(service_for("/api/keys"), Some("IDENTITY"));
        assert_eq!(service_for("/api/keys/abc"), Some("IDENTITY"));
        assert_eq!(service_for("/api/keysmith"), None);
        assert_eq!(service_for("/api/openrouter-provision/fund"), Some("IDENTITY"));
        assert_eq!(service_for("/v10/x"), None);
        assert_eq!(service_for("/device"), Some("DASHBOARD"));
        assert_eq!(service_for("/dashboard/settings/billing"), Some("DASHBOARD"));
        assert_eq!(service_for("/dashboardx"), None);
        assert_eq!(service_for("/health"), None);
        assert_eq!(service_for("/me/usage/history"), Some("USAGE"));
        assert_eq!(service_for("/api/billing/balance"), Some("BILLING"));
    }
}
