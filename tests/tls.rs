//! TLS on both sides, with a test CA made at test time: miners over TLS to the proxy, the proxy over TLS to a
//! pool, a wrong CA refused, plaintext on a TLS port handled; shares are checked by the simulated pool.

mod common;

use common::tls::{client_relay, server_relay, TestPki};
use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn miners(addr: SocketAddr, n: usize, shares: u64) -> Vec<MinerReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            spawn_miner(
                SimMinerConfig {
                    addr,
                    worker: format!("tls.rig{i}"),
                    max_shares: Some(shares),
                    duration: Duration::from_secs(60),
                    version_rolling: i % 2 == 0,
                    ..SimMinerConfig::default()
                },
                stop.clone(),
            )
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

/// A second listen entry, on TLS with the PKI's certificate.
fn tls_listen(pki: &TestPki) -> String {
    format!(
        "      - address: 127.0.0.1:0\n        tls: {{ cert: {}, key: {} }}\n",
        pki.cert.display(),
        pki.key.display()
    )
}

/// A test PKI, a plain simulated pool, and a proxy listening plain (first address) and on TLS (second).
fn tls_listening_proxy(
    tag: &str,
) -> (
    TestPki,
    fastproxy_sim::pool::SimPool,
    fastproxy::proxy::RunningProxy,
) {
    let pki = TestPki::new(tag);
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&yaml(
        &tls_listen(&pki),
        &format!("stratum+tcp://{}", pool.addr()),
        "",
    ));
    (pki, pool, proxy)
}

fn yaml(listen_extra: &str, pool_url: &str, pool_extra: &str) -> String {
    format!(
        "threads: 1\nproxies:\n  - name: test\n    protocol: stratum\n    retry_initial: 0.1\n    retry_max: 0.3\n    listen:\n      - address: 127.0.0.1:0\n{listen_extra}    pools:\n      - url: {pool_url}\n        user: acct.tls\n{pool_extra}"
    )
}

#[test]
fn miners_over_tls_and_plain_on_one_proxy_all_get_shares_accepted() {
    let (pki, pool, proxy) = tls_listening_proxy("listen");
    let addrs = proxy.local_addrs("test");
    assert_eq!(addrs.len(), 2);
    let relay = client_relay(addrs[1], &pki);
    let over_tls = miners(relay.addr, 3, 2);
    let plain = miners(addrs[0], 1, 2);
    for r in over_tls.iter().chain(&plain) {
        assert_eq!(r.accepted, 2, "{r:?}");
        assert_eq!(r.unanswered, 0, "{r:?}");
    }
    let ps = pool.stats();
    assert_eq!(ps.accepted, 8);
    assert_eq!(ps.connections_total, 1);
}

#[test]
fn plaintext_on_the_tls_port_is_closed_and_tls_miners_are_unaffected() {
    let (pki, _pool, proxy) = tls_listening_proxy("plain");
    let tls_addr = proxy.local_addrs("test")[1];
    let relay = client_relay(tls_addr, &pki);
    let stop = Arc::new(AtomicBool::new(false));
    let good = spawn_miner(
        SimMinerConfig {
            addr: relay.addr,
            max_shares: Some(3),
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        },
        stop,
    );
    let mut c = Client::connect(tls_addr);
    c.send_raw(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .unwrap();
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "plaintext client on a TLS port is closed"
    );
    assert_eq!(good.join().unwrap().accepted, 3);
}

#[test]
fn the_proxy_reaches_a_tls_pool_through_a_private_ca() {
    let pki = TestPki::new("pool");
    let pool = pool(SimPoolConfig::default());
    let tls_pool = server_relay(pool.addr(), &pki);
    let proxy = start_proxy(&yaml(
        "",
        &format!("stratum+ssl://{}", tls_pool.addr),
        &format!("        ca: {}\n", pki.ca.display()),
    ));
    let r = miners(proxy.first_addr().unwrap(), 2, 2);
    for r in &r {
        assert_eq!(r.accepted, 2, "{r:?}");
    }
    assert_eq!(pool.stats().accepted, 4);
}

