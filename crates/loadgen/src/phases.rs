//! The phases of a run, each driving the reactor until its goal or its bound: wait for the proxy's pool
//! connections, admit the miners, keep shares flowing and measure a window, send notifies and time their
//! fan-out.

use super::clock::Clock;
use super::hist::Histogram;
use super::reactor::Reactor;
use super::report::{ConnectResult, FanoutResult, Percentiles, SharesResult};
use super::target::Target;

/// How long one notify may take to reach every miner before the next is sent anyway.
const NOTIFY_BOUND_NS: u64 = 5_000_000_000;
/// How long the miners' last shares may take to be answered after a shares window.
const DRAIN_NS: u64 = 3_000_000_000;

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn cpu_delta(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(secs(b?.saturating_sub(a?)))
}

/// Waits until the pool has `n` working connections (the proxy's), at most `secs_max`.
pub fn wait_pool(r: &mut Reactor, n: u64, secs_max: f64, deadline: u64) -> bool {
    let end = (r.clock.now() + r.clock.at(secs_max)).min(deadline);
    r.run_until(end, |r| r.pool.counters().working >= n)
}

/// Connects `n` miners, at most `concurrency` being set up at once, until all are admitted (or failed) and
/// have a job.
pub fn connect(
    r: &mut Reactor,
    t: &Target,
    n: u32,
    concurrency: u32,
    deadline: u64,
) -> ConnectResult {
    let cpu0 = t.cpu_ns();
    let t0 = r.clock.now();
    let mut next = 0u32;
    loop {
        while next < n && r.t.in_setup < concurrency {
            r.start_miner(next);
            next += 1;
        }
        let settled = r.t.admitted + r.t.connect_failed;
        if next == n && settled >= n {
            break;
        }
        if r.clock.now() >= deadline {
            break;
        }
        r.turn(std::time::Duration::from_millis(5));
    }
    let all_admitted = r.t.admitted == n;
    let job_end = (r.clock.now() + 5_000_000_000).min(deadline);
    r.run_until(job_end, |r| r.t.with_job >= r.live_miners());
    let elapsed = r.t.last_admit_ns.saturating_sub(t0);
    ConnectResult {
        miners: n,
        admitted: r.t.admitted,
        failed: r.t.connect_failed,
        refused: r.t.refused,
        first_error: r.t.first_error.clone(),
        time_to_admit_all_s: all_admitted.then(|| secs(elapsed)),
        time_to_first_job_all_s: (all_admitted && r.t.with_job >= n)
            .then(|| secs(r.t.last_first_job_ns.saturating_sub(t0))),
        admitted_per_s: if elapsed > 0 {
            f64::from(r.t.admitted) / secs(elapsed)
        } else {
            0.0
        },
        admit_ms: Percentiles::of(&r.t.admit, 1e6),
        proxy_cpu_s: cpu_delta(cpu0, t.cpu_ns()),
    }
}

/// Every admitted miner keeps one share in flight (or the total `rate` is paced): `warmup` seconds of load,
/// then a measured window of `window` seconds, then the last replies are drained.
pub fn shares(
    r: &mut Reactor,
    t: &Target,
    rate: f64,
    warmup: f64,
    window: f64,
    deadline: u64,
) -> SharesResult {
    r.set_rate(rate);
    r.submitting = true;
    for i in 0..r.miners.len() as u32 {
        r.want_submit(i);
    }
    let clock: Clock = r.clock;
    let warm_end = (clock.now() + clock.at(warmup)).min(deadline);
    r.run_until(warm_end, |_| false);
    r.t.rtt = Histogram::default();
    r.t.transit = Histogram::default();
    let (replies0, acc0, rej0, byp0) = (
        r.t.replies,
        r.t.accepted,
        r.t.rejected,
        r.t.answered_by_proxy,
    );
    let cpu0 = t.cpu_ns();
    let self0 = super::procstat::cpu_ns(&super::procstat::Scope::Pid(std::process::id()));
    r.measuring = true;
    let w0 = clock.now();
    let w_end = (w0 + clock.at(window)).min(deadline);
    r.run_until(w_end, |_| false);
    let w1 = clock.now();
    r.measuring = false;
    let cpu1 = t.cpu_ns();
    let self1 = super::procstat::cpu_ns(&super::procstat::Scope::Pid(std::process::id()));
    r.submitting = false;
    let drain_end = (clock.now() + DRAIN_NS).min(deadline);
    r.run_until(drain_end, |r| r.in_flight() == 0);
    let replies = r.t.replies - replies0;
    let proxy_cpu = cpu_delta(cpu0, cpu1);
    let mut loadgen_cpu = cpu_delta(self0, self1);
    if let (Some(l), Some(p), true) = (loadgen_cpu, proxy_cpu, t.pid == Some(std::process::id())) {
        loadgen_cpu = Some(l - p);
    }
    let window_s = secs(w1 - w0);
    SharesResult {
        window_s,
        miners_submitting: r.live_miners(),
        rate_asked: rate,
        replies,
        accepted: r.t.accepted - acc0,
        rejected: r.t.rejected - rej0,
        answered_by_proxy: r.t.answered_by_proxy - byp0,
        shares_per_s: replies as f64 / window_s.max(1e-9),
        proxy_cpu_s: proxy_cpu,
        proxy_cpu_per_share_us: proxy_cpu
            .filter(|_| replies > 0)
            .map(|c| c * 1e6 / replies as f64),
        loadgen_cpu_s: loadgen_cpu,
        rtt_us: Percentiles::of(&r.t.rtt, 1e3),
        transit_us: Percentiles::of(&r.t.transit, 1e3),
    }
}

/// The pool sends `k` notifies, each once the previous one reached every live miner (or 5 s passed) and
/// `gap_ms` more passed.
pub fn fanout(r: &mut Reactor, t: &Target, k: u32, gap_ms: u64, deadline: u64) -> FanoutResult {
    let cpu0 = t.cpu_ns();
    r.fanout_from = r.pool.job() + 1;
    let mut per_notify = Histogram::default();
    let mut reached_all = 0;
    let mut sent = 0;
    for _ in 0..k {
        if r.clock.now() >= deadline {
            break;
        }
        let n = r.broadcast_notify();
        sent += 1;
        let sent_at = r.pool.job_sent(n).unwrap_or(0);
        let want = r.live_miners();
        let end = (r.clock.now() + NOTIFY_BOUND_NS).min(deadline);
        let all = r.run_until(end, |r| {
            r.t.job_received.get(n as usize).copied().unwrap_or(0) >= want.min(r.live_miners())
        });
        if all {
            reached_all += 1;
        }
        if let Some(&last) = r.t.job_last_ns.get(n as usize) {
            per_notify.record(last.saturating_sub(sent_at));
        }
        let gap_end = (r.clock.now() + gap_ms * 1_000_000).min(deadline);
        r.run_until(gap_end, |_| false);
    }
    FanoutResult {
        notifies: sent,
        miners: r.live_miners(),
        reached_all,
        arrival_ms: Percentiles::of(&r.t.fanout, 1e6),
        all_reached_ms: Percentiles::of(&per_notify, 1e6),
        proxy_cpu_s: cpu_delta(cpu0, t.cpu_ns()),
    }
}
