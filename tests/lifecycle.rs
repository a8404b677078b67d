//! Graceful lifecycle: shutdown drains pending shares and stops accepting; SIGHUP (and `reload`) applies a new
//! pool list without dropping miners, and an invalid config is refused while the old one keeps running.

mod common;

use common::*;
use fastproxy::config::Config;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::json;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn shutdown_stops_accepting_and_answers_every_pending_share() {
    let pool = pool(SimPoolConfig {
        answer_submits: false,
        ..SimPoolConfig::default()
    });
    // A drain time of some seconds: the late share below must reach the proxy before it is up, even on a
    // loaded machine.
    let yaml = proxy_yaml(&[pool.addr()], "share_timeout: 60")
        .replace("threads: 1", "threads: 1\ndrain_timeout: 3");
    let proxy = start_proxy(&yaml);
    let addr = proxy.first_addr().unwrap();
    let mut c = Client::connect(addr);
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);
    let ids: Vec<u64> = (0..2).map(|i| c.submit_numbered(&job, n, i)).collect();
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "forwarded", || {
        ProxyStats::get(&st.shares_forwarded) == 2
    });
    let started = Instant::now();
    proxy.request_stop();
    // Listeners close as the drain begins (the late share's refusal below shows it was before its end).
    wait_until(Duration::from_secs(10), "listener closed", || {
        TcpStream::connect(addr).is_err()
    });
    // A share sent while draining is refused at once; the pending ones are answered when the drain time is up.
    let late = c.submit_numbered(&job, n, 9);
    let (r, _) = c.reply(late, Duration::from_secs(10));
    assert!(
        r["error"][1]
            .as_str()
            .unwrap()
            .contains("shutting down, share not forwarded"),
        "{r}"
    );
    for id in ids {
        let (r, _) = c.reply(id, Duration::from_secs(10));
        assert_eq!(r["error"][0], json!(20), "{r}");
    }
    proxy.wait();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "waited for the drain time ({took:?})"
    );
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn reload_moves_miners_to_a_new_pool_list_without_dropping_them() {
    let old_pool = pool(SimPoolConfig::default());
    let new_pool = pool(SimPoolConfig::default());
    let mut proxy = start_proxy(&proxy_yaml(&[old_pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let miner = spawn_miner(
        SimMinerConfig {
            addr,
            extranonce_subscribe: true,
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        },
        stop.clone(),
    );
    wait_until(Duration::from_secs(10), "shares on the old pool", || {
        old_pool.stats().accepted >= 2
    });

    // An invalid config is refused and changes nothing.
    let mut bad = Config::from_yaml(&proxy_yaml(&[new_pool.addr()], "")).unwrap();
    bad.proxies[0].max_pending_shares = 0;
    let err = proxy.reload(bad).unwrap_err();
    assert!(err.contains("max_pending_shares"), "{err}");
    let relisten = proxy_yaml(&[new_pool.addr()], "").replace("127.0.0.1:0", "127.0.0.1:1");
    let err = proxy
        .reload(Config::from_yaml(&relisten).unwrap())
        .unwrap_err();
    assert!(err.contains("restart"), "{err}");

    proxy
        .reload(Config::from_yaml(&proxy_yaml(&[new_pool.addr()], "")).unwrap())
        .expect("a compatible config reloads");
    wait_until(Duration::from_secs(10), "shares on the new pool", || {
        new_pool.stats().accepted >= 2
    });
    stop.store(true, Ordering::Relaxed);
    let r = miner.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert!(r.set_extranonce_received >= 1, "{r:?}");
    assert_eq!(r.unanswered, 0, "{r:?}");
    wait_until(Duration::from_secs(5), "old pool connection closed", || {
        old_pool.stats().connections_open == 0
    });
}

#[test]
fn sighup_reloads_the_file_and_sigterm_exits_zero() {
    let a = pool(SimPoolConfig::default());
    let b = pool(SimPoolConfig::default());
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("fastproxy-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("proxy.yaml");
    let write = |pool: SocketAddr, extra: &str| {
        let y = proxy_yaml(&[pool], extra).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
        std::fs::write(&cfg, y).unwrap();
    };
    write(a.addr(), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastproxy"))
        .arg("-c")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until(Duration::from_secs(20), "proxy listening", || {
        TcpStream::connect(proxy_addr).is_ok()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let miner = spawn_miner(
        SimMinerConfig {
            addr: proxy_addr,
            extranonce_subscribe: true,
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        },
        stop.clone(),
    );
    wait_until(Duration::from_secs(10), "shares on pool a", || {
        a.stats().accepted >= 2
    });
    let hup = |pid: u32| {
        assert!(Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    };
    // A broken file is refused; the proxy keeps serving pool a.
    std::fs::write(&cfg, "proxies: [oops").unwrap();
    hup(child.id());
    let before = a.stats().accepted;
    wait_until(
        Duration::from_secs(10),
        "still serving after a bad reload",
        || a.stats().accepted >= before + 2,
    );
    write(b.addr(), "");
    hup(child.id());
    wait_until(Duration::from_secs(10), "shares on pool b", || {
        b.stats().accepted >= 2
    });
    stop.store(true, Ordering::Relaxed);
    let r = miner.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    let (status, log) = terminate(&mut child, Duration::from_secs(15));
    assert!(status.success());
    assert!(log.contains("config NOT reloaded"), "{log}");
    assert!(log.contains("config reloaded"), "{log}");
}
