//! Pool host names, over real sockets on 127.0.0.1 against share-checking pools: names resolve off the reactor
//! thread, every address of a name is tried in order, and `handshake_timeout` bounds a silent pool.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::json;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Names the test hook answers (`*.test`): their addresses and how long the lookup takes.
static NAMES: Mutex<Vec<(&str, Vec<SocketAddr>, Duration)>> = Mutex::new(Vec::new());
/// Every name the hook was asked for, once per lookup.
static ASKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// When each slow lookup of `slow.test` began.
static SLOW_LOOKUPS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
/// `slow.test` takes [`SLOW_LOOKUP`] to fail once this is set (before, it fails at once).
static SLOW: AtomicBool = AtomicBool::new(false);
/// How long a slow lookup of `slow.test` takes: well beyond the bound on one share's round trip, so a lookup
/// that blocked the reactor would stall a share past it.
const SLOW_LOOKUP: Duration = Duration::from_secs(8);

fn hook(host: &str, _port: u16) -> Option<std::io::Result<Vec<SocketAddr>>> {
    if !host.ends_with(".test") {
        return None;
    }
    ASKED.lock().unwrap().push(host.to_string());
    let found = NAMES
        .lock()
        .unwrap()
        .iter()
        .find(|(n, _, _)| *n == host)
        .map(|(_, a, d)| (a.clone(), *d));
    let answer = match found {
        Some((addrs, delay)) => {
            std::thread::sleep(delay);
            Ok(addrs)
        }
        None => {
            if host == "slow.test" && SLOW.load(Ordering::Relaxed) {
                SLOW_LOOKUPS.lock().unwrap().push(Instant::now());
                std::thread::sleep(SLOW_LOOKUP);
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such test name",
            ))
        }
    };
    Some(answer)
}

/// Makes `name` resolve (through the hook) to `addrs`, in that order, each lookup taking `delay`.
fn define(name: &'static str, addrs: Vec<SocketAddr>, delay: Duration) {
    fastproxy::resolve::set_lookup_hook(Some(hook));
    NAMES.lock().unwrap().push((name, addrs, delay));
}

/// Proxy YAML entry `name` (stratum, on 127.0.0.1:0) in front of the pool URLs, with extra keys.
fn entry(name: &str, urls: &[String], extra: &str) -> String {
    let mut y = format!(
        "  - name: {name}\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n"
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        y.push_str(&format!("    {}\n", line.trim()));
    }
    y.push_str("    pools:\n");
    for u in urls {
        y.push_str(&format!(
            "      - url: {u}\n        user: acct.proxy\n        password: x\n"
        ));
    }
    y
}

