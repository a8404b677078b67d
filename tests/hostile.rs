//! Hostile input over real sockets: a pool that lies, floods and slow clients, connection churn. Each offender
//! gets an error or is disconnected; other miners keep working; memory and descriptors stay bounded.

mod common;

use common::fake_pool::FakePool;
use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn good_miner(addr: SocketAddr, shares: u64) -> JoinHandle<MinerReport> {
    spawn_miner(
        SimMinerConfig {
            addr,
            worker: "good.rig".into(),
            max_shares: Some(shares),
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
}

/// These tests measure the whole process (RSS, open descriptors): they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_pool_that_lies_is_ignored_line_by_line_and_miners_keep_working() {
    let _serial = serial();
    let fake = FakePool::new();
    let proxy = start_proxy(&proxy_yaml(&[fake.addr()], "share_timeout: 3"));
    let mut pool = fake.accept("aabbccdd", 8);
    let st = proxy.stats("test").unwrap();
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (e1, n, notes) = c.handshake();
    assert_eq!((e1.len(), n), (12, 6));
    let job = c.job_id(&notes);
    assert_eq!(job, json!("j1"));
    // Garbage, a reply nobody asked for, jobs miners could not use, a bad difficulty.
    pool.send_raw(b"\x00\xff garbage\n{\"id\":\n");
    pool.send(&json!({"id": 987654321, "result": true, "error": null}));
    pool.send(&json!({"id": null, "method": "mining.notify", "params": ["bad", "zz", "01", "ff", [], "20000000", "1d00ffff", "5f5e1000", true]}));
    pool.send(&json!({"id": null, "method": "mining.notify", "params": ["short", "00"]}));
    pool.send(
        &json!({"id": null, "method": "mining.notify", "params": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
    );
    pool.send(&json!({"id": null, "method": "mining.set_difficulty", "params": ["abc"]}));
    pool.send(&json!({"id": null, "method": "mining.set_difficulty", "params": [-1]}));
    pool.send(&json!({"id": null, "method": "mining.set_extranonce", "params": ["zz", 4]}));
    let j2 = pool.job("j2");
    pool.send(&j2);
    // The miner sees only the good job.
    let v = c.read(Duration::from_secs(5)).expect("the good job");
    assert_eq!(v["method"], json!("mining.notify"));
    assert_eq!(v["params"][0], json!("j2"), "bad jobs were dropped: {v}");
    wait_until(Duration::from_secs(5), "unknown reply counted", || {
        ProxyStats::get(&st.unknown_replies) == 1
    });
    // Shares still flow both ways.
    let id = c.request(
        "mining.submit",
        json!(["w", "j2", "00".repeat(6), "5f5e1000", "00000001"]),
    );
    let up = pool.read(Duration::from_secs(5)).expect("forwarded share");
    assert_eq!(up["method"], json!("mining.submit"));
    assert_eq!(up["params"][2].as_str().unwrap().len(), 16);
    pool.send(&json!({"id": up["id"], "result": null, "error": {"code": 23, "message": "low difficulty"}}));
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(
        r["error"]["code"],
        json!(23),
        "an error object is passed on as received: {r}"
    );
    // The pool closes mid-line with a share pending: the miner gets an error, the proxy reconnects.
    let id = c.request(
        "mining.submit",
        json!(["w", "j2", "00".repeat(5) + "01", "5f5e1000", "00000002"]),
    );
    pool.read(Duration::from_secs(5)).expect("forwarded share");
    pool.send_raw(b"{\"id\":null,\"method\":\"mining.no");
    drop(pool);
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["error"][0], json!(20), "{r}");
    let _again = fake.accept("aabbccee", 8);
    wait_until(Duration::from_secs(10), "reconnected", || {
        ProxyStats::get(&st.pool_ready) == 2
    });
}

#[test]
fn a_garbage_flood_is_cut_off_with_bounded_memory() {
    let _serial = serial();
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let good = good_miner(addr, 3);
    let before = rss_kib();
    // 100 MB of pseudo-random bytes (newlines included), sent until the proxy hangs up.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut sent = 0usize;
    for _ in 0..100 {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        match s.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break,
        }
    }
    assert!(
        sent < 100 << 20,
        "the proxy hung up before 100 MB ({sent} bytes sent)"
    );
    let grew = rss_kib().saturating_sub(before);
    assert!(grew < 64 * 1024, "memory stayed bounded (grew {grew} KiB)");
    assert_eq!(good.join().unwrap().accepted, 3);
}

/// What the proxy must answer to one odd request.
enum Answer {
    /// An error object with code 20, `result` null, and this id.
    Error(Value),
    /// A subscribe result: `[[subscriptions], extranonce1 hex (12 digits), extranonce2 size 6]`.
    Subscribed,
    /// `result: true`, no error.
    True,
}

#[test]
fn odd_numbers_and_shapes_are_answered_not_fatal() {
    let _serial = serial();
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let mut e1 = None;
    let mut notes = Vec::new();
    for (line, answer) in [
        (
            "{\"id\":1e400,\"method\":\"mining.ping\",\"params\":[]}",
            Answer::Error(Value::Null),
        ),
        (
            "{\"id\":99999999999999999999999,\"method\":\"mining.ping\",\"params\":[]}",
            Answer::Error(Value::Null),
        ),
        (
            "{\"id\":-1,\"method\":\"mining.subscribe\",\"params\":{\"a\":1}}",
            Answer::Subscribed,
        ),
        (
            "{\"id\":2,\"method\":7,\"params\":[]}",
            Answer::Error(json!(2)),
        ),
        (
            "{\"id\":3,\"method\":\"mining.authorize\",\"params\":[\"w\",\"x\",1e308,-1e308,[[[[]]]]]}",
            Answer::True,
        ),
        (
            "{\"id\":true,\"method\":\"mining.ping\"}",
            Answer::Error(Value::Null),
        ),
    ] {
        c.send_raw(format!("{line}\n").as_bytes()).unwrap();
        let r = loop {
            let v = c
                .read(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("an answer to {line}"));
            if v.get("method").is_none() {
                break v;
            }
            notes.push(v);
        };
        match answer {
            Answer::Error(id) => {
                assert_eq!(r["error"][0], json!(20), "{line} -> {r}");
                assert_eq!(r["result"], Value::Null, "{line} -> {r}");
                assert_eq!(r["id"], id, "{line} -> {r}");
            }
            Answer::Subscribed => {
                assert_eq!(r["id"], json!(-1), "{line} -> {r}");
                assert_eq!(r["error"], Value::Null, "{line} -> {r}");
                let subs = r["result"][0].as_array().expect("subscriptions");
                assert!(!subs.is_empty(), "{line} -> {r}");
                let hex = r["result"][1].as_str().expect("extranonce1");
                assert_eq!(r["result"][2], json!(6), "{line} -> {r}");
                e1 = Some(fastproxy::hex::decode(hex).expect("extranonce1 hex"));
            }
            Answer::True => {
                assert_eq!(r["id"], json!(3), "{line} -> {r}");
                assert_eq!(r["error"], Value::Null, "{line} -> {r}");
                assert_eq!(r["result"], json!(true), "{line} -> {r}");
            }
        }
    }
    // Still subscribed and authorized: a share that meets the difficulty is accepted by the checking pool.
    let e1 = e1.expect("subscribed");
    assert_eq!(e1.len(), 6, "pool extranonce1 (4 bytes) || 2-byte prefix");
    let (job, difficulty) = current_work(&mut c, &mut notes);
    let e2 = [0u8, 0, 0, 0, 0, 7];
    let nonce = nonce_for(&job, &e1, &e2, difficulty, true);
    let id = c.submit_share(&job, &e2, nonce);
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["result"], json!(true), "a well-formed share: {r}");
    assert_eq!(r["error"], Value::Null, "{r}");
    let ps = pool.stats();
    assert_eq!(ps.accepted, 1, "{ps:?}");
    assert_eq!(ps.accepted_shares[0].extranonce2[2..], e2, "{ps:?}");
    let id = c.request("mining.ping", json!([]));
    assert_eq!(
        c.reply(id, Duration::from_secs(5)).0["result"],
        json!("pong")
    );
}

