//! Weighted routes (issue 15) over real sockets against share-checking pools, one per route: the split of
//! accepted difficulty, moves between routes without losing a share, routes going down and back, miners that
//! cannot be moved, and runtime changes through the shared control state (weights, kicks).

mod common;

use common::*;
use fastproxy_sim::miner::{spawn_miner, LiveCounters, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::{PoolStats, SimPool, SimPoolConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const FAST_RETRY: &str =
    "retry_initial: 0.1\nretry_max: 0.5\nfailback_interval: 1\nfailover_after: 2";

/// Pools of a low share difficulty (about one share per 4096 hashes), so slow miners find shares often
/// while hashing little.
fn easy() -> SimPoolConfig {
    SimPoolConfig {
        difficulty: 1.0 / 1_048_576.0,
        ..SimPoolConfig::default()
    }
}

/// Hashes per second of each simulated miner: about three shares a second at [`easy`]'s difficulty.
const HASHRATE: f64 = 12_000.0;

/// A proxy entry `test` with one route per (name, weight, pool), and `extra` settings.
fn routes_yaml(routes: &[(&str, f64, SocketAddr)], extra: &str) -> String {
    let mut y = String::from(
        "threads: 1\nproxies:\n  - name: test\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n",
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        y.push_str(&format!("    {}\n", line.trim()));
    }
    y.push_str("    routes:\n");
    for (name, weight, addr) in routes {
        y.push_str(&format!(
            "      - name: {name}\n        weight: {weight}\n        pools:\n          - url: stratum+tcp://{addr}\n            user: acct.{name}\n            password: x\n"
        ));
    }
    y
}

/// Miners hashing at `hashrate` hashes per second (shares of the sim pool's difficulty every ~65536 hashes).
fn miners(
    addr: SocketAddr,
    n: usize,
    subscribe: bool,
    hashrate: f64,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<MinerReport>> {
    live_miners(addr, n, subscribe, hashrate, stop).0
}

/// [`miners`], with each one's live counters.
fn live_miners(
    addr: SocketAddr,
    n: usize,
    subscribe: bool,
    hashrate: f64,
    stop: &Arc<AtomicBool>,
) -> (Vec<JoinHandle<MinerReport>>, Vec<Arc<LiveCounters>>) {
    (0..n)
        .map(|i| {
            let live = Arc::new(LiveCounters::default());
            let cfg = SimMinerConfig {
                addr,
                worker: format!("farm.rig{i}"),
                extranonce_subscribe: subscribe,
                duration: Duration::from_secs(90),
                hashrate: Some(hashrate),
                live: Some(live.clone()),
                ..SimMinerConfig::default()
            };
            (spawn_miner(cfg, stop.clone()), live)
        })
        .unzip()
}

/// Each miner's accepted count now.
fn accepted_now(live: &[Arc<LiveCounters>]) -> Vec<u64> {
    live.iter()
        .map(|l| l.accepted.load(Ordering::Relaxed))
        .collect()
}

/// Every share answered exactly once, and every `true` a miner got is a share a pool accepted.
fn check_answers(reports: &[MinerReport], pools: &[&PoolStats], expect_stay: bool) {
    let mut accepted = 0;
    for r in reports {
        // A miner the proxy closes on purpose (its route went away and it cannot be moved) may submit after
        // the close: its kernel then gets a reset, which discards replies it had not read yet. Only miners
        // that stayed are held to every reply.
        if expect_stay || !r.disconnected_by_peer {
            assert_eq!(r.unanswered, 0, "every share answered: {r:?}");
        }
        assert_eq!(r.duplicate_or_unknown_replies, 0, "answered once: {r:?}");
        assert_eq!(
            r.accepted + r.rejected + r.unanswered,
            r.submitted,
            "one verdict per share: {r:?}"
        );
        if expect_stay {
            assert!(!r.disconnected_by_peer, "miner stayed connected: {r:?}");
        }
        accepted += r.accepted;
    }
    let pool_accepted: u64 = pools.iter().map(|p| p.accepted).sum();
    assert_eq!(
        accepted, pool_accepted,
        "the miners got true exactly for the shares the pools accepted"
    );
    for p in pools {
        assert_eq!(
            p.rejected_by_code.get(&23),
            None,
            "no share under a wrong extranonce reached a pool: {:?}",
            p.rejected_shares.first()
        );
    }
}

fn join(handles: Vec<JoinHandle<MinerReport>>) -> Vec<MinerReport> {
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn the_accepted_split_follows_the_weights_with_several_miners() {
    let main = pool(easy());
    let fee = pool(easy());
    let proxy = start_proxy(&routes_yaml(
        &[("main", 70.0, main.addr()), ("fee", 30.0, fee.addr())],
        "route_switch_interval: 1",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(proxy.first_addr().unwrap(), 6, true, HASHRATE, &stop);
    wait_until(Duration::from_secs(90), "300 accepted shares", || {
        main.stats().accepted + fee.stats().accepted >= 300
    });
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    let (a, b) = (main.stats(), fee.stats());
    let share = a.accepted as f64 / (a.accepted + b.accepted) as f64;
    assert!(
        (0.6..=0.8).contains(&share),
        "main's share of the accepted difficulty is {share:.3} ({} / {}), weight 70%",
        a.accepted,
        b.accepted
    );
    check_answers(&reports, &[&a, &b], true);
    let control = proxy.control();
    let at = control.find_route(Some("test"), "fee").unwrap();
    assert!(
        control.route(at).accepted.get() > 0.0,
        "the control state counts the fee route's accepted difficulty"
    );
}

#[test]
fn one_miner_on_50_50_alternates_between_the_pools() {
    let a = pool(easy());
    let b = pool(easy());
    let proxy = start_proxy(&routes_yaml(
        &[("a", 50.0, a.addr()), ("b", 50.0, b.addr())],
        "route_switch_interval: 1",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(proxy.first_addr().unwrap(), 1, true, HASHRATE, &stop);
    wait_until(
        Duration::from_secs(60),
        "both pools accept the miner's shares",
        || a.stats().accepted >= 10 && b.stats().accepted >= 10,
    );
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    assert!(
        reports[0].set_extranonce_received >= 2,
        "moved back and forth: {:?}",
        reports[0]
    );
    check_answers(&reports, &[&a.stats(), &b.stats()], true);
}

/// Reads until a mining.notify; returns it with the lines seen.
fn next_job(c: &mut Client, notes: &mut Vec<Value>) -> fastproxy::work::Job {
    loop {
        let v = c.read(Duration::from_secs(10)).expect("a job");
        notes.push(v.clone());
        if v["method"] == json!("mining.notify") {
            return fastproxy::work::Job::from_notify_params(&v["params"]).unwrap();
        }
    }
}

/// A subscribed miner on a two-route entry, moved off its route: its work before the move (job, extranonce1,
/// extranonce2 size, difficulty) and after it.
struct Moved {
    c: Client,
    old_job: fastproxy::work::Job,
    e1_old: Vec<u8>,
    n2: usize,
    difficulty: f64,
    new_job: fastproxy::work::Job,
    new_e1: Vec<u8>,
}

/// Starts pools `a` and `b` and a proxy with a route to each (50/50), connects a miner, and disables the route
/// it is placed on, so that it moves to the other at once (a forced move needs no measured hashrate).
/// Returns the pools it left and went to, the proxy and the miner.
fn moved_off_its_route() -> (SimPool, SimPool, fastproxy::proxy::RunningProxy, Moved) {
    let a = pool(easy());
    let b = pool(easy());
    let proxy = start_proxy(&routes_yaml(
        &[("a", 50.0, a.addr()), ("b", 50.0, b.addr())],
        "route_switch_interval: 1",
    ));
    let control = proxy.control();
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let s = c.request("mining.subscribe", json!(["test/1"]));
    let (r, mut notes) = c.reply(s, Duration::from_secs(10));
    let e1_old = fastproxy::hex::decode(r["result"][1].as_str().unwrap()).unwrap();
    let n2 = r["result"][2].as_u64().unwrap() as usize;
    let x = c.request("mining.extranonce.subscribe", json!([]));
    let (_, more) = c.reply(x, Duration::from_secs(5));
    notes.extend(more);
    let au = c.request("mining.authorize", json!(["rig.1", "x"]));
    let (_, more) = c.reply(au, Duration::from_secs(5));
    notes.extend(more);
    let (old_job, difficulty) = current_work(&mut c, &mut notes);
    // Which route is it on? The control state lists the worker with its route.
    let mut placed = String::new();
    wait_until(Duration::from_secs(10), "the worker listed", || {
        let w = control.workers();
        placed = w
            .first()
            .map(|(_, _, i)| i.route.clone())
            .unwrap_or_default();
        !placed.is_empty()
    });
    let at = control.find_route(Some("test"), &placed).unwrap();
    control.set_route_enabled(at, false).unwrap();
    let mut seen = Vec::new();
    let new_e1 = loop {
        let v = c.read(Duration::from_secs(10)).expect("a set_extranonce");
        seen.push(v.clone());
        if v["method"] == json!("mining.set_extranonce") {
            break fastproxy::hex::decode(v["params"][0].as_str().unwrap()).unwrap();
        }
    };
    let new_job = next_job(&mut c, &mut seen);
    assert_ne!(new_e1, e1_old, "a prefix on the other route's upstream");
    assert_ne!(new_job.job_id, old_job.job_id);
    let moved = Moved {
        c,
        old_job,
        e1_old,
        n2,
        difficulty,
        new_job,
        new_e1,
    };
    let (old_pool, new_pool) = if placed == "a" { (a, b) } else { (b, a) };
    (old_pool, new_pool, proxy, moved)
}

#[test]
fn a_share_for_the_old_routes_job_after_a_move_reaches_the_old_pool() {
    let (old_pool, new_pool, _proxy, mut m) = moved_off_its_route();
    // A share hashed before the switch: the old job, the old extranonce.
    let e2 = vec![7u8; m.n2];
    let nonce = nonce_for(&m.old_job, &m.e1_old, &e2, m.difficulty, true);
    let id = m.c.submit_share(&m.old_job, &e2, nonce);
    let (reply, _) = m.c.reply(id, Duration::from_secs(10));
    assert_eq!(
        reply["result"],
        json!(true),
        "the old pool accepted it: {reply}"
    );
    let full: Vec<u8> = [&m.e1_old[..], &e2[..]].concat();
    assert!(
        old_pool
            .stats()
            .accepted_shares
            .iter()
            .any(|s| s.full_extranonce() == full && s.nonce == nonce),
        "the share went to the route it was found for, under its old extranonce"
    );
    // And one for the new job goes to the new route's pool.
    let e2 = vec![9u8; m.n2];
    let nonce = nonce_for(&m.new_job, &m.new_e1, &e2, m.difficulty, true);
    let id = m.c.submit_share(&m.new_job, &e2, nonce);
    let (reply, _) = m.c.reply(id, Duration::from_secs(10));
    assert_eq!(
        reply["result"],
        json!(true),
        "the new pool accepted it: {reply}"
    );
    let full: Vec<u8> = [&m.new_e1[..], &e2[..]].concat();
    assert!(new_pool
        .stats()
        .accepted_shares
        .iter()
        .any(|s| s.full_extranonce() == full && s.nonce == nonce));
}

#[test]
fn a_share_for_the_old_routes_job_is_stale_once_the_old_pool_changed_its_extranonce() {
    // The old route's pool gives its connection a new extranonce1 after the miner left: a share the miner
    // hashed before the move would reach that pool under the new one, which the miner never had (refused as
    // low difficulty, and counted against the farm). It is refused here as stale instead, never sent.
    let (old_pool, _new_pool, _proxy, mut m) = moved_off_its_route();
    old_pool.set_extranonce_all();
    // Until the proxy has read the pool's set_extranonce, such a share still goes to the pool; from then on
    // each is answered stale here, the pool never seeing it.
    let mut k = 0u32;
    wait_until(
        Duration::from_secs(10),
        "a share of the old job refused as stale without reaching the old pool",
        || {
            k += 1;
            let mut e2 = vec![0u8; m.n2];
            let w = m.n2.min(4);
            e2[..w].copy_from_slice(&k.to_le_bytes()[..w]);
            let nonce = nonce_for(&m.old_job, &m.e1_old, &e2, m.difficulty, true);
            let before = old_pool.stats().submits;
            let id = m.c.submit_share(&m.old_job, &e2, nonce);
            let (reply, _) = m.c.reply(id, Duration::from_secs(10));
            let sent = old_pool.stats().submits != before;
            reply["error"][0] == json!(21) && !sent
        },
    );
}

#[test]
fn a_route_whose_pools_are_down_gives_its_miners_to_the_other_and_gets_them_back() {
    let a = pool(easy());
    let b = pool(easy());
    let b_addr = b.addr();
    let proxy = start_proxy(&routes_yaml(
        &[("a", 50.0, a.addr()), ("b", 50.0, b_addr)],
        &format!("route_switch_interval: 1\n{FAST_RETRY}"),
    ));
    let control = proxy.control();
    let at_b = control.find_route(Some("test"), "b").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (handles, live) = live_miners(proxy.first_addr().unwrap(), 4, true, HASHRATE, &stop);
    wait_until(Duration::from_secs(30), "shares on both routes", || {
        a.stats().accepted >= 10 && b.stats().accepted >= 10
    });
    let b_stats = b.stop_with_stats();
    wait_until(
        Duration::from_secs(10),
        "the control state sees b down",
        || !control.route(at_b).available(),
    );
    // All four miners now hash for a: each gets shares accepted again (b is gone, so by a).
    let before = accepted_now(&live);
    wait_until(Duration::from_secs(30), "a takes b's miners", || {
        accepted_now(&live)
            .iter()
            .zip(&before)
            .all(|(now, then)| *now >= then + 3)
    });
    let b = SimPool::start(SimPoolConfig {
        listen: b_addr,
        ..easy()
    })
    .expect("restart b on its address");
    wait_until(Duration::from_secs(30), "miners back on b", || {
        b.stats().accepted >= 10
    });
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    // Shares in flight when b went down get an error (pool unavailable); none is lost or answered twice.
    let pools = [&a.stats(), &b_stats, &b.stats()];
    check_answers(&reports, &pools, true);
}

#[test]
fn miners_without_extranonce_subscription_are_placed_and_reconnect_when_their_route_goes() {
    let a = pool(easy());
    let b = pool(easy());
    let proxy = start_proxy(&routes_yaml(
        &[("a", 50.0, a.addr()), ("b", 50.0, b.addr())],
        &format!("route_switch_interval: 1\n{FAST_RETRY}"),
    ));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(addr, 4, false, HASHRATE, &stop);
    wait_until(Duration::from_secs(30), "placed on both routes", || {
        a.stats().accepted >= 5 && b.stats().accepted >= 5
    });
    let b_stats = b.stop_with_stats();
    // The miners on b are closed (they cannot be told of another extranonce) and end their runs.
    wait_until(Duration::from_secs(20), "b's miners closed", || {
        handles.iter().filter(|h| h.is_finished()).count() >= 1
    });
    let (late, late_live) = live_miners(addr, 1, false, HASHRATE, &stop);
    let before = a.stats().accepted;
    // The newcomer's own accepted shares, not only a's total (the others hash for a too).
    wait_until(Duration::from_secs(30), "a newcomer hashes for a", || {
        accepted_now(&late_live)[0] >= 1 && a.stats().accepted >= before + 10
    });
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    let late = join(late);
    let closed = reports.iter().filter(|r| r.disconnected_by_peer).count();
    assert!(
        (1..4).contains(&closed),
        "only the miners of the route that went were closed: {reports:?}"
    );
    assert!(
        late[0].accepted >= 1,
        "the newcomer was placed on a: {:?}",
        late[0]
    );
    for r in reports.iter().chain(&late) {
        assert_eq!(r.set_extranonce_received, 0, "{r:?}");
    }
    let all: Vec<MinerReport> = reports.into_iter().chain(late).collect();
    check_answers(&all, &[&a.stats(), &b_stats], false);
}

#[test]
fn a_weight_changed_at_runtime_moves_the_split() {
    let a = pool(easy());
    let b = pool(easy());
    let proxy = start_proxy(&routes_yaml(
        &[("a", 50.0, a.addr()), ("b", 50.0, b.addr())],
        "route_switch_interval: 1",
    ));
    let control = proxy.control();
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(proxy.first_addr().unwrap(), 4, true, HASHRATE, &stop);
    wait_until(Duration::from_secs(30), "shares on both routes", || {
        a.stats().accepted >= 10 && b.stats().accepted >= 10
    });
    let at_b = control.find_route(Some("test"), "b").unwrap();
    control.set_weight(at_b, 0.0).unwrap();
    // Give the moves a few seconds, then b gets nothing more.
    std::thread::sleep(Duration::from_secs(4));
    let (a0, b0) = (a.stats().accepted, b.stats().accepted);
    wait_until(Duration::from_secs(30), "40 more shares on a", || {
        a.stats().accepted >= a0 + 40
    });
    let b1 = b.stats().accepted;
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    assert!(
        b1 - b0 <= 2,
        "b has weight 0: {} shares there while a got 40",
        b1 - b0
    );
    check_answers(&reports, &[&a.stats(), &b.stats()], true);
}

#[test]
fn a_kick_through_the_control_state_closes_that_worker() {
    let a = pool(easy());
    let b = pool(easy());
    let proxy = start_proxy(&routes_yaml(
        &[("a", 50.0, a.addr()), ("b", 50.0, b.addr())],
        "",
    ));
    let control = proxy.control();
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(proxy.first_addr().unwrap(), 2, true, HASHRATE, &stop);
    wait_until(Duration::from_secs(20), "both workers listed", || {
        control.workers().len() == 2
    });
    control.kick(Some("test"), "farm.rig0").unwrap();
    let mut handles = handles.into_iter();
    let kicked = handles.next().unwrap();
    wait_until(
        Duration::from_secs(10),
        "the kicked miner's run ends",
        || kicked.is_finished(),
    );
    let kicked = kicked.join().unwrap();
    assert!(kicked.disconnected_by_peer, "{kicked:?}");
    wait_until(
        Duration::from_secs(10),
        "the kicked worker is gone from the list",
        || control.workers().iter().all(|(_, w, _)| w != "farm.rig0"),
    );
    stop.store(true, Ordering::Relaxed);
    let other = handles.next().unwrap().join().unwrap();
    assert!(!other.disconnected_by_peer, "{other:?}");
}

#[test]
fn a_pool_disabled_at_runtime_is_left_and_skipped_until_enabled_again() {
    let first = pool(easy());
    let second = pool(easy());
    let proxy = start_proxy(&proxy_yaml(&[first.addr(), second.addr()], FAST_RETRY));
    let control = proxy.control();
    let at = control.find_route(Some("test"), "default").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(proxy.first_addr().unwrap(), 2, true, HASHRATE, &stop);
    wait_until(Duration::from_secs(20), "shares on the first pool", || {
        first.stats().accepted >= 5
    });
    control.set_pool_enabled(at, 0, false).unwrap();
    wait_until(Duration::from_secs(20), "shares on the second pool", || {
        second.stats().accepted >= 5
    });
    // Failback (every second here) does not go back to a disabled pool.
    let on_first = first.stats().accepted;
    let on_second = second.stats().accepted;
    wait_until(
        Duration::from_secs(20),
        "20 more shares on the second pool",
        || second.stats().accepted >= on_second + 20,
    );
    assert!(
        first.stats().accepted <= on_first + 2,
        "the disabled pool got {} more shares",
        first.stats().accepted - on_first
    );
    control.set_pool_enabled(at, 0, true).unwrap();
    wait_until(Duration::from_secs(20), "back on the first pool", || {
        first.stats().accepted >= on_first + 5
    });
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    check_answers(&reports, &[&first.stats(), &second.stats()], true);
}

#[test]
fn a_worker_with_connections_on_two_reactors_stays_listed_until_its_last_one_leaves() {
    let yaml = routes_yaml(
        &[
            ("a", 50.0, "127.0.0.1:1".parse().unwrap()),
            ("b", 50.0, "127.0.0.1:2".parse().unwrap()),
        ],
        "",
    );
    let control = fastproxy::control::Control::from_config(
        &fastproxy::config::Config::from_yaml(&yaml).unwrap(),
    );
    let info = |route: &str| fastproxy::control::WorkerInfo {
        route: route.into(),
        hashrate: 1.0,
        movable: true,
        connections: 0,
    };
    // Two reactors each report one connection of farm.x; one leaves.
    assert_eq!(
        control.worker_connections("test", "farm.x", info("a"), 1),
        1
    );
    assert_eq!(
        control.worker_connections("test", "farm.x", info("b"), 1),
        2
    );
    assert_eq!(
        control.worker_connections("test", "farm.x", info("?"), -1),
        1
    );
    let w = control.workers();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].2.connections, w[0].2.route.as_str()), (1, "b"));
    assert_eq!(
        control.worker_connections("test", "farm.x", info("?"), -1),
        0
    );
    assert!(control.workers().is_empty());
}

#[test]
fn a_reload_changes_a_routes_pools_and_refuses_a_new_route() {
    let a = pool(easy());
    let b = pool(easy());
    let c = pool(easy());
    let yaml = |second: SocketAddr| {
        routes_yaml(
            &[("a", 50.0, a.addr()), ("b", 50.0, second)],
            "route_switch_interval: 1",
        )
    };
    let mut proxy = start_proxy(&yaml(b.addr()));
    let stop = Arc::new(AtomicBool::new(false));
    let handles = miners(proxy.first_addr().unwrap(), 2, true, HASHRATE, &stop);
    wait_until(Duration::from_secs(20), "shares on both routes", || {
        a.stats().accepted >= 5 && b.stats().accepted >= 5
    });
    let config = |y: &str| fastproxy::config::Config::from_yaml(y).unwrap();
    proxy.reload(config(&yaml(c.addr()))).unwrap();
    wait_until(Duration::from_secs(20), "route b now on pool c", || {
        c.stats().accepted >= 5
    });
    let three = routes_yaml(
        &[
            ("a", 50.0, a.addr()),
            ("b", 40.0, c.addr()),
            ("x", 10.0, b.addr()),
        ],
        "route_switch_interval: 1",
    );
    let refused = proxy.reload(config(&three)).unwrap_err();
    assert!(refused.contains("routes"), "{refused}");
    stop.store(true, Ordering::Relaxed);
    let reports = join(handles);
    check_answers(&reports, &[&a.stats(), &b.stats(), &c.stats()], true);
}
