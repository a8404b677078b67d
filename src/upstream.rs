//! Upstreams in the runtime (an `impl Reactor` block; an upstream's data is `state::Upstream`): opening and
//! closing upstreams, and applying the failover state ([`crate::session::failover`]) to their pool connections:
//! connection loss, back-off, failover, failback and reconnect probes, switching to a ready probe, timers.
//!
//! Opening a connection is `connect`; a connection's protocol (handshake, pool messages) is
//! [`crate::session::pool`], driven by `pool_driver`; attaching miners and what reaches all of them is
//! `upstream_miners`. An upstream outlives its connections: when a pool connection drops, miners stay attached
//! and the upstream reconnects (moving down the pool list after repeated failures). A second connection (a
//! *probe*) checks a higher-priority pool or follows `client.reconnect`; once its handshake completes it takes
//! over and the old connection drains its in-flight shares.

use crate::nonce::PrefixAllocator;
use crate::pending::Pending;
use crate::reactor::Reactor;
use crate::session::failover::{Conns, Due, Failover, Policy};
use crate::session::pool::PoolPhase;
use crate::state::{Conn, PoolConn, Upstream};
use crate::stats::{ProxyStats, Reject};
use crate::validate::JobBook;
use std::collections::HashMap;
use std::time::Instant;

impl Reactor {
    /// The failover settings of upstream `u`'s proxy.
    pub(crate) fn policy(&self, u: usize) -> Policy {
        let up = &self.upstreams[u];
        let proxy = &self.proxies[up.proxy];
        Policy {
            pools: proxy.route(up.route).len,
            failover_after: proxy.cfg.failover_after,
            failback: proxy.cfg.failback.then_some(proxy.timing.failback),
            failback_interval: proxy.timing.failback,
            retry_initial: proxy.timing.retry_initial,
            retry_max: proxy.timing.retry_max,
        }
    }

    /// Where pool `pool_idx` of upstream `u`'s route sits in that route (what failover counts in).
    pub(crate) fn local_pool(&self, u: usize, pool_idx: usize) -> usize {
        let up = &self.upstreams[u];
        pool_idx.saturating_sub(self.proxies[up.proxy].route(up.route).start)
    }

