//! `sv2-compare`: fastproxy and the reference translator (translator_sv2) side by side on one share-checking
//! SV2 sim pool that refuses every Nth share, with hashing V1 sim miners; prints one line per run.
//!
//! Each run starts its proxy process against the same in-process `Sv2SimPool`, connects `--miners` sim miners
//! (real hashing, paced to `--hashrate` each; the pool's difficulty is what the translator gives each miner
//! from its config, so every share a miner finds meets the pool's target too), measures shares/s and the proxy
//! process's CPU (/proc) over the window after `--warmup`, then stops the miners, lets the last shares settle
//! and compares the miners' `true` replies (whole run) with what the pool accepted. Every run stops by itself.

use clap::Parser;
use fastproxy_loadgen::procstat::{cpu_ns, mem, Scope};
use fastproxy_loadgen::target::config_yaml;
use fastproxy_loadgen::Dialect;
use fastproxy_sim::miner::{spawn_miner, LiveCounters, SimMinerConfig};
use fastproxy_sim::sv2_pool::{Sv2PoolConfig, Sv2SimPool};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// fastproxy vs translator_sv2 through one SV2 sim pool, with hashing V1 miners.
#[derive(Parser, Debug)]
#[command(name = "sv2-compare")]
struct Args {
    /// Sim miners per run.
    #[arg(long, default_value_t = 100)]
    miners: usize,
    /// Hashes per second of each miner.
    #[arg(long, default_value_t = 10_000.0)]
    hashrate: f64,
    /// Shares per minute per miner (with `--hashrate`: the difficulty of the miners and of the pool).
    #[arg(long, default_value_t = 300.0)]
    shares_per_minute: f64,
    /// The pool refuses every Nth submit it would accept.
    #[arg(long, default_value_t = 10)]
    reject_every: u64,
    /// Seconds measured per run (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of mining before the measured window.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Rounds, each one run per proxy (fastproxy first, then the translator).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Which proxies: fastproxy, translator or both.
    #[arg(long, default_value = "both")]
    only: String,
    /// The fastproxy binary (default: `fastproxy` next to this one).
    #[arg(long)]
    fastproxy: Option<PathBuf>,
    /// The translator_sv2 binary (default: $TRANSLATOR_SV2).
    #[arg(long)]
    translator: Option<PathBuf>,
}

/// The proxy process of one run; killed when dropped.
struct Proxy(Child);
impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct RunResult {
    shares_per_s: f64,
    cpu_us_per_share: f64,
    rss_per_miner: f64,
    miner_difficulty: f64,
    submitted: u64,
    told_true: u64,
    told_false: u64,
    unanswered: u64,
    pool_submits: u64,
    pool_accepted: u64,
    pool_refused: u64,
    true_not_accepted: u64,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_listening(addr: SocketAddr, child: &mut Child) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!("the proxy exited at start ({s})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens at {addr} after 30 s"))
}

fn translator_toml(listen: u16, pool: &Sv2SimPool, a: &Args) -> String {
    format!(
        r#"downstream_address = "127.0.0.1"
downstream_port = {listen}
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
aggregate_channels = true
supported_extensions = []
[downstream_difficulty_config]
min_individual_miner_hashrate = {:.1}
shares_per_minute = {:.1}
enable_vardiff = false
job_keepalive_interval_secs = 60
[[upstreams]]
address = "{}"
port = {}
authority_pubkey = "{}"
user_identity = "sv2compare.tproxy"
"#,
        a.hashrate,
        a.shares_per_minute,
        pool.addr().ip(),
        pool.addr().port(),
        pool.authority_public_key()
    )
}

/// Starts `which` against `pool`; returns the process and the V1 address its miners use.
fn start_proxy(
    which: &str,
    pool: &Sv2SimPool,
    a: &Args,
    dir: &Path,
) -> Result<(Proxy, SocketAddr), String> {
    let port = free_port();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = if which == "fastproxy" {
        let bin = match &a.fastproxy {
            Some(b) => b.clone(),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .with_file_name("fastproxy"),
        };
        let v1 = format!("url: stratum+tcp://{}\n", pool.addr());
        let sv2 = format!(
            "url: stratum2+tcp://{}\n        authority_public_key: {}\n",
            pool.addr(),
            pool.authority_public_key()
        );
        let yaml =
            config_yaml(listen, pool.addr(), 1, Dialect::Stratum, false, 1).replace(&v1, &sv2);
        let path = dir.join("fastproxy.yaml");
        std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
        let mut c = Command::new(bin);
        c.arg("-q").arg("-c").arg(path);
        c
    } else {
        let bin = a
            .translator
            .clone()
            .or_else(|| std::env::var_os("TRANSLATOR_SV2").map(PathBuf::from))
            .ok_or("set TRANSLATOR_SV2 (or --translator) to a translator_sv2 binary")?;
        let path = dir.join("tproxy.toml");
        std::fs::write(&path, translator_toml(port, pool, a)).map_err(|e| e.to_string())?;
        let mut c = Command::new(bin);
        c.arg("-c").arg(path);
        if std::env::var_os("RUST_LOG").is_none() {
            c.env("RUST_LOG", "warn");
        }
        c
    };
    let log = std::fs::File::create(dir.join(format!("{which}.log"))).map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {which}: {e}"))?;
    wait_listening(listen, &mut child)?;
    Ok((Proxy(child), listen))
}

