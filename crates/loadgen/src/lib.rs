//! The load generator (`fastproxy-loadgen`): a fast mio pool and N simulated miners on ONE reactor thread,
//! pointed at fastproxy (started here, as a child process or in-process) or at any other Stratum V1 or
//! Equihash proxy by address, or straight at the pool for the load generator's own ceiling. It measures
//! admission, share throughput and latency, notify fan-out, and the proxy's CPU and memory.
//!
//! Files: `args` (options), `reactor` (the poll loop and tallies), `phases` (connect / shares / fan-out),
//! `miners` and `pool` (the two kinds of peer), `wire` and `line` (writing and reading Stratum lines),
//! `conn` (sockets), `target` (the proxy under test), `procstat` and `limits` (/proc and the open-file
//! limit), `hist` and `clock` (measuring), `report` (table and JSON).

pub mod args;
pub mod clock;
pub mod conn;
pub mod hist;
pub mod limits;
pub mod line;
pub mod miners;
pub mod phases;
pub mod plot;
pub mod pool;
pub mod procstat;
pub mod reactor;
pub mod report;
pub mod routing_bench;
pub mod sv2_upstream;
pub mod target;
pub mod wire;

#[cfg(test)]
mod tests;

pub use args::{Dialect, Mode, Options};
pub use report::Report;

use reactor::Reactor;
use report::{Machine, ProcessFigures};
use target::Target;

/// Descriptors kept free for everything that is not a miner (listeners, pool connections, epoll, files).
const FD_RESERVE: u64 = 128;

/// Plans how many miners fit in the open-file limit, raising it where allowed.
fn plan_miners(o: &Options, notes: &mut Vec<String>) -> Result<(u32, Machine), String> {
    let per_miner = 1 + u64::from(o.mode == Mode::Direct) + u64::from(o.in_process);
    let needed = u64::from(o.miners) * per_miner + FD_RESERVE + 4 * o.threads as u64;
    let raise = limits::raise_nofile(needed);
    let (cpu_model, nproc) = procstat::machine();
    let machine = Machine {
        cpu_model,
        nproc,
        nofile_soft: raise.soft,
        nofile_hard: raise.hard,
        loadavg_at_start: procstat::loadavg(),
        other_busy_cpu_s: None,
        run_wall_s: 0.0,
    };
    if raise.soft >= needed {
        return Ok((o.miners, machine));
    }
    let fit = (raise.soft.saturating_sub(FD_RESERVE + 4 * o.threads as u64) / per_miner) as u32;
    let why = raise.message.unwrap_or_default();
    if !o.fit_fd_limit || fit == 0 {
        return Err(format!(
            "{} miners need {needed} open files here ({per_miner} per miner); the limit is {}. {why} \
             (--fit-fd-limit runs the largest number that fits: {fit})",
            o.miners, raise.soft
        ));
    }
    notes.push(format!(
        "ran {fit} miners instead of {}: {needed} open files needed, limit {} (hard {}). {why}",
        o.miners, raise.soft, raise.hard
    ));
    Ok((fit, machine))
}

fn per_miner(before: Option<u64>, after: Option<u64>, miners: u32) -> Option<f64> {
    let (b, a) = (before?, after?);
    (miners > 0).then(|| (a as f64 - b as f64) * 1024.0 / f64::from(miners))
}

