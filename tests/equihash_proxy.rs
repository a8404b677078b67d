//! Equihash stratum (ZIP 301) through the proxy, against a simulated pool that checks every share's nonce
//! split, format and target; and both dialects side by side from one config.

mod common;

use common::*;
use fastproxy::equihash::{self, EquihashJob};
use fastproxy::hex;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::equihash_miner::{
    grind_solution, spawn_equihash_miner, EquihashMinerConfig, EquihashMinerReport,
};
use fastproxy_sim::equihash_pool::{EquihashPool, EquihashPoolConfig};
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn eq_pool(cfg: EquihashPoolConfig) -> EquihashPool {
    EquihashPool::start(cfg).expect("start equihash pool")
}

fn eq_yaml(pools: &[SocketAddr], extra: &str) -> String {
    proxy_yaml(pools, extra).replace("protocol: stratum", "protocol: equihash")
}

fn eq_miner(addr: SocketAddr, i: usize, shares: u64) -> EquihashMinerConfig {
    EquihashMinerConfig {
        addr,
        worker: format!("zec.rig{i}"),
        max_shares: Some(shares),
        duration: Duration::from_secs(60),
        share_interval: Duration::from_millis(20),
        ..EquihashMinerConfig::default()
    }
}

fn run_all(cfgs: Vec<EquihashMinerConfig>) -> Vec<EquihashMinerReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = cfgs
        .into_iter()
        .map(|c| spawn_equihash_miner(c, stop.clone()))
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn sixty_equihash_miners_share_one_upstream_and_the_pool_rebuilds_their_exact_nonces() {
    let pool = eq_pool(EquihashPoolConfig::default());
    let proxy = start_proxy(&eq_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let reports = run_all((0..60).map(|i| eq_miner(addr, i, 3)).collect());
    let mut nonce1s = BTreeSet::new();
    let mut miner_nonces = BTreeSet::new();
    for r in &reports {
        assert_eq!(r.accepted, 3, "{r:?}");
        assert_eq!(r.unanswered, 0, "{r:?}");
        assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
        assert_eq!(
            r.nonce1.len(),
            4 + 2,
            "pool NONCE_1 (4 bytes) || 2-byte prefix"
        );
        assert!(
            nonce1s.insert(r.nonce1.clone()),
            "NONCE_1 || P handed out twice"
        );
        miner_nonces.extend(r.submitted_nonces.iter().copied());
    }
    let ps = pool.stats();
    assert_eq!(ps.connections_total, 1, "one upstream connection");
    assert_eq!(ps.accepted, 180);
    let pool_nonces: BTreeSet<[u8; 32]> = ps.accepted_shares.iter().map(|s| s.nonce).collect();
    assert_eq!(
        pool_nonces, miner_nonces,
        "the 32-byte nonce the pool rebuilds is the miner's"
    );
    for s in &ps.accepted_shares {
        assert_eq!(s.worker, "acct.proxy");
        assert_eq!(s.nonce2.len(), 28);
    }
}

#[test]
fn an_equihash_miner_with_the_wrong_prefix_is_rejected() {
    let pool = eq_pool(EquihashPoolConfig {
        target_hex: format!("0000{}", "ff".repeat(30)),
        ..EquihashPoolConfig::default()
    });
    let proxy = start_proxy(&eq_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let mut bad = eq_miner(addr, 9, 3);
    bad.tamper_nonce1 = true;
    let r = run_all(vec![eq_miner(addr, 1, 3), bad]);
    assert_eq!(r[0].accepted, 3, "{:?}", r[0]);
    assert_eq!(r[1].accepted, 0, "{:?}", r[1]);
    assert_eq!(r[1].reject_codes.get(&23), Some(&3), "{:?}", r[1]);
}

#[test]
fn malformed_equihash_submits_are_refused_locally_and_never_reach_the_pool() {
    let pool = eq_pool(EquihashPoolConfig::default());
    let proxy = start_proxy(&eq_yaml(&[pool.addr()], ""));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let s = c.request("mining.subscribe", json!(["test/1", null, "127.0.0.1", 1]));
    let (r, _) = c.reply(s, Duration::from_secs(5));
    let nonce1 = r["result"][1].as_str().unwrap().to_string();
    assert_eq!(nonce1.len(), 12);
    let a = c.request("mining.authorize", json!(["rig", "x"]));
    let (r, mut seen) = c.reply(a, Duration::from_secs(5));
    assert_eq!(r["result"], json!(true), "{r}");
    while !seen.iter().any(|v| v["method"] == json!("mining.notify")) {
        seen.push(c.read(Duration::from_secs(5)).expect("a job"));
    }
    let last = |m: &str| seen.iter().rev().find(|v| v["method"] == json!(m));
    let eq_job =
        EquihashJob::from_notify_params(&last("mining.notify").unwrap()["params"]).unwrap();
    let target = last("mining.set_target").expect("a target")["params"][0]
        .as_str()
        .and_then(equihash::target_from_hex)
        .expect("target hex");
    let job = json!(eq_job.job_id);
    let n2 = "00".repeat(32 - 6);
    let sol = format!("fd4005{}", "00".repeat(1344));
    for (params, what) in [
        (
            json!(["w", job, "5e0fa21c", "00".repeat(27), sol]),
            "nonce_2 too long",
        ),
        (
            json!(["w", job, "5e0fa21c", "00".repeat(25), sol]),
            "nonce_2 too short",
        ),
        (json!(["w", job, "5e0fa2", n2, sol]), "time"),
        (
            json!([
                "w",
                job,
                "5e0fa21c",
                n2,
                format!("fd4005{}", "00".repeat(1343))
            ]),
            "solution length",
        ),
        (
            json!([
                "w",
                job,
                "5e0fa21c",
                n2,
                format!("fd4105{}", "00".repeat(1344))
            ]),
            "compactSize",
        ),
        (
            json!([
                "w",
                job,
                "5e0fa21c",
                n2,
                format!("fd4005{}zz", "00".repeat(1343))
            ]),
            "solution hex",
        ),
        (json!(["w", job, "5e0fa21c", n2]), "param count"),
        (json!([["version-rolling"], {}]), "configure-shaped params"),
    ] {
        let id = c.request("mining.submit", params);
        let (r, _) = c.reply(id, Duration::from_secs(5));
        assert_eq!(r["error"][0], json!(20), "{what}: {r}");
        assert_eq!(r["result"], json!(null), "{what}: {r}");
    }
    let id = c.request("mining.configure", json!([["version-rolling"], {}]));
    assert_eq!(
        c.reply(id, Duration::from_secs(5)).0["error"][0],
        json!(20),
        "no configure in ZIP 301"
    );
    assert_eq!(
        pool.stats().submits,
        0,
        "nothing malformed reached the pool"
    );
    // A well-formed share that meets the target still goes through, and the pool accepts it.
    let mut nonce = hex::decode(&nonce1).unwrap();
    nonce.extend_from_slice(&hex::decode(&n2).unwrap());
    let nonce: [u8; 32] = nonce.try_into().unwrap();
    let header = eq_job.header_with_time(&[0x5e, 0x0f, 0xa2, 0x1c], &nonce);
    let mut solution = hex::decode(&sol).unwrap();
    grind_solution(&header, &mut solution, &target, 0, 1 << 20).expect("a solution variant");
    let id = c.request(
        "mining.submit",
        json!(["w", job, "5e0fa21c", n2, hex::encode(&solution)]),
    );
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["result"], json!(true), "{r}");
    assert_eq!(r["error"], json!(null), "{r}");
    let ps = pool.stats();
    assert_eq!((ps.submits, ps.accepted), (1, 1), "{ps:?}");
    assert_eq!(ps.accepted_shares[0].nonce, nonce);
}

#[test]
fn a_late_equihash_miner_gets_target_and_job_after_subscribe_and_authorize() {
    let pool = eq_pool(EquihashPoolConfig::default());
    let proxy = start_proxy(&eq_yaml(&[pool.addr()], ""));
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "ready", || {
        ProxyStats::get(&st.pool_ready) == 1
    });
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let s = c.request("mining.subscribe", json!(["test/1", null, "127.0.0.1", 1]));
    c.reply(s, Duration::from_secs(5));
    let a = c.request("mining.authorize", json!(["rig", "x"]));
    let (_, mut seen) = c.reply(a, Duration::from_secs(5));
    while seen.len() < 2 {
        seen.push(c.read(Duration::from_secs(2)).expect("work"));
    }
    assert_eq!(seen[0]["method"], json!("mining.set_target"));
    assert_eq!(seen[1]["method"], json!("mining.notify"));
    assert_eq!(seen[1]["params"].as_array().unwrap().len(), 8);
}