fn answered(live: &LiveCounters) -> u64 {
    live.accepted.load(Ordering::Relaxed) + live.rejected.load(Ordering::Relaxed)
}

fn run(which: &str, a: &Args, dir: &Path) -> Result<RunResult, String> {
    let difficulty = a.hashrate * 60.0 / (a.shares_per_minute * 4_294_967_296.0);
    let pool = Sv2SimPool::start(Sv2PoolConfig {
        difficulty,
        extranonce_size: 16,
        reject_every: a.reject_every,
        // BIP 323's mask, what translator_sv2 0.6.0 grants its V1 miners (with BIP 320's 0x1fffe000 the pool
        // refuses every share it forwards: invalid-non-rollable-version-bit).
        version_rolling_mask: 0x1fff_ffe0,
        ..Sv2PoolConfig::default()
    })
    .map_err(|e| format!("the SV2 pool cannot start: {e}"))?;
    let (mut proxy, addr) = start_proxy(which, &pool, a, dir)?;
    let pid = proxy.0.id();
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = mem(Some(pid)).map(|m| m.rss_kib).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(LiveCounters::default());
    let hard_stop = Duration::from_secs_f64(a.warmup + a.duration + 30.0);
    let miners: Vec<_> = (0..a.miners)
        .map(|i| {
            spawn_miner(
                SimMinerConfig {
                    addr,
                    worker: format!("cmp.rig{i}"),
                    version_rolling: true,
                    duration: hard_stop,
                    hashrate: Some(a.hashrate),
                    live: Some(Arc::clone(&live)),
                    ..SimMinerConfig::default()
                },
                Arc::clone(&stop),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(a.warmup));
    let (c0, s0, t0) = (cpu_ns(&Scope::Pid(pid)), answered(&live), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(a.duration));
    let (c1, s1, secs) = (
        cpu_ns(&Scope::Pid(pid)),
        answered(&live),
        t0.elapsed().as_secs_f64(),
    );
    let rss_busy = mem(Some(pid)).map(|m| m.rss_kib).unwrap_or(0);
    stop.store(true, Ordering::SeqCst);
    let reports: Vec<_> = miners.into_iter().filter_map(|h| h.join().ok()).collect();
    // Shares the proxy had in flight when the miners left: let them reach the pool.
    std::thread::sleep(Duration::from_secs(2));
    let alive = proxy.0.try_wait().ok().flatten().is_none();
    let ps = pool.stats();
    eprintln!("{which}: pool refusals by code {:?}", ps.rejected_by_code);
    drop(proxy);
    pool.stop();
    if !alive {
        return Err(format!("{which} exited during the run"));
    }
    let shares = s1 - s0;
    let cpu = c1.zip(c0).map(|(b, a)| b.saturating_sub(a)).unwrap_or(0);
    let told_true: u64 = reports.iter().map(|r| r.accepted).sum();
    let told_false: u64 = reports.iter().map(|r| r.rejected).sum();
    Ok(RunResult {
        shares_per_s: shares as f64 / secs,
        cpu_us_per_share: cpu as f64 / 1000.0 / shares.max(1) as f64,
        rss_per_miner: rss_busy.saturating_sub(rss_idle) as f64 * 1024.0 / a.miners as f64,
        miner_difficulty: reports.iter().map(|r| r.difficulty).fold(0.0, f64::max),
        submitted: reports.iter().map(|r| r.submitted).sum(),
        told_true,
        told_false,
        unanswered: reports.iter().map(|r| r.unanswered).sum(),
        pool_submits: ps.submits,
        pool_accepted: ps.accepted,
        pool_refused: ps.rejected_by_code.values().sum(),
        true_not_accepted: told_true.saturating_sub(ps.accepted),
    })
}

fn main() -> ExitCode {
    let a = Args::parse();
    let dir = std::env::temp_dir().join(format!("fastproxy-sv2-compare-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("sv2-compare: {e}");
        return ExitCode::FAILURE;
    }
    let which: Vec<&str> = match a.only.as_str() {
        "fastproxy" => vec!["fastproxy"],
        "translator" => vec!["translator"],
        _ => vec!["fastproxy", "translator"],
    };
    println!(
        "# {} miners x {} H/s, {} shares/min each, pool refuses every {}th, {} s measured after {} s; logs in {}",
        a.miners,
        a.hashrate,
        a.shares_per_minute,
        a.reject_every,
        a.duration,
        a.warmup,
        dir.display()
    );
    println!("round proxy shares/s cpu_us/share rss_B/miner miner_diff submitted told_true told_false unanswered pool_submits pool_accepted pool_refused true_not_accepted");
    let mut failed = false;
    for round in 1..=a.rounds {
        for w in &which {
            match run(w, &a, &dir) {
                Ok(r) => println!(
                    "{round} {w} {:.0} {:.1} {:.0} {:.3e} {} {} {} {} {} {} {} {}",
                    r.shares_per_s,
                    r.cpu_us_per_share,
                    r.rss_per_miner,
                    r.miner_difficulty,
                    r.submitted,
                    r.told_true,
                    r.told_false,
                    r.unanswered,
                    r.pool_submits,
                    r.pool_accepted,
                    r.pool_refused,
                    r.true_not_accepted
                ),
                Err(e) => {
                    eprintln!("{round} {w}: {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
