//! Counters a proxy publishes: written by its reactors with relaxed atomics, read by anyone (tests, the demo,
//! later the metrics endpoint) without locks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one proxy entry, summed over its reactors.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Miners connected now.
    pub miners_connected: AtomicU64,
    /// Miners ever accepted.
    pub miners_total: AtomicU64,
    /// Upstreams (pool sessions that miners share) open now.
    pub upstreams: AtomicU64,
    /// Pool connections ever opened.
    pub pool_connections: AtomicU64,
    /// Pool connections that completed the handshake.
    pub pool_ready: AtomicU64,
    /// Times an upstream moved to another pool in its list.
    pub failovers: AtomicU64,
    /// Shares received from miners.
    pub shares_submitted: AtomicU64,
    /// Shares forwarded to a pool.
    pub shares_forwarded: AtomicU64,
    /// Shares the pool accepted.
    pub shares_accepted: AtomicU64,
    /// Shares the pool rejected.
    pub shares_rejected: AtomicU64,
    /// Shares answered with an error by the proxy itself (bad params, pool away, timeout, ...).
    pub shares_errored: AtomicU64,
    /// Replies from pools whose id matched nothing.
    pub unknown_replies: AtomicU64,
    /// mining.set_extranonce messages sent to miners.
    pub extranonce_updates: AtomicU64,
    /// Miners disconnected by the proxy (bad input, not reading, extranonce change without subscription, ...).
    pub miners_kicked: AtomicU64,
}

impl ProxyStats {
    /// Adds one to a counter.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Subtracts one from a gauge.
    pub fn dec(c: &AtomicU64) {
        c.fetch_sub(1, Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}
