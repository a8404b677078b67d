//! V1 miners through fastproxy to a Stratum V2 pool (issue 14), over 127.0.0.1: the checking `Sv2SimPool`
//! (the reference crates' Noise responder and codec) rebuilds and hashes every share it gets.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use fastproxy_sim::sv2_pool::{Sv2PoolConfig, Sv2SimPool};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A pool entry of the test config: a V1 pool, or an SV2 pool with its authority key.
enum P<'a> {
    V1(SocketAddr),
    Sv2(SocketAddr, &'a str),
}

fn yaml(pools: &[P<'_>], extra: &str) -> String {
    let mut y = String::from(
        "threads: 1\nproxies:\n  - name: test\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n",
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        y.push_str("    ");
        y.push_str(line.trim());
        y.push('\n');
    }
    y.push_str("    pools:\n");
    for p in pools {
        match p {
            P::V1(a) => y.push_str(&format!(
                "      - url: stratum+tcp://{a}\n        user: acct.proxy\n        password: x\n"
            )),
            P::Sv2(a, key) => y.push_str(&format!(
                "      - url: stratum2+tcp://{a}\n        user: acct.sv2\n        authority_public_key: {key}\n"
            )),
        }
    }
    y
}

fn sv2_pool(cfg: Sv2PoolConfig) -> Sv2SimPool {
    Sv2SimPool::start(cfg).expect("start the SV2 sim pool")
}

fn miner(addr: SocketAddr, i: usize, shares: u64) -> SimMinerConfig {
    SimMinerConfig {
        addr,
        worker: format!("farm.rig{i}"),
        max_shares: Some(shares),
        duration: Duration::from_secs(60),
        ..SimMinerConfig::default()
    }
}

fn run_all(cfgs: Vec<SimMinerConfig>) -> Vec<MinerReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = cfgs
        .into_iter()
        .map(|c| spawn_miner(c, stop.clone()))
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("miner thread"))
        .collect()
}

#[test]
fn many_v1_miners_share_one_sv2_channel_with_distinct_prefixes_and_every_share_is_valid() {
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], ""));
    let addr = proxy.first_addr().unwrap();
    let n = 24;
    let mut cfgs: Vec<_> = (0..n).map(|i| miner(addr, i, 5)).collect();
    for c in cfgs.iter_mut().step_by(2) {
        c.version_rolling = true;
    }
    let reports = run_all(cfgs);
    let mut e1s = BTreeSet::new();
    for (i, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "miner {i}: {r:?}");
        assert_eq!(r.accepted, 5, "miner {i}: {r:?}");
        assert_eq!(r.rejected, 0, "miner {i}: {r:?}");
        assert_eq!(r.duplicate_or_unknown_replies, 0, "miner {i}: {r:?}");
        if i % 2 == 0 {
            assert!(r.version_mask.is_some_and(|m| m != 0), "miner {i}: {r:?}");
        }
        e1s.insert(r.extranonce1.clone());
    }
    assert_eq!(e1s.len(), n, "every miner has its own prefix");
    let st = pool.stats();
    assert_eq!(st.accepted, 5 * n as u64, "{st:?}");
    assert!(st.rejected_by_code.is_empty(), "{:?}", st.rejected_by_code);
    assert_eq!(st.connections_total, 1, "one channel for all the miners");
    assert_eq!(st.user_identities, vec!["acct.sv2".to_string()]);
    // Version-rolled shares reached the pool with rolled bits (the pool checked them in the header hash).
    let rolled = st
        .accepted_shares
        .iter()
        .filter(|s| s.version & 0x1fff_e000 != 0)
        .count();
    assert!(rolled > 0, "no version-rolled share reached the pool");
    // The pool rebuilt each share's coinbase from its extranonce: the miner's prefix then its extranonce2.
    let prefixes: BTreeSet<_> = st
        .accepted_shares
        .iter()
        .map(|s| s.extranonce[..2].to_vec())
        .collect();
    assert_eq!(
        prefixes.len(),
        n,
        "each miner's shares carry its own prefix"
    );
    assert!(st.accepted_shares.iter().all(|s| s.extranonce.len() == 8));
}
