//! Reloading a running proxy's configuration (SIGHUP) inside its reactors.
//!
//! The owning thread checks the new config and that it is compatible (same proxies, listeners, protocols and
//! threads: those need a restart), builds what is costly (TLS client configs), and sends each reactor a
//! [`Command::Reload`] through a channel, waking it. The reactor swaps the proxy settings in place; an upstream
//! whose pool list changed moves to the new first pool through a probe connection, so miners that subscribed
//! to extranonce changes stay connected.

use crate::config::{Config, ProxyConfig};
use crate::reactor::Reactor;
pub use crate::state::proxies::{Command, ProxyUpdate};
use std::time::Instant;

/// Why `new` cannot replace `old` without a restart, if it cannot.
pub fn incompatible(old: &Config, new: &Config) -> Option<String> {
    if old.threads != new.threads {
        return Some("'threads' changed".into());
    }
    if old.proxies.len() != new.proxies.len() {
        return Some("proxies were added or removed".into());
    }
    for (a, b) in old.proxies.iter().zip(&new.proxies) {
        if a.name != b.name || a.protocol != b.protocol {
            return Some(format!("proxy '{}' changed its name or protocol", a.name));
        }
        let listen = |p: &ProxyConfig| -> Vec<String> {
            p.listen
                .iter()
                .map(|l| {
                    format!(
                        "{} {:?} {:?}",
                        l.address.value,
                        l.tls.as_ref().map(|t| (&t.cert.value, &t.key.value)),
                        l.proxy_protocol
                    )
                })
                .collect()
        };
        if listen(a) != listen(b) {
            return Some(format!("proxy '{}' changed its listeners", a.name));
        }
    }
    None
}

/// Builds the per-proxy updates of a checked, compatible config.
pub fn updates(new: &Config) -> Result<Vec<ProxyUpdate>, String> {
    new.proxies
        .iter()
        .map(|p| {
            let (pools, pool_tls, accounts, routes) =
                crate::state::routes::flatten(p, |pool| pool.client_tls())?;
            Ok(ProxyUpdate {
                cfg: p.clone(),
                pools,
                pool_tls,
                accounts,
                routes,
            })
        })
        .collect()
}

impl Reactor {
    /// Handles every command waiting (called when the waker fires).
    pub(crate) fn on_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Reload(updates) => self.apply_reload(&updates),
            }
        }
    }

    fn apply_reload(&mut self, updates: &[ProxyUpdate]) {
        let now = Instant::now();
        for (pi, up) in updates.iter().enumerate() {
            let Some(ps) = self.proxies.get_mut(pi) else {
                continue;
            };
            let pools_changed = ps.pools != up.pools || ps.routes != up.routes;
            ps.cfg = up.cfg.clone();
            ps.pools = up.pools.clone();
            ps.pool_tls = up.pool_tls.clone();
            ps.accounts = up.accounts.clone();
            ps.routes = up.routes.clone();
            ps.timing = crate::state::timing(&up.cfg);
            ps.solution = crate::protocol::equihash::SolutionShape::new(&up.cfg.equihash_params());
            if !pools_changed {
                continue;
            }
            log::info!(
                "[{}] pool list reloaded: {} pool(s)",
                ps.cfg.name,
                ps.pools.len()
            );
            for &u in &ps.upstreams {
                let Some(upstream) = self.upstreams.get_mut(u) else {
                    continue;
                };
                let span = ps.route(upstream.route).clone();
                let first = ps.pools[span.start].clone();
                let current = upstream.active.and_then(|t| match self.conns.get(t) {
                    Some(crate::state::Conn::Pool(pc)) => Some(pc.session.url.clone()),
                    _ => None,
                });
                let route_pools = &ps.pools[span.start..span.start + span.len];
                match current.and_then(|url| route_pools.iter().position(|p| *p == url)) {
                    Some(idx) => {
                        // Still in the list: it keeps serving; failback rules apply from its new place.
                        upstream.pool_idx = span.start + idx;
                        upstream.failover.reload_kept(now, idx);
                    }
                    None => {
                        // Gone from the list: move to the new first pool as soon as it answers.
                        upstream.pool_idx = span.start;
                        upstream.failover.reload_moved(now, first.clone());
                    }
                }
            }
        }
    }
}
