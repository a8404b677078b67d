//! File descriptors: the soft RLIMIT_NOFILE is raised to the hard limit at start, a share is kept for the proxy's
//! own sockets and files, and miners get the rest (counted across every reactor); also the exhaustion episodes.
//!
//! # The reserve
//!
//! Kept per running set of proxies (one `proxy::start`), with T reactor threads, P proxy entries and L listen
//! addresses in all:
//!
//! - [`BASE`] = 16: standard streams, the signal pipe, the logger, reading the config file and its TLS/CA files on
//!   a reload (one at a time), slack;
//! - per reactor, [`PER_REACTOR`] = 5 (its poll, its waker, resolving a pool's host name: a socket and the files
//!   the resolver reads) plus its L listeners;
//! - per reactor and proxy entry, [`PER_UPSTREAM`] = 3 for the *next* upstream it may have to open (when every
//!   pool connection's prefix space is full);
//! - with `metrics`, and again with `api`, [`HTTP_ENDPOINT`] = 34: its listener, which the endpoint holds twice
//!   (`metrics::Endpoint` keeps a duplicate, so the port stays open when the HTTP server's accept thread ends),
//!   and 16 connections of two descriptors each (the HTTP server clones each socket; it serves a few scrapers,
//!   not the world);
//! - and, while they are open, [`PER_UPSTREAM`] = 3 per upstream: its active connection, a probe (failback or
//!   `client.reconnect`) and one draining connection, so reconnects and failover always find a descriptor.
//!
//! A miner is accepted only while `miners + 1 + reserve <= limit`; past it new connections wait in the listen
//! backlog (see `admission`). With the limit right, `accept` never fails with EMFILE.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

/// Fixed part of every reserve (see the module doc).
pub const BASE: u64 = 16;
/// Per reactor thread, besides its listeners.
pub const PER_REACTOR: u64 = 5;
/// Per upstream: active, probe and one draining pool connection.
pub const PER_UPSTREAM: u64 = 3;
/// An HTTP endpoint (metrics, control API): its listener twice and 16 connections of two descriptors.
pub const HTTP_ENDPOINT: u64 = 34;

/// The descriptor limit in force (`u64::MAX` until a proxy started, or when unlimited).
static LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);
/// Fixed reserves of the running proxies.
static FIXED: AtomicU64 = AtomicU64::new(0);
/// Upstreams open now, in every reactor.
static UPSTREAMS: AtomicU64 = AtomicU64::new(0);
/// Miner connections held now, in every reactor.
static MINERS: AtomicU64 = AtomicU64::new(0);
/// Kicked miners' sockets lingering now (see `linger`), in every reactor: held like miners'.
static LINGERING: AtomicU64 = AtomicU64::new(0);

/// Listeners paused now and the episode they belong to.
static EPISODE: Mutex<Episode> = Mutex::new(Episode {
    paused: 0,
    since: None,
    delayed_now: 0,
    episodes: 0,
    delayed_total: 0,
});

struct Episode {
    /// Listeners waiting for a free descriptor (or miner slot).
    paused: u64,
    /// When the current episode began.
    since: Option<Instant>,
    /// Connections accepted from a paused backlog in the current episode.
    delayed_now: u64,
    episodes: u64,
    delayed_total: u64,
}

