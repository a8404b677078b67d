//! Shared test helpers: a proxy in front of simulated pools, raw JSON-line clients, bounded waits.
#![allow(dead_code)]

pub mod api;
pub mod fake_pool;
pub mod sv2;
pub mod sv2_msgs;
pub mod tls;

use fastproxy::config::Config;
use fastproxy::proxy::RunningProxy;
use fastproxy::work::{self, Job};
use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts env_logger once so `RUST_LOG=debug cargo test` shows the proxy's log.
pub fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A simulated pool with a tiny difficulty.
pub fn pool(cfg: SimPoolConfig) -> SimPool {
    SimPool::start(cfg).expect("start simulated pool")
}

/// Proxy YAML for one stratum proxy on 127.0.0.1:0 in front of `pools`, with extra proxy keys.
pub fn proxy_yaml(pools: &[SocketAddr], extra: &str) -> String {
    let pools: Vec<sv2::P<'_>> = pools.iter().map(|&a| sv2::P::V1(a)).collect();
    sv2::yaml(&pools, extra)
}

/// A hashing sim miner `farm.rig{i}` on `addr` that stops after `shares` shares (or 60 s).
pub fn miner(addr: SocketAddr, i: usize, shares: u64) -> SimMinerConfig {
    SimMinerConfig {
        addr,
        worker: format!("farm.rig{i}"),
        max_shares: Some(shares),
        duration: Duration::from_secs(60),
        ..SimMinerConfig::default()
    }
}

/// Runs the sim miners to their end: their reports, in order.
pub fn run_all(cfgs: Vec<SimMinerConfig>) -> Vec<MinerReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = cfgs
        .into_iter()
        .map(|c| spawn_miner(c, stop.clone()))
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("miner thread"))
        .collect()
}

/// Starts a proxy from YAML.
pub fn start_proxy(yaml: &str) -> RunningProxy {
    init_log();
    let config =
        Config::from_yaml(yaml).unwrap_or_else(|p| panic!("bad test config {p:?}\n{yaml}"));
    fastproxy::proxy::start(&config).expect("start proxy")
}

/// A port free on 127.0.0.1 right now (for processes that need a fixed port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends SIGTERM to `child` and waits (at most `limit`) for it to exit; returns its exit status and stderr.
pub fn terminate(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < limit,
            "no exit within {limit:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut log);
    }
    (status, log)
}