    pub(crate) fn pool_conn(&mut self, t: usize) -> Option<&mut PoolConn> {
        match self.conns.get_mut(t) {
            Some(Conn::Pool(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn name(&self, u: usize) -> String {
        match self.upstreams.get(u) {
            Some(up) => format!("{}#{}", self.proxies[up.proxy].cfg.name, up.number),
            None => "?".into(),
        }
    }

    /// Opens a new upstream for route `route` of proxy `p` and starts connecting it.
    pub(crate) fn open_upstream(&mut self, p: usize, route: usize, why: &str) -> usize {
        let number = self.proxies[p].upstreams.len() + 1;
        let first = self.proxies[p].route(route).start;
        let u = self.upstreams.insert(Upstream {
            proxy: p,
            route,
            number,
            active: None,
            probe: None,
            draining: Vec::new(),
            pool_idx: first,
            failover: Failover::default(),
            ready: false,
            ever_ready: false,
            e1: Vec::new(),
            n: 0,
            prefixes: PrefixAllocator::new(0),
            epoch: 0,
            e1_changes: 0,
            conns_opened: 0,
            pool_mask: None,
            difficulty_line: Vec::new(),
            notify_line: Vec::new(),
            miners: Vec::new(),
            waiting: 0,
            pending: Pending::default(),
            orphans: HashMap::new(),
            book: JobBook::default(),
            pool_difficulty: 1.0,
            lookup: None,
            rate: Default::default(),
        });
        let proxy = &mut self.proxies[p];
        proxy.upstreams.push(u);
        ProxyStats::inc(&proxy.stats.upstreams);
        crate::limits::upstream_opened();
        proxy.stats.upstream_moved(None, Some(first));
        let url = proxy.pools[first].clone();
        log::info!(
            "[{}#{number}] opening upstream to {}:{}: {why}",
            proxy.cfg.name,
            url.host,
            url.port
        );
        self.connect(u, false, first, url);
        u
    }

    /// The probe of `u` is ready: it becomes the active connection, the old one drains.
    pub(crate) fn switch_to_probe(&mut self, u: usize) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let Some(probe) = up.probe.take() else { return };
        let old = up.active.replace(probe);
        up.ready = false;
        if let Some(old) = old {
            if let Some(pc) = self.pool_conn(old) {
                pc.session.drain();
            }
            self.upstreams[u].draining.push(old);
            self.close_if_drained(old);
        }
        let name = self.name(u);
        if let Some(pc) = self.pool_conn(probe) {
            let url = &pc.session.url;
            log::info!("[{name}] switching to pool {}:{}", url.host, url.port);
        }
        self.upstream_ready(u, probe);
    }

    /// Closes a draining connection once nothing sent on it waits.
    pub(crate) fn close_if_drained(&mut self, t: usize) {
        let Some(pc) = self.pool_conn(t) else { return };
        if !matches!(pc.session.phase, PoolPhase::Draining(_)) {
            return;
        }
        let u = pc.upstream;
        if !self
            .upstreams
            .get(u)
            .is_some_and(|up| up.pending.has_conn(t))
        {
            self.pool_conn_failed(t, "replaced by another pool connection");
        }
    }

    /// Pool connection `t` is gone (or must go): its in-flight shares get errors, its upstream recovers.
    pub(crate) fn pool_conn_failed(&mut self, t: usize, reason: impl std::fmt::Display) {
        let Some(Conn::Pool(_)) = self.conns.get(t) else {
            return;
        };
        let Conn::Pool(mut pc) = self.conns.remove(t) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut pc.io.socket);
        let u = pc.upstream;
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let was_ready = pc.session.was_ready();
        self.proxies[up.proxy]
            .stats
            .pool(pc.session.pool_idx)
            .on_closed(was_ready);
        let mut entries = Vec::new();
        up.pending.drain_conn(t, &mut entries);
        let name = self.name(u);
        let url = format!("{}:{}", pc.session.url.host, pc.session.url.port);
        for e in entries {
            self.answer_failed(
                u,
                e,
                "pool connection lost before the pool answered this share",
                Reject::PoolUnavailable,
            );
        }
        let up = &mut self.upstreams[u];
        if up.active == Some(t) {
            up.active = None;
            up.ready = false;
            let pool_idx = up.pool_idx;
            self.note_pool_up(u, pool_idx, false);
            log::warn!("[{name}] pool {url}: {reason}");
            self.attempt_failed(u, false);
        } else if up.probe == Some(t) {
            up.probe = None;
            let policy = self.policy(u);
            self.upstreams[u]
                .failover
                .probe_failed(Instant::now(), &policy);
            log::info!("[{name}] pool {url} not usable yet: {reason}");
        } else {
            up.draining.retain(|&d| d != t);
            log::debug!("[{name}] pool {url} connection closed: {reason}");
        }
    }

    /// A connection attempt of `u` failed: back off, and move down the pool list after repeated failures.
    pub(crate) fn attempt_failed(&mut self, u: usize, probe: bool) {
        if !self.upstreams.contains(u) {
            return;
        }
        let policy = self.policy(u);
        let up = &mut self.upstreams[u];
        let proxy = &self.proxies[up.proxy];
        let now = Instant::now();
        if probe {
            up.probe = None;
            up.failover.probe_failed(now, &policy);
            return;
        }
        let from = up.pool_idx;
        let successor = up.probe.is_some() || up.lookup.is_some();
        let start = proxy.route(up.route).start;
        let mut local = from.saturating_sub(start);
        let moved = up
            .failover
            .active_failed(now, &policy, &mut local, successor);
        up.pool_idx = start + local;
        let mut moved = moved;
        let (p, route) = (up.proxy, up.route);
        for _ in 1..policy.pools {
            if self.pool_enabled(p, route, self.upstreams[u].pool_idx) {
                break;
            }
            // Disabled through the control API: failover skips it.
            let up = &mut self.upstreams[u];
            up.pool_idx = start + (up.pool_idx - start + 1) % policy.pools;
            moved = true;
        }
        let up = &mut self.upstreams[u];
        let proxy = &self.proxies[up.proxy];
        if moved && up.pool_idx != from {
            proxy.stats.upstream_moved(Some(from), Some(up.pool_idx));
            ProxyStats::inc(&proxy.stats.failovers);
            let next = proxy.pool(up.pool_idx);
            log::warn!(
                "[{}#{}] failing over to pool {} ({}:{})",
                proxy.cfg.name,
                up.number,
                up.pool_idx + 1,
                next.host,
                next.port
            );
        }
        if let Some(p) = up.probe.take() {
            // A connection to another pool is already on its way: it becomes the active one.
            up.active = Some(p);
            if matches!(self.conns.get(p), Some(Conn::Pool(pc)) if matches!(pc.session.phase, PoolPhase::Ready(_)))
            {
                self.upstream_ready(u, p);
            }
            return;
        }
        if let Some(lookup) = up.lookup.as_mut() {
            // The same for a probe still resolving its pool's name.
            lookup.probe = false;
        }
    }

    /// Closes an extra upstream and its connections.
    pub(crate) fn close_upstream(&mut self, u: usize, why: &str) {
        log::info!("[{}] closing upstream: {why}", self.name(u));
        self.fail_all_pending(u, "upstream closed");
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let conns: Vec<usize> = up
            .active
            .into_iter()
            .chain(up.probe)
            .chain(up.draining.iter().copied())
            .collect();
        let p = up.proxy;
        for t in conns {
            if let Some(Conn::Pool(mut pc)) = self.conns.try_remove(t) {
                let _ = self.poll.registry().deregister(&mut pc.io.socket);
                let was_ready = pc.session.was_ready();
                self.proxies[p]
                    .stats
                    .pool(pc.session.pool_idx)
                    .on_closed(was_ready);
            }
        }
        let up = self.upstreams.remove(u);
        let proxy = &mut self.proxies[up.proxy];
        proxy.stats.upstream_moved(Some(up.pool_idx), None);
        proxy.upstreams.retain(|&x| x != u);
        ProxyStats::dec(&proxy.stats.upstreams);
        crate::limits::upstreams_closed(1);
    }

    /// Timers of every upstream: share timeouts, handshake timeouts, retries, failback and reconnect probes.
    pub(crate) fn tick_upstreams(&mut self, now: Instant) {
        // By slot number rather than a collected key list: a tick allocates nothing when nothing happens.
        for u in 0..self.upstreams.capacity() {
            let Some(up) = self.upstreams.get_mut(u) else {
                continue;
            };
            let timing = self.proxies[up.proxy].timing;
            let mut expired = Vec::new();
            up.pending.expire(now, &mut expired);
            for e in expired {
                let within = timing.share_for(self.is_sv2_conn(e.conn));
                let why = format!("the pool did not answer within {}s", within.as_secs_f64());
                self.answer_failed(u, e, &why, Reject::Timeout);
            }
            let Some(up) = self.upstreams.get(u) else {
                continue;
            };
            let draining = up.draining.clone();
            for t in draining {
                self.close_if_drained(t);
            }
            let Some(up) = self.upstreams.get(u) else {
                continue;
            };
            for t in up.active.into_iter().chain(up.probe) {
                let Some(Conn::Pool(pc)) = self.conns.get(t) else {
                    continue;
                };
                if let Some(connecting) = pc.session.handshake_overdue(now, timing.handshake) {
                    let why = format!(
                        "no complete handshake within {}s",
                        timing.handshake.as_secs_f64()
                    );
                    if connecting {
                        self.connect_failed(t, &why);
                    } else {
                        self.pool_conn_failed(t, &why);
                    }
                }
            }
            self.expire_lookup(u, now);
            self.start_due_connections(u, now);
        }
    }

    pub(crate) fn start_due_connections(&mut self, u: usize, now: Instant) {
        if !self.upstreams.contains(u) {
            return;
        }
        let policy = self.policy(u);
        let up = &mut self.upstreams[u];
        let conns = Conns {
            active: up.active.is_some(),
            ready: up.ready,
            probe: up.probe.is_some(),
            lookup: up.lookup.is_some(),
        };
        let idx = up.pool_idx;
        let start = self.proxies[up.proxy].route(up.route).start;
        match up
            .failover
            .due(now, conns, idx.saturating_sub(start), &policy)
        {
            Due::Nothing => {}
            Due::Retry => {
                let url = self.proxies[up.proxy].pool(idx).clone();
                self.connect(u, false, idx, url);
            }
            Due::Reconnect(url) => self.connect(u, true, idx, url),
            Due::Failback => {
                let (p, route) = (up.proxy, up.route);
                let Some(first) = (start..idx).find(|&i| self.pool_enabled(p, route, i)) else {
                    // Every pool above this one is disabled: nothing to go back to yet.
                    self.upstreams[u].failover.probe_failed(now, &policy);
                    return;
                };
                let url = self.proxies[p].pools[first].clone();
                log::debug!(
                    "[{}] checking whether pool {} is back",
                    self.name(u),
                    first - start + 1
                );
                self.connect(u, true, first, url);
            }
        }
    }
}
