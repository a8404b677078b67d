//! `fastproxy sim-pool --protocol sv2`: the simulated Stratum V2 pool (`fastproxy_sim::sv2_pool`) alone,
//! printing its authority public key and the pool entry to put in a config.

use fastproxy_sim::sv2_pool::{Sv2PoolConfig, Sv2SimPool};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The header version bits a share may roll, as the reference pool allows them (BIP 323's 0x1fffffe0, wider
/// than BIP 320's 0x1fffe000): the reference translator grants its miners this mask.
const VERSION_ROLLING_MASK: u32 = 0x1fff_ffe0;

/// Runs the SV2 pool on `listen` until `stop` is set or `run_for` has passed (zero: until stopped), with a new
/// job every `job_interval` and a counter line every 10 s.
pub fn run_sim_pool(
    listen: SocketAddr,
    difficulty: f64,
    extranonce_prefix_size: usize,
    extranonce_size: usize,
    job_interval: Duration,
    run_for: Duration,
    stop: &AtomicBool,
) -> ExitCode {
    let Ok(extranonce_size) = u16::try_from(extranonce_size) else {
        eprintln!("--extranonce2-size {extranonce_size} is too large");
        return ExitCode::FAILURE;
    };
    let pool = match Sv2SimPool::start(Sv2PoolConfig {
        listen,
        difficulty,
        extranonce_prefix_size,
        extranonce_size,
        version_rolling_mask: VERSION_ROLLING_MASK,
        ..Sv2PoolConfig::default()
    }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start the simulated SV2 pool on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = pool.addr();
    println!(
        "simulated Stratum V2 pool on {addr} (difficulty {difficulty}, extranonce prefix {extranonce_prefix_size} + {extranonce_size} bytes, version mask {VERSION_ROLLING_MASK:08x}); Ctrl-C stops"
    );
    println!("authority_public_key: {}", pool.authority_public_key());
    println!("url: stratum2+tcp://{addr}");
    let started = Instant::now();
    let (mut last_job, mut last_stats) = (Instant::now(), Instant::now());
    while !stop.load(Ordering::Relaxed) && (run_for.is_zero() || started.elapsed() < run_for) {
        std::thread::sleep(Duration::from_millis(200));
        if last_job.elapsed() >= job_interval {
            last_job = Instant::now();
            pool.new_job(false);
        }
        if last_stats.elapsed() >= Duration::from_secs(10) {
            last_stats = Instant::now();
            let s = pool.stats();
            let rejected: u64 = s.rejected_by_code.values().sum();
            println!(
                "connections {} | submits {} accepted {} rejected {} {:?}",
                s.connections_total, s.submits, s.accepted, rejected, s.rejected_by_code
            );
        }
    }
    let s = pool.stats();
    let rejected: u64 = s.rejected_by_code.values().sum();
    println!(
        "total: connections {} submits {} accepted {} rejected {} {:?}",
        s.connections_total, s.submits, s.accepted, rejected, s.rejected_by_code
    );
    pool.stop();
    ExitCode::SUCCESS
}

/// The pool behind `fastproxy demo`: the V1 sim pool, or the SV2 one (`--upstream sv2`).
pub enum DemoPool {
    V1(fastproxy_sim::pool::SimPool),
    Sv2 {
        pool: Sv2SimPool,
        job_interval: Duration,
        last_job: Instant,
    },
}

impl DemoPool {
    /// Starts the SV2 pool (`sv2`) or the V1 one, at `difficulty`, with a new job every `job_interval`.
    pub fn start(sv2: bool, difficulty: f64, job_interval: Duration) -> std::io::Result<DemoPool> {
        Ok(match sv2 {
            false => DemoPool::V1(fastproxy_sim::pool::SimPool::start(
                fastproxy_sim::pool::SimPoolConfig {
                    difficulty,
                    job_interval: Some(job_interval),
                    ..fastproxy_sim::pool::SimPoolConfig::default()
                },
            )?),
            true => DemoPool::Sv2 {
                pool: Sv2SimPool::start(Sv2PoolConfig {
                    difficulty,
                    ..Sv2PoolConfig::default()
                })?,
                job_interval,
                last_job: Instant::now(),
            },
        })
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            DemoPool::V1(p) => p.addr(),
            DemoPool::Sv2 { pool, .. } => pool.addr(),
        }
    }

    /// The pool entry of the demo config (YAML lines under `pools:`).
    pub fn pool_entry(&self) -> String {
        match self {
            DemoPool::V1(p) => format!(
                "      - url: stratum+tcp://{}\n        user: demo.proxy\n        password: x\n",
                p.addr()
            ),
            DemoPool::Sv2 { pool, .. } => format!(
                "      - url: stratum2+tcp://{}\n        user: demo.proxy\n        authority_public_key: {}\n",
                pool.addr(),
                pool.authority_public_key()
            ),
        }
    }

    /// Shares the pool accepted and rejected so far.
    pub fn counts(&self) -> (u64, u64) {
        match self {
            DemoPool::V1(p) => {
                let s = p.stats();
                (s.accepted, s.rejected)
            }
            DemoPool::Sv2 { pool, .. } => {
                let s = pool.stats();
                (s.accepted, s.rejected_by_code.values().sum())
            }
        }
    }

    /// Sends a new job when one is due (the SV2 sim pool has no timer of its own).
    pub fn tick(&mut self) {
        if let DemoPool::Sv2 {
            pool,
            job_interval,
            last_job,
        } = self
        {
            if last_job.elapsed() >= *job_interval {
                *last_job = Instant::now();
                pool.new_job(false);
            }
        }
    }

    pub fn stop(self) {
        match self {
            DemoPool::V1(p) => p.stop(),
            DemoPool::Sv2 { pool, .. } => pool.stop(),
        }
    }
}