/// Waits until `f` is true, failing the test with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw miner speaking JSON lines, for exact protocol checks.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            next_id: 1,
        }
    }

    /// A handle on the socket (for socket options, or reading it elsewhere).
    pub fn stream(&self) -> TcpStream {
        self.writer.try_clone().unwrap()
    }

    /// This client's own address.
    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().unwrap()
    }

    /// Closes with a TCP reset (SO_LINGER 0): the proxy sees the miner vanish, not a half-close.
    pub fn reset(self) {
        let _ = socket2::SockRef::from(&self.writer).set_linger(Some(Duration::ZERO));
    }

    /// Half-closes: no more requests, replies still readable.
    pub fn shutdown_write(&self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Write);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends a request and returns its id.
    pub fn request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "method": method, "params": params}).to_string() + "\n";
        self.writer.write_all(line.as_bytes()).expect("write");
        id
    }

    /// Next line as JSON; `None` on timeout; panics on EOF unless `eof_ok`.
    pub fn read(&mut self, limit: Duration) -> Option<Value> {
        let start = Instant::now();
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) if line.ends_with('\n') => {
                    return Some(serde_json::from_str(line.trim()).expect("proxy sent JSON"))
                }
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return None,
            }
            if start.elapsed() > limit {
                return None;
            }
        }
    }

    /// Reads until the reply to `id`, returning it and the notifications seen before it.
    pub fn reply(&mut self, id: u64, limit: Duration) -> (Value, Vec<Value>) {
        let start = Instant::now();
        let mut notes = Vec::new();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            let v = self
                .read(left)
                .unwrap_or_else(|| panic!("no reply to id {id}; saw {notes:?}"));
            if v["id"] == json!(id) && v.get("method").is_none() {
                return (v, notes);
            }
            notes.push(v);
        }
    }

    /// Subscribe + authorize; returns (extranonce1 hex, extranonce2_size, notifications).
    pub fn handshake(&mut self) -> (String, u64, Vec<Value>) {
        let s = self.request("mining.subscribe", json!(["test/1"]));
        let (r, mut notes) = self.reply(s, Duration::from_secs(5));
        let e1 = r["result"][1].as_str().expect("extranonce1").to_string();
        let n = r["result"][2].as_u64().expect("integer extranonce2_size");
        let a = self.request("mining.authorize", json!(["rig.1", "x"]));
        let (r, more) = self.reply(a, Duration::from_secs(5));
        assert_eq!(r["result"], json!(true));
        notes.extend(more);
        (e1, n, notes)
    }

    /// Submits a share for `job` whose extranonce2 (of `size` bytes) is the number `i`, with ntime and nonce 0;
    /// returns the request id.
    pub fn submit_numbered(&mut self, job: &Value, size: u64, i: u64) -> u64 {
        let en2 = format!("{:0w$x}", i, w = 2 * size as usize);
        self.request(
            "mining.submit",
            json!(["w", job, en2, "00000000", "00000000"]),
        )
    }

    /// Submits a share of `job` with extranonce2 `e2`, the job's ntime and `nonce` (worker "w"); returns the
    /// request id.
    pub fn submit_share(&mut self, job: &Job, e2: &[u8], nonce: u32) -> u64 {
        self.request(
            "mining.submit",
            json!([
                "w",
                job.job_id,
                fastproxy::hex::encode(e2),
                work::u32_to_hex(job.ntime),
                work::u32_to_hex(nonce)
            ]),
        )
    }

    /// The job id of the latest mining.notify among `seen`, else of the next one read.
    pub fn job_id(&mut self, seen: &[Value]) -> Value {
        if let Some(v) = seen
            .iter()
            .rev()
            .find(|v| v["method"] == json!("mining.notify"))
        {
            return v["params"][0].clone();
        }
        for _ in 0..20 {
            let v = self.read(Duration::from_secs(5)).expect("a mining.notify");
            if v["method"] == json!("mining.notify") {
                return v["params"][0].clone();
            }
        }
        panic!("no mining.notify");
    }

    /// True when the proxy closed the connection within `limit` (lines before EOF are skipped).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        let mut line = String::new();
        while start.elapsed() < limit {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// The first nonce whose share of `job` (extranonce1 `e1`, extranonce2 `e2`, the job's ntime and version) meets
/// `difficulty` (`want` true) or misses it (`want` false).
pub fn nonce_for(job: &Job, e1: &[u8], e2: &[u8], difficulty: f64, want: bool) -> u32 {
    let target = work::target_from_difficulty(difficulty);
    let merkle = job.merkle_root(&job.coinbase(e1, e2));
    let mut header = job.header_with_merkle_root(&merkle, job.ntime, 0, job.version);
    (0u32..50_000_000)
        .find(|&n| {
            header[76..].copy_from_slice(&n.to_le_bytes());
            work::hash_meets_target(&work::sha256d(&header), &target) == want
        })
        .expect("a nonce within 50M tries")
}

/// Reads until a job has come (every notification is kept in `notes`); the latest job and difficulty.
pub fn current_work(c: &mut Client, notes: &mut Vec<Value>) -> (Job, f64) {
    while !notes.iter().any(|v| v["method"] == json!("mining.notify")) {
        notes.push(c.read(Duration::from_secs(5)).expect("a job"));
    }
    let last = |m: &str| notes.iter().rev().find(|v| v["method"] == json!(m));
    let job = Job::from_notify_params(&last("mining.notify").unwrap()["params"]).unwrap();
    let difficulty = last("mining.set_difficulty").expect("a difficulty")["params"][0]
        .as_f64()
        .unwrap();
    (job, difficulty)
}
