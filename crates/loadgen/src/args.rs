//! The load generator's options (clap): what to measure, against which proxy, how many miners, and the
//! bounds that make every run stop by itself.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// What a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Miners connect, subscribe and authorize: time to admit all, memory per miner.
    Connect,
    /// Connect, then every miner keeps one share in flight: shares/s, proxy CPU per share, added latency.
    Shares,
    /// Connect, then the pool sends K notifies: time for each to reach every miner.
    Fanout,
    /// Miners straight to the pool (no proxy): connect, shares and fan-out, the load generator's ceiling.
    Direct,
}

/// The Stratum dialect miners and pool speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Bitcoin Stratum V1.
    Stratum,
    /// Equihash stratum (ZIP 301).
    Equihash,
}

/// The upstream of a started fastproxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// The load generator's own Stratum V1 pool.
    V1,
    /// A Stratum V2 pool (`fastproxy_sim::sv2_pool::Sv2SimPool`, in this process, checking every share
    /// against a target every hash meets): V1 miners, SV2 upstream.
    Sv2,
}

/// Load generator for Stratum proxies: a fast in-process pool and many simulated miners on one mio reactor
/// thread, pointed at fastproxy (started here) or any other Stratum V1 / Equihash proxy. Loopback only;
/// every run is bounded by --timeout.
#[derive(Parser, Debug, Clone)]
#[command(name = "fastproxy-loadgen", version)]
pub struct Options {
    /// What to measure.
    #[arg(long, value_enum, default_value = "connect")]
    pub mode: Mode,
    /// Simulated miners.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub miners: u32,
    /// If the open-file limit cannot hold --miners, run the largest number that fits instead of failing.
    #[arg(long)]
    pub fit_fd_limit: bool,
    /// Dialect of the miners and the pool.
    #[arg(long, value_enum, default_value = "stratum")]
    pub protocol: Dialect,
    /// Start fastproxy (as a child process running `fastproxy -c`, with a generated config) and test it.
    #[arg(long, conflicts_with = "target")]
    pub start_proxy: bool,
    /// The upstream: the load generator's V1 pool, or an SV2 pool for the started fastproxy (a child) or for
    /// the --target proxy (e.g. translator_sv2 with --spawn, configured from the pool line printed at start).
    #[arg(long, value_enum, default_value = "v1")]
    pub upstream: Upstream,
    /// With --upstream sv2: where the SV2 pool listens (loopback; port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "HOST:PORT")]
    pub sv2_listen: SocketAddr,
    /// With --upstream sv2: the channel's difficulty (the default saturates the target: every hash meets it;
    /// the load generator's miners do not mine, so a real difficulty has the proxy refuse most shares).
    #[arg(long, default_value_t = 1e-12)]
    pub sv2_difficulty: f64,
    /// With --upstream sv2: the channel's extranonce size the SV2 pool grants (after its 4-byte prefix).
    #[arg(long, default_value_t = 8)]
    pub sv2_extranonce_size: u16,
    /// With --upstream sv2: every Nth submit the pool would accept is refused instead (0: none), so the
    /// miners told `true` for a refused share can be counted.
    #[arg(long, default_value_t = 0)]
    pub sv2_reject_every: u64,
    /// With --upstream sv2: valid shares the SV2 pool acknowledges per SubmitShares.Success.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub sv2_batch: u32,
    /// The SV2 pool's address and authority key, set by the run when --upstream sv2.
    #[arg(skip)]
    pub sv2_pool: Option<(SocketAddr, String)>,
    /// Reactor threads of the started fastproxy.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Run the started fastproxy inside this process (CPU from its reactor threads; RSS is then shared
    /// with the load generator) instead of as a child process.
    #[arg(long, requires = "start_proxy")]
    pub in_process: bool,
    /// The fastproxy binary for --start-proxy (default: `fastproxy` beside this executable).
    #[arg(long, value_name = "FILE")]
    pub proxy_bin: Option<PathBuf>,
    /// Test a proxy already listening here (loopback only); configure it against the pool address printed
    /// at start (or fixed with --pool-listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<SocketAddr>,
    /// Start this command as the proxy under test (after the pool listens), to measure its CPU and memory:
    /// the program and its arguments, split on spaces. Use with --target.
    #[arg(long, value_name = "COMMAND", requires = "target")]
    pub spawn: Option<String>,
    /// Measure CPU and memory of this already running proxy process.
    #[arg(long, value_name = "PID", conflicts_with = "spawn")]
    pub proxy_pid: Option<u32>,
    /// Where the pool listens (loopback; port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "HOST:PORT")]
    pub pool_listen: SocketAddr,
    /// Seconds to wait for the proxy under test to connect to the pool before the miners start.
    #[arg(long, default_value_t = 10.0)]
    pub pool_wait: f64,
    /// Shares mode: seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Shares mode: seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Shares mode: total submits per second over all miners (0: each miner submits as soon as its previous
    /// share is answered).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Fan-out mode: notifies the pool sends.
    #[arg(long, default_value_t = 10)]
    pub notifies: u32,
    /// Fan-out mode: milliseconds between one notify reaching every miner (or timing out) and the next.
    #[arg(long, default_value_t = 200)]
    pub notify_gap_ms: u64,
    /// The started fastproxy validates every share (`validate_shares: true`), and the pool sets a V1
    /// difficulty so low that every (unhashed) share meets it: each share is hashed by the proxy, then
    /// forwarded. Compare with the same run without it for the cost of validation.
    #[arg(long)]
    pub validate: bool,
    /// The started fastproxy splits its miners over this many routes of equal weight, all to the load
    /// generator's pool (`routes:` instead of `pools:`): compare `--routes 3` with `--routes 1` for what
    /// routing costs on the share path.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub routes: u32,
    /// Merkle branches per job (12 is typical of Bitcoin mainnet; sets the notify's size).
    #[arg(long, default_value_t = 12)]
    pub merkle_branches: usize,
    /// Miners per loopback source address (127.0.0.2, 127.0.0.3, ...; source ports from 10000 up).
    #[arg(long, default_value_t = 16_384)]
    pub miners_per_source: u32,
    /// Connections being set up at once (connected but not yet authorized).
    #[arg(long, default_value_t = 1024)]
    pub connect_concurrency: u32,
    /// Hard bound of the whole run in seconds: whatever is not done by then is reported as such.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl Options {
    /// Options for a run with defaults (tests and library users).
    pub fn new(mode: Mode, miners: u32) -> Options {
        let mut o = Options::parse_from(["fastproxy-loadgen"]);
        o.mode = mode;
        o.miners = miners;
        o
    }

