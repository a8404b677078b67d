//! A proxy entry's routes as a reactor runs them (issue 15): each route's span of the entry's pool list, and
//! the [`Router`] (the weighted-split [`Scheduler`] of this reactor and what it last saw of the `Control`).

use crate::config::{PoolConfig, PoolUrl, ProxyConfig};
use crate::routing::{Params, Scheduler};
use std::sync::Arc;

/// One route: its name and its pools' place in the proxy entry's pool list (`pools[start..start + len]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteSpan {
    pub name: String,
    pub start: usize,
    pub len: usize,
}

/// Every route's pools, route after route (a pool's index there is its `pool_idx` everywhere), with their TLS
/// client configs, and the routes' spans. `tls` builds a pool's client config (only called for TLS pools).
#[allow(clippy::type_complexity)]
pub(crate) fn flatten(
    cfg: &ProxyConfig,
    mut tls: impl FnMut(&PoolConfig) -> Result<Arc<rustls::ClientConfig>, String>,
) -> Result<
    (
        Vec<PoolUrl>,
        Vec<Option<Arc<rustls::ClientConfig>>>,
        Vec<PoolConfig>,
        Vec<RouteSpan>,
    ),
    String,
> {
    let (mut urls, mut tls_cfgs, mut accounts, mut spans) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in cfg.route_list() {
        spans.push(RouteSpan {
            name: r.name.to_string(),
            start: urls.len(),
            len: r.pools.len(),
        });
        for pool in r.pools {
            let url = PoolUrl::parse(&pool.url.value)?;
            tls_cfgs.push(if url.tls { Some(tls(pool)?) } else { None });
            urls.push(url);
            accounts.push(pool.clone());
        }
    }
    Ok((urls, tls_cfgs, accounts, spans))
}

/// This reactor's weighted split of one proxy entry with more than one route.
#[derive(Debug)]
pub(crate) struct Router {
    pub sched: Scheduler,
    /// The mean measured hashrate of this entry's miners (the guess for a new one), 0 before any.
    pub mean_hashrate: f64,
    /// When this reactor started (the scheduler's clock counts seconds from it).
    pub epoch: std::time::Instant,
}

impl Router {
    /// A scheduler for `routes` with weights `weights`; `switch_secs`: the time slice of a moved miner.
    pub fn new(weights: &[f64], switch_secs: f64) -> Router {
        let params = Params {
            horizon_secs: switch_secs,
            min_dwell_secs: switch_secs,
        };
        Router {
            sched: Scheduler::new(params, weights),
            mean_hashrate: 0.0,
            epoch: std::time::Instant::now(),
        }
    }

    /// Seconds since this reactor started, the scheduler's `now`.
    pub fn now(&self, at: std::time::Instant) -> f64 {
        at.saturating_duration_since(self.epoch).as_secs_f64()
    }
}
