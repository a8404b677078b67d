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
//! | upstream opened (`open_upstream`, starts on pool 0) | `stats.upstream_moved(None, Some(0))` |
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
//! | `mining.authorize` accepted (`miner_authorize`, first time or a new name) | `m.worker_stats = Some(stats.workers.attach(name, now))` (on a new name: `old.detach()` first) |
//! | miner closed (`close_miner`) | `worker.detach()` |
//!
//! `diff` is the share's difficulty: the difficulty in force for that miner when the share was sent (the pool's,
//! `pool.difficulty()`, or the miner's own under proxy-side vardiff; keep it in `Req::Submit` at
//! `forward_share`). For `pool.on_accepted` use the difficulty the pool credits (the pool's). Hashrate is estimated as accepted difficulty ×
//! 2^32 / window seconds (SHA-256d; for Equihash pools it is only a relative figure).
//! The existing `ProxyStats` counters (`shares_errored`, ...) keep their call sites unchanged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Why a share was not accepted: a pool's Stratum error code, or what made the proxy answer it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Code 20 or anything not listed here.
    Other = 0,
    /// 21: job not found (stale).
    Stale = 1,
    /// 22: duplicate share.
    Duplicate = 2,
    /// 23: low difficulty share.
    LowDifficulty = 3,
    /// 24: unauthorized worker.
    Unauthorized = 4,
    /// 25: not subscribed.
    NotSubscribed = 5,
    /// No ready pool connection (or it dropped before answering).
    PoolUnavailable = 6,
    /// The pool did not answer within `share_timeout`.
    Timeout = 7,
}

impl Reject {
    /// Every reason, in counter order.
    pub const ALL: [Reject; 8] = [
        Reject::Other,
        Reject::Stale,
        Reject::Duplicate,
        Reject::LowDifficulty,
        Reject::Unauthorized,
        Reject::NotSubscribed,
        Reject::PoolUnavailable,
        Reject::Timeout,
    ];

    /// The label value used in metrics and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Reject::Other => "other",
            Reject::Stale => "stale",
            Reject::Duplicate => "duplicate",
            Reject::LowDifficulty => "low_difficulty",
            Reject::Unauthorized => "unauthorized",
            Reject::NotSubscribed => "not_subscribed",
            Reject::PoolUnavailable => "pool_unavailable",
            Reject::Timeout => "timeout",
        }
    }

    /// The reason for a Stratum error code (21..=25; anything else is `Other`).
    pub fn from_code(code: i64) -> Reject {
        match code {
            21 => Reject::Stale,
            22 => Reject::Duplicate,
            23 => Reject::LowDifficulty,
            24 => Reject::Unauthorized,
            25 => Reject::NotSubscribed,
            _ => Reject::Other,
        }
    }

    /// The reason in a pool's error value (`[21, "Job not found", null]`, `{"code": 23, "message": ...}`, or a
    /// bare string). Codes 21..=25 decide; otherwise the message is looked at, since many pools send code 20
    /// with "stale" / "duplicate" / "low difficulty" in the text. No allocation.
    pub fn from_error_json(err: Option<&str>) -> Reject {
        let Some(err) = err else {
            return Reject::Other;
        };
        if let Some(code) = first_integer(err) {
            let r = Reject::from_code(code);
            if r != Reject::Other {
                return r;
            }
        }
        const WORDS: [(&str, Reject); 9] = [
            ("stale", Reject::Stale),
            ("job not found", Reject::Stale),
            ("duplicate", Reject::Duplicate),
            ("low difficulty", Reject::LowDifficulty),
            ("above target", Reject::LowDifficulty),
            ("high-hash", Reject::LowDifficulty),
            ("unauthorized", Reject::Unauthorized),
            ("not subscribed", Reject::NotSubscribed),
            ("timeout", Reject::Timeout),
        ];
        WORDS
            .iter()
            .find(|(w, _)| contains_ignore_case(err, w))
            .map_or(Reject::Other, |&(_, r)| r)
    }
}

