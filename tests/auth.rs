//! Miner authentication (users with argon2 hashes, passthrough to the pool) and immediate share replies.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{run_miner, spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::{AcceptedShare, SimPool, SimPoolConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn users_yaml(pool: std::net::SocketAddr) -> String {
    let hash = fastproxy::auth::hash_password("s3cret").unwrap();
    proxy_yaml(
        &[pool],
        &format!(
            "auth: {{ users: [{{ name: farm1, password_hash: \"{hash}\" }}], max_failures: 3 }}"
        ),
    )
}

#[test]
fn only_configured_users_with_the_right_password_get_in() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&users_yaml(pool.addr()));
    let addr = proxy.first_addr().unwrap();
    let r = run_miner(
        &SimMinerConfig {
            addr,
            worker: "farm1.rig7".into(),
            password: "s3cret".into(),
            max_shares: Some(2),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(r.accepted, 2, "{r:?}");
    let mut c = Client::connect(addr);
    let s = c.request("mining.subscribe", json!([]));
    let (sub, _) = c.reply(s, Duration::from_secs(5));
    let n = sub["result"][2].as_u64().unwrap() as usize;
    for (worker, pass) in [("farm1.rig8", "wrong"), ("farm2.rig1", "s3cret")] {
        let a = c.request("mining.authorize", json!([worker, pass]));
        let (r, _) = c.reply(a, Duration::from_secs(5));
        assert_eq!(r["error"][0], json!(24), "{worker}: {r}");
    }
    let id = c.request(
        "mining.submit",
        json!(["farm2.rig1", "j", "00".repeat(n), "00000000", "00000000"]),
    );
    assert_eq!(
        c.reply(id, Duration::from_secs(5)).0["error"][0],
        json!(24),
        "unauthorized submit"
    );
    let before = pool.stats().submits;
    // The third failure from this address trips the limit: refused and disconnected, even with the right password.
    let a = c.request("mining.authorize", json!(["farm1.rig9", "nope"]));
    c.reply(a, Duration::from_secs(5));
    let a = c.request("mining.authorize", json!(["farm1.rig9", "s3cret"]));
    let (r, _) = c.reply(a, Duration::from_secs(5));
    assert!(r["error"][1].as_str().unwrap().contains("too many"), "{r}");
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(
        ProxyStats::get(&proxy.stats("test").unwrap().miners_kicked),
        1,
        "the address over max_failures is kicked, once"
    );
    assert_eq!(
        pool.stats().submits,
        before,
        "nothing unauthorized was forwarded"
    );
}

/// A pool that admits the proxy's own account and the farm's two workers, nobody else.
fn farm_pool() -> SimPool {
    pool(SimPoolConfig {
        user: Some("acct.proxy".into()),
        users: WORKERS.iter().map(|w| w.to_string()).collect(),
        ..SimPoolConfig::default()
    })
}

/// The miners' own worker names, unlike the proxy's pool account `acct.proxy`.
const WORKERS: [&str; 2] = ["farm.rig1", "farm.rig2"];

fn farm_miner(addr: SocketAddr, worker: &str) -> SimMinerConfig {
    SimMinerConfig {
        addr,
        worker: worker.into(),
        extranonce_subscribe: true,
        duration: Duration::from_secs(60),
        ..SimMinerConfig::default()
    }
}

/// How many of `shares` the pool accepted under each worker name.
fn by_worker(shares: &[AcceptedShare]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in shares {
        *m.entry(s.worker.clone()).or_insert(0) += 1;
    }
    m
}

#[test]
fn passthrough_lets_the_pool_decide_and_keeps_worker_names() {
    let pool = farm_pool();
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "auth: passthrough"));
    let addr = proxy.first_addr().unwrap();
    for w in WORKERS {
        let r = run_miner(
            &SimMinerConfig {
                max_shares: Some(2),
                ..farm_miner(addr, w)
            },
            &AtomicBool::new(false),
        );
        assert_eq!(r.accepted, 2, "{w}: {r:?}");
    }
    // The pool saw each miner's own name: on its authorize and on each of its shares.
    let ps = pool.stats();
    for w in WORKERS {
        assert!(
            ps.authorized_users.iter().any(|u| u == w),
            "{w} authorized upstream: {:?}",
            ps.authorized_users
        );
    }
    assert_eq!(
        by_worker(&ps.accepted_shares),
        BTreeMap::from([(WORKERS[0].into(), 2), (WORKERS[1].into(), 2)]),
        "each share carried its miner's name, not the proxy's account"
    );
    // Another name: the pool says false, the miner hears false and cannot submit.
    let mut c = Client::connect(addr);
    let s = c.request("mining.subscribe", json!([]));
    let (sub, _) = c.reply(s, Duration::from_secs(5));
    let n = sub["result"][2].as_u64().unwrap() as usize;
    let a = c.request("mining.authorize", json!(["stranger.rig", "x"]));
    let (r, _) = c.reply(a, Duration::from_secs(5));
    assert_eq!(r["result"], json!(false), "the pool refused: {r}");
    assert_eq!(r["error"], json!(null), "{r}");
    let id = c.request(
        "mining.submit",
        json!(["stranger.rig", "j", "00".repeat(n), "00000000", "00000000"]),
    );
    assert_eq!(c.reply(id, Duration::from_secs(5)).0["error"][0], json!(24));
    let ps = pool.stats();
    assert!(!ps.authorized_users.iter().any(|u| u == "stranger.rig"));
    assert_eq!(ps.submits, 4, "the stranger's share was not forwarded");
}

