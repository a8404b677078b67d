//! End-to-end Stratum V1 through the proxy, over real sockets, against a pool that checks every share.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_hundred_and_twenty_miners_share_one_upstream_and_every_share_validates() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    // Up to 3 minutes: on a loaded machine 120 hashing threads share what CPU there is (they stop at 2 shares).
    let reports = run_all(
        (0..120)
            .map(|i| SimMinerConfig {
                duration: Duration::from_secs(180),
                ..miner(addr, i, 2)
            })
            .collect(),
    );

    let mut e1s = BTreeSet::new();
    for r in &reports {
        assert!(r.error.is_none(), "{r:?}");
        assert_eq!(r.accepted, 2, "{r:?}");
        assert_eq!(r.rejected, 0, "{r:?}");
        assert_eq!(r.unanswered, 0, "{r:?}");
        assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
        assert_eq!(
            r.extranonce2_size, 6,
            "8-byte pool extranonce2 minus a 2-byte prefix"
        );
        assert!(
            e1s.insert(r.extranonce1.clone()),
            "extranonce1 handed out twice"
        );
    }
    let ps = pool.stats();
    assert_eq!(
        ps.connections_total, 1,
        "one upstream connection for all miners"
    );
    assert_eq!(ps.accepted, 240);
    assert_eq!(ps.rejected, 0);
    // Upstream, every share's extranonce2 starts with the 2-byte prefix of the miner that found it.
    let mut by_prefix: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for s in &ps.accepted_shares {
        assert_eq!(s.extranonce2.len(), 8);
        assert_eq!(
            s.worker, "acct.proxy",
            "shares go up under the pool account"
        );
        *by_prefix.entry(s.extranonce2[..2].to_vec()).or_default() += 1;
    }
    assert_eq!(by_prefix.len(), 120, "120 distinct prefixes upstream");
    assert!(by_prefix.values().all(|&n| n == 2));
    let pool_e1 = &ps.accepted_shares[0].extranonce1;
    for e1 in &e1s {
        assert_eq!(
            &e1[..4],
            pool_e1.as_slice(),
            "miner extranonce1 = pool E1 || prefix"
        );
        assert!(by_prefix.contains_key(&e1[4..]));
    }
    let st = proxy.stats("test").unwrap();
    assert_eq!(ProxyStats::get(&st.shares_accepted), 240);
    assert_eq!(ProxyStats::get(&st.upstreams), 1);
}

#[test]
fn a_miner_hashing_with_the_wrong_prefix_is_rejected_by_the_checking_pool() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let mut bad = miner(addr, 99, 3);
    bad.tamper_extranonce1 = true;
    let reports = run_all(vec![miner(addr, 1, 3), bad]);
    assert_eq!(reports[0].accepted, 3, "{:?}", reports[0]);
    assert_eq!(reports[1].accepted, 0, "{:?}", reports[1]);
    assert_eq!(reports[1].rejected, 3, "{:?}", reports[1]);
    assert_eq!(
        reports[1].reject_codes.get(&23),
        Some(&3),
        "{:?}",
        reports[1]
    );
    assert_eq!(pool.stats().rejected, 3);
}

#[test]
fn version_rolling_is_negotiated_once_and_rolled_shares_validate() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let mut cfgs: Vec<_> = (0..3).map(|i| miner(addr, i, 3)).collect();
    cfgs[0].version_rolling = true;
    cfgs[1].version_rolling = true;
    let reports = run_all(cfgs);
    for r in &reports {
        assert_eq!(r.accepted, 3, "{r:?}");
    }
    assert_eq!(reports[0].version_mask, Some(0x1fff_e000));
    assert_eq!(reports[2].version_mask, None);
    let ps = pool.stats();
    assert_eq!(
        ps.configure_requests, 1,
        "the proxy negotiates once per upstream"
    );
    let rolled = ps
        .accepted_shares
        .iter()
        .filter(|s| s.version_bits.is_some())
        .count();
    assert_eq!(
        rolled, 6,
        "shares of the two rolling miners carry version bits"
    );
}

