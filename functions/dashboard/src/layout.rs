//! The page shell: one stylesheet and one script of our own (the CSP allows
//! nothing else), a skip link, the navigation and the sign-out form.

use dexto_shared::web::html::esc;

/// Who a signed-in page is for: what the shell shows and every form carries.
/// (Implemented by the cookie session; the shell needs nothing else of it.)
pub trait Viewer {
    /// The email, else the wallet address, of who is signed in.
    fn name(&self) -> &str;
    fn csrf(&self) -> &str;
}

/// Bumped with the assets so browsers never mix an old script with a new page.
pub const ASSET_VERSION: &str = "5";

const NAV: &[(&str, &str)] = &[
    ("/dashboard", "Overview"),
    ("/dashboard/keys", "API keys"),
    ("/dashboard/direct-key", "Direct key"),
    ("/dashboard/usage", "Usage"),
    ("/dashboard/settings/billing", "Billing"),
    ("/dashboard/account", "Account"),
    ("/dashboard/models", "Models"),
];

fn head(title: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · Dexto</title><link rel="stylesheet" href="/dashboard/assets/app.css?v={ASSET_VERSION}">
<script src="/dashboard/assets/app.js?v={ASSET_VERSION}" defer></script></head>"#,
        esc(title)
    )
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: &str) -> String {
    format!(r#"{}<body><main id="main" class="narrow">{body}</main></body></html>"#, head(title))
}

/// A signed-in page; `active` is the nav entry's path.
pub fn page(title: &str, viewer: &impl Viewer, active: &str, body: &str) -> String {
    let nav: String = NAV
        .iter()
        .map(|(href, label)| {
            let current = if *href == active { r#" aria-current="page""# } else { "" };
            format!(r#"<li><a href="{href}"{current}>{label}</a></li>"#)
        })
        .collect();
    format!(
        r##"{}<body><a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Dashboard"><span class="brand">Dexto</span><ul>{nav}</ul></nav>
<form method="post" action="/dashboard/auth/logout" class="signout"><input type="hidden" name="csrf" value="{csrf}">
<span class="who">{name}</span> <button type="submit" class="link">Sign out</button></form></header>
<main id="main">{body}</main></body></html>"##,
        head(title),
        csrf = esc(viewer.csrf()),
        name = esc(viewer.name()),
    )
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(viewer: &impl Viewer) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(viewer.csrf()))
}

/// A data table (scrolls sideways on a phone), or the empty state when there
/// are no rows. `headers` are literal text (a header may be raw HTML, e.g. a
/// screen-reader-only label); `rows` are `<tr>`s already escaped by the caller.
pub fn table(id: &str, headers: &[&str], rows: &str, empty: &str) -> String {
    if rows.is_empty() {
        return format!(r#"<p class="empty">{empty}</p>"#);
    }
    let head: String = headers.iter().map(|h| format!(r#"<th scope="col">{h}</th>"#)).collect();
    format!(r#"<div class="scroll"><table id="{id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"#)
}