    /// Checks what clap cannot: loopback only, sane numbers.
    pub fn check(&self) -> Result<(), String> {
        let loopback = |a: &SocketAddr, what: &str| {
            if a.ip().is_loopback() {
                Ok(())
            } else {
                Err(format!(
                    "{what} {a} is not a loopback address (127.0.0.0/8 only)"
                ))
            }
        };
        loopback(&self.pool_listen, "--pool-listen")?;
        if let Some(t) = &self.target {
            loopback(t, "--target")?;
        }
        if self.mode != Mode::Direct && !self.start_proxy && self.target.is_none() {
            return Err("give --start-proxy or --target HOST:PORT (or use --mode direct)".into());
        }
        if self.mode == Mode::Direct && (self.start_proxy || self.target.is_some()) {
            return Err(
                "--mode direct connects miners straight to the pool: no proxy options".into(),
            );
        }
        if self.upstream == Upstream::Sv2
            && (self.in_process || self.protocol != Dialect::Stratum || self.mode == Mode::Direct)
        {
            return Err("--upstream sv2 needs a proxy in its own process and stratum".into());
        }
        loopback(&self.sv2_listen, "--sv2-listen")?;
        if self.miners == 0 || self.miners_per_source == 0 || self.connect_concurrency == 0 {
            return Err(
                "--miners, --miners-per-source and --connect-concurrency must be at least 1".into(),
            );
        }
        if self.miners_per_source > 65_535 - super::conn::FIRST_SOURCE_PORT {
            return Err("--miners-per-source: at most 55535".into());
        }
        if self.miners / self.miners_per_source > 250 {
            return Err("too many source addresses: raise --miners-per-source".into());
        }
        for (v, what) in [
            (self.timeout, "--timeout"),
            (self.duration, "--duration"),
            (self.pool_wait, "--pool-wait"),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return Err(format!("{what} must be a positive number of seconds"));
            }
        }
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if !non_negative(self.warmup) || !non_negative(self.rate) {
            return Err("--warmup and --rate must be zero or positive".into());
        }
        if self.validate && (self.protocol != Dialect::Stratum || !self.start_proxy) {
            return Err(
                "--validate needs --start-proxy and --protocol stratum (its Equihash solutions are not real)"
                    .into(),
            );
        }
        if self.routes > 1 && !self.start_proxy {
            return Err(
                "--routes needs --start-proxy (it shapes the started fastproxy's config)".into(),
            );
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(())
    }
}
