//! The `fastproxy` binary as a user runs it: flags, config checking, and a real run against `fastproxy sim-pool`.

mod common;

use fastproxy_sim::miner::{run_miner, SimMinerConfig};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fastproxy"))
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fastproxy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Kills the child when dropped, so a failing test leaves nothing running.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn version_and_help() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--check-config",
        "--generate-config",
        "demo",
        "sim-pool",
    ] {
        assert!(help.contains(flag), "help mentions {flag}:\n{help}");
    }
}

#[test]
fn the_generated_template_passes_the_check() {
    let out = bin()
        .args([
            "--generate-config",
            "--pool",
            "stratum+tcp://pool.example.com:3333",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("stratum+tcp://pool.example.com:3333"));
    let p = temp_file("template.yaml", &text);
    let out = bin().arg("--check-config").arg(&p).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .arg("--check-config")
        .arg("-c")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn check_config_lists_every_problem_with_its_line() {
    let bad = "proxies:\n  - name: a\n    protocol: stratum\n    listen:\n      - address: 0.0.0.0:99999\n    pools:\n      - url: stratum+tcp://nohost\n        user: u\n";
    let p = temp_file("bad.yaml", bad);
    let out = bin().arg("--check-config").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("line 7"), "{err}");
    let typo = "proxies:\n  - name: a\n    protocol: stratum\n    listen: []\n    pools: []\n    min_extranonce2_sise: 4\n";
    let p = temp_file("typo.yaml", typo);
    let out = bin().arg("--check-config").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 6") && err.contains("min_extranonce2_sise"),
        "{err}"
    );
}

#[test]
fn the_binary_proxies_real_shares_to_the_sim_pool_and_stops_on_sigterm() {
    let pool_port = common::free_port();
    let proxy_port = common::free_port();
    let _pool = Running(
        bin()
            .args([
                "sim-pool",
                "--listen",
                &format!("127.0.0.1:{pool_port}"),
                "--seconds",
                "60",
            ])
            .args(["--difficulty", "0.0000152587890625"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], pool_port)));
    let yaml = format!(
        "proxies:\n  - name: cli\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:{proxy_port}\n    pools:\n      - url: stratum+tcp://127.0.0.1:{pool_port}\n        user: acct.cli\n"
    );
    let cfg = temp_file("run.yaml", &yaml);
    let mut proxy = Running(
        bin()
            .arg("-c")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    wait_for_port(proxy_addr);
    let report = run_miner(
        &SimMinerConfig {
            addr: proxy_addr,
            max_shares: Some(3),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(report.accepted, 3, "{report:?}");
    // SIGTERM: a clean exit with status 0.
    let (status, log) = common::terminate(&mut proxy.0, Duration::from_secs(10));
    assert!(status.success());
    assert!(log.contains("listening on 127.0.0.1"), "{log}");
    assert!(log.contains("ready: extranonce1"), "{log}");
}

#[test]
fn a_sigterm_as_soon_as_the_port_opens_drains_and_exits_zero() {
    // The signal handlers are installed before the listeners are bound: a SIGTERM that comes the moment the
    // miner port accepts must stop the proxy cleanly (exit 0), never kill it. A few rounds, to meet the window.
    for round in 0..5 {
        let port = common::free_port();
        let yaml = format!(
            "proxies:\n  - name: early\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:{port}\n    pools:\n      - url: stratum+tcp://127.0.0.1:{}\n        user: acct.early\n",
            common::free_port()
        );
        let cfg = temp_file(&format!("early-{round}.yaml"), &yaml);
        let mut proxy = Running(
            bin()
                .arg("-c")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{addr} never listened"
            );
            std::thread::yield_now();
        }
        let (status, log) = common::terminate(&mut proxy.0, Duration::from_secs(10));
        assert!(status.success(), "round {round}: {status:?}\n{log}");
    }
}
