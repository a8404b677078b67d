//! The metrics and status endpoint: a small HTTP server on its own thread serving
//!
//! - `GET /metrics`: Prometheus text format, read from the proxies' stats at scrape time (`prometheus`), and
//!   the weighted routes' weights, splits and accepted difficulty from the shared `Control` (`routes`);
//! - `GET /status`: the same as JSON, with the hashrate history (`status`);
//! - `GET /`: a self-contained status page polling `/status` (`page`).
//!
//! The reactors only bump atomics (see `stats`); everything here reads them. The server stops when its
//! [`MetricsHandle`] is stopped or dropped.

mod endpoint;
mod handle;
mod history;
mod page;
mod prometheus;
mod routes;
mod server;
mod status;

use crate::control::Control;
use crate::stats::ProxyStats;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use endpoint::Endpoint;
pub use handle::ServerHandle;
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
pub type MetricsHandle = ServerHandle;

/// Starts the endpoint on `listen` for `proxies` (name and stats, e.g. from `RunningProxy`), without routes.
pub fn start(
    listen: SocketAddr,
    proxies: Vec<(String, Arc<ProxyStats>)>,
    options: MetricsOptions,
) -> io::Result<MetricsHandle> {
    start_with_control(listen, proxies, None, options)
}

/// [`start`], with the routes of `control` (`RunningProxy::control`) in `/metrics`, `/status` and the page.
pub fn start_with_control(
    listen: SocketAddr,
    proxies: Vec<(String, Arc<ProxyStats>)>,
    control: Option<Arc<Control>>,
    options: MetricsOptions,
) -> io::Result<MetricsHandle> {
    serve_on(
        Endpoint::bind("metrics", listen)?,
        proxies,
        control,
        options,
    )
}

/// [`start_with_control`] on a listener already bound ([`Endpoint::bind`]).
pub fn serve_on(
    listener: std::net::TcpListener,
    proxies: Vec<(String, Arc<ProxyStats>)>,
    control: Option<Arc<Control>>,
    options: MetricsOptions,
) -> io::Result<MetricsHandle> {
    let server = Endpoint::new("metrics", listener)?;
    let addr = server.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let serving = server::Serving {
        server,
        proxies: Arc::new(proxies),
        history: History::new(options.history_interval, options.history_len),
        stop: stop.clone(),
        started: Instant::now(),
        control,
    };
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serving.run())?;
    log::info!("metrics on http://{addr}/ (/metrics, /status)");
    Ok(ServerHandle::new(addr, stop, thread))
}
