//! Pool failover and failback with miners staying connected, against share-checking pools.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const FAST_RETRY: &str =
    "retry_initial: 0.1\nretry_max: 0.5\nfailback_interval: 1\nfailover_after: 2";

#[test]
fn failover_to_the_backup_and_back_keeps_extranonce_subscribed_miners_connected() {
    let primary = pool(SimPoolConfig::default());
    let primary_addr = primary.addr();
    let backup = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[primary_addr, backup.addr()], FAST_RETRY));
    let addr = proxy.first_addr().unwrap();
    let st = proxy.stats("test").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let miners: Vec<_> = (0..3)
        .map(|i| {
            let cfg = SimMinerConfig {
                addr,
                worker: format!("farm.rig{i}"),
                extranonce_subscribe: true,
                version_rolling: i == 0,
                duration: Duration::from_secs(60),
                ..SimMinerConfig::default()
            };
            spawn_miner(cfg, stop.clone())
        })
        .collect();

    wait_until(Duration::from_secs(20), "shares on the primary", || {
        primary.stats().accepted >= 3
    });
    primary.stop();
    wait_until(Duration::from_secs(20), "shares on the backup", || {
        backup.stats().accepted >= 3
    });
    assert!(ProxyStats::get(&st.failovers) >= 1);

    let primary = SimPool::start(SimPoolConfig {
        listen: primary_addr,
        ..SimPoolConfig::default()
    })
    .expect("restart the primary on its address");
    wait_until(
        Duration::from_secs(20),
        "shares on the primary again",
        || primary.stats().accepted >= 3,
    );
    stop.store(true, Ordering::Relaxed);

    let mut accepted = 0;
    for h in miners {
        let r = h.join().unwrap();
        accepted += r.accepted;
        assert!(!r.disconnected_by_peer, "miner stayed connected: {r:?}");
        assert!(
            r.set_extranonce_received >= 2,
            "new extranonce twice: {r:?}"
        );
        assert_eq!(r.unanswered, 0, "{r:?}");
        assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
        // Shares in flight at a switch are stale (21) or were answered by the proxy while no pool was up (20).
        for code in r.reject_codes.keys() {
            assert!([20, 21].contains(code), "unexpected reject {code}: {r:?}");
        }
        assert!(r.accepted >= 1, "{r:?}");
    }
    assert!(
        accepted >= 9,
        "3 shares per pool phase at least, {accepted} in all"
    );
    assert_eq!(
        backup.stats().rejected_by_code.get(&23),
        None,
        "no invalid share reached a pool"
    );
    assert_eq!(primary.stats().rejected_by_code.get(&23), None);
}

#[test]
fn without_a_backup_the_proxy_retries_until_the_pool_is_back() {
    let first = pool(SimPoolConfig::default());
    let pool_addr = first.addr();
    let proxy = start_proxy(&proxy_yaml(&[pool_addr], FAST_RETRY));
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(10), "ready", || {
        ProxyStats::get(&st.pool_ready) == 1
    });
    first.stop();
    // The first connection, then attempts while the pool is away (0.1 s, 0.2 s, ... apart): a second attempt
    // after a refused one shows it keeps retrying.
    wait_until(Duration::from_secs(10), "it kept retrying", || {
        ProxyStats::get(&st.pool_connections) >= 3
    });
    let again = SimPool::start(SimPoolConfig {
        listen: pool_addr,
        ..SimPoolConfig::default()
    })
    .unwrap();
    wait_until(Duration::from_secs(10), "ready again", || {
        ProxyStats::get(&st.pool_ready) == 2
    });
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (e1, _, _) = c.handshake();
    assert_eq!(e1.len(), 12);
    drop(again);
}
