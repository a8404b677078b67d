//! What the reactors know of their proxy entries: each entry's settings as a reactor runs them ([`ProxyState`],
//! [`Timing`]), the reload [`Command`] the owning thread sends, and the [`Admission`] counters reactors share.

pub(crate) use super::routes::{RouteSpan, Router};
use crate::config::{PoolUrl, ProxyConfig};
use crate::protocol::Dialect;
use crate::stats::ProxyStats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Durations of a proxy entry, converted once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub idle: Duration,
    pub share: Duration,
    pub pool_wait: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub failback: Duration,
    pub handshake: Duration,
    pub sv2_update: Duration,
    /// `share_timeout` for shares sent to an SV2 pool.
    pub sv2_share: Duration,
}

impl Timing {
    /// How long a share sent to a pool connection (SV2 or not) waits for the pool's verdict.
    pub fn share_for(&self, sv2: bool) -> Duration {
        if sv2 {
            self.sv2_share
        } else {
            self.share
        }
    }
}

/// One configured proxy entry as this reactor runs it.
pub(crate) struct ProxyState {
    pub cfg: ProxyConfig,
    pub dialect: Dialect,
    /// The solution shape submits must have (Equihash).
    pub solution: crate::protocol::equihash::SolutionShape,
    /// Every route's pools, route after route: a pool's index here is its `pool_idx` everywhere (stats too).
    pub pools: Vec<PoolUrl>,
    /// TLS client configs, per pool (None for plain TCP pools).
    pub pool_tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    /// The pools' accounts (user, password), per pool.
    pub accounts: Vec<crate::config::PoolConfig>,
    /// Each route's span of `pools` (one route for a `pools:` list).
    pub routes: Vec<RouteSpan>,
    /// The weighted split, with more than one route.
    pub router: Option<Router>,
    /// Upstream keys; the first of each route is its primary and is never closed.
    pub upstreams: Vec<usize>,
    /// The runtime control state shared with the other reactors and the control API (routes, pools, kicks).
    pub control: Arc<crate::control::Control>,
    /// This entry's index in the control state and the config.
    pub index: usize,
    /// The last control command (kick) this reactor applied, and the `Control::version` last applied.
    pub command_seen: u64,
    pub control_version: u64,
    pub stats: Arc<ProxyStats>,
    /// Counters of local validation.
    pub validation: Arc<crate::validate::ValidationStats>,
    pub timing: Timing,
    /// SV2 pools (host, port) that refused SetupConnection with REQUIRES_VERSION_ROLLING: asked without it.
    pub sv2_rolling_refused: std::collections::HashSet<(String, u16)>,
}

impl ProxyState {
    /// Pool `idx` of the list (the last one when a reload shortened the list under an upstream).
    pub fn pool(&self, idx: usize) -> &PoolUrl {
        &self.pools[idx.min(self.pools.len().saturating_sub(1))]
    }

    /// Route `r`'s span (the last route's when `r` is out of range).
    pub fn route(&self, r: usize) -> &RouteSpan {
        &self.routes[r.min(self.routes.len().saturating_sub(1))]
    }

    /// Whether this entry splits its miners between several routes (job ids then carry an upstream tag).
    pub fn routed(&self) -> bool {
        self.router.is_some()
    }
}

/// The durations of proxy entry `cfg`.
pub(crate) fn timing(cfg: &ProxyConfig) -> Timing {
    Timing {
        idle: ProxyConfig::secs(cfg.idle_timeout),
        share: ProxyConfig::secs(cfg.share_timeout),
        pool_wait: ProxyConfig::secs(cfg.pool_wait_timeout),
        retry_initial: ProxyConfig::secs(cfg.retry_initial),
        retry_max: ProxyConfig::secs(cfg.retry_max),
        failback: ProxyConfig::secs(cfg.failback_interval),
        handshake: ProxyConfig::secs(cfg.handshake_timeout),
        sv2_update: ProxyConfig::secs(cfg.sv2_update_interval),
        sv2_share: ProxyConfig::secs(cfg.sv2_share_timeout),
    }
}

/// What one proxy entry becomes after a reload.
#[derive(Clone)]
pub struct ProxyUpdate {
    pub cfg: ProxyConfig,
    pub pools: Vec<PoolUrl>,
    pub pool_tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    pub accounts: Vec<crate::config::PoolConfig>,
    pub(crate) routes: Vec<RouteSpan>,
}

/// A message to a reactor.
#[derive(Clone)]
pub enum Command {
    /// New settings for every proxy entry, in config order.
    Reload(Arc<Vec<ProxyUpdate>>),
}

/// What one running set of proxies (one `proxy::start`) shares between its reactors for admission.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The top-level `max_miners` (`u64::MAX`: none).
    pub max_total: AtomicU64,
    /// Miners of every entry held now.
    pub miners: AtomicU64,
    /// Refusal episodes: one per proxy entry (its own `max_miners`), and the last for the total.
    pub refusing: Vec<Refusing>,
    /// The top-level `max_queued_output`, shared evenly by the `threads` reactors (see `budget`).
    pub max_queued_output: AtomicU64,
    pub threads: usize,
}

/// Connections being refused past one `max_miners`.
#[derive(Debug, Default)]
pub(crate) struct Refusing {
    active: AtomicBool,
    /// When the episode began and how many were refused in it.
    episode: Mutex<Option<(Instant, u64)>>,
}

impl Admission {
    pub(crate) fn new(config: &crate::config::Config, threads: usize) -> Admission {
        let max_total = config.max_miners.as_ref().map(|m| m.value);
        Admission {
            max_total: AtomicU64::new(max_total.unwrap_or(u64::MAX)),
            miners: AtomicU64::new(0),
            refusing: (0..=config.proxies.len())
                .map(|_| Refusing::default())
                .collect(),
            max_queued_output: AtomicU64::new(config.max_queued_output),
            threads,
        }
    }
}

impl Refusing {
    /// One more refused; the first of an episode is logged.
    pub(crate) fn refused(&self, limit: &str) {
        let mut e = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *e {
            Some((_, n)) => *n += 1,
            None => {
                *e = Some((Instant::now(), 1));
                self.active.store(true, Relaxed);
                log::warn!("{limit} reached: new miners are closed at once until one leaves");
            }
        }
    }

    /// A miner was admitted under this limit: an episode ends, logged once.
    pub(crate) fn admitted(&self, limit: impl FnOnce() -> String) {
        if !self.active.load(Relaxed) {
            return;
        }
        let mut e = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((since, n)) = e.take() {
            self.active.store(false, Relaxed);
            log::warn!(
                "{}: miners admitted again after {:.1}s; {n} connection(s) were refused past it",
                limit(),
                since.elapsed().as_secs_f64()
            );
        }
    }
}