#[test]
fn configure_answers_the_intersection_of_masks_and_refuses_unknown_extensions() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let id = c.request(
        "mining.configure",
        json!([["version-rolling", "minimum-difficulty"], {"version-rolling.mask": "00ffff00", "version-rolling.min-bit-count": 2}]),
    );
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["result"]["version-rolling"], json!(true));
    assert_eq!(r["result"]["version-rolling.mask"], json!("00ffe000"));
    assert_eq!(r["result"]["minimum-difficulty"], json!(false));
}

#[test]
fn a_late_miner_gets_difficulty_and_job_right_after_subscribe_and_authorize() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    wait_until(Duration::from_secs(5), "upstream ready", || {
        ProxyStats::get(&proxy.stats("test").unwrap().pool_ready) == 1
    });
    let mut c = Client::connect(addr);
    let (e1, n, notes) = c.handshake();
    assert_eq!(n, 6);
    assert_eq!(e1.len(), 12);
    let mut all = notes;
    while all.len() < 2 {
        all.push(
            c.read(Duration::from_secs(2))
                .expect("work after authorize"),
        );
    }
    let methods: Vec<&str> = all.iter().filter_map(|v| v["method"].as_str()).collect();
    assert_eq!(
        methods,
        vec!["mining.set_difficulty", "mining.notify"],
        "{all:?}"
    );
    assert_eq!(all[1]["params"].as_array().unwrap().len(), 9);
}

#[test]
fn when_one_upstream_is_full_another_opens_and_closes_when_its_miners_leave() {
    // extranonce2_size 4 with min_extranonce2_size 4: no prefix, one miner per pool connection.
    let pool = pool(SimPoolConfig {
        extranonce2_size: 4,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let reports = run_all((0..3).map(|i| miner(addr, i, 2)).collect());
    for r in &reports {
        assert_eq!(r.accepted, 2, "{r:?}");
        assert_eq!(r.extranonce2_size, 4);
    }
    let ps = pool.stats();
    assert_eq!(ps.connections_total, 3, "one pool connection per miner");
    assert_eq!(ps.accepted, 6);
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "extra upstreams closed", || {
        ProxyStats::get(&st.upstreams) == 1 && pool.stats().connections_open == 1
    });
}

#[test]
fn a_five_byte_pool_extranonce2_gives_one_byte_prefixes() {
    let pool = pool(SimPoolConfig {
        extranonce2_size: 5,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let reports = run_all((0..4).map(|i| miner(addr, i, 2)).collect());
    for r in &reports {
        assert_eq!(r.accepted, 2, "{r:?}");
        assert_eq!(r.extranonce2_size, 4);
        assert_eq!(r.extranonce1.len(), 5);
    }
    assert_eq!(pool.stats().connections_total, 1);
}

#[test]
fn set_extranonce_from_the_pool_reaches_subscribed_miners_and_others_reconnect() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let mut sub = Client::connect(addr);
    let id = sub.request("mining.extranonce.subscribe", json!([]));
    assert_eq!(
        sub.reply(id, Duration::from_secs(5)).0["result"],
        json!(true)
    );
    let (e1_before, _, _) = sub.handshake();
    let mut plain = Client::connect(addr);
    plain.handshake();
    pool.set_extranonce_all();
    let mut seen = None;
    for _ in 0..20 {
        let Some(v) = sub.read(Duration::from_secs(2)) else {
            break;
        };
        if v["method"] == json!("mining.set_extranonce") {
            seen = Some(v);
            break;
        }
    }
    let v = seen.expect("subscribed miner got mining.set_extranonce");
    let e1_after = v["params"][0].as_str().unwrap();
    assert_ne!(e1_after, e1_before);
    assert_eq!(
        &e1_after[8..],
        &e1_before[8..],
        "the miner keeps its prefix"
    );
    assert_eq!(v["params"][1], json!(6));
    assert!(
        plain.closed_within(Duration::from_secs(5)),
        "a miner that did not subscribe is disconnected"
    );

    // Shares found with the new extranonce still validate.
    let mut m = miner(addr, 5, 2);
    m.extranonce_subscribe = true;
    let r = run_all(vec![m]);
    assert_eq!(r[0].accepted, 2, "{:?}", r[0]);
}

#[test]
fn every_share_gets_one_reply_when_the_pool_never_answers() {
    let pool = pool(SimPoolConfig {
        answer_submits: false,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "share_timeout: 1"));
    let addr = proxy.first_addr().unwrap();
    let mut c = Client::connect(addr);
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);
    let id = c.request(
        "mining.submit",
        json!([
            "rig.1",
            job,
            "00".repeat(n as usize),
            "5f5e1000",
            "00000001"
        ]),
    );
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["error"][0], json!(20), "{r}");
    assert!(
        r["error"][1].as_str().unwrap().contains("did not answer"),
        "{r}"
    );
    assert!(
        c.read(Duration::from_millis(1500)).is_none(),
        "exactly one reply"
    );
}

