//! `fastproxy demo` and `fastproxy sim-pool`: the proxy on 127.0.0.1 against the built-in share-checking pool,
//! with miners that really hash; or that pool alone.

use crate::demo_sv2::DemoPool;
use clap::Args;
use fastproxy::config::Config;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, LiveCounters, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Simulated miners.
    #[arg(long, default_value_t = 4)]
    miners: usize,
    /// Seconds to run before stopping by itself (Ctrl-C stops sooner).
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Share difficulty the simulated pool sets (tiny, so CPU miners find shares).
    #[arg(long, default_value_t = 1.0 / 4096.0)]
    difficulty: f64,
    /// Seconds between new jobs from the pool.
    #[arg(long, default_value_t = 5)]
    job_interval: u64,
    /// The simulated pool's protocol: v1, or sv2 (the proxy reaches it over Stratum V2).
    #[arg(long, value_enum, default_value_t = SimProtocol::V1)]
    upstream: SimProtocol,
}

#[derive(Args, Debug)]
pub struct SimPoolArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3334")]
    listen: SocketAddr,
    /// Share difficulty.
    #[arg(long, default_value_t = 1.0 / 4096.0)]
    difficulty: f64,
    /// extranonce1 bytes per connection.
    #[arg(long, default_value_t = 4)]
    extranonce1_size: usize,
    /// extranonce2 bytes the miners (here: the proxy) get.
    #[arg(long, default_value_t = 8)]
    extranonce2_size: usize,
    /// Seconds between new jobs.
    #[arg(long, default_value_t = 30)]
    job_interval: u64,
    /// Seconds to run (0: until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// The protocol the pool speaks: v1 (Stratum V1) or sv2 (Stratum V2: Noise-encrypted, one extended
    /// channel per connection; prints its authority public key).
    #[arg(long, value_enum, default_value_t = SimProtocol::V1)]
    protocol: SimProtocol,
}

/// The protocol `fastproxy sim-pool` speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimProtocol {
    V1,
    Sv2,
}

fn demo_config(pool_entry: &str) -> Config {
    let yaml = format!(
        "threads: 1\nproxies:\n  - name: demo\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n{pool_entry}"
    );
    // The text above is fixed and valid.
    Config::from_yaml(&yaml).unwrap_or_else(|p| panic!("built-in demo config is invalid: {p:?}"))
}

fn progress(started: Instant, s: &ProxyStats, pool: &DemoPool, live: &[Arc<LiveCounters>]) {
    let g = ProxyStats::get;
    let (pool_accepted, pool_rejected) = pool.counts();
    let per_miner: Vec<String> = live
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "rig{} {}/{}",
                i + 1,
                l.accepted.load(Ordering::Relaxed),
                l.rejected.load(Ordering::Relaxed)
            )
        })
        .collect();
    println!(
        "[{:>4.1}s] {} (accepted/rejected)",
        started.elapsed().as_secs_f64(),
        per_miner.join("  ")
    );
    println!(
        "        proxy: miners {} | shares submitted {} forwarded {} accepted {} rejected {} errors {} | pool: accepted {} rejected {}",
        g(&s.miners_connected),
        g(&s.shares_submitted),
        g(&s.shares_forwarded),
        g(&s.shares_accepted),
        g(&s.shares_rejected),
        g(&s.shares_errored),
        pool_accepted,
        pool_rejected,
    );
}