/// Runs what `o` asks for and reports. Bounded by `o.timeout`; every socket is closed and a proxy this run
/// started is stopped before it returns.
pub fn run(o: &Options) -> Result<Report, String> {
    o.check()?;
    let mut notes = Vec::new();
    let (n, mut machine) = plan_miners(o, &mut notes)?;
    let busy0 = procstat::system_busy_ns();
    let mine0 = procstat::cpu_ns(&procstat::Scope::Pid(std::process::id()));
    let mut r = Reactor::new(
        o.pool_listen,
        o.protocol,
        o.merkle_branches,
        o.miners_per_source,
        o.validate,
    )
    .map_err(|e| format!("pool cannot listen on {}: {e}", o.pool_listen))?;
    let deadline = r.clock.at(o.timeout);
    let pool_addr = r.pool.addr();
    eprintln!(
        "fastproxy-loadgen: pool listening on {pool_addr} ({:?})",
        o.protocol
    );
    let sv2 = sv2_upstream::start(o)?;
    let mut o_sv2;
    let o = match &sv2 {
        Some(p) => {
            o_sv2 = o.clone();
            o_sv2.sv2_pool = Some((p.addr(), p.authority_public_key()));
            &o_sv2
        }
        None => o,
    };
    let mut t = Target::start(o, pool_addr)?;
    r.target = t.addr;
    if let Some(p) = &sv2 {
        if !sv2_upstream::wait_channels(p, t.expected_pool_conns.max(1), o.pool_wait) {
            notes.push("the proxy did not open its SV2 channels in time".into());
        }
        notes.push(
            "SV2 upstream: the load generator's V1 pool sees no share, so \"answered by the proxy itself\" counts them all; the SV2 pool's own counts are in \"SV2 pool\"".into(),
        );
    } else if o.mode != Mode::Direct
        && !phases::wait_pool(&mut r, t.expected_pool_conns.max(1), o.pool_wait, deadline)
        && t.expected_pool_conns > 0
    {
        notes.push(format!(
            "the proxy did not open {} working pool connection(s) within {} s",
            t.expected_pool_conns, o.pool_wait
        ));
    }
    let proxy_cpu0 = t.cpu_ns();
    let proxy_before = t.mem();
    let self_before = procstat::mem(None);
    let connect = phases::connect(&mut r, &t, n, o.connect_concurrency, deadline);
    let proxy_admitted = t.mem();
    let self_admitted = procstat::mem(None);
    let do_shares = matches!(o.mode, Mode::Shares | Mode::Direct);
    let do_fanout = matches!(o.mode, Mode::Fanout | Mode::Direct);
    let shares =
        do_shares.then(|| phases::shares(&mut r, &t, o.rate, o.warmup, o.duration, deadline));
    let fanout =
        do_fanout.then(|| phases::fanout(&mut r, &t, o.notifies, o.notify_gap_ms, deadline));
    let timed_out = r.clock.now() >= deadline;
    let proxy_end = t.mem();
    let proxy_cpu = t.cpu_ns();
    let self_end = procstat::mem(None);
    let self_cpu = procstat::cpu_ns(&procstat::Scope::Pid(std::process::id()));
    let alive = t.alive();
    machine.run_wall_s = r.clock.now() as f64 / 1e9;
    if let (Some(b0), Some(b1), Some(m0), Some(m1)) =
        (busy0, procstat::system_busy_ns(), mine0, self_cpu)
    {
        // The proxy's CPU before the start of this run (a child starts with none, an external proxy's
        // earlier CPU is left out by measuring only the run) is not known: count it from the run's start.
        let proxy_run = if t.pid == Some(std::process::id()) {
            0
        } else {
            proxy_cpu
                .unwrap_or(0)
                .saturating_sub(proxy_cpu0.unwrap_or(0))
        };
        let other =
            (b1.saturating_sub(b0)) as f64 - (m1.saturating_sub(m0)) as f64 - proxy_run as f64;
        machine.other_busy_cpu_s = Some((other / 1e9).max(0.0));
    }
    r.close_miners();
    let admitted = connect.admitted;
    let mut complete = admitted == n && !timed_out && alive;
    if let Some(s) = &shares {
        complete &= s.replies > 0 && s.window_s + 0.05 >= o.duration;
    }
    if let Some(f) = &fanout {
        complete &= f.reached_all == o.notifies;
    }
    if timed_out {
        notes.push(format!(
            "stopped by --timeout {} s before the end",
            o.timeout
        ));
    }
    if !alive {
        notes.push("the proxy process exited during the run".into());
    }
    if admitted < n {
        notes.push(format!(
            "{} of {n} miners admitted ({} failed to connect or set up, {} refused){}",
            admitted,
            connect.failed,
            connect.refused,
            connect
                .first_error
                .as_ref()
                .map_or(String::new(), |e| format!("; first error: {e}"))
        ));
    }
    let proxy = ProcessFigures {
        scope: t.scope_text(),
        pid: t.pid,
        cpu_s: proxy_cpu.map(|c| c as f64 / 1e9),
        rss_before_miners_kib: proxy_before.map(|m| m.rss_kib),
        rss_after_admit_kib: proxy_admitted.map(|m| m.rss_kib),
        peak_rss_kib: proxy_end.map(|m| m.hwm_kib),
        rss_per_miner_bytes: per_miner(
            proxy_before.map(|m| m.rss_kib),
            proxy_admitted.map(|m| m.rss_kib),
            admitted,
        ),
    };
    let in_proc_cpu = if t.pid == Some(std::process::id()) {
        proxy_cpu
    } else {
        None
    };
    let loadgen = ProcessFigures {
        scope: if in_proc_cpu.is_some() {
            "this process less the proxy's reactor threads (CPU); RSS includes the proxy".into()
        } else {
            "this process".into()
        },
        pid: Some(std::process::id()),
        cpu_s: self_cpu.map(|c| c.saturating_sub(in_proc_cpu.unwrap_or(0)) as f64 / 1e9),
        rss_before_miners_kib: self_before.map(|m| m.rss_kib),
        rss_after_admit_kib: self_admitted.map(|m| m.rss_kib),
        peak_rss_kib: self_end.map(|m| m.hwm_kib),
        rss_per_miner_bytes: per_miner(
            self_before.map(|m| m.rss_kib),
            self_admitted.map(|m| m.rss_kib),
            admitted,
        ),
    };
    let mut report = Report {
        mode: o.mode,
        protocol: o.protocol,
        target: t.description.clone(),
        pool: pool_addr.to_string(),
        miners_requested: o.miners,
        miners: n,
        machine,
        connect,
        shares,
        fanout,
        proxy,
        loadgen,
        pool_counters: r.pool.counters().clone(),
        proxy_shares_validated: t.shares_validated(),
        sv2_pool: None,
        notes,
        complete,
    };
    t.stop();
    // After the proxy stopped: every share it passed on has reached the pool.
    report.sv2_pool = sv2.map(|p| sv2_upstream::counters(p, r.t.told_true_all, r.t.told_false_all));
    Ok(report)
}
