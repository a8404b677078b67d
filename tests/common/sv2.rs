//! Shared helpers of the SV2 end-to-end tests: a proxy config with V1 and SV2 pool entries, the checking SV2
//! sim pool, and sim miners run to completion.

use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::sv2_pool::{Sv2PoolConfig, Sv2SimPool};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// A pool entry of the test config: a V1 pool, or an SV2 pool with its authority key.
pub enum P<'a> {
    V1(SocketAddr),
    Sv2(SocketAddr, &'a str),
}

pub fn yaml(pools: &[P<'_>], extra: &str) -> String {
    let mut y = String::from(
        "threads: 1\nproxies:\n  - name: test\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n",
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        y.push_str("    ");
        y.push_str(line.trim());
        y.push('\n');
    }
    y.push_str("    pools:\n");
    for p in pools {
        match p {
            P::V1(a) => y.push_str(&format!(
                "      - url: stratum+tcp://{a}\n        user: acct.proxy\n        password: x\n"
            )),
            P::Sv2(a, key) => y.push_str(&format!(
                "      - url: stratum2+tcp://{a}\n        user: acct.sv2\n        authority_public_key: {key}\n"
            )),
        }
    }
    y
}

pub fn sv2_pool(cfg: Sv2PoolConfig) -> Sv2SimPool {
    Sv2SimPool::start(cfg).expect("start the SV2 sim pool")
}

pub fn miner(addr: SocketAddr, i: usize, shares: u64) -> SimMinerConfig {
    SimMinerConfig {
        addr,
        worker: format!("farm.rig{i}"),
        max_shares: Some(shares),
        duration: Duration::from_secs(60),
        ..SimMinerConfig::default()
    }
}

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

/// Runs the fastproxy binary on `config` (its `127.0.0.1:0` listener moved to a free port, written under the
/// temp dir as `name`.yaml), stderr piped for its log; the child and its miners' address once it listens.
pub fn spawn_proxy_binary(config: &str, name: &str) -> (std::process::Child, SocketAddr) {
    let port = super::free_port();
    let config = config.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let dir = std::env::temp_dir().join(format!("fastproxy-sv2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fastproxy"))
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    super::wait_until(Duration::from_secs(20), "the proxy listens", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    (child, addr)
}
