//! Miner authentication (users with argon2 hashes, passthrough to the pool) and immediate share replies.

mod common;

use common::*;
use fastproxy::sim::miner::{run_miner, SimMinerConfig};
use fastproxy::sim::pool::SimPoolConfig;
use fastproxy::stats::ProxyStats;
use serde_json::json;
use std::sync::atomic::AtomicBool;
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
        pool.stats().submits,
        before,
        "nothing unauthorized was forwarded"
    );
}

#[test]
fn passthrough_lets_the_pool_decide_and_keeps_worker_names() {
    let pool = pool(SimPoolConfig {
        user: Some("acct.proxy".into()),
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "auth: passthrough"));
    let addr = proxy.first_addr().unwrap();
    // The simulated pool admits exactly one user name: the proxy's account. A miner using it gets in.
    let r = run_miner(
        &SimMinerConfig {
            addr,
            worker: "acct.proxy".into(),
            max_shares: Some(2),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(r.accepted, 2, "{r:?}");
    assert!(pool
        .stats()
        .accepted_shares
        .iter()
        .all(|s| s.worker == "acct.proxy"));
    // Another name: the pool says false, the miner hears false and cannot submit.
    let mut c = Client::connect(addr);
    let s = c.request("mining.subscribe", json!([]));
    let (sub, _) = c.reply(s, Duration::from_secs(5));
    let n = sub["result"][2].as_u64().unwrap() as usize;
    let a = c.request("mining.authorize", json!(["stranger.rig", "x"]));
    let (r, _) = c.reply(a, Duration::from_secs(5));
    assert_ne!(r["result"], json!(true), "{r}");
    let id = c.request(
        "mining.submit",
        json!(["stranger.rig", "j", "00".repeat(n), "00000000", "00000000"]),
    );
    assert_eq!(c.reply(id, Duration::from_secs(5)).0["error"][0], json!(24));
    assert!(pool
        .stats()
        .authorized_users
        .iter()
        .any(|u| u == "acct.proxy"));
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
