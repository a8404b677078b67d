//! The counters of one configured pool of a proxy entry ([`PoolStats`]: connection gauges, jobs, verdicts,
//! reply latency, bytes), and the pool's state read from its gauges ([`PoolState`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::atomic::{sat_dec, AtomicF64};
use super::latency::LatencyHistogram;
use super::reject::{ReasonCounters, Reject};

/// The state of one pool, from its connection gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    /// No connection open or opening (a backup not in use, or waiting to retry).
    Down,
    /// A connection is connecting or handshaking, none is ready.
    Connecting,
    /// At least one connection completed the handshake.
    Subscribed,
}

impl PoolState {
    /// Every state, for one-hot metrics.
    pub const ALL: [PoolState; 3] = [
        PoolState::Down,
        PoolState::Connecting,
        PoolState::Subscribed,
    ];

    /// `down`, `connecting` or `subscribed`.
    pub fn label(self) -> &'static str {
        match self {
            PoolState::Down => "down",
            PoolState::Connecting => "connecting",
            PoolState::Subscribed => "subscribed",
        }
    }
}

/// Counters of one configured pool of a proxy entry, summed over the reactors and upstreams using it.
#[derive(Debug)]
pub struct PoolStats {
    /// 0-based index in the proxy's pool list.
    pub index: usize,
    /// The URL as configured.
    pub url: String,
    /// Connections connecting or handshaking now (gauge).
    pub connecting: AtomicU64,
    /// Connections ready now, draining ones included (gauge).
    pub ready: AtomicU64,
    /// Upstreams whose current pool this is (gauge).
    pub upstreams: AtomicU64,
    /// Connections opened.
    pub connects: AtomicU64,
    /// Connections opened again after an earlier one (retries, failover, failback probes, reconnects).
    pub reconnects: AtomicU64,
    /// Connections that ended before their handshake completed.
    pub connect_failures: AtomicU64,
    /// The latest difficulty the pool set.
    pub difficulty: AtomicF64,
    /// `mining.notify` received.
    pub jobs: AtomicU64,
    /// Shares the pool accepted.
    pub accepted: AtomicU64,
    /// Sum of the difficulty of accepted shares.
    pub accepted_difficulty: AtomicF64,
    /// Shares the pool rejected, by reason.
    pub rejected: ReasonCounters,
    /// Time from sending a share to the pool's verdict.
    pub latency: LatencyHistogram,
    /// Bytes read from the pool.
    pub bytes_in: AtomicU64,
    /// Bytes queued to the pool.
    pub bytes_out: AtomicU64,
}

impl PoolStats {
    /// Stats for pool `index` with `url`.
    pub fn new(index: usize, url: String) -> PoolStats {
        PoolStats {
            index,
            url,
            ..PoolStats::detached()
        }
    }

    /// A sink with no index or URL (what `ProxyStats::pool` answers for an index out of range).
    pub(super) const fn detached() -> PoolStats {
        PoolStats {
            index: usize::MAX,
            url: String::new(),
            connecting: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            upstreams: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            difficulty: AtomicF64::new(0.0),
            jobs: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            accepted_difficulty: AtomicF64::new(0.0),
            rejected: ReasonCounters::new(),
            latency: LatencyHistogram::new(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

    /// A connection to this pool was opened; `retry` when it is not the upstream's first.
    pub fn on_connecting(&self, retry: bool) {
        self.connects.fetch_add(1, Relaxed);
        self.connecting.fetch_add(1, Relaxed);
        if retry {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }

    /// A connection completed its handshake.
    pub fn on_ready(&self) {
        sat_dec(&self.connecting);
        self.ready.fetch_add(1, Relaxed);
    }

    /// A connection closed; `was_ready` when it had completed its handshake.
    pub fn on_closed(&self, was_ready: bool) {
        if was_ready {
            sat_dec(&self.ready);
        } else {
            sat_dec(&self.connecting);
            self.connect_failures.fetch_add(1, Relaxed);
        }
    }

    /// The pool set a new difficulty.
    pub fn set_difficulty(&self, d: f64) {
        self.difficulty.set(d);
    }

    /// The current difficulty (0 before the pool set one).
    pub fn difficulty(&self) -> f64 {
        self.difficulty.get()
    }

    /// A `mining.notify` arrived.
    pub fn on_job(&self) {
        self.jobs.fetch_add(1, Relaxed);
    }

    /// The pool answered a share after `latency`.
    pub fn on_reply(&self, latency: Duration) {
        self.latency.observe(latency);
    }

    /// The pool accepted a share of difficulty `difficulty`.
    pub fn on_accepted(&self, difficulty: f64) {
        self.accepted.fetch_add(1, Relaxed);
        self.accepted_difficulty.add(difficulty);
    }

    /// The pool rejected a share.
    pub fn on_rejected(&self, reason: Reject) {
        self.rejected.inc(reason);
    }

    /// `n` bytes read from the pool.
    pub fn on_bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }

    /// `n` bytes queued to the pool.
    pub fn on_bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }

    /// The state from the connection gauges.
    pub fn state(&self) -> PoolState {
        if self.ready.load(Relaxed) > 0 {
            PoolState::Subscribed
        } else if self.connecting.load(Relaxed) > 0 {
            PoolState::Connecting
        } else {
            PoolState::Down
        }
    }
}