fn episode() -> std::sync::MutexGuard<'static, Episode> {
    EPISODE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The soft limit before and after raising it to the hard one, and the hard one (`u64::MAX`: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Nofile {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

// rlim_t is not u64 on every target.
#[allow(clippy::unnecessary_cast)]
fn as_u64(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        v as u64
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (where the kernel allows: `nr_open` caps an unlimited hard
/// limit). Returns the limits, and why the raise failed if it did (the old soft limit then stays).
pub fn raise_nofile() -> (Nofile, Option<std::io::Error>) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        let e = std::io::Error::last_os_error();
        let unknown = Nofile {
            before: u64::MAX,
            now: u64::MAX,
            hard: u64::MAX,
        };
        return (unknown, Some(e));
    }
    let before = as_u64(rl.rlim_cur);
    let hard = as_u64(rl.rlim_max);
    let mut err = None;
    if rl.rlim_cur != rl.rlim_max {
        let mut want = rl.rlim_max;
        if want == libc::RLIM_INFINITY {
            // Linux refuses more than fs.nr_open.
            want = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
                .unwrap_or(1 << 20);
        }
        let new = libc::rlimit {
            rlim_cur: want,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            rl.rlim_cur = want;
        } else {
            err = Some(std::io::Error::last_os_error());
        }
    }
    let n = Nofile {
        before,
        now: as_u64(rl.rlim_cur),
        hard,
    };
    (n, err)
}

/// The fixed reserve of a config run with `threads` reactors (without its open upstreams).
pub fn fixed_reserve(config: &crate::config::Config, threads: usize) -> u64 {
    let t = threads as u64;
    let listeners: u64 = config.proxies.iter().map(|p| p.listen.len() as u64).sum();
    let proxies = config.proxies.len() as u64;
    let http = (config.metrics.is_some() as u64 + config.api.is_some() as u64) * HTTP_ENDPOINT;
    BASE + t * (PER_REACTOR + listeners) + t * proxies * PER_UPSTREAM + http
}

/// A running set of proxies' share of the descriptors; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    fixed: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        FIXED.fetch_sub(self.fixed, Relaxed);
    }
}

/// Sets the limit (`nofile.now`) and adds a proxy's fixed reserve; `upstreams` are the ones it opens at start.
/// Logs the limit and the miners it leaves room for. Fails when the limit leaves no room at all.
pub fn reserve(nofile: Nofile, fixed: u64, upstreams: u64) -> Result<Reservation, String> {
    LIMIT.store(nofile.now, Relaxed);
    let reserved = FIXED.fetch_add(fixed, Relaxed) + fixed;
    let r = Reservation { fixed };
    let kept = reserved + (UPSTREAMS.load(Relaxed) + upstreams) * PER_UPSTREAM;
    let held = MINERS.load(Relaxed);
    let room = nofile.now.saturating_sub(kept).saturating_sub(held);
    let raised = if nofile.before == nofile.now {
        String::new()
    } else {
        format!(", raised from {}", shown(nofile.before))
    };
    if nofile.now != u64::MAX && room == 0 {
        return Err(format!(
            "the descriptor limit {} leaves no room for miners: the proxy keeps {kept} for pools, listeners, \
             metrics and reloads; raise it (ulimit -n, systemd LimitNOFILE=)",
            nofile.now
        ));
    }
    log::info!(
        "descriptor limit {} (hard {}{raised}); {kept} kept for pools, listeners, metrics and reloads: room for {} miners",
        shown(nofile.now),
        shown(nofile.hard),
        shown(room)
    );
    Ok(r)
}

