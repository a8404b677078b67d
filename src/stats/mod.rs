//! Counters a proxy publishes: written by its reactors with relaxed atomics (no lock, no allocation on the hot
//! path), read by anyone (tests, the demo, the metrics endpoint in `metrics`) without locks.
//!
//! Three levels: [`ProxyStats`] per proxy entry (one `Arc` shared by all its reactor threads), a [`PoolStats`] per
//! configured pool of that entry (`stats.pool(i)`, `i` the 0-based index in the pool list; an index out of range
//! gets a detached sink, so a call never panics), and a [`WorkerStats`] per worker name from the bounded
//! [`WorkerRegistry`] (`stats.workers`).
//!
//! # Which reactor event calls which method
//!
//! `stats` is `ProxyState::stats`, `pool` is `stats.pool(pc.pool_idx)` (or `up.pool_idx` where no connection is at
//! hand), `worker` is the `Arc<WorkerStats>` the miner keeps, `now` an `Instant` the handler already has.
//!
//! | event (where) | call |
//! | --- | --- |
//! | `proxy::start` builds the stats | `ProxyStats::new(pool urls, max_workers)` instead of `default()` |
//! | upstream opened (`open_upstream`, starts on its route's first pool) | `stats.upstream_moved(None, Some(first))` |
//! | upstream changes pool: `up.pool_idx = ...` in `attempt_failed` (failover) and `upstream_ready` (failback) | `stats.upstream_moved(Some(old), Some(new))` (no-op when equal) |
//! | upstream closed (`close_upstream`) | `stats.upstream_moved(Some(up.pool_idx), None)` |
//! | pool connection created (`connect`, after the conn is in the slab) | `pool.on_connecting(retry)`; `retry` = the upstream had a connection before (`up.ever_ready` or `up.failover.attempts > 0`) |
//! | handshake complete (`pool_ready`, phase `PoolPhase::Ready`) | `pool.on_ready()` |
//! | pool connection removed (`pool_conn_failed`, and each conn removed in `close_upstream`) | `pool.on_closed(was_ready)`, `was_ready` = its state was `Ready` or `Draining` |
//! | bytes read from a pool (`read_lines`, `Ok(n)` on a `Conn::Pool`) | `pool.on_bytes_in(n)` |
//! | bytes queued to a pool (`Reactor::queue` on a `Conn::Pool`, and `forward_share`, which queues on `pc.io` itself) | `pool.on_bytes_out(bytes.len())` |
//! | `mining.notify` from a pool (`pool_message`) | `pool.on_job()` |
//! | `mining.set_difficulty` from a pool (`pool_message`) | `pool.set_difficulty(d)` |
//! | reply to a submit (`pool_reply`, `Req::Submit`) | `pool.on_reply(now - entry.sent)`, then `pool.on_accepted(diff)` or `pool.on_rejected(Reject::from_error_json(msg.error_json))` (`Reject::Other` when the result is `false` without an error) |
//! | same reply, the miner is still there (`deliver_share_reply` found it) | `worker.on_accepted(diff, now)` or `worker.on_rejected(now)` |
//! | with `validate_shares`, a valid share below the pool's target answered by the proxy (`share_judged`, `Verdict::BelowPool`) | `worker.on_accepted(diff, now)`; a forwarded share counts only by the pool's verdict, as above |
//! | the proxy answers a submit with an error itself (`refuse_share`, with a `close::Refusal`) | `stats.on_share_error(refusal.reject())` (24 unauthorized, 25 not subscribed, `PoolUnavailable` for no pool to forward to, `Other` for bad params / too many pending); `worker.on_rejected(now)` when the miner has a worker |
//! | a forwarded share gets no verdict (`answer_failed`) | `stats.on_share_error(Reject::Timeout)` for the `share_timeout` expiry in `tick_upstreams`, else `Reject::PoolUnavailable`; `worker.on_rejected(now)` |
//! | `mining.authorize` accepted (`MinerSession::authorize`, then `admitted`: first time or a new name) | `m.worker_stats = Some(stats.workers.attach(name, now))` (on a new name: `old.detach()` first) |
//! | miner closed (`close_miner`) | `worker.detach()` |
//!
//! `diff` is the share's difficulty: the difficulty in force for that miner when the share was sent (the pool's,
//! `pool.difficulty()`, or the miner's own under proxy-side vardiff; keep it in `Req::Submit` at
//! `forward_share`). For `pool.on_accepted` use the difficulty the pool credits (the pool's). Hashrate is estimated as accepted difficulty ×
//! 2^32 / window seconds (SHA-256d; for Equihash pools it is only a relative figure).
//! The existing `ProxyStats` counters (`shares_errored`, ...) keep their call sites unchanged.
//!
//! The parts, one file each: `reject` (why a share was not accepted, counted per reason), `latency` (the
//! reply-latency histogram), `pool` (one configured pool's counters), `worker` (one worker name's counters and
//! hashrate window), `registry` (the bounded table of worker names), `atomic` and `clock` (the lock-free `f64`
//! cell and the millisecond clock they share). Every public item is re-exported here: users name `stats::X`.