pub fn run_demo(args: &DemoArgs) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = register_stop_signals(stop.clone()) {
        log::warn!("cannot install signal handlers: {e}");
    }
    let every = Duration::from_secs(args.job_interval.max(1));
    let mut pool = match DemoPool::start(args.upstream == SimProtocol::Sv2, args.difficulty, every)
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start the simulated pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let proxy = match fastproxy::proxy::start(&demo_config(&pool.pool_entry())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start the proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(addr), Some(stats)) = (proxy.first_addr(), proxy.stats("demo")) else {
        eprintln!("the proxy has no listener");
        return ExitCode::FAILURE;
    };
    println!(
        "fastproxy demo: simulated {:?} pool on {}, proxy on {addr}, {} hashing miners, {} s (Ctrl-C stops)",
        args.upstream,
        pool.addr(),
        args.miners,
        args.seconds
    );
    let duration = Duration::from_secs(args.seconds);
    let live: Vec<Arc<LiveCounters>> = (0..args.miners).map(|_| Arc::default()).collect();
    let miners: Vec<_> = (0..args.miners)
        .map(|i| {
            let cfg = SimMinerConfig {
                live: Some(live[i].clone()),
                addr,
                worker: format!("demo.rig{}", i + 1),
                version_rolling: i % 2 == 1,
                extranonce_subscribe: true,
                duration,
                ..SimMinerConfig::default()
            };
            spawn_miner(cfg, stop.clone())
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1).min(duration.saturating_sub(started.elapsed())));
        pool.tick();
        progress(started, &stats, &pool, &live);
    }
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<MinerReport> = miners.into_iter().filter_map(|h| h.join().ok()).collect();
    println!("\nsummary after {:.1} s:", started.elapsed().as_secs_f64());
    for (i, r) in reports.iter().enumerate() {
        println!(
            "  demo.rig{:<3} extranonce1 {} (+{} bytes extranonce2){}: submitted {}, accepted {}, rejected {}, unanswered {}{}",
            i + 1,
            fastproxy::hex::encode(&r.extranonce1),
            r.extranonce2_size,
            r.version_mask.map_or(String::new(), |m| format!(", version mask {m:08x}")),
            r.submitted,
            r.accepted,
            r.rejected,
            r.unanswered,
            r.error.as_ref().map_or(String::new(), |e| format!(" (error: {e})")),
        );
    }
    progress(started, &stats, &pool, &live);
    let accepted: u64 = reports.iter().map(|r| r.accepted).sum();
    let rejected: u64 = reports.iter().map(|r| r.rejected).sum();
    proxy.stop();
    pool.stop();
    println!("total: {accepted} accepted, {rejected} rejected");
    if accepted > 0 && rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn run_sim_pool(args: &SimPoolArgs) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = register_stop_signals(stop.clone()) {
        log::warn!("cannot install signal handlers: {e}");
    }
    if args.protocol == SimProtocol::Sv2 {
        let (en1, en2) = (args.extranonce1_size, args.extranonce2_size);
        let every = Duration::from_secs(args.job_interval.max(1));
        let run_for = Duration::from_secs(args.seconds);
        return crate::demo_sv2::run_sim_pool(
            args.listen,
            args.difficulty,
            en1,
            en2,
            every,
            run_for,
            &stop,
        );
    }
    let pool = match SimPool::start(SimPoolConfig {
        listen: args.listen,
        difficulty: args.difficulty,
        extranonce1_size: args.extranonce1_size,
        extranonce2_size: args.extranonce2_size,
        job_interval: Some(Duration::from_secs(args.job_interval.max(1))),
        ..SimPoolConfig::default()
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start the simulated pool on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "simulated pool on {} (difficulty {}, extranonce2_size {}); Ctrl-C stops",
        pool.addr(),
        args.difficulty,
        args.extranonce2_size
    );
    let started = Instant::now();
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed)
        && (args.seconds == 0 || started.elapsed() < Duration::from_secs(args.seconds))
    {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            let s = pool.stats();
            println!(
                "connections {} | submits {} accepted {} rejected {}",
                s.connections_open, s.submits, s.accepted, s.rejected
            );
        }
    }
    pool.stop();
    ExitCode::SUCCESS
}

/// SIGINT and SIGTERM set the flag the reactors watch.
pub(crate) fn register_stop_signals(flag: Arc<AtomicBool>) -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(())
}