#[test]
fn passthrough_workers_are_authorized_again_on_the_backup_after_a_failover() {
    let primary = farm_pool();
    let backup = farm_pool();
    let proxy = start_proxy(&proxy_yaml(
        &[primary.addr(), backup.addr()],
        "auth: passthrough\nretry_initial: 0.1\nretry_max: 0.5\nfailover_after: 2\nfailback: false",
    ));
    let addr = proxy.first_addr().unwrap();
    let st = proxy.stats("test").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let miners: Vec<_> = WORKERS
        .iter()
        .map(|w| spawn_miner(farm_miner(addr, w), stop.clone()))
        .collect();
    wait_until(
        Duration::from_secs(20),
        "both workers' shares on the primary",
        || by_worker(&primary.stats().accepted_shares).len() == 2,
    );
    primary.stop();
    wait_until(
        Duration::from_secs(20),
        "3 shares of each worker on the backup",
        || {
            let m = by_worker(&backup.stats().accepted_shares);
            WORKERS.iter().all(|w| m.get(*w).is_some_and(|&n| n >= 3))
        },
    );
    stop.store(true, Ordering::Relaxed);
    assert!(ProxyStats::get(&st.failovers) >= 1);
    let reports: Vec<_> = miners.into_iter().map(|h| h.join().unwrap()).collect();
    let ps = backup.stats();
    for w in WORKERS {
        assert!(
            ps.authorized_users.iter().any(|u| u == w),
            "{w} authorized again on the backup: {:?}",
            ps.authorized_users
        );
    }
    let names = by_worker(&ps.accepted_shares);
    assert_eq!(
        names.keys().collect::<Vec<_>>(),
        WORKERS.iter().collect::<Vec<_>>(),
        "the backup accepted shares under the miners' own names only: {names:?}"
    );
    assert_eq!(
        ps.rejected_by_code.get(&24),
        None,
        "no share reached the backup from an unauthorized worker: {ps:?}"
    );
    for r in &reports {
        assert!(!r.disconnected_by_peer, "{r:?}");
        assert_eq!(r.unanswered, 0, "{r:?}");
        assert!(!r.reject_codes.contains_key(&24), "{r:?}");
    }
}

#[test]
fn immediate_share_replies_answer_at_once_and_still_count_the_pools_verdict() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "share_reply: immediate"));
    let addr = proxy.first_addr().unwrap();
    let st = proxy.stats("test").unwrap();
    let r = run_miner(
        &SimMinerConfig {
            addr,
            tamper_extranonce1: true,
            max_shares: Some(3),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(r.accepted, 3, "answered true at once: {r:?}");
    assert_eq!(r.duplicate_or_unknown_replies, 0, "exactly one reply each");
    wait_until(Duration::from_secs(5), "the pool's rejects counted", || {
        ProxyStats::get(&st.shares_rejected) == 3
    });
    assert_eq!(pool.stats().rejected, 3);
}
