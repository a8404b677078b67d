//! The weighted-routing benchmark (issue 15's Measure): fastproxy in this process with one route per weight,
//! each route on its own share-checking `SimPool`, and hashing sim miners with hashrates spread geometrically.
//!
//! The split is read from the pools' own accepted counts (× the pool's fixed share difficulty), never from the
//! proxy's counters, sampled over time. Time is not compressed: a simulated second is a wall second, so the
//! router's horizons and dwell times hold as in production. Only the hashing is scaled: CPU miners hash kH/s,
//! so the pools' share difficulty is lowered until each miner finds shares as often as a real miner at its
//! vardiff target would (the split is in difficulty units, which this scaling leaves unchanged).

use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// One route per weight.
    pub weights: Vec<f64>,
    pub miners: usize,
    /// Fastest miner's hashrate over the slowest's (hashrates in between spread geometrically).
    pub spread: f64,
    /// Sum of the miners' hashrates, H/s.
    pub total_hashrate: f64,
    /// The pools' share difficulty (1 = 2^32 hashes per share).
    pub difficulty: f64,
    pub duration: Duration,
    /// Time between two samples of the pools' accepted counts.
    pub sample: Duration,
    /// A new job from every pool this often.
    pub job_interval: Duration,
    /// The miners send `mining.extranonce.subscribe` (the proxy may move them between routes).
    pub extranonce_subscribe: bool,
    /// The proxy's reactor threads.
    pub threads: usize,
}

/// The accepted difficulty of each route's pool at `t` seconds.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t: f64,
    pub accepted: Vec<f64>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    /// The miners' hashrates, H/s.
    pub hashrates: Vec<f64>,
    pub submitted: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Rejected as stale (code 21: job not found) by the pool or the proxy.
    pub stale: u64,
    /// Submits without a reply when the miners stopped.
    pub unanswered: u64,
    pub disconnected: u64,
    /// Each pool's (accepted, rejected, submits).
    pub pools: Vec<(u64, u64, u64)>,
}

impl Outcome {
    /// Each route's share of the accepted difficulty at the last sample.
    pub fn split(&self) -> Vec<f64> {
        let last = self
            .samples
            .last()
            .map(|s| s.accepted.clone())
            .unwrap_or_default();
        let total: f64 = last.iter().sum();
        last.iter()
            .map(|a| if total > 0.0 { a / total } else { 0.0 })
            .collect()
    }
}

/// The miners' hashrates: `n` values from `total / sum` to `spread` times that, geometrically spaced.
pub fn hashrates(n: usize, spread: f64, total: f64) -> Vec<f64> {
    let f = |i: usize| {
        if n <= 1 {
            1.0
        } else {
            spread.powf(i as f64 / (n - 1) as f64)
        }
    };
    let sum: f64 = (0..n).map(f).sum();
    (0..n).map(|i| total * f(i) / sum).collect()
}

/// The proxy's config: routes `r1`, `r2`, ... with `weights`, each on one pool of `pools`.
pub fn config_yaml(weights: &[f64], pools: &[SocketAddr], threads: usize) -> String {
    let mut y = format!(
        "threads: {threads}\nproxies:\n  - name: bench\n    protocol: stratum\n    listen: [{{ address: 127.0.0.1:0 }}]\n    routes:\n"
    );
    for (i, (w, p)) in weights.iter().zip(pools).enumerate() {
        y += &format!(
            "      - {{ name: r{}, weight: {w}, pools: [{{ url: stratum+tcp://{p}, user: bench.r{}, password: x }}] }}\n",
            i + 1,
            i + 1
        );
    }
    y
}