#[test]
fn shares_pending_when_the_pool_drops_are_answered_with_errors() {
    let pool = pool(SimPoolConfig {
        answer_submits: false,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "share_timeout: 30"));
    let addr = proxy.first_addr().unwrap();
    let mut c = Client::connect(addr);
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);
    let ids: Vec<u64> = (0..3)
        .map(|i| {
            c.request(
                "mining.submit",
                json!([
                    "rig.1",
                    job,
                    format!("{:0w$x}", i, w = 2 * n as usize),
                    "5f5e1000",
                    "00000001"
                ]),
            )
        })
        .collect();
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "shares forwarded", || {
        ProxyStats::get(&st.shares_forwarded) == 3
    });
    pool.disconnect_all();
    for id in ids {
        let (r, _) = c.reply(id, Duration::from_secs(5));
        assert_eq!(r["error"][0], json!(20), "{r}");
    }
    // The proxy reconnects by itself (this miner, not subscribed to extranonce changes, is then told to reconnect).
    wait_until(Duration::from_secs(10), "reconnected", || {
        ProxyStats::get(&st.pool_ready) == 2
    });
}

#[test]
fn a_departed_miners_prefix_is_not_reused_until_its_shares_are_answered() {
    // extranonce2_size 4 leaves no prefix bits: each upstream serves exactly one miner, so whether the slot of a
    // departed miner is free shows in which upstream the next miner lands.
    let pool = pool(SimPoolConfig {
        extranonce2_size: 4,
        answer_submits: false,
        ..SimPoolConfig::default()
    });
    // A share timeout far beyond the few steps below (a loaded machine may stall seconds): the share is still in
    // flight when b connects.
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "share_timeout: 10"));
    let addr = proxy.first_addr().unwrap();
    let st = proxy.stats("test").unwrap();
    let mut a = Client::connect(addr);
    let (e1_a, n, notes) = a.handshake();
    let job = a.job_id(&notes);
    a.request(
        "mining.submit",
        json!([
            "rig.1",
            job,
            "00".repeat(n as usize),
            "5f5e1000",
            "00000001"
        ]),
    );
    wait_until(Duration::from_secs(5), "share forwarded", || {
        ProxyStats::get(&st.shares_forwarded) == 1
    });
    a.reset();
    wait_until(Duration::from_secs(5), "miner gone", || {
        ProxyStats::get(&st.miners_connected) == 0
    });
    let mut b = Client::connect(addr);
    let (e1_b, _, _) = b.handshake();
    assert_ne!(
        e1_a, e1_b,
        "the slot of a miner with a share in flight is not handed out"
    );
    assert_eq!(
        ProxyStats::get(&st.upstreams),
        2,
        "b needed a second upstream"
    );
    drop(b);
    // Once the share timed out (answered to nobody), the first upstream's slot is free again.
    wait_until(Duration::from_secs(20), "share expired and b gone", || {
        ProxyStats::get(&st.shares_errored) == 1 && ProxyStats::get(&st.upstreams) == 1
    });
    let mut c = Client::connect(addr);
    let (e1_c, _, _) = c.handshake();
    assert_eq!(e1_c, e1_a, "a's slot is reused once its share was answered");
    assert_eq!(ProxyStats::get(&st.upstreams), 1);
}

