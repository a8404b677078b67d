//! What a run found: the result of each phase, the proxy's and the load generator's CPU and memory, and
//! the notes that explain a shortfall. Printed as a table, written as JSON.

use super::args::{Dialect, Mode};
use super::pool::PoolCounters;
use serde::Serialize;
use std::io::{self, Write};

/// Latency percentiles in one unit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of nanoseconds, scaled by `unit` (1e3: microseconds, 1e6: milliseconds).
    pub fn of(h: &super::hist::Histogram, unit: f64) -> Percentiles {
        Percentiles {
            count: h.count(),
            p50: h.quantile(0.5) as f64 / unit,
            p99: h.quantile(0.99) as f64 / unit,
            p999: h.quantile(0.999) as f64 / unit,
            max: h.max() as f64 / unit,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnectResult {
    pub miners: u32,
    pub admitted: u32,
    pub failed: u32,
    pub refused: u32,
    pub first_error: Option<String>,
    /// First connect to the last authorize answer, when every miner was admitted.
    pub time_to_admit_all_s: Option<f64>,
    /// First connect to the last admitted miner having its first job.
    pub time_to_first_job_all_s: Option<f64>,
    pub admitted_per_s: f64,
    /// Connect to authorize answer, per miner (ms).
    pub admit_ms: Percentiles,
    pub proxy_cpu_s: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SharesResult {
    pub window_s: f64,
    pub miners_submitting: u32,
    /// Total submits per second asked for (0: as fast as replies come).
    pub rate_asked: f64,
    pub replies: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub answered_by_proxy: u64,
    pub shares_per_s: f64,
    pub proxy_cpu_s: Option<f64>,
    pub proxy_cpu_per_share_us: Option<f64>,
    pub loadgen_cpu_s: Option<f64>,
    /// Miner submit to reply received (µs).
    pub rtt_us: Percentiles,
    /// The same less the time inside the pool: the share's transit through proxy, kernel and the load
    /// generator's own loop (µs). In direct mode: the baseline to subtract.
    pub transit_us: Percentiles,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FanoutResult {
    pub notifies: u32,
    pub miners: u32,
    /// Notifies that reached every miner before the 5 s bound.
    pub reached_all: u32,
    /// Pool send to each miner's receipt, over all (miner, notify) pairs (ms).
    pub arrival_ms: Percentiles,
    /// Pool send to the last miner's receipt, per notify (ms).
    pub all_reached_ms: Percentiles,
    pub proxy_cpu_s: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessFigures {
    /// What is measured: "child process", "external process", "reactor threads in this process", ...
    pub scope: String,
    pub pid: Option<u32>,
    pub cpu_s: Option<f64>,
    pub rss_before_miners_kib: Option<u64>,
    pub rss_after_admit_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    /// (RSS after admit - RSS before the miners) / miners admitted.
    pub rss_per_miner_bytes: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub nproc: usize,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    /// 1-minute load average when the run started.
    pub loadavg_at_start: Option<f64>,
    /// CPU seconds the rest of the machine (neither the proxy nor the load generator) used during the run:
    /// other work competing for the same cores.
    pub other_busy_cpu_s: Option<f64>,
    pub run_wall_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub protocol: Dialect,
    pub target: String,
    pub pool: String,
    pub miners_requested: u32,
    pub miners: u32,
    pub machine: Machine,
    pub connect: ConnectResult,
    pub shares: Option<SharesResult>,
    pub fanout: Option<FanoutResult>,
    pub proxy: ProcessFigures,
    pub loadgen: ProcessFigures,
    pub pool_counters: PoolCounters,
    /// Shares the proxy validated and forwarded (known for fastproxy in this process only).
    pub proxy_shares_validated: Option<u64>,
    /// With --upstream sv2: the SV2 pool's counters.
    pub sv2_pool: Option<crate::sv2_upstream::Sv2Counters>,
    /// Everything that did not go as asked, in words.
    pub notes: Vec<String>,
    /// Every phase ran to its end with every miner.
    pub complete: bool,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

fn pct(p: &Percentiles, unit: &str) -> String {
    format!(
        "p50 {:.3} / p99 {:.3} / p99.9 {:.3} / max {:.3} {unit} ({} samples)",
        p.p50, p.p99, p.p999, p.max, p.count
    )
}

fn kib(v: Option<u64>) -> String {
    v.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

impl Report {
    /// The human-readable table.
    pub fn print(&self, w: &mut impl Write) -> io::Result<()> {
        let row = |w: &mut dyn Write, k: &str, v: String| writeln!(w, "  {k:<30} {v}");
        writeln!(
            w,
            "fastproxy-loadgen: {:?} / {:?}",
            self.mode, self.protocol
        )?;
        row(w, "target", self.target.clone())?;
        row(w, "pool", self.pool.clone())?;
        row(
            w,
            "machine",
            format!(
                "{} x {} (open files {} / {})",
                self.machine.nproc,
                self.machine.cpu_model,
                self.machine.nofile_soft,
                self.machine.nofile_hard
            ),
        )?;
        row(
            w,
            "machine load",
            format!(
                "load average {} at start; {} CPU s used by other processes during the {:.1} s run",
                opt(self.machine.loadavg_at_start, 2),
                opt(self.machine.other_busy_cpu_s, 2),
                self.machine.run_wall_s
            ),
        )?;
        row(
            w,
            "miners (asked)",
            format!("{} ({})", self.miners, self.miners_requested),
        )?;
        let c = &self.connect;
        writeln!(w, "connect")?;
        row(
            w,
            "admitted / failed / refused",
            format!("{} / {} / {}", c.admitted, c.failed, c.refused),
        )?;
        row(w, "time to admit all", opt(c.time_to_admit_all_s, 3) + " s")?;
        row(
            w,
            "time until all have a job",
            opt(c.time_to_first_job_all_s, 3) + " s",
        )?;
        row(w, "admitted per second", format!("{:.0}", c.admitted_per_s))?;
        row(w, "connect to admitted", pct(&c.admit_ms, "ms"))?;
        row(
            w,
            "proxy CPU while connecting",
            opt(c.proxy_cpu_s, 3) + " s",
        )?;
        if let Some(s) = &self.shares {
            writeln!(w, "shares")?;
            row(
                w,
                "window",
                format!(
                    "{:.2} s, {} miners, rate {}",
                    s.window_s,
                    s.miners_submitting,
                    if s.rate_asked > 0.0 {
                        format!("{:.0}/s", s.rate_asked)
                    } else {
                        "unlimited".into()
                    }
                ),
            )?;
            row(
                w,
                "replies (accepted/rejected)",
                format!(
                    "{} ({}/{}), {} answered by the proxy itself",
                    s.replies, s.accepted, s.rejected, s.answered_by_proxy
                ),
            )?;
            row(w, "shares per second", format!("{:.0}", s.shares_per_s))?;
            if let Some(v) = self.proxy_shares_validated {
                row(w, "validated by the proxy", format!("{v} (forwarded)"))?;
            }
            if let Some(p) = &self.sv2_pool {
                row(
                    w,
                    "SV2 pool",
                    format!(
                        "{} submits, {} accepted, {} rejected, {} successes, {} connection(s)",
                        p.submits, p.accepted, p.rejected, p.successes_sent, p.connections
                    ),
                )?;
                row(
                    w,
                    "miners told (whole run)",
                    format!(
                        "{} true, {} false; true beyond the pool's accepted: {}",
                        p.miners_told_true, p.miners_told_false, p.told_true_not_accepted
                    ),
                )?;
            }
            row(
                w,
                "proxy CPU",
                format!(
                    "{} s, {} µs per share",
                    opt(s.proxy_cpu_s, 3),
                    opt(s.proxy_cpu_per_share_us, 3)
                ),
            )?;
            row(w, "load generator CPU", opt(s.loadgen_cpu_s, 3) + " s")?;
            row(w, "submit to reply", pct(&s.rtt_us, "µs"))?;
            row(w, "transit (less pool time)", pct(&s.transit_us, "µs"))?;
        }
        if let Some(f) = &self.fanout {
            writeln!(w, "fanout")?;
            row(
                w,
                "notifies reaching all",
                format!("{} of {} ({} miners)", f.reached_all, f.notifies, f.miners),
            )?;
            row(w, "pool send to each miner", pct(&f.arrival_ms, "ms"))?;
            row(w, "pool send to last miner", pct(&f.all_reached_ms, "ms"))?;
            row(w, "proxy CPU", opt(f.proxy_cpu_s, 3) + " s")?;
        }
        for (name, p) in [("proxy", &self.proxy), ("load generator", &self.loadgen)] {
            writeln!(w, "{name} ({})", p.scope)?;
            row(w, "CPU total", opt(p.cpu_s, 3) + " s")?;
            row(
                w,
                "RSS before miners / admitted",
                format!(
                    "{} / {}",
                    kib(p.rss_before_miners_kib),
                    kib(p.rss_after_admit_kib)
                ),
            )?;
            row(w, "peak RSS (VmHWM)", kib(p.peak_rss_kib))?;
            row(w, "RSS per miner", opt(p.rss_per_miner_bytes, 0) + " bytes")?;
        }
        let pc = &self.pool_counters;
        row(
            w,
            "pool",
            format!(
                "{} connections ({} open, {} working), {} submits, {} unreadable",
                pc.connections_total, pc.connections_open, pc.working, pc.submits, pc.unreadable
            ),
        )?;
        for n in &self.notes {
            writeln!(w, "note: {n}")?;
        }
        writeln!(w, "complete: {}", self.complete)
    }
}
