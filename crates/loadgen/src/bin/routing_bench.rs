//! `routing-bench`: issue 15's split measurement (see `fastproxy_loadgen::routing_bench`): prints the split of
//! accepted difficulty over time and at the end against the weights, the stale-share rate, and writes a PNG.

use clap::Parser;
use fastproxy_loadgen::plot::{self, Series};
use fastproxy_loadgen::routing_bench::{self, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Weighted routing through fastproxy to share-checking sim pools, measured by what the pools accepted.
#[derive(Parser, Debug)]
#[command(name = "routing-bench")]
struct Args {
    /// Route weights, comma-separated (one sim pool per route): 50,30,20.
    #[arg(long, default_value = "50,30,20", value_delimiter = ',')]
    weights: Vec<f64>,
    /// Sim miners.
    #[arg(long, default_value_t = 200)]
    miners: usize,
    /// Fastest miner's hashrate over the slowest's.
    #[arg(long, default_value_t = 100.0)]
    spread: f64,
    /// Sum of the miners' hashrates, H/s (the machine must be able to hash that much).
    #[arg(long, default_value_t = 1_000_000.0)]
    hashrate: f64,
    /// The pools' share difficulty (1 = 2^32 hashes per share; default 2^-20: 4,096 hashes).
    #[arg(long, default_value_t = 1.0 / 1_048_576.0)]
    difficulty: f64,
    /// Seconds to run (wall time = simulated time).
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Seconds between two samples of the pools' accepted counts.
    #[arg(long, default_value_t = 5.0)]
    sample: f64,
    /// Seconds between two jobs of each pool.
    #[arg(long, default_value_t = 30.0)]
    job_interval: f64,
    /// Miners do not send mining.extranonce.subscribe (the proxy cannot move them without a reconnect).
    #[arg(long)]
    no_extranonce_subscribe: bool,
    /// The proxy's reactor threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The PNG of the split over time.
    #[arg(long, default_value = "routing-split.png")]
    png: PathBuf,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = Args::parse();
    let bad = |v: f64| !v.is_finite() || v <= 0.0;
    if a.weights.iter().any(|w| !w.is_finite() || *w < 0.0) || a.weights.iter().sum::<f64>() <= 0.0
    {
        eprintln!("--weights: numbers >= 0, at least one positive");
        return ExitCode::from(2);
    }
    if [
        a.spread,
        a.hashrate,
        a.difficulty,
        a.duration,
        a.sample,
        a.job_interval,
    ]
    .into_iter()
    .any(bad)
        || a.miners == 0
    {
        eprintln!("--miners, --spread, --hashrate, --difficulty, --duration, --sample, --job-interval must be positive");
        return ExitCode::from(2);
    }
    let s = Scenario {
        weights: a.weights.clone(),
        miners: a.miners,
        spread: a.spread,
        total_hashrate: a.hashrate,
        difficulty: a.difficulty,
        duration: Duration::from_secs_f64(a.duration),
        sample: Duration::from_secs_f64(a.sample),
        job_interval: Duration::from_secs_f64(a.job_interval),
        extranonce_subscribe: !a.no_extranonce_subscribe,
        threads: a.threads,
    };
    let rates = routing_bench::hashrates(a.miners, a.spread, a.hashrate);
    let per_share = a.difficulty * 4_294_967_296.0;
    println!(
        "{} routes (weights {:?}), {} miners {:.0}..{:.0} H/s (total {:.0} H/s), pool difficulty {:.3e} = {:.0} hashes per share",
        a.weights.len(), a.weights, a.miners, rates[0], rates[rates.len() - 1], a.hashrate, a.difficulty, per_share
    );
    println!(
        "time scale 1:1 (wall = simulated); shares: {:.1}/s in all, slowest miner one per {:.1} s, fastest one per {:.2} s",
        a.hashrate / per_share,
        per_share / rates[0],
        per_share / rates[rates.len() - 1]
    );
    let wsum: f64 = a.weights.iter().sum();
    let outcome = match routing_bench::run(&s, |x| {
        let total: f64 = x.accepted.iter().sum();
        let split: Vec<String> = x
            .accepted
            .iter()
            .map(|v| format!("{:5.1}%", if total > 0.0 { 100.0 * v / total } else { 0.0 }))
            .collect();
        println!("t={:6.1}s  split {}", x.t, split.join(" "));
    }) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("routing-bench: {e}");
            return ExitCode::from(2);
        }
    };
    println!("\nroute  weight  target   measured  off (points)  accepted difficulty  pool accepted/rejected");
    let split = outcome.split();
    let last = outcome
        .samples
        .last()
        .map(|x| x.accepted.clone())
        .unwrap_or_default();
    let mut worst: f64 = 0.0;
    for (i, w) in a.weights.iter().enumerate() {
        let target = w / wsum;
        let off = 100.0 * (split[i] - target);
        worst = worst.max(off.abs());
        println!(
            "r{:<4} {:>6}  {:6.2}%  {:7.2}%  {:+11.2}  {:>19.6}  {}/{}",
            i + 1,
            w,
            100.0 * target,
            100.0 * split[i],
            off,
            last[i],
            outcome.pools[i].0,
            outcome.pools[i].1
        );
    }
    let rate = |n: u64| 100.0 * n as f64 / outcome.submitted.max(1) as f64;
    println!(
        "worst deviation {worst:.2} points; miners submitted {}, accepted {}, rejected {} ({:.3} %), stale {} ({:.3} %), unanswered {}, disconnected {}",
        outcome.submitted,
        outcome.accepted,
        outcome.rejected,
        rate(outcome.rejected),
        outcome.stale,
        rate(outcome.stale),
        outcome.unanswered,
        outcome.disconnected
    );
    let series: Vec<Series> = a
        .weights
        .iter()
        .enumerate()
        .map(|(i, w)| Series {
            label: format!("r{} weight {w}", i + 1),
            color: plot::COLORS[i % plot::COLORS.len()],
            points: outcome
                .samples
                .iter()
                .filter_map(|x| {
                    let total: f64 = x.accepted.iter().sum();
                    (total > 0.0).then(|| (x.t, x.accepted[i] / total))
                })
                .collect(),
            target: Some(w / wsum),
        })
        .collect();
    let title = format!("split of accepted difficulty, {} miners", a.miners);
    match plot::write_png(&a.png, &title, a.duration, "seconds", &series, (1000, 520)) {
        Ok(()) => println!("plot: {}", a.png.display()),
        Err(e) => {
            eprintln!("cannot write {}: {e}", a.png.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
