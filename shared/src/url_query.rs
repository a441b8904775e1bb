//! URL query strings and percent-encoding without the `url` crate, whose IDNA
//! tables would add ~100 KB to every Worker that parses a request URL
//! (`worker::Request::url`). Only what the Workers need: decoding query pairs
//! and path segments, encoding a query value.

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); malformed
/// escapes are kept as they are; invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(raw: &str, plus_is_space: bool) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded `name=value` pairs of a URL's query (`application/x-www-form-urlencoded`).
pub fn pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `scheme://host[:port]` of an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// Whether `url` may be redirected to: an absolute http(s) URL whose origin
/// (scheme, host and port, nothing else) is exactly one of `allowed`. No
/// prefix matching (`https://dexto.ai.evil.tld`), no userinfo
/// (`https://dexto.ai@evil.tld`), no backslashes or whitespace that browsers
/// read differently from us.
pub fn redirect_allowed(url: &str, allowed: &[String]) -> bool {
    if url.len() > 2_000 || url.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some(origin) = origin(url) else { return false };
    let (scheme, authority) = origin.split_once("://").unwrap_or_default();
    if !matches!(scheme, "https" | "http") || authority.contains('@') {
        return false;
    }
    let origin = origin.to_ascii_lowercase();
    allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(&origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_pairs() {
        let p = pairs("https://x/me/usage/history?limit=5&model=openai%2Fgpt-4o&session=a+b&empty=&flag&from=2026-01-01T00%3A00%3A00Z#frag");
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!((get("limit"), get("model"), get("session")), (Some("5"), Some("openai/gpt-4o"), Some("a b")));
        assert_eq!((get("empty"), get("flag"), get("from")), (Some(""), Some(""), Some("2026-01-01T00:00:00Z")));
        assert!(pairs("https://x/path").is_empty());
        assert_eq!(pairs("/p?a=%zz%4"), vec![("a".to_string(), "%zz%4".to_string())]);
    }

    #[test]
    fn paths_keep_plus_signs_and_decode_escapes() {
        assert_eq!(percent_decode("qwen%2Fqwen3-coder%3Afree", false), "qwen/qwen3-coder:free");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%C3%A9", false), "é");
    }

    #[test]
    fn encoding_round_trips() {
        let cron = "0 * * * *";
        assert_eq!(encode(cron), "0%20%2A%20%2A%20%2A%20%2A");
        assert_eq!(pairs(&format!("/x?cron={}", encode(cron)))[0].1, cron);
    }

    #[test]
    fn origins() {
        assert_eq!(origin("http://127.0.0.1:8787/device?x=1").as_deref(), Some("http://127.0.0.1:8787"));
        assert_eq!(origin("https://api.dexto.ai").as_deref(), Some("https://api.dexto.ai"));
        assert_eq!(origin("nonsense"), None);
    }

    #[test]
    fn redirects_only_to_exact_configured_origins() {
        let allowed = vec!["https://dexto.ai".to_string(), "https://app.dexto.ai".into(), "http://127.0.0.1:8787".into()];
        for ok in ["https://dexto.ai/done", "https://app.dexto.ai/dashboard/settings/billing?credits_usd=25", "https://DEXTO.ai", "http://127.0.0.1:8787/billing"] {
            assert!(redirect_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "http://localhost.evil.tld/x",
            "https://dexto.ai.evil.tld/",
            "https://dexto.ai@evil.tld/",
            "https://evil.tld/?next=https://dexto.ai",
            "http://dexto.ai/",
            "https://dexto.ai:444/",
            "http://127.0.0.1:9999/",
            "javascript:alert(1)",
            "//dexto.ai/x",
            "https://dexto.ai\\@evil.tld",
            "https://dexto.ai /x",
            "",
        ] {
            assert!(!redirect_allowed(bad, &allowed), "{bad}");
        }
    }
}