fn shown(v: u64) -> String {
    if v >= u64::MAX / 2 {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// Descriptors kept now for the proxy's own use.
pub fn reserved() -> u64 {
    FIXED.load(Relaxed) + UPSTREAMS.load(Relaxed) * PER_UPSTREAM
}

/// Counts one more in `count` if the descriptors allow it besides `others` held and the reserve.
fn take_one(count: &AtomicU64, others: &AtomicU64) -> bool {
    let limit = LIMIT.load(Relaxed);
    let kept = reserved().saturating_add(others.load(Relaxed));
    count
        .fetch_update(Relaxed, Relaxed, |c| {
            (c.saturating_add(1).saturating_add(kept) <= limit).then_some(c + 1)
        })
        .is_ok()
}

/// Counts `n` fewer in `count`.
fn give_back(count: &AtomicU64, n: u64) {
    let _ = count.fetch_update(Relaxed, Relaxed, |c| Some(c.saturating_sub(n)));
}

/// Takes a miner slot if the descriptors allow one more miner besides the lingering sockets and the reserve.
pub(crate) fn take_miner_slot() -> bool {
    take_one(&MINERS, &LINGERING)
}

/// Gives `n` miner slots back (miners closed).
pub(crate) fn give_back_miners(n: u64) {
    give_back(&MINERS, n);
}

/// A kicked miner's socket starts lingering if the descriptors allow it besides the miners and the reserve.
pub(crate) fn linger_begin() -> bool {
    take_one(&LINGERING, &MINERS)
}

/// `n` lingering sockets were closed.
pub(crate) fn linger_end(n: u64) {
    give_back(&LINGERING, n);
}

/// An upstream was opened.
pub(crate) fn upstream_opened() {
    UPSTREAMS.fetch_add(1, Relaxed);
}

/// `n` upstreams were closed.
pub(crate) fn upstreams_closed(n: u64) {
    let _ = UPSTREAMS.fetch_update(Relaxed, Relaxed, |u| Some(u.saturating_sub(n)));
}

/// A listener stops accepting for lack of a descriptor (or miner slot); the first one starts an episode,
/// logged once.
pub(crate) fn pause_begin(cause: &str) {
    let mut e = episode();
    e.paused += 1;
    if e.paused == 1 {
        e.since = Some(Instant::now());
        e.delayed_now = 0;
        e.episodes += 1;
        log::warn!(
            "out of descriptors ({cause}): new miners wait in the listen backlog until one is free \
             ({} held by miners, {} kept for the proxy)",
            MINERS.load(Relaxed),
            reserved()
        );
    }
}

/// A connection was accepted from a paused listener's backlog.
pub(crate) fn delayed() {
    let mut e = episode();
    e.delayed_now += 1;
    e.delayed_total += 1;
}

/// A paused listener drained its backlog; the last one ends the episode, logged once.
pub(crate) fn pause_end() {
    let mut e = episode();
    e.paused = e.paused.saturating_sub(1);
    if e.paused == 0 {
        let secs = e.since.take().map_or(0.0, |s| s.elapsed().as_secs_f64());
        log::warn!(
            "descriptors available again after {secs:.1}s: {} connection(s) waited in the backlog and were accepted",
            e.delayed_now
        );
    }
}

/// The descriptor figures, for the metrics endpoint and the status JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Descriptors {
    /// The soft RLIMIT_NOFILE in force (`None` before any proxy started, or unlimited).
    pub limit: Option<u64>,
    /// Kept for the proxy's own use now.
    pub reserved: u64,
    /// Held by miners now.
    pub miners: u64,
    /// Miners the descriptors allow now (including those connected).
    pub miner_slots: Option<u64>,
    /// Listeners waiting for a free descriptor now.
    pub paused: u64,
    /// Exhaustion episodes so far.
    pub episodes: u64,
    /// Connections accepted after waiting in a paused backlog.
    pub delayed: u64,
}

/// The figures now.
pub fn descriptors() -> Descriptors {
    let limit = Some(LIMIT.load(Relaxed)).filter(|&l| l < u64::MAX / 2);
    let reserved = reserved();
    let e = episode();
    Descriptors {
        limit,
        reserved,
        miners: MINERS.load(Relaxed),
        miner_slots: limit.map(|l| l.saturating_sub(reserved)),
        paused: e.paused,
        episodes: e.episodes,
        delayed: e.delayed_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_counts_reactors_listeners_upstreams_and_http_endpoints() {
        let proxies = "proxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:0}, {address: 127.0.0.1:0}]\n    pools: [{url: stratum+tcp://127.0.0.1:1, user: u}]\n  - name: b\n    protocol: stratum\n    listen: [{address: 127.0.0.1:0}]\n    pools: [{url: stratum+tcp://127.0.0.1:1, user: u}]\n";
        let metrics = "metrics: { listen: 127.0.0.1:0 }\n";
        let api = format!(
            "api: {{ listen: 127.0.0.1:0, token_sha256: {} }}\n",
            "0".repeat(64)
        );
        // 16 + 2 reactors × (5 + 3 listeners) + 2 × 2 proxies × 3, and 34 for each HTTP endpoint.
        for (head, endpoints) in [
            (String::new(), 0),
            (metrics.to_string(), 1),
            (api.clone(), 1),
            (format!("{metrics}{api}"), 2),
        ] {
            let c = crate::config::Config::from_yaml(&format!("{head}{proxies}")).unwrap();
            assert_eq!(
                fixed_reserve(&c, 2),
                16 + 2 * 8 + 12 + 34 * endpoints,
                "{head}"
            );
        }
    }
}
