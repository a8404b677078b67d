//! `GET /`: the status page, one self-contained HTML file (inline CSS and JS, no external resource). Its script
//! polls `/status` every 2 s and draws the hashrate history on a `<canvas>`.

/// The page.
pub const PAGE: &str = include_str!("page.html");

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";