#[test]
fn a_pool_whose_nonce1_leaves_too_little_is_refused_and_the_backup_used() {
    // 23 bytes of NONCE_1 leave 9: after a 2-byte prefix miners would have 7 (< 8).
    let greedy = eq_pool(EquihashPoolConfig {
        nonce1_size: 23,
        ..EquihashPoolConfig::default()
    });
    let backup = eq_pool(EquihashPoolConfig::default());
    let proxy = start_proxy(&eq_yaml(
        &[greedy.addr(), backup.addr()],
        "retry_initial: 0.1",
    ));
    let r = run_all(vec![eq_miner(proxy.first_addr().unwrap(), 1, 2)]);
    assert_eq!(r[0].accepted, 2, "{:?}", r[0]);
    assert_eq!(greedy.stats().submits, 0);
    assert_eq!(backup.stats().accepted, 2);
    assert_eq!(
        greedy.stats().connections_total,
        1,
        "refused once, not retried in a loop"
    );
}

#[test]
fn equihash_failover_sends_set_extranonce_and_shares_continue() {
    let primary = eq_pool(EquihashPoolConfig::default());
    let backup = eq_pool(EquihashPoolConfig::default());
    let proxy = start_proxy(&eq_yaml(
        &[primary.addr(), backup.addr()],
        "retry_initial: 0.1\nretry_max: 0.3\nfailback: false",
    ));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut cfg = eq_miner(addr, 1, 10_000);
    cfg.extranonce_subscribe = true;
    let h = spawn_equihash_miner(cfg, stop.clone());
    wait_until(Duration::from_secs(10), "shares on the primary", || {
        primary.stats().accepted >= 3
    });
    primary.stop();
    wait_until(Duration::from_secs(10), "shares on the backup", || {
        backup.stats().accepted >= 3
    });
    stop.store(true, Ordering::Relaxed);
    let r = h.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert!(r.set_extranonce_received >= 1, "{r:?}");
    assert_eq!(r.unanswered, 0, "{r:?}");
    let backup_nonces: BTreeSet<[u8; 32]> = backup
        .stats()
        .accepted_shares
        .iter()
        .map(|s| s.nonce)
        .collect();
    let miner_nonces: BTreeSet<[u8; 32]> = r.submitted_nonces.iter().copied().collect();
    assert!(
        backup_nonces.is_subset(&miner_nonces),
        "the backup rebuilt the miner's nonces"
    );
}

#[test]
fn both_dialects_side_by_side_from_one_config() {
    let btc = pool(SimPoolConfig::default());
    let zec = eq_pool(EquihashPoolConfig::default());
    let yaml = format!(
        "threads: 1\nproxies:\n  - name: btc\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum+tcp://{}\n        user: acct.btc\n  - name: zec\n    protocol: equihash\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum+tcp://{}\n        user: acct.zec\n",
        btc.addr(),
        zec.addr()
    );
    let proxy = start_proxy(&yaml);
    let stop = Arc::new(AtomicBool::new(false));
    let b = spawn_miner(
        SimMinerConfig {
            addr: proxy.local_addrs("btc")[0],
            max_shares: Some(3),
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        },
        stop.clone(),
    );
    let z = spawn_equihash_miner(eq_miner(proxy.local_addrs("zec")[0], 1, 3), stop);
    assert_eq!(b.join().unwrap().accepted, 3);
    assert_eq!(z.join().unwrap().accepted, 3);
    assert_eq!(btc.stats().accepted, 3);
    assert_eq!(zec.stats().accepted, 3);
}