mod atomic;
mod clock;
mod latency;
mod pool;
mod registry;
mod reject;
mod worker;

pub use atomic::AtomicF64;
pub use clock::unix_now;
pub use latency::{LatencyHistogram, LATENCY_BOUNDS_MS};
pub use pool::{PoolState, PoolStats};
pub use registry::WorkerRegistry;
pub use reject::{ReasonCounters, Reject};
pub use worker::{WorkerStats, HASHRATE_BUCKET, HASHRATE_BUCKETS};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

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
    /// Connections closed at once because `max_miners` (this entry's or the total) was reached.
    pub miners_refused: AtomicU64,
    /// Shares the proxy answered with an error itself, by reason (the split of `shares_errored`).
    pub errors: ReasonCounters,
    /// One entry per configured pool, in config order.
    pub pools: Vec<PoolStats>,
    /// Per worker name, bounded.
    pub workers: WorkerRegistry,
    /// Counters of local validation (`validate_shares`).
    pub validation: Arc<crate::validate::ValidationStats>,
}

impl ProxyStats {
    /// Stats for a proxy entry with these pool URLs (config order) and at most `max_workers` worker names.
    pub fn new<S: Into<String>>(
        pool_urls: impl IntoIterator<Item = S>,
        max_workers: usize,
    ) -> ProxyStats {
        ProxyStats {
            pools: pool_urls
                .into_iter()
                .enumerate()
                .map(|(i, u)| PoolStats::new(i, u.into()))
                .collect(),
            workers: WorkerRegistry::new(max_workers),
            ..ProxyStats::default()
        }
    }

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

    /// The stats of pool `i` (0-based, config order); a detached sink when `i` is out of range.
    pub fn pool(&self, i: usize) -> &PoolStats {
        static DETACHED: PoolStats = PoolStats::detached();
        self.pools.get(i).unwrap_or(&DETACHED)
    }

    /// An upstream left pool `from` for pool `to` (`None`: it was opened / closed).
    pub fn upstream_moved(&self, from: Option<usize>, to: Option<usize>) {
        if from == to {
            return;
        }
        if let Some(f) = from {
            let g = &self.pool(f).upstreams;
            let _ = g.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
        }
        if let Some(t) = to {
            self.pool(t).upstreams.fetch_add(1, Relaxed);
        }
    }

    /// The proxy answered a share with an error itself (not a pool verdict).
    pub fn on_share_error(&self, reason: Reject) {
        self.errors.inc(reason);
    }

    /// The pool most upstreams use now (0-based; the lowest index on a tie), if any upstream is on a pool.
    pub fn current_pool(&self) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (i, p) in self.pools.iter().enumerate() {
            let n = p.upstreams.load(Relaxed);
            if n > 0 && best.is_none_or(|(_, b)| n > b) {
                best = Some((i, n));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Where the proxy's upstreams stand: on a backup pool, subscribed to the first pool, or still connecting.
    pub fn upstream_state(&self) -> UpstreamState {
        match self.current_pool() {
            Some(i) if i > 0 => UpstreamState::FailedOver(i),
            Some(i) if self.pools[i].ready.load(Relaxed) > 0 => UpstreamState::Subscribed,
            _ => UpstreamState::Connecting,
        }
    }

    /// Estimated hashrate of the proxy (H/s): the sum over its workers.
    pub fn hashrate(&self, now: Instant) -> f64 {
        self.workers.all().iter().map(|w| w.hashrate(now)).sum()
    }
}

/// The state of a proxy's upstreams as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// No pool connection ready yet (or none on the first pool).
    Connecting,
    /// On the first pool, with a ready connection.
    Subscribed,
    /// On a backup pool: its 0-based index in the pool list.
    FailedOver(usize),
}

impl UpstreamState {
    /// `connecting`, `subscribed` or `failed_over`.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamState::Connecting => "connecting",
            UpstreamState::Subscribed => "subscribed",
            UpstreamState::FailedOver(_) => "failed_over",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_gauges_and_proxy_state() {
        let s = ProxyStats::new(["stratum+tcp://a:1", "stratum+tcp://b:2"], 10);
        assert_eq!(s.upstream_state(), UpstreamState::Connecting);
        s.upstream_moved(None, Some(0));
        s.pool(0).on_connecting(false);
        assert_eq!(s.pool(0).state(), PoolState::Connecting);
        s.pool(0).on_ready();
        assert_eq!(s.upstream_state(), UpstreamState::Subscribed);
        s.pool(0).on_closed(true);
        s.upstream_moved(Some(0), Some(1));
        s.pool(1).on_connecting(true);
        assert_eq!(s.upstream_state(), UpstreamState::FailedOver(1));
        assert_eq!(s.pool(0).state(), PoolState::Down);
        assert_eq!(s.current_pool(), Some(1));
        // Out of range: a sink, no panic.
        s.pool(7).on_job();
        s.upstream_moved(Some(1), None);
        assert_eq!(s.current_pool(), None);
    }
}