/// A sim miner (it grinds real shares) on `addr`; stops with `stop` or after 30 s.
fn miner(
    addr: SocketAddr,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<fastproxy_sim::miner::MinerReport> {
    spawn_miner(
        SimMinerConfig {
            addr,
            worker: "farm.rig1".into(),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        stop.clone(),
    )
}

#[test]
fn a_pool_named_localhost_serves_miners() {
    let pool = pool(SimPoolConfig::default());
    let url = format!("stratum+tcp://localhost:{}", pool.addr().port());
    let proxy = start_proxy(&format!(
        "threads: 1\nproxies:\n{}",
        entry("test", &[url], "")
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let m = miner(proxy.first_addr().unwrap(), &stop);
    wait_until(
        Duration::from_secs(20),
        "shares accepted by the pool",
        || pool.stats().accepted >= 2,
    );
    stop.store(true, Ordering::Relaxed);
    let r = m.join().unwrap();
    assert!(r.accepted >= 2, "{r:?}");
    assert_eq!(r.unanswered, 0, "{r:?}");
}

#[test]
fn a_tls_pool_named_localhost_is_verified_by_that_name() {
    let pki = common::tls::TestPki::new("resolve");
    let pool = pool(SimPoolConfig::default());
    let relay = common::tls::server_relay(pool.addr(), &pki);
    let url = format!("stratum+ssl://localhost:{}", relay.addr.port());
    let extra = format!("ca: {}", pki.ca.display());
    let yaml = format!("threads: 1\nproxies:\n{}", entry("test", &[url], ""));
    // `ca` belongs to the pool entry.
    let yaml = yaml.replace(
        "        password: x\n",
        &format!("        password: x\n        {extra}\n"),
    );
    let proxy = start_proxy(&yaml);
    let stop = Arc::new(AtomicBool::new(false));
    let m = miner(proxy.first_addr().unwrap(), &stop);
    wait_until(
        Duration::from_secs(20),
        "shares accepted through TLS",
        || pool.stats().accepted >= 2,
    );
    stop.store(true, Ordering::Relaxed);
    assert_eq!(m.join().unwrap().unanswered, 0);
}

#[test]
fn every_address_of_a_name_is_tried_in_order() {
    let first_open = pool(SimPoolConfig::default());
    let second_open = pool(SimPoolConfig::default());
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    define(
        "order.test",
        vec![closed, first_open.addr(), second_open.addr()],
        Duration::ZERO,
    );
    let url = "stratum+tcp://order.test:3333".to_string();
    let proxy = start_proxy(&format!(
        "threads: 1\nproxies:\n{}",
        entry("test", &[url], "retry_initial: 0.2\nretry_max: 0.5")
    ));
    let st = proxy.stats("test").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let m = miner(proxy.first_addr().unwrap(), &stop);
    wait_until(
        Duration::from_secs(20),
        "shares accepted by the name's second address (the first refuses)",
        || first_open.stats().accepted >= 2,
    );
    stop.store(true, Ordering::Relaxed);
    let r = m.join().unwrap();
    assert!(r.accepted >= 2, "{r:?}");
    assert_eq!(
        second_open.stats().connections_total,
        0,
        "the third address is not needed"
    );
    assert_eq!(
        ProxyStats::get(&st.pool_connections),
        1,
        "one attempt: the refused address did not count as a failed attempt"
    );
}

#[test]
fn a_slow_lookup_does_not_stall_the_miners_of_its_reactor() {
    fastproxy::resolve::set_lookup_hook(Some(hook));
    let pool = pool(SimPoolConfig {
        // The largest target: every share the pool rebuilds and checks meets it (each one gets `true`).
        difficulty: 1e-12,
        ..SimPoolConfig::default()
    });
    let yaml = format!(
        "threads: 1\nproxies:\n{}{}",
        entry("work", &[format!("stratum+tcp://{}", pool.addr())], ""),
        entry(
            "slow",
            &["stratum+tcp://slow.test:3333".to_string()],
            "retry_initial: 0.1\nretry_max: 0.2"
        )
    );
    let proxy = start_proxy(&yaml);
    let mut c = Client::connect(proxy.local_addrs("work")[0]);
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);

    SLOW.store(true, Ordering::Relaxed);
    wait_until(Duration::from_secs(5), "a slow lookup began", || {
        !SLOW_LOOKUPS.lock().unwrap().is_empty()
    });
    let began = SLOW_LOOKUPS.lock().unwrap()[0];
    // Shares answered while that lookup sleeps (8 s): each within a generous 4 s (half the lookup, so a lookup
    // run on the reactor would hold a share about 8 s and fail this; a busy machine's hiccups stay well under).
    let mut answered = 0;
    let mut i = 0;
    while began.elapsed() < Duration::from_secs(6) {
        i += 1;
        let sent = Instant::now();
        let id = c.submit_numbered(&job, n, i);
        let (r, _) = c.reply(id, SLOW_LOOKUP + Duration::from_secs(5));
        let took = sent.elapsed();
        assert_eq!(r["result"], json!(true), "the pool's verdict: {r}");
        assert!(
            took < Duration::from_secs(4),
            "share {i} answered after {took:?} while a lookup was slow"
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered >= 3, "{answered} shares during the slow lookup");
    assert!(pool.stats().accepted >= answered);
}

#[test]
fn a_pool_that_never_answers_the_handshake_is_given_up_after_handshake_timeout() {
    // Connects complete (the kernel accepts into the backlog) but nobody ever reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let backup = pool(SimPoolConfig::default());
    let urls = [
        format!("stratum+tcp://{}", silent.local_addr().unwrap()),
        format!("stratum+tcp://{}", backup.addr()),
    ];
    let started = Instant::now();
    let proxy = start_proxy(&format!(
        "threads: 1\nproxies:\n{}",
        entry(
            "test",
            &urls,
            "handshake_timeout: 1\nfailover_after: 1\nretry_initial: 0.1\nretry_max: 0.2"
        )
    ));
    let st = proxy.stats("test").unwrap();
    // Well under the 10 s default, generous for 1 s.
    wait_until(Duration::from_secs(6), "the backup pool ready", || {
        ProxyStats::get(&st.pool_ready) == 1
    });
    assert!(started.elapsed() >= Duration::from_secs(1));
    silent.set_nonblocking(true).unwrap();
    assert!(silent.accept().is_ok(), "the silent pool was tried first");
    assert_eq!(ProxyStats::get(&st.failovers), 1);
    let stop = Arc::new(AtomicBool::new(false));
    let m = miner(proxy.first_addr().unwrap(), &stop);
    wait_until(Duration::from_secs(20), "shares on the backup", || {
        backup.stats().accepted >= 2
    });
    stop.store(true, Ordering::Relaxed);
    let r = m.join().unwrap();
    assert_eq!(r.unanswered, 0, "{r:?}");
}

#[test]
fn a_lookup_slower_than_handshake_timeout_fails_the_attempt_and_its_late_answer_is_ignored() {
    // Every lookup of this name answers after 3 s, with a working pool: too late each time (1 s allowed).
    let pool = pool(SimPoolConfig::default());
    define("late.test", vec![pool.addr()], Duration::from_secs(3));
    let url = "stratum+tcp://late.test:3333".to_string();
    let proxy = start_proxy(&format!(
        "threads: 1\nproxies:\n{}",
        entry(
            "test",
            &[url],
            "handshake_timeout: 1\nretry_initial: 0.1\nretry_max: 0.1\nfailover_after: 100"
        )
    ));
    let asked = || {
        ASKED
            .lock()
            .unwrap()
            .iter()
            .filter(|h| *h == "late.test")
            .count()
    };
    // The first answer comes at 3 s, while a later lookup (the third) waits: it must not be taken for that one.
    wait_until(Duration::from_secs(10), "four lookups", || {
        assert_eq!(
            pool.stats().connections_total,
            0,
            "a connection was made from a lookup answer given up"
        );
        asked() >= 4
    });
    std::thread::sleep(Duration::from_millis(300));
    let st = proxy.stats("test").unwrap();
    assert_eq!(
        pool.stats().connections_total,
        0,
        "no connection made from an answer given up"
    );
    assert_eq!(ProxyStats::get(&st.pool_connections), 0);
    assert_eq!(ProxyStats::get(&st.pool_ready), 0);
}
