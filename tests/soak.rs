//! Soak with faults (run by scripts/soak.sh; `#[ignore]`d in the normal suite): thousands of miners submit
//! shares through a `fastproxy` process while the primary pool is killed and restarted (the backup takes over
//! and the proxy comes back), miners churn, the proxy gets SIGHUP, and finally SIGTERM. At the end one line
//! counts everything, and the invariants hold: every submit got exactly one reply, no share was accepted twice,
//! every share a miner was told was accepted is one the pool accepted, and no slot or descriptor leaked.
//!
//! SOAK_SECONDS (default 120) and SOAK_MINERS (default 2000) size the run; SOAK_VALIDATE=1 makes the proxy
//! validate every share (`validate_shares: true`), so parked shares meet the same faults.

mod common;

use fastproxy::sim::pool::{SimPool, SimPoolConfig};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every share meets this target (a hash fails it about once in 65,536): miners need not hash.
const EASY: f64 = 1.0 / 4_294_967_296.0;

#[derive(Default)]
struct Counts {
    submitted: AtomicU64,
    replies: AtomicU64,
    accepted: AtomicU64,
    errors_pool_away: AtomicU64,
    other_rejects: AtomicU64,
    unanswered: AtomicU64,
    duplicate_replies: AtomicU64,
    sessions: AtomicU64,
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pool_at(addr: SocketAddr) -> SimPool {
    let start = Instant::now();
    loop {
        match SimPool::start(SimPoolConfig {
            listen: addr,
            difficulty: EASY,
            job_interval: Some(Duration::from_secs(5)),
            ..SimPoolConfig::default()
        }) {
            Ok(p) => return p,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("pool on {addr}: {e}"),
        }
    }
}

/// One miner session: subscribe, authorize, then one share in flight at a time until `until` or the proxy
/// closes. Waits for the reply to its last share before leaving. Returns false if the proxy closed it.
fn session(addr: SocketAddr, until: Instant, c: &Counts, id_base: u64) -> bool {
    let Ok(s) = TcpStream::connect(addr) else {
        return false;
    };
    c.sessions.fetch_add(1, Relaxed);
    s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let hello = "{\"id\":1,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.subscribe\",\"params\":[\"soak/1\"]}\n{\"id\":3,\"method\":\"mining.authorize\",\"params\":[\"soak.rig\",\"x\"]}\n";
    if w.write_all(hello.as_bytes()).is_err() {
        return false;
    }
    let mut n2 = 0usize;
    let mut job: Option<(String, String)> = None;
    let mut outstanding: Option<u64> = None;
    let mut seq = 0u64;
    let mut line = String::new();
    loop {
        let now = Instant::now();
        if outstanding.is_none() {
            if now >= until {
                return true;
            }
            if let (Some((id, ntime)), true) = (&job, n2 > 0) {
                seq += 1;
                let rid = id_base + seq;
                let en2 = format!("{:0w$x}", seq, w = 2 * n2);
                let msg = json!({"id": rid, "method": "mining.submit", "params": ["soak.rig", id, en2, ntime, "00000000"]});
                if w.write_all(format!("{msg}\n").as_bytes()).is_err() {
                    return false;
                }
                c.submitted.fetch_add(1, Relaxed);
                outstanding = Some(rid);
            }
        }
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => {
                if outstanding.is_some() {
                    c.unanswered.fetch_add(1, Relaxed);
                }
                return false;
            }
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        match v["method"].as_str() {
            Some("mining.notify") => {
                job = Some((
                    v["params"][0].as_str().unwrap_or("").to_string(),
                    v["params"][7].as_str().unwrap_or("").to_string(),
                ));
            }
            Some("mining.set_extranonce") => n2 = v["params"][1].as_u64().unwrap_or(0) as usize,
            Some(_) => {}
            None => {
                if v["id"] == json!(2) {
                    n2 = v["result"][2].as_u64().unwrap_or(0) as usize;
                    continue;
                }
                let Some(id) = v["id"].as_u64().filter(|&i| i > 3) else {
                    continue;
                };
                if outstanding != Some(id) {
                    c.duplicate_replies.fetch_add(1, Relaxed);
                    continue;
                }
                outstanding = None;
                c.replies.fetch_add(1, Relaxed);
                if v["result"] == json!(true) {
                    c.accepted.fetch_add(1, Relaxed);
                } else if v["error"][0] == json!(20) {
                    c.errors_pool_away.fetch_add(1, Relaxed);
                } else {
                    c.other_rejects.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn status(metrics: SocketAddr) -> Value {
    let mut s = TcpStream::connect(metrics).unwrap();
    s.write_all(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut s, &mut body).unwrap();
    let json = &body[body.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(json).unwrap()
}

#[test]
#[ignore = "a long soak: run scripts/soak.sh"]
fn soak_with_faults_loses_nothing() {
    let seconds = env_u64("SOAK_SECONDS", 120);
    let miners = env_u64("SOAK_MINERS", 2000);
    let (p1, p2) = (common::free_port(), common::free_port());
    let (a1, a2): (SocketAddr, SocketAddr) =
        (([127, 0, 0, 1], p1).into(), ([127, 0, 0, 1], p2).into());
    let mut primary = Some(pool_at(a1));
    let backup = pool_at(a2);
    let (listen, metrics_port) = (common::free_port(), common::free_port());
    let dir = std::env::temp_dir().join(format!("fastproxy-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("soak.yaml");
    let validate = env_u64("SOAK_VALIDATE", 0) == 1;
    let yaml = |first: SocketAddr, second: SocketAddr| {
        format!(
            "drain_timeout: 5\nmetrics: {{ listen: 127.0.0.1:{metrics_port} }}\nproxies:\n  - name: soak\n    protocol: stratum\n    validate_shares: {validate}\n    retry_initial: 0.2\n    retry_max: 1\n    failback_interval: 3\n    share_timeout: 10\n    idle_timeout: 30\n    listen:\n      - address: 127.0.0.1:{listen}\n    pools:\n      - url: stratum+tcp://{first}\n        user: acct.soak\n      - url: stratum+tcp://{second}\n        user: acct.soak\n"
        )
    };
    std::fs::write(&cfg, yaml(a1, a2)).unwrap();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_fastproxy"))
        .arg("-c")
        .arg(&cfg)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = proxy.id();
    let addr: SocketAddr = ([127, 0, 0, 1], listen).into();
    let metrics: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    common::wait_until(Duration::from_secs(20), "proxy up", || {
        TcpStream::connect(addr).is_ok()
    });
    std::thread::sleep(Duration::from_millis(300));
    let fds_idle = open_fds(pid);

    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..miners)
        .map(|i| {
            let (c, stop) = (counts.clone(), stop.clone());
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut round = 0u64;
                    // Churn: a tenth of the miners reconnect every few seconds, the rest stay.
                    while Instant::now() < end && !stop.load(Relaxed) {
                        let until = if i % 10 == 0 {
                            Instant::now() + Duration::from_millis(2000 + (i % 7) * 500)
                        } else {
                            end
                        };
                        round += 1;
                        if !session(addr, until.min(end), &c, (i << 32) + (round << 20)) {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                })
                .unwrap()
        })
        .collect();

    // The fault schedule, scaled to the run's length.
    let at = |f: f64| started + Duration::from_secs_f64(seconds as f64 * f);
    let wait_for = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    wait_for(at(0.2));
    // The primary dies (failover to the backup). Its counts are read once it has stopped (its listener would
    // take the proxy's reconnects until then), so they are complete.
    let first_primary = primary.take().map(SimPool::stop_with_stats);
    wait_for(at(0.35));
    primary = Some(pool_at(a1)); // primary back: failback
    wait_for(at(0.5));
    backup.disconnect_all(); // a blip on whichever connections the backup holds
    primary.as_ref().unwrap().disconnect_all(); // and the primary drops everyone once
    wait_for(at(0.6));
    std::fs::write(&cfg, yaml(a2, a1)).unwrap(); // reload: the backup becomes the first pool
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    wait_for(at(0.75));
    std::fs::write(&cfg, yaml(a1, a2)).unwrap(); // and back
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();

    for t in threads {
        let _ = t.join();
    }
    stop.store(true, Relaxed);
    // Every miner left: nothing may be left behind in the proxy.
    common::wait_until(Duration::from_secs(15), "all miners gone", || {
        status(metrics)["proxies"][0]["miners_connected"] == json!(0)
    });
    let fds_after = open_fds(pid);
    let st = status(metrics);
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let code = proxy.wait().unwrap();

    let pools: Vec<_> = [
        first_primary.unwrap(),
        primary.as_ref().unwrap().stats(),
        backup.stats(),
    ]
    .to_vec();
    let pool_accepted: u64 = pools.iter().map(|p| p.accepted).sum();
    let mut seen = HashSet::new();
    let mut twice = 0;
    for p in &pools {
        for s in &p.accepted_shares {
            if !seen.insert((
                s.extranonce1.clone(),
                s.extranonce2.clone(),
                s.job_id.clone(),
                s.nonce,
            )) {
                twice += 1;
            }
        }
    }
    let c = &counts;
    println!(
        "soak {seconds}s, {miners} miners, {} sessions: submitted {} | replies {} | miners told accepted {} | pools accepted {} | errors while the pool was away {} | other rejects {} | unanswered {} | duplicate replies {} | fds idle {fds_idle} after {fds_after}",
        c.sessions.load(Relaxed),
        c.submitted.load(Relaxed),
        c.replies.load(Relaxed),
        c.accepted.load(Relaxed),
        pool_accepted,
        c.errors_pool_away.load(Relaxed),
        c.other_rejects.load(Relaxed),
        c.unanswered.load(Relaxed),
        c.duplicate_replies.load(Relaxed),
    );
    assert!(code.success(), "SIGTERM: exit 0");
    assert_eq!(
        c.submitted.load(Relaxed),
        c.replies.load(Relaxed),
        "every submit got a reply"
    );
    assert_eq!(
        c.unanswered.load(Relaxed),
        0,
        "no submit left without a reply"
    );
    assert_eq!(
        c.duplicate_replies.load(Relaxed),
        0,
        "no submit answered twice"
    );
    assert_eq!(twice, 0, "no share accepted twice by the pools");
    let told = c.accepted.load(Relaxed);
    assert!(
        told <= pool_accepted,
        "every share a miner was told was accepted, a pool accepted"
    );
    assert!(
        pool_accepted <= told + c.errors_pool_away.load(Relaxed),
        "a share the pool accepted but whose verdict was lost with the connection was answered with an error"
    );
    assert!(
        fds_after <= fds_idle + 2,
        "no leaked descriptors: {fds_idle} idle, {fds_after} after"
    );
    assert!(st["proxies"][0]["miners_connected"] == json!(0));
    assert!(c.accepted.load(Relaxed) > miners, "shares flowed");
}