/// True when the proxy has closed `s` (EOF or reset); `s` must be non-blocking.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match std::io::Read::read(s, &mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[test]
fn slowloris_and_silent_clients_are_closed_by_the_idle_timeout() {
    let _serial = serial();
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "idle_timeout: 1"));
    let addr = proxy.first_addr().unwrap();
    let st = proxy.stats("test").unwrap();
    let mut silent = Client::connect(addr);
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_nonblocking(true).unwrap();
    // One byte every 100 ms of a request that never ends, until the proxy hangs up (15 s at most).
    let start = Instant::now();
    let mut closed = false;
    for b in b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}"
        .iter()
        .cycle()
        .take(150)
    {
        match slow.write(&[*b]) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        if closed_by_peer(&mut slow) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the trickling client was still open after {:?} with idle_timeout 1 s",
        start.elapsed()
    );
    assert!(
        silent.closed_within(Duration::from_secs(10)),
        "the silent client was closed"
    );
    wait_until(Duration::from_secs(5), "both gone", || {
        ProxyStats::get(&st.miners_connected) == 0
    });
    assert_eq!(
        ProxyStats::get(&st.miners_kicked),
        2,
        "both were kicked by the idle timeout"
    );
}

#[test]
fn thousands_of_connects_and_disconnects_leak_nothing() {
    let _serial = serial();
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "ready", || {
        ProxyStats::get(&st.pool_ready) == 1
    });
    let fds_before = open_fds();
    let good = good_miner(addr, 3);
    let start = Instant::now();
    let mut n = 0;
    while n < 3000 && start.elapsed() < Duration::from_secs(20) {
        let mut s = TcpStream::connect(addr).unwrap();
        if n % 3 == 0 {
            let _ = s.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n");
        }
        if n % 7 == 0 {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
        drop(s);
        n += 1;
    }
    assert_eq!(good.join().unwrap().accepted, 3);
    // The last connections may still wait in the listen backlog: every one must be accepted, then closed.
    wait_until(
        Duration::from_secs(10),
        "every churned connection accepted and closed",
        || ProxyStats::get(&st.miners_total) == n + 1 && ProxyStats::get(&st.miners_connected) == 0,
    );
    assert_eq!(
        ProxyStats::get(&st.upstreams),
        1,
        "no extra upstream left behind"
    );
    let fds_after = open_fds();
    assert!(
        fds_after <= fds_before + 4,
        "descriptors back to where they were: {fds_before} -> {fds_after}"
    );
}

#[test]
fn a_pool_that_sends_only_garbage_is_dropped_and_reconnected() {
    let _serial = serial();
    let fake = FakePool::new();
    let proxy = start_proxy(&proxy_yaml(&[fake.addr()], "retry_initial: 0.1"));
    let mut pool = fake.accept("aabbccdd", 8);
    let st = proxy.stats("test").unwrap();
    for _ in 0..70 {
        pool.send_raw(b"%%% not json %%%\n");
    }
    // The proxy hangs up on it and comes back for a fresh session.
    let _again = fake.accept("aabbccee", 8);
    wait_until(Duration::from_secs(10), "ready again", || {
        ProxyStats::get(&st.pool_ready) == 2
    });
    assert_eq!(ProxyStats::get(&st.pool_connections), 2);
}