/// Runs `s`, calling `progress` with each sample as it is taken.
pub fn run(s: &Scenario, mut progress: impl FnMut(&Sample)) -> Result<Outcome, String> {
    if s.weights.is_empty() || s.miners == 0 {
        return Err("need at least one route and one miner".into());
    }
    let pools: Vec<SimPool> = s
        .weights
        .iter()
        .map(|_| {
            SimPool::start(SimPoolConfig {
                difficulty: s.difficulty,
                job_interval: Some(s.job_interval),
                ..SimPoolConfig::default()
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("sim pool: {e}"))?;
    let addrs: Vec<SocketAddr> = pools.iter().map(SimPool::addr).collect();
    let yaml = config_yaml(&s.weights, &addrs, s.threads);
    let config = fastproxy::config::Config::from_yaml(&yaml)
        .map_err(|p| format!("generated config: {p:?}\n{yaml}"))?;
    let proxy = fastproxy::proxy::start(&config).map_err(|e| format!("fastproxy: {e}"))?;
    let addr = proxy.local_addrs("bench")[0];
    let rates = hashrates(s.miners, s.spread, s.total_hashrate);
    let stop = Arc::new(AtomicBool::new(false));
    let miners: Vec<_> = rates
        .iter()
        .enumerate()
        .map(|(i, &h)| {
            spawn_miner(
                SimMinerConfig {
                    addr,
                    worker: format!("bench.rig{i}"),
                    extranonce_subscribe: s.extranonce_subscribe,
                    duration: s.duration + Duration::from_secs(60),
                    hashrate: Some(h),
                    ..SimMinerConfig::default()
                },
                stop.clone(),
            )
        })
        .collect();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next = started;
    loop {
        let now = Instant::now();
        if now >= next {
            let sample = Sample {
                t: now.duration_since(started).as_secs_f64(),
                accepted: pools
                    .iter()
                    .map(|p| p.counts().0 as f64 * s.difficulty)
                    .collect(),
            };
            progress(&sample);
            samples.push(sample);
            next += s.sample;
        }
        if now.duration_since(started) >= s.duration {
            break;
        }
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(s.duration),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<MinerReport> = miners
        .into_iter()
        .map(|m| m.join().map_err(|_| "a miner thread panicked".to_string()))
        .collect::<Result<_, _>>()?;
    // Replies still on their way when the miners stopped have been counted by the pools: take the last
    // sample after the miners are done.
    samples.push(Sample {
        t: started.elapsed().as_secs_f64(),
        accepted: pools
            .iter()
            .map(|p| p.counts().0 as f64 * s.difficulty)
            .collect(),
    });
    proxy.stop();
    let sum = |f: fn(&MinerReport) -> u64| reports.iter().map(f).sum::<u64>();
    Ok(Outcome {
        samples,
        hashrates: rates,
        submitted: sum(|r| r.submitted),
        accepted: sum(|r| r.accepted),
        rejected: sum(|r| r.rejected),
        stale: sum(|r| r.reject_codes.get(&21).copied().unwrap_or(0)),
        unanswered: sum(|r| r.unanswered),
        disconnected: sum(|r| u64::from(r.disconnected_by_peer)),
        pools: pools.iter().map(SimPool::counts).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashrates_spread_geometrically_to_the_total() {
        let h = hashrates(200, 100.0, 1e6);
        assert!((h.iter().sum::<f64>() - 1e6).abs() < 1e-3);
        assert!((h[199] / h[0] - 100.0).abs() < 1e-9);
        assert!(h.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn one_route_end_to_end_counts_what_the_pool_accepted_and_plots_it() {
        // Its proxy's reactor threads would skew the CPU figures of the load generator's tests.
        let _serial = crate::tests::serial();
        let s = Scenario {
            weights: vec![100.0],
            miners: 3,
            spread: 4.0,
            total_hashrate: 20_000.0,
            difficulty: 1.0 / 1_048_576.0,
            duration: Duration::from_secs(3),
            sample: Duration::from_millis(500),
            job_interval: Duration::from_secs(1),
            extranonce_subscribe: true,
            threads: 1,
        };
        let o = run(&s, |_| {}).unwrap();
        let (accepted, rejected, _) = o.pools[0];
        assert!(accepted > 0, "{o:?}");
        assert_eq!(rejected, 0, "{o:?}");
        assert_eq!(
            o.accepted, accepted,
            "every accept the pool gave reached a miner"
        );
        let last = o.samples.last().unwrap();
        assert_eq!(last.accepted, vec![accepted as f64 * s.difficulty]);
        assert_eq!(o.split(), vec![1.0]);
        assert_eq!((o.unanswered, o.disconnected), (0, 0), "{o:?}");

        let path = std::env::temp_dir().join(format!("routing-bench-{}.png", std::process::id()));
        let series = [crate::plot::Series {
            label: "r1".into(),
            color: crate::plot::COLORS[0],
            points: o.samples.iter().map(|x| (x.t, 1.0)).collect(),
            target: Some(1.0),
        }];
        crate::plot::write_png(&path, "t", 3.0, "s", &series, (200, 120)).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!((info.width, info.height), (200, 120));
        let blue = buf
            .chunks(3)
            .filter(|p| *p == crate::plot::COLORS[0])
            .count();
        assert!(blue > 100, "the line is drawn: {blue} pixels");
    }
}