#[test]
fn pool_reconnect_request_keeps_miners_connected() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut cfg = miner(addr, 1, 1000);
    cfg.extranonce_subscribe = true;
    // Paced: the shares found during the switch are bounded by its time (which a busy machine may stretch).
    cfg.submit_interval = Some(SUBMIT_EVERY);
    // Long enough for a busy machine; the test stops it once it has seen what it needs.
    cfg.duration = Duration::from_secs(60);
    let h = spawn_miner(cfg, stop.clone());
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(10), "first shares", || {
        ProxyStats::get(&st.shares_accepted) >= 2
    });
    let told = ProxyStats::get(&st.extranonce_updates);
    let asked = Instant::now();
    pool.send_reconnect_all(Some("elsewhere.example"), Some(1), 0);
    wait_until(
        Duration::from_secs(10),
        "the miner told its extranonce on the new connection",
        || ProxyStats::get(&st.extranonce_updates) > told,
    );
    // Up to then the miner hashes with its old extranonce1, at most one share per SUBMIT_EVERY.
    let switch = asked.elapsed();
    wait_until(
        Duration::from_secs(10),
        "reconnected to the same pool",
        || pool.stats().connections_total == 2,
    );
    let before = ProxyStats::get(&st.shares_accepted);
    wait_until(
        Duration::from_secs(10),
        "shares after the reconnect",
        || ProxyStats::get(&st.shares_accepted) >= before + 2,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let r = h.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert!(r.set_extranonce_received >= 1, "{r:?}");
    // Shares in flight at the switch were found with the old extranonce1: the pool refuses them as stale (21)
    // or, when it sends the same job again on the new connection, as invalid (23). Nothing else, and only those:
    // the few in flight when the pool asked, those submitted (at the miner's pace) until the proxy told the
    // miner its new extranonce, and one found before the miner read it.
    let stale_or_old = r.reject_codes.get(&21).copied().unwrap_or(0)
        + r.reject_codes.get(&23).copied().unwrap_or(0);
    assert_eq!(
        r.rejected, stale_or_old,
        "only rejects from the switch: {r:?}"
    );
    let most = 3 + (switch.as_millis() / SUBMIT_EVERY.as_millis()) as u64 + 1;
    assert!(
        r.rejected <= most,
        "more rejects than shares in flight during the {switch:?} switch ({most}): {r:?}"
    );
}

/// The pace of the miner that sees its pool ask for a reconnect.
const SUBMIT_EVERY: Duration = Duration::from_millis(50);

#[test]
fn two_reactor_threads_share_the_listening_port_each_with_its_own_upstream() {
    let pool = pool(SimPoolConfig::default());
    let yaml = proxy_yaml(&[pool.addr()], "").replace("threads: 1", "threads: 2");
    let proxy = start_proxy(&yaml);
    assert_eq!(proxy.local_addrs("test").len(), 1);
    let addr = proxy.first_addr().unwrap();
    wait_until(Duration::from_secs(5), "one upstream per reactor", || {
        pool.stats().connections_total == 2
    });
    let reports = run_all((0..20).map(|i| miner(addr, i, 1)).collect());
    let mut e1s = BTreeSet::new();
    for r in &reports {
        assert_eq!(r.accepted, 1, "{r:?}");
        assert!(e1s.insert(r.extranonce1.clone()));
    }
    assert_eq!(pool.stats().connections_total, 2);
}
