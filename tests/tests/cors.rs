//! CORS: allow-listed origins get a preflight answer and CORS headers; other
//! origins are never reflected; credentials are never allowed.

use integration_tests::client::send;
use integration_tests::stack;

#[test]
fn allowed_origins_get_cors_and_others_do_not() {
    let s = stack();
    let url = format!("{}/api/keys", s.base);
    let preflight = |origin: &str| {
        send("OPTIONS", &url, &[("Origin", origin), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "authorization,content-type")], None)
    };
    let ok = preflight("https://dexto.ai");
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("Access-Control-Allow-Origin"), Some("https://dexto.ai"));
    assert!(ok.header("Access-Control-Allow-Headers").unwrap().contains("Authorization"));
    assert!(ok.header("Access-Control-Allow-Credentials").is_none());

    let evil = preflight("https://evil.example");
    assert_eq!(evil.status, 403);
    assert!(evil.header("Access-Control-Allow-Origin").is_none());

    let token = s.session_token("cors-user", "c@example.com");
    let auth = format!("Bearer {token}");
    let listed = send("GET", &url, &[("Origin", "https://dexto.ai"), ("Authorization", &auth)], None);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.header("Access-Control-Allow-Origin"), Some("https://dexto.ai"));
    assert!(listed.header("Access-Control-Expose-Headers").unwrap().contains("X-Dexto-Credits-Remaining"));
    let unlisted = send("GET", &url, &[("Origin", "https://evil.example"), ("Authorization", &auth)], None);
    assert_eq!(unlisted.status, 200, "the API still answers; the browser blocks it");
    assert!(unlisted.header("Access-Control-Allow-Origin").is_none());
    assert!(unlisted.header("Access-Control-Allow-Credentials").is_none());

    // The data plane answers CORS itself (clients reach it without the edge).
    let chat = format!("{}/v1/chat/completions", s.base);
    let pre = send("OPTIONS", &chat, &[("Origin", "https://dexto.ai"), ("Access-Control-Request-Method", "POST")], None);
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some("https://dexto.ai"));
    let evil_pre = send("OPTIONS", &chat, &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")], None);
    assert_eq!(evil_pre.status, 403);
    let models = send("GET", &format!("{}/v1/models", s.base), &[("Origin", "https://dexto.ai")], None);
    assert_eq!(models.status, 200);
    assert_eq!(models.header("Access-Control-Allow-Origin"), Some("https://dexto.ai"));
    assert!(models.header("Access-Control-Expose-Headers").unwrap().contains("X-Dexto-Cost-USD"));
    let evil_models = send("GET", &format!("{}/v1/models", s.base), &[("Origin", "https://evil.example")], None);
    assert!(evil_models.header("Access-Control-Allow-Origin").is_none());
}