/// The first integer in `s` outside string literals (the error code).
fn first_integer(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            c if !in_str && (c.is_ascii_digit() || c == b'-') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                return s[start..i].parse().ok();
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// One counter per [`Reject`] reason.
#[derive(Debug, Default)]
pub struct ReasonCounters([AtomicU64; 8]);

impl ReasonCounters {
    const fn new() -> ReasonCounters {
        ReasonCounters([const { AtomicU64::new(0) }; 8])
    }

    /// Counts one share for `reason`.
    pub fn inc(&self, reason: Reject) {
        self.0[reason as usize].fetch_add(1, Relaxed);
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reject) -> u64 {
        self.0[reason as usize].load(Relaxed)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// Upper bounds (ms) of the reply-latency histogram buckets; a last bucket takes the rest (+Inf).
pub const LATENCY_BOUNDS_MS: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
];

/// A histogram with fixed buckets of atomics.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per bucket (not cumulative): `LATENCY_BOUNDS_MS` then +Inf.
    buckets: [AtomicU64; 12],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    const fn new() -> LatencyHistogram {
        LatencyHistogram {
            buckets: [const { AtomicU64::new(0) }; 12],
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = LATENCY_BOUNDS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Counts per bucket (not cumulative), the last one for +Inf.
    pub fn counts(&self) -> [u64; 12] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    /// Sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us.load(Relaxed) as f64 / 1e6
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// An estimate of quantile `q` (0..=1) in ms, interpolated inside its bucket the way Prometheus'
    /// `histogram_quantile` does; `None` without observations. The +Inf bucket answers its lower bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        for (i, &c) in counts.iter().enumerate() {
            if c > 0 && (seen + c) as f64 >= rank {
                let lo = if i == 0 {
                    0.0
                } else {
                    LATENCY_BOUNDS_MS[i - 1]
                };
                let Some(&hi) = LATENCY_BOUNDS_MS.get(i) else {
                    return Some(lo);
                };
                return Some(lo + (hi - lo) * ((rank - seen as f64) / c as f64).clamp(0.0, 1.0));
            }
            seen += c;
        }
        LATENCY_BOUNDS_MS.last().copied()
    }
}

/// An `f64` in an `AtomicU64` (its bits).
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    /// A cell holding `v`.
    pub const fn new(v: f64) -> AtomicF64 {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }

    /// The value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed);
    }

    /// Adds `v` (a compare-exchange loop: lock-free).
    pub fn add(&self, v: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + v).to_bits())
        });
    }
}

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

    const fn detached() -> PoolStats {
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

fn sat_dec(c: &AtomicU64) {
    let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
}

/// The process's time origin: `Instant`s become milliseconds since it (and wall-clock time for display).
fn epoch() -> &'static (Instant, SystemTime) {
    static EPOCH: OnceLock<(Instant, SystemTime)> = OnceLock::new();
    EPOCH.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// `now` as milliseconds since the stats epoch, plus one (0 means "never").
fn millis(now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch().0).as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// Unix time (seconds) of a `millis` value.
fn unix_of(ms: u64) -> f64 {
    let (_, wall) = epoch();
    let base = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    base + ms.saturating_sub(1) as f64 / 1000.0
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    unix_of(millis(Instant::now()))
}

/// Length of one hashrate bucket.
pub const HASHRATE_BUCKET: Duration = Duration::from_secs(60);
/// Number of buckets: the hashrate window is `HASHRATE_BUCKETS × HASHRATE_BUCKET` (10 minutes).
pub const HASHRATE_BUCKETS: usize = 10;
const BUCKET_MS: u64 = HASHRATE_BUCKET.as_millis() as u64;

/// Accepted difficulty of one minute.
#[derive(Debug, Default)]
struct Bucket {
    /// The minute (since the epoch) whose shares it holds.
    minute: AtomicU64,
    difficulty: AtomicF64,
}

/// Counters of one worker name (or of the `other` bucket that takes names beyond the registry's cap).
#[derive(Debug)]
pub struct WorkerStats {
    name: Box<str>,
    /// Miners connected under this name now.
    pub connected: AtomicU64,
    /// Shares accepted by the pool.
    pub accepted: AtomicU64,
    /// Shares rejected by the pool or answered with an error by the proxy.
    pub rejected: AtomicU64,
    /// Sum of the difficulty of accepted shares.
    pub accepted_difficulty: AtomicF64,
    last_share: AtomicU64,
    first_seen: AtomicU64,
    window: [Bucket; HASHRATE_BUCKETS],
}

impl WorkerStats {
    fn new(name: &str, now: Instant) -> WorkerStats {
        WorkerStats {
            name: name.into(),
            connected: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            accepted_difficulty: AtomicF64::new(0.0),
            last_share: AtomicU64::new(0),
            first_seen: AtomicU64::new(millis(now)),
            window: Default::default(),
        }
    }

    /// The worker name (`WorkerRegistry::OTHER` for the overflow bucket).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for the bucket that counts the names beyond the registry's cap.
    pub fn is_other(&self) -> bool {
        &*self.name == WorkerRegistry::OTHER
    }

    /// The pool accepted a share of difficulty `difficulty` at `now`.
    pub fn on_accepted(&self, difficulty: f64, now: Instant) {
        self.accepted.fetch_add(1, Relaxed);
        self.accepted_difficulty.add(difficulty);
        let ms = millis(now);
        self.last_share.fetch_max(ms, Relaxed);
        let minute = ms / BUCKET_MS;
        let b = &self.window[(minute % HASHRATE_BUCKETS as u64) as usize];
        let seen = b.minute.load(Ordering::Acquire);
        if seen < minute {
            // Rotate: whoever moves the bucket to this minute removes the old minute's sum. Nothing can have
            // been added for this minute before that move, so only the old content is taken away.
            let old = b.difficulty.get();
            if b.minute
                .compare_exchange(seen, minute, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                b.difficulty.add(-old);
            }
        }
        if b.minute.load(Ordering::Acquire) == minute {
            b.difficulty.add(difficulty);
        }
    }

    /// A share of this worker was rejected or answered with an error at `now`.
    pub fn on_rejected(&self, now: Instant) {
        self.rejected.fetch_add(1, Relaxed);
        self.last_share.fetch_max(millis(now), Relaxed);
    }

    /// A miner using this name left (pairs with `WorkerRegistry::attach`).
    pub fn detach(&self) {
        sat_dec(&self.connected);
    }

    /// Estimated hashrate (H/s) at `now`: accepted difficulty × 2^32 over the last 10 minutes (or since the
    /// name was first seen, at least one minute, when that is shorter), divided by that time.
    pub fn hashrate(&self, now: Instant) -> f64 {
        let ms = millis(now);
        let minute = ms / BUCKET_MS;
        let oldest = minute.saturating_sub(HASHRATE_BUCKETS as u64 - 1);
        let sum: f64 = self
            .window
            .iter()
            .filter(|b| (oldest..=minute).contains(&b.minute.load(Relaxed)))
            .map(|b| b.difficulty.get().max(0.0))
            .sum();
        if sum <= 0.0 {
            return 0.0;
        }
        let full = (HASHRATE_BUCKETS as u64 - 1) * BUCKET_MS + ms % BUCKET_MS;
        let age = ms.saturating_sub(self.first_seen.load(Relaxed));
        let span = full.min(age.max(BUCKET_MS)).max(1);
        sum * 4_294_967_296.0 / (span as f64 / 1000.0)
    }

    /// Unix time of the last share answered, if any.
    pub fn last_share_unix(&self) -> Option<f64> {
        match self.last_share.load(Relaxed) {
            0 => None,
            ms => Some(unix_of(ms)),
        }
    }

    fn last_activity(&self) -> u64 {
        self.last_share
            .load(Relaxed)
            .max(self.first_seen.load(Relaxed))
    }
}

/// Worker names of one proxy, bounded: past `cap` distinct names, new names share one `other` entry, so a
/// hostile miner cannot grow the number of series. Looked up at authorize time only (a mutex, not on the hot
/// path); the miner keeps the `Arc` and updates it without locks.
#[derive(Debug)]
pub struct WorkerRegistry {
    cap: usize,
    names: Mutex<Names>,
    other: Arc<WorkerStats>,
    /// Authorizations counted in `other` because the registry was full.
    pub overflowed: AtomicU64,
}

#[derive(Debug, Default)]
struct Names {
    map: HashMap<Box<str>, Arc<WorkerStats>>,
    next_evict_scan: u64,
}

/// A name nobody uses for this long may be dropped to make room for a new one.
const WORKER_RETAIN_MS: u64 = 3600 * 1000;

impl Default for WorkerRegistry {
    fn default() -> WorkerRegistry {
        WorkerRegistry::new(WorkerRegistry::DEFAULT_CAP)
    }
}

impl WorkerRegistry {
    /// Default number of names kept.
    pub const DEFAULT_CAP: usize = 1000;
    /// The name of the overflow bucket (also the label value in metrics).
    pub const OTHER: &'static str = "__other__";

    /// A registry keeping at most `cap` names.
    pub fn new(cap: usize) -> WorkerRegistry {
        let now = Instant::now();
        WorkerRegistry {
            cap,
            names: Mutex::new(Names::default()),
            other: Arc::new(WorkerStats::new(WorkerRegistry::OTHER, now)),
            overflowed: AtomicU64::new(0),
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The stats for `name`, counting one more miner connected under it (call `detach` when it leaves).
    /// Beyond the cap, names nobody has used for an hour are dropped to make room; failing that the shared
    /// `other` entry is returned.
    pub fn attach(&self, name: &str, now: Instant) -> Arc<WorkerStats> {
        let w = self.lookup(name, now);
        w.connected.fetch_add(1, Relaxed);
        w
    }

    fn lookup(&self, name: &str, now: Instant) -> Arc<WorkerStats> {
        if name == WorkerRegistry::OTHER {
            return self.other.clone();
        }
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = names.map.get(name) {
            return w.clone();
        }
        let ms = millis(now);
        if names.map.len() >= self.cap && ms >= names.next_evict_scan {
            // At most one scan a second, so a flood of new names costs little.
            names.next_evict_scan = ms + 1000;
            let idle = names
                .map
                .iter()
                .find(|(_, w)| {
                    Arc::strong_count(w) == 1
                        && ms.saturating_sub(w.last_activity()) >= WORKER_RETAIN_MS
                })
                .map(|(k, _)| k.clone());
            if let Some(k) = idle {
                names.map.remove(&k);
            }
        }
        if names.map.len() >= self.cap {
            self.overflowed.fetch_add(1, Relaxed);
            return self.other.clone();
        }
        let w = Arc::new(WorkerStats::new(name, now));
        names.map.insert(name.into(), w.clone());
        w
    }

    /// Names tracked (the `other` entry not included).
    pub fn len(&self) -> usize {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// True when no name is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tracked worker sorted by name, then the `other` entry (for scrapes; takes the lock briefly).
    pub fn all(&self) -> Vec<Arc<WorkerStats>> {
        let mut v: Vec<Arc<WorkerStats>> = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.push(self.other.clone());
        v
    }

    /// The overflow entry.
    pub fn other(&self) -> &Arc<WorkerStats> {
        &self.other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_from_pool_errors() {
        let f = |s: &str| Reject::from_error_json(Some(s));
        assert_eq!(f(r#"[21,"Job not found",null]"#), Reject::Stale);
        assert_eq!(f(r#"[22,"Duplicate share",null]"#), Reject::Duplicate);
        assert_eq!(
            f(r#"{"code":23,"message":"Low difficulty"}"#),
            Reject::LowDifficulty
        );
        assert_eq!(f(r#"[24,"x",null]"#), Reject::Unauthorized);
        assert_eq!(f(r#"[25,"x",null]"#), Reject::NotSubscribed);
        assert_eq!(f(r#"[20,"Stale share",null]"#), Reject::Stale);
        assert_eq!(f(r#"[20,"high-hash",null]"#), Reject::LowDifficulty);
        assert_eq!(f(r#"["23 in text",20]"#), Reject::Other);
        assert_eq!(f(r#"[-1,"whatever",null]"#), Reject::Other);
        assert_eq!(Reject::from_error_json(None), Reject::Other);
        for (i, r) in Reject::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile_ms(0.5), None);
        for ms in [0.2, 0.5, 3.0, 7.0, 2000.0] {
            h.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let c = h.counts();
        assert_eq!((c[0], c[3], c[4], c[11]), (2, 1, 1, 1));
        assert_eq!(h.count(), 5);
        assert!((h.sum_seconds() - 2.0107).abs() < 1e-4);
        let p50 = h.quantile_ms(0.5).unwrap();
        assert!((2.0..=5.0).contains(&p50), "{p50}");
        assert_eq!(h.quantile_ms(1.0), Some(1000.0));
    }

    #[test]
    fn hashrate_window_rotates() {
        let reg = WorkerRegistry::new(10);
        let t0 = Instant::now();
        let w = reg.attach("rig", t0);
        assert_eq!(w.hashrate(t0), 0.0);
        // 60 shares of difficulty 1 over ten minutes: 2^32 × 60 / 600 s.
        for i in 0..60 {
            w.on_accepted(1.0, t0 + Duration::from_secs(i * 10));
        }
        let at = t0 + Duration::from_secs(600);
        let expect = 4_294_967_296.0 * 60.0 / 600.0;
        let got = w.hashrate(at);
        assert!((got / expect - 1.0).abs() < 0.15, "{got} vs {expect}");
        // Twenty minutes later with no shares: nothing left in the window.
        assert_eq!(w.hashrate(t0 + Duration::from_secs(1800)), 0.0);
        // New shares reuse (and reset) old buckets.
        let t1 = t0 + Duration::from_secs(1800);
        w.on_accepted(2.0, t1);
        let h = w.hashrate(t1);
        let expect = 2.0 * 4_294_967_296.0 / ((HASHRATE_BUCKETS as f64 - 1.0) * 60.0);
        assert!(h > 0.0 && h <= expect * 1.2, "{h} vs {expect}");
        assert_eq!(w.accepted.load(Relaxed), 61);
        assert!((w.accepted_difficulty.get() - 62.0).abs() < 1e-9);
    }

    #[test]
    fn registry_is_bounded_and_shares_names() {
        let reg = WorkerRegistry::new(3);
        let now = Instant::now();
        let a = reg.attach("a", now);
        let a2 = reg.attach("a", now);
        assert!(Arc::ptr_eq(&a, &a2));
        assert_eq!(a.connected.load(Relaxed), 2);
        let ws: Vec<_> = (0..10).map(|i| reg.attach(&format!("w{i}"), now)).collect();
        assert_eq!(reg.len(), 3);
        assert!(ws[5].is_other());
        assert_eq!(reg.overflowed.load(Relaxed), 8);
        assert!(reg.attach(WorkerRegistry::OTHER, now).is_other());
        assert_eq!(reg.all().len(), 4);
        a.detach();
        a2.detach();
        assert_eq!(a.connected.load(Relaxed), 0);
    }

    #[test]
    fn idle_names_make_room() {
        let reg = WorkerRegistry::new(2);
        let now = Instant::now();
        drop(reg.attach("old1", now));
        let held = reg.attach("old2", now);
        let later = now + Duration::from_secs(2 * 3600);
        let n = reg.attach("new", later);
        assert!(
            !n.is_other(),
            "an idle, unheld name is dropped for a new one"
        );
        assert!(reg.attach("newer", later).is_other(), "a held name is kept");
        assert_eq!(held.name(), "old2");
    }

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