#[test]
fn a_pool_certificate_from_another_ca_is_refused_unless_verification_is_skipped() {
    let trusted = TestPki::new("trusted");
    let other = TestPki::new("other");
    let pool = pool(SimPoolConfig::default());
    let tls_pool = server_relay(pool.addr(), &other);
    let proxy = start_proxy(&yaml(
        "",
        &format!("stratum+tls://{}", tls_pool.addr),
        &format!("        ca: {}\n", trusted.ca.display()),
    ));
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(10), "several refused attempts", || {
        ProxyStats::get(&st.pool_connections) >= 3
    });
    assert_eq!(
        ProxyStats::get(&st.pool_ready),
        0,
        "never ready with an untrusted certificate"
    );
    assert_eq!(pool.stats().submits, 0);
    drop(proxy);

    let proxy = start_proxy(&yaml(
        "",
        &format!("stratum+tls://{}", tls_pool.addr),
        "        insecure_skip_verify: true\n",
    ));
    let r = miners(proxy.first_addr().unwrap(), 1, 2);
    assert_eq!(r[0].accepted, 2, "{:?}", r[0]);
}

/// The `fastproxy` binary on `yaml`, its log (stderr) collected line by line; killed when dropped.
struct Binary {
    child: std::process::Child,
    log: Arc<Mutex<Vec<String>>>,
    config: std::path::PathBuf,
}

impl Binary {
    fn start(tag: &str, yaml: &str) -> Binary {
        let config =
            std::env::temp_dir().join(format!("fastproxy-tls-{}-{tag}.yaml", std::process::id()));
        std::fs::write(&config, yaml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastproxy"))
            .arg("-c")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Binary { child, log, config }
    }

    fn lines_with(&self, text: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(text)).cloned().collect()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
        if std::thread::panicking() {
            eprintln!("fastproxy's log:\n{}", self.log.lock().unwrap().join("\n"));
        }
    }
}

/// A pool whose certificate expired (but is signed by the CA the proxy is given) is refused with a log line
/// that says so, and the next pool serves the miners.
#[test]
fn an_expired_pool_certificate_is_refused_and_the_next_pool_used() {
    let pki = TestPki::expired("expired");
    let behind_tls = pool(SimPoolConfig::default());
    let tls_pool = server_relay(behind_tls.addr(), &pki);
    let valid = pool(SimPoolConfig::default());
    let listen = free_port();
    let yaml = yaml(
        "",
        &format!("stratum+ssl://{}", tls_pool.addr),
        &format!(
            "        ca: {}\n      - url: stratum+tcp://{}\n        user: acct.tls\n",
            pki.ca.display(),
            valid.addr()
        ),
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{listen}"));
    let proxy = Binary::start("expired", &yaml);
    let addr: SocketAddr = ([127, 0, 0, 1], listen).into();
    wait_until(Duration::from_secs(20), "the proxy listening", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    let r = miners(addr, 2, 2);
    for r in &r {
        assert_eq!(r.accepted, 2, "{r:?}");
    }
    assert_eq!(
        valid.stats().accepted,
        4,
        "the shares went to the next (valid) pool"
    );
    assert_eq!(
        behind_tls.stats().submits,
        0,
        "nothing went through the expired pool"
    );
    let refused = proxy.lines_with(&format!("pool {}", tls_pool.addr));
    assert!(
        refused.iter().any(|l| l.contains("certificate expired")),
        "the refusal says the certificate expired: {refused:?}"
    );
    assert!(
        !proxy.lines_with("failing over to pool 2").is_empty(),
        "{:?}",
        proxy.log.lock().unwrap()
    );
}

#[test]
fn check_config_reports_missing_tls_files_with_their_line() {
    let y = "proxies:\n  - name: a\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n        tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }\n    pools:\n      - url: stratum+ssl://pool.example.com:443\n        user: u\n        ca: /nonexistent/ca.pem\n";
    let problems = fastproxy::config::Config::from_yaml(y).unwrap_err();
    let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![Some(6), Some(8)], "{problems:?}");
}
