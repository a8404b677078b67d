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
fn demo_with_an_sv2_upstream_gets_its_shares_accepted() {
    // 10 s: room on a loaded machine for the Noise handshake, the channel and a first accepted share.
    let out = bin()
        .args([
            "demo",
            "--upstream",
            "sv2",
            "--seconds",
            "10",
            "--miners",
            "2",
        ])
        .args(["--difficulty", "0.000001"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Exit 0 means the miners had shares accepted and none rejected.
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("simulated Sv2 pool"), "{text}");
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
    // miner port is bound must stop the proxy cleanly (exit 0), never kill it. A few rounds, to meet the window.
    // The proxy binds port 0 and says which port in its log: a port picked here and probed with connect() could
    // be another test's listener meanwhile, and the SIGTERM would then come before the proxy even started.
    use std::io::BufRead;
    for round in 0..5 {
        let yaml = format!(
            "proxies:\n  - name: early\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum+tcp://127.0.0.1:{}\n        user: acct.early\n",
            common::free_port()
        );
        let cfg = temp_file(&format!("early-{round}.yaml"), &yaml);
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
        let mut log = std::io::BufReader::new(proxy.0.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("listening on 127.0.0.1:") {
            let mut line = String::new();
            let n = log.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "round {round}: the log ended before the port was bound:\n{seen}"
            );
            seen.push_str(&line);
        }
        let (status, _) = common::terminate(&mut proxy.0, Duration::from_secs(10));
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut log, &mut rest);
        assert!(status.success(), "round {round}: {status:?}\n{seen}{rest}");
    }
}

#[test]
fn a_metrics_or_api_port_in_use_stops_the_start_before_the_miner_port_opens() {
    // The metrics and API listeners are bound before the proxies': a port in use fails the start before any
    // miner can connect (and, the other way round, the endpoints answer as soon as a miner can connect).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let hash = "0".repeat(64);
    for (what, head) in [
        (
            "metrics",
            format!("metrics: {{ listen: 127.0.0.1:{port} }}\n"),
        ),
        (
            "api",
            format!("api: {{ listen: 127.0.0.1:{port}, token_sha256: {hash} }}\n"),
        ),
    ] {
        let yaml = format!(
            "{head}proxies:\n  - name: busy\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum+tcp://127.0.0.1:{}\n        user: acct.busy\n",
            common::free_port()
        );
        let cfg = temp_file(&format!("busy-{what}.yaml"), &yaml);
        let out = bin()
            .arg("-c")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {log}");
        assert!(
            log.contains(&format!(
                "cannot start: {what}: cannot listen on 127.0.0.1:{port}"
            )),
            "{what}: {log}"
        );
        assert!(!log.contains("listening on"), "{what}: {log}");
    }
}

/// The SRI example authority key (a valid key; no pool is behind it here).
const SRI_KEY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";

#[test]
fn an_sv2_pool_passes_the_check_and_the_proxy_starts_with_it() {
    let port = common::free_port();
    let yaml = format!(
        "proxies:\n  - name: sv2\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:{port}\n    pools:\n      - url: stratum2+tcp://127.0.0.1:{}\n        user: acct.sv2\n        authority_public_key: {SRI_KEY}\n",
        common::free_port()
    );
    let cfg = temp_file("sv2.yaml", &yaml);
    let out = bin().arg("--check-config").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // It runs: the miner port opens (the pool is not there: the upstream keeps retrying).
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
            proxy.0.try_wait().unwrap().is_none(),
            "the proxy exited with an SV2 pool"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, log) = common::terminate(&mut proxy.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{log}");
    // Without its key the check fails at the URL's line.
    let p = temp_file(
        "sv2-nokey.yaml",
        &yaml.replace(&format!("        authority_public_key: {SRI_KEY}\n"), ""),
    );
    let out = bin().arg("--check-config").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 7") && err.contains("authority_public_key"),
        "{err}"
    );
}

#[test]
fn sim_pool_sv2_prints_its_key_and_url_and_serves_a_noise_handshake_and_a_channel() {
    use fastproxy::protocol::sv2::{
        AuthorityKey, Event, OpenChannel, Phase, SetupParams, Sv2Client,
    };
    use std::io::{BufRead, BufReader, Read, Write};
    let mut pool = Running(
        bin()
            .args([
                "sim-pool",
                "--protocol",
                "sv2",
                "--listen",
                "127.0.0.1:0",
                "--seconds",
                "60",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The printed key and URL, as a user would copy them into the config.
    let mut lines = BufReader::new(pool.0.stdout.take().unwrap()).lines();
    let (mut key, mut url) = (None, None);
    while key.is_none() || url.is_none() {
        let line = lines
            .next()
            .expect("sim-pool printed its key and URL")
            .unwrap();
        if let Some(k) = line.strip_prefix("authority_public_key: ") {
            key = Some(AuthorityKey::parse(k).unwrap_or_else(|e| panic!("{k}: {e}")));
        }
        if let Some(u) = line.strip_prefix("url: ") {
            url = Some(fastproxy::config::PoolUrl::parse(u).unwrap());
        }
    }
    let url = url.unwrap();
    assert_ne!(url.port, 0, "the bound port is printed");
    let setup = SetupParams {
        flags: fastproxy::protocol::sv2::messages::REQUIRES_VERSION_ROLLING,
        endpoint_host: url.host.clone(),
        endpoint_port: url.port,
        vendor: "fastproxy-test".into(),
        hardware_version: String::new(),
        firmware: String::new(),
        device_id: String::new(),
    };
    let mut client = Sv2Client::new(&key.unwrap(), setup).unwrap();
    let mut stream = TcpStream::connect((url.host.as_str(), url.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32
    };
    let mut events = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 16 * 1024];
    // Handshake (the certificate checked against the printed key), SetupConnection, a channel, its first job.
    while !events.iter().any(|e| matches!(e, Event::PrevHash(_))) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "got only {events:?}"
        );
        stream.write_all(&client.take_output()).unwrap();
        match client.next_event(now()) {
            Ok(Some(ev)) => {
                if matches!(ev, Event::SetupSuccess { .. }) {
                    assert_eq!(client.phase(), Phase::Ready);
                    client
                        .open_extended_channel(&OpenChannel {
                            request_id: 1,
                            user_identity: "acct.cli".into(),
                            nominal_hash_rate: 1e9,
                            max_target: [0xff; 32],
                            min_extranonce_size: 8,
                        })
                        .unwrap();
                }
                events.push(ev);
                continue;
            }
            Ok(None) => {}
            Err(e) => panic!("SV2 client error: {e}"),
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("the pool closed the connection after {events:?}"),
            Ok(n) => client.feed(&buf[..n]),
            Err(_) => {}
        }
    }
    assert!(
        matches!(
            events[0],
            Event::SetupSuccess {
                used_version: 2,
                ..
            }
        ),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::ChannelOpened {
                request_id: 1,
                extranonce_size: 8,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::NewJob(_))),
        "{events:?}"
    );
}
