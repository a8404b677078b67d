//! The HTTP server: tiny_http on one thread of its own, routing `/metrics`, `/status` and `/`, and sampling the
//! hashrate history between requests. It stops when its flag is set (checked at least every 200 ms).

use super::history::History;
use super::{page, prometheus, routes, status};
use crate::control::Control;
use crate::stats::ProxyStats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response};

/// Longest wait for a request before the stop flag and the history are looked at again.
const POLL: Duration = Duration::from_millis(200);

/// What the server thread owns.
pub(super) struct Serving {
    pub server: super::endpoint::Endpoint,
    pub proxies: Arc<Vec<(String, Arc<ProxyStats>)>>,
    pub history: History,
    pub stop: Arc<AtomicBool>,
    pub started: Instant,
    /// The routes (weights, splits, pool states), when the proxy's control state was given.
    pub control: Option<Arc<Control>>,
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

impl Serving {
    /// Serves until the stop flag is set.
    pub(super) fn run(mut self) {
        let mut registry = prometheus::registry(self.proxies.clone());
        if let Some(control) = &self.control {
            registry.register_collector(Box::new(routes::RouteCollector {
                control: control.clone(),
            }));
        }
        let total = |p: &[(String, Arc<ProxyStats>)]| -> f64 {
            let now = Instant::now();
            p.iter().map(|(_, s)| s.hashrate(now)).sum()
        };
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let proxies = self.proxies.clone();
            self.history
                .tick(now, crate::stats::unix_now(), || total(&proxies));
            let wait = self
                .history
                .due_in(Instant::now())
                .clamp(Duration::from_millis(1), POLL);
            if let Some(req) = self.server.recv_timeout(wait) {
                self.answer(req, &registry);
            }
        }
    }

    fn answer(&self, req: Request, registry: &prometheus_client::registry::Registry) {
        let path = req.url().split(['?', '#']).next().unwrap_or("/");
        let (code, ctype, body): (u16, &str, Vec<u8>) = match (req.method(), path) {
            (Method::Get | Method::Head, "/metrics") => (
                200,
                prometheus::CONTENT_TYPE,
                prometheus::encode(registry).into_bytes(),
            ),
            (Method::Get | Method::Head, "/status") => {
                let doc = status::status(
                    &self.proxies,
                    self.control.as_deref(),
                    &self.history,
                    self.started,
                );
                (200, "application/json", doc.to_string().into_bytes())
            }
            (Method::Get | Method::Head, "/" | "/index.html") => {
                (200, page::CONTENT_TYPE, page::PAGE.as_bytes().to_vec())
            }
            (Method::Get | Method::Head, _) => (
                404,
                "text/plain; charset=utf-8",
                b"not found: try /, /status or /metrics\n".to_vec(),
            ),
            _ => (405, "text/plain; charset=utf-8", b"only GET\n".to_vec()),
        };
        let mut resp = Response::from_data(body)
            .with_status_code(code)
            .with_header(header("Content-Type", ctype))
            .with_header(header("Cache-Control", "no-store"));
        if code == 405 {
            resp.add_header(header("Allow", "GET, HEAD"));
        }
        if let Err(e) = req.respond(resp) {
            log::debug!("metrics server: response not sent: {e}");
        }
    }
}
