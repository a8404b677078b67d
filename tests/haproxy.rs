//! A real HAProxy (TCP mode, PROXY protocol v1 and v2) in front of fastproxy on 127.0.0.1: the addresses
//! fastproxy logs are the miners' own, shares still validate, and scripts/haproxy-farm.cfg spreads miners over
//! two fastproxy instances. Needs the `haproxy` binary (.ci/run and scripts/test.sh install it).

mod common;

use common::*;
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn haproxy_bin() -> String {
    for p in [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("haproxy is not installed: run `bash scripts/test.sh` (or apt-get install haproxy)");
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fastproxy-haproxy-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process killed on drop; its stderr goes to a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd.stdout(Stdio::null()).stderr(f).spawn().unwrap();
    Proc { child, log }
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fastproxy process with one listener expecting the PROXY protocol `mode`.
fn fastproxy(dir: &Path, name: &str, port: u16, mode: &str, pool: SocketAddr) -> Proc {
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &cfg,
        format!(
            "threads: 1\nproxies:\n  - name: {name}\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:{port}\n        proxy_protocol: {mode}\n    pools:\n      - url: stratum+tcp://{pool}\n        user: acct.{name}\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastproxy"));
    cmd.arg("-c").arg(&cfg).env("RUST_LOG", "debug");
    let p = spawn(cmd, dir.join(format!("{name}.log")));
    wait_port(port);
    p
}

fn haproxy(cfg: &Path, env: &[(&str, String)], dir: &Path, listen: u16) -> Proc {
    let mut cmd = Command::new(haproxy_bin());
    cmd.arg("-db").arg("-f").arg(cfg);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let p = spawn(cmd, dir.join("haproxy.log"));
    wait_port(listen);
    p
}

/// Connects through HAProxy, subscribes and authorizes; returns the client and its own address.
fn miner_through(port: u16) -> (Client, SocketAddr) {
    let c = Client::connect(SocketAddr::from(([127, 0, 0, 1], port)));
    let local = c.local_addr();
    let mut c = c;
    c.handshake();
    (c, local)
}

fn assert_logged(logs: &str, addr: SocketAddr) {
    let needle = format!("miner {addr} connected (PROXY header from");
    assert!(
        logs.contains(&needle),
        "fastproxy logged the miner's own address {addr}:\n{logs}"
    );
}

#[test]
fn proxy_protocol_v1_through_haproxy_send_proxy() {
    let dir = temp_dir("v1");
    let pool = pool(SimPoolConfig::default());
    let fp_port = free_port();
    let fp = fastproxy(&dir, "v1", fp_port, "v1", pool.addr());
    let front = free_port();
    let cfg = dir.join("v1.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1m\n    timeout server 1m\nfrontend f\n    bind 127.0.0.1:{front}\n    default_backend b\nbackend b\n    server s1 127.0.0.1:{fp_port} send-proxy\n"
        ),
    )
    .unwrap();
    let _hap = haproxy(&cfg, &[], &dir, front);
    let (_c1, a1) = miner_through(front);
    let (_c2, a2) = miner_through(front);
    let r = spawn_miner(
        SimMinerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], front)),
            max_shares: Some(3),
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
    .join()
    .unwrap();
    assert_eq!(r.accepted, 3, "shares validate through HAProxy: {r:?}");
    let logs = fp.log();
    assert_logged(&logs, a1);
    assert_logged(&logs, a2);
}

#[test]
fn the_farm_config_spreads_miners_over_two_instances_with_proxy_protocol_v2() {
    let dir = temp_dir("farm");
    let pool = pool(SimPoolConfig::default());
    let (p1, p2) = (free_port(), free_port());
    let fp1 = fastproxy(&dir, "fp1", p1, "v2", pool.addr());
    let fp2 = fastproxy(&dir, "fp2", p2, "v2", pool.addr());
    let front = free_port();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/haproxy-farm.cfg");
    let hap = haproxy(
        &cfg,
        &[
            ("FARM_LISTEN", format!("127.0.0.1:{front}")),
            ("FASTPROXY_1", format!("127.0.0.1:{p1}")),
            ("FASTPROXY_2", format!("127.0.0.1:{p2}")),
        ],
        &dir,
        front,
    );
    let clients: Vec<(Client, SocketAddr)> = (0..6).map(|_| miner_through(front)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let miners: Vec<_> = (0..4)
        .map(|i| {
            spawn_miner(
                SimMinerConfig {
                    addr: SocketAddr::from(([127, 0, 0, 1], front)),
                    worker: format!("farm.rig{i}"),
                    max_shares: Some(2),
                    duration: Duration::from_secs(60),
                    ..SimMinerConfig::default()
                },
                stop.clone(),
            )
        })
        .collect();
    for h in miners {
        let r = h.join().unwrap();
        assert_eq!(r.accepted, 2, "{r:?}");
    }
    let (l1, l2) = (fp1.log(), fp2.log());
    let both = format!("{l1}\n{l2}");
    for (_, addr) in &clients {
        assert_logged(&both, *addr);
    }
    let on1 = clients
        .iter()
        .filter(|(_, a)| l1.contains(&format!("miner {a} connected")))
        .count();
    let on2 = clients
        .iter()
        .filter(|(_, a)| l2.contains(&format!("miner {a} connected")))
        .count();
    assert!(
        on1 >= 2 && on2 >= 2,
        "leastconn spread the miners: {on1} and {on2}"
    );
    assert_eq!(
        pool.stats().connections_total,
        2,
        "one pool connection per instance"
    );
    // The Stratum health check passes (a failing check would have taken a server out: the log says so).
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!hap.log().contains("is DOWN"), "{}", hap.log());
}

#[test]
fn a_required_header_that_is_missing_or_malformed_closes_only_that_connection() {
    let dir = temp_dir("bad");
    let pool = pool(SimPoolConfig::default());
    let port = free_port();
    let fp = fastproxy(&dir, "bad", port, "v2", pool.addr());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut no_header = Client::connect(addr);
    no_header
        .send_raw(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .unwrap();
    assert!(no_header.closed_within(Duration::from_secs(5)));
    let mut v1_on_v2 = Client::connect(addr);
    v1_on_v2
        .send_raw(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n")
        .unwrap();
    assert!(v1_on_v2.closed_within(Duration::from_secs(5)));
    // A good v2 header: the address it names is the one logged.
    let mut good = Client::connect(addr);
    let mut hdr = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    hdr.extend_from_slice(&[10, 1, 2, 3, 10, 9, 9, 9, 0x30, 0x39, 0x0d, 0x05]);
    good.send_raw(&hdr).unwrap();
    good.handshake();
    std::thread::sleep(Duration::from_millis(200));
    let logs = fp.log();
    assert_logged(&logs, "10.1.2.3:12345".parse().unwrap());
    assert!(
        logs.contains("PROXY protocol"),
        "the reason is logged:\n{logs}"
    );
}
