//! The authenticated HTTP JSON control API (issue 15) on a listener thread of its own (`api: { listen,
//! token_sha256 }`): it reads each request and answers with [`handler::handle`] over the shared [`Control`].
//!
//! It stops when its [`ApiHandle`] is stopped or dropped (the stop flag is looked at least every 200 ms).
//! Bodies over [`MAX_BODY`] bytes are refused (413) without being read further.

pub mod handler;

use crate::control::Control;
use crate::metrics::Endpoint;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tiny_http::Header;

/// Longest request body read.
pub const MAX_BODY: usize = 64 * 1024;

/// The running API; dropping it stops the thread and waits for it.
pub type ApiHandle = crate::metrics::ServerHandle;

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

/// Starts the API on `listen`; `token_hash` is the SHA-256 of the bearer token.
pub fn start(
    listen: SocketAddr,
    token_hash: [u8; 32],
    control: Arc<Control>,
) -> io::Result<ApiHandle> {
    serve_on(Endpoint::bind("api", listen)?, token_hash, control)
}

/// [`start`] on a listener already bound ([`Endpoint::bind`]).
pub fn serve_on(
    listener: std::net::TcpListener,
    token_hash: [u8; 32],
    control: Arc<Control>,
) -> io::Result<ApiHandle> {
    let server = Endpoint::new("api", listener)?;
    let addr = server.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("api".into())
        .spawn(move || serve(server, &token_hash, &control, &flag))?;
    log::info!("control API on http://{addr}/api/v1/");
    Ok(ApiHandle::new(addr, stop, thread))
}

fn serve(mut server: Endpoint, token_hash: &[u8; 32], control: &Control, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if let Some(req) = server.recv_timeout(Duration::from_millis(200)) {
            answer(req, token_hash, control);
        }
    }
}

fn answer(mut req: tiny_http::Request, token_hash: &[u8; 32], control: &Control) {
    let caller = req
        .remote_addr()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut body = Vec::new();
    let read = req
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    let authorization = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let method = req.method().as_str().to_ascii_uppercase();
    let url = req.url().to_string();
    let resp = if read.is_err() {
        handler::Response {
            status: 400,
            body: serde_json::json!({ "error": "cannot read the body" }),
        }
    } else if body.len() > MAX_BODY {
        handler::Response {
            status: 413,
            body: serde_json::json!({ "error": format!("body over {MAX_BODY} bytes") }),
        }
    } else {
        let r = handler::Request {
            method: &method,
            path: &url,
            authorization: authorization.as_deref(),
            body: &body,
            caller,
        };
        handler::handle(&r, control, token_hash)
    };
    let mut out = tiny_http::Response::from_data(format!("{}\n", resp.body).into_bytes())
        .with_status_code(resp.status)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"));
    if resp.status == 401 {
        out.add_header(header("WWW-Authenticate", "Bearer"));
    }
    if let Err(e) = req.respond(out) {
        log::debug!("api: response to {caller} not sent: {e}");
    }
}
