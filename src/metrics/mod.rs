//! The metrics and status endpoint: a small HTTP server on its own thread serving
//!
//! - `GET /metrics`: Prometheus text format, read from the proxies' stats at scrape time (`prometheus`);
//! - `GET /status`: the same as JSON, with the hashrate history (`status`);
//! - `GET /`: a self-contained status page polling `/status` (`page`).
//!
//! The reactors only bump atomics (see `stats`); everything here reads them. The server stops when its
//! [`MetricsHandle`] is stopped or dropped.

mod history;
mod page;
mod prometheus;
mod server;
mod status;

use crate::stats::ProxyStats;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use history::History;

/// Settings of the endpoint beyond its address.
#[derive(Debug, Clone, Copy)]
pub struct MetricsOptions {
    /// How often the total hashrate is sampled for the page's chart.
    pub history_interval: Duration,
    /// Samples kept (360 × 10 s: one hour).
    pub history_len: usize,
}

impl Default for MetricsOptions {
    fn default() -> MetricsOptions {
        MetricsOptions {
            history_interval: Duration::from_secs(10),
            history_len: 360,
        }
    }
}

/// The running endpoint; dropping it stops the server thread and waits for it.
pub struct MetricsHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsHandle {
    /// The address the server listens on (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Starts the endpoint on `listen` for `proxies` (name and stats, e.g. from `RunningProxy`).
pub fn start(
    listen: SocketAddr,
    proxies: Vec<(String, Arc<ProxyStats>)>,
    options: MetricsOptions,
) -> io::Result<MetricsHandle> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        io::Error::new(e.kind(), format!("metrics: cannot listen on {listen}: {e}"))
    })?;
    let addr = listener.local_addr()?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| io::Error::other(format!("metrics: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let serving = server::Serving {
        server,
        proxies: Arc::new(proxies),
        history: History::new(options.history_interval, options.history_len),
        stop: stop.clone(),
        started: Instant::now(),
    };
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serving.run())?;
    log::info!("metrics on http://{addr}/ (/metrics, /status)");
    Ok(MetricsHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}
