//! Pure pieces of the dashboard (no Workers API, unit-tested natively): HTML
//! escaping, cookies, CSRF and same-origin checks, PKCE, the spend chart.

pub mod chart;
pub mod cookies;
pub mod csrf;
pub mod html;
pub mod pkce;
