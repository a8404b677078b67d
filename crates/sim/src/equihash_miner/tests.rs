//! Unit tests of the simulated Equihash miner against the simulated Equihash pool: clean runs, a tamperer,
//! the pool's notifications followed, handshake variants, and the fake-solution search.

use super::session::parse_subscribe_result;
use super::*;
use crate::client::testing::{join_within, wait_for, MINER_DURATION, STOP_LIMIT};
use crate::equihash_pool::{EquihashPool, EquihashPoolConfig, EquihashPoolStats, EASY_TARGET_HEX};
use crate::lines::describe_error;
use fastproxy_work::equihash::{self, Params, HEADER_LEN, NONCE_LEN};
use fastproxy_work::hex;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// 0x0000ff..ff: one hash in 65,536 meets it.
const HARDER_TARGET: &str = "0000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn miner(pool: &EquihashPool, worker: &str) -> EquihashMinerConfig {
    EquihashMinerConfig {
        addr: pool.addr(),
        worker: worker.into(),
        max_shares: Some(5),
        duration: MINER_DURATION,
        share_interval: Duration::from_millis(5),
        ..EquihashMinerConfig::default()
    }
}

fn join(handle: JoinHandle<EquihashMinerReport>) -> EquihashMinerReport {
    handle.join().expect("miner thread")
}

fn assert_clean(r: &EquihashMinerReport, accepted: u64) {
    assert!(r.subscribed && r.authorized, "{r:?}");
    assert_eq!(
        (r.submitted, r.accepted, r.rejected),
        (accepted, accepted, 0),
        "{r:?}"
    );
    assert_eq!(
        (r.unanswered, r.duplicate_or_unknown_replies),
        (0, 0),
        "{r:?}"
    );
    assert_eq!(r.error, None);
    assert_eq!(r.submitted_nonces.len() as u64, r.submitted);
}

/// The nonces the pool accepted from `worker`, in order.
fn pool_nonces(stats: &EquihashPoolStats, worker: &str) -> Vec<[u8; NONCE_LEN]> {
    stats
        .accepted_shares
        .iter()
        .filter(|s| s.worker == worker)
        .map(|s| s.nonce)
        .collect()
}

#[test]
fn miners_direct_to_pool() {
    let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let workers = ["m1", "m2", "xsub"];
    let handles: Vec<_> = workers
        .iter()
        .map(|w| {
            let cfg = EquihashMinerConfig {
                extranonce_subscribe: *w == "xsub",
                session_id: Some("resume-me".into()),
                ..miner(&pool, w)
            };
            spawn_equihash_miner(cfg, Arc::clone(&stop))
        })
        .collect();
    let reports: Vec<EquihashMinerReport> = handles.into_iter().map(join).collect();
    let stats = pool.stats();
    assert_eq!((stats.submits, stats.accepted, stats.rejected), (15, 15, 0));
    assert_eq!(stats.extranonce_subscribes, 1);
    for (worker, r) in workers.iter().zip(&reports) {
        assert_clean(r, 5);
        // subscribe + authorize (+ extranonce.subscribe) + one reply per submit.
        let handshake = if *worker == "xsub" { 3 } else { 2 };
        assert_eq!(r.replies, handshake + 5, "{worker}");
        assert_eq!(r.nonce1.len(), 4);
        assert!(r.session_id.is_some());
        assert_ne!(r.session_id.as_deref(), Some("resume-me"));
        assert_eq!(r.target, equihash::target_from_hex(EASY_TARGET_HEX));
        assert!(r.jobs_received >= 1 && r.hashes >= 5);
        assert_eq!(pool_nonces(&stats, worker), r.submitted_nonces, "{worker}");
        assert!(r.submitted_nonces.iter().all(|n| n[..4] == r.nonce1[..]));
    }
    let mut all: Vec<_> = stats.accepted_shares.iter().map(|s| s.nonce).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 15, "nonces are unique");
    let sub = &stats.subscribe_params[0];
    assert_eq!(sub[0], json!("fastproxy-eqminer/0.1"));
    assert_eq!(sub[1], json!("resume-me"));
    assert_eq!(sub[2], json!("127.0.0.1"));
    assert_eq!(sub[3], json!(pool.addr().port()));
}

#[test]
fn tampered_nonce1_is_rejected() {
    let pool = EquihashPool::start(EquihashPoolConfig {
        target_hex: HARDER_TARGET.into(),
        ..EquihashPoolConfig::default()
    })
    .expect("pool");
    let stop = AtomicBool::new(false);
    let cfg = EquihashMinerConfig {
        tamper_nonce1: true,
        ..miner(&pool, "tamper")
    };
    let r = run_equihash_miner(&cfg, &stop);
    assert_eq!((r.submitted, r.accepted, r.rejected), (5, 0, 5), "{r:?}");
    assert_eq!(r.reject_codes.get(&23), Some(&5));
    assert_eq!(r.reject_messages[0], "Low difficulty share");
    assert_eq!(r.unanswered, 0);
    for nonce in &r.submitted_nonces {
        assert_eq!(nonce[..3], r.nonce1[..3]);
        assert_eq!(nonce[3], r.nonce1[3] ^ 0xff);
    }
    let stats = pool.stats();
    assert_eq!(stats.rejected_by_code.get(&23), Some(&5));
    assert!(stats.accepted_shares.is_empty());
}

#[test]
fn miner_follows_set_extranonce_and_target() {
    let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = EquihashMinerConfig {
        extranonce_subscribe: true,
        max_shares: None,
        share_interval: Duration::from_millis(20),
        ..miner(&pool, "x")
    };
    let handle = spawn_equihash_miner(cfg, Arc::clone(&stop));
    wait_for("two shares accepted", || pool.stats().accepted >= 2);
    let first_nonce1 = pool.stats().accepted_shares[0].nonce1.clone();
    // The target first: a share under the new NONCE_1 is then made after the miner read both.
    pool.set_target(HARDER_TARGET).expect("target");
    pool.set_extranonce_all();
    wait_for("a share accepted under the new NONCE_1", || {
        let stats = pool.stats();
        stats
            .accepted_shares
            .iter()
            .any(|s| s.nonce1 != first_nonce1)
    });
    stop.store(true, Ordering::Relaxed);
    let r = join_within(handle, STOP_LIMIT);
    assert_eq!(r.set_extranonce_received, 1);
    assert_eq!(r.set_target_received, 2);
    assert_eq!(r.target, equihash::target_from_hex(HARDER_TARGET));
    assert_eq!(
        (r.accepted + r.rejected, r.unanswered),
        (r.submitted, 0),
        "{r:?}"
    );
    // Shares in flight across the clean job may be stale (21); nothing else may fail.
    assert!(r.reject_codes.keys().all(|&c| c == 21), "{r:?}");
    let stats = pool.stats();
    let nonce1s: HashSet<&Vec<u8>> = stats.accepted_shares.iter().map(|s| &s.nonce1).collect();
    assert_eq!(nonce1s.len(), 2, "shares under both NONCE_1 values");
    assert!(stats.accepted_shares.iter().any(|s| s.nonce1 == r.nonce1));
    // Every accepted nonce is one the miner built, with the NONCE_1 the pool had sent it.
    for share in &stats.accepted_shares {
        assert!(r.submitted_nonces.contains(&share.nonce));
        assert_eq!(share.nonce[..4], share.nonce1[..]);
    }
    // The last shares were for the harder target.
    let harder = equihash::target_from_hex(HARDER_TARGET).expect("target");
    let last = stats.accepted_shares.last().expect("a share");
    assert!(equihash::hash_meets_target(&last.block_hash, &harder));
}

#[test]
fn fake_solutions_and_unmet_targets_are_rejected() {
    // The pool verifies Equihash: the fake solutions fail with 20.
    let pool = EquihashPool::start(EquihashPoolConfig {
        verify_solutions: true,
        ..EquihashPoolConfig::default()
    })
    .expect("pool");
    let r = run_equihash_miner(
        &EquihashMinerConfig {
            max_shares: Some(2),
            ..miner(&pool, "fake")
        },
        &AtomicBool::new(false),
    );
    assert_eq!((r.submitted, r.rejected, r.unanswered), (2, 2, 0), "{r:?}");
    assert_eq!(r.reject_codes.get(&20), Some(&2));
    assert_eq!(r.reject_messages[0], "Invalid solution");

    // A target no hash meets, and a miner that does not try: 23.
    let pool = EquihashPool::start(EquihashPoolConfig {
        target_hex: "00".repeat(32),
        ..EquihashPoolConfig::default()
    })
    .expect("pool");
    let r = run_equihash_miner(
        &EquihashMinerConfig {
            max_shares: Some(3),
            meet_target: false,
            ..miner(&pool, "lazy")
        },
        &AtomicBool::new(false),
    );
    assert_eq!((r.submitted, r.rejected), (3, 3), "{r:?}");
    assert_eq!(r.reject_codes.get(&23), Some(&3));
    assert_eq!(r.hashes, 3);
}

#[test]
fn endings_disconnect_and_nobody_listening() {
    let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = EquihashMinerConfig {
        max_shares: None,
        share_interval: Duration::from_secs(60),
        ..miner(&pool, "w")
    };
    let handle = spawn_equihash_miner(cfg, Arc::clone(&stop));
    wait_for("a share accepted", || pool.stats().accepted >= 1);
    pool.disconnect_all();
    let r = join(handle);
    assert!(r.disconnected_by_peer, "{r:?}");
    assert_eq!((r.submitted, r.accepted), (1, 1));

    pool.stop();
    let cfg = EquihashMinerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        duration: Duration::from_secs(5),
        ..EquihashMinerConfig::default()
    };
    let r = run_equihash_miner(&cfg, &AtomicBool::new(false));
    assert!(r.error.is_some() && !r.subscribed);
}

#[test]
fn unanswered_submits_and_stop_flag() {
    let pool = EquihashPool::start(EquihashPoolConfig {
        answer_submits: false,
        ..EquihashPoolConfig::default()
    })
    .expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn_equihash_miner(
        EquihashMinerConfig {
            max_shares: Some(2),
            ..miner(&pool, "w")
        },
        Arc::clone(&stop),
    );
    wait_for("two submits", || pool.stats().submits >= 2);
    stop.store(true, Ordering::Relaxed);
    // The stop flag ends the run (else it would last `duration`, MINER_DURATION), and the wait for replies
    // that never come ends at the drain time.
    let r = join_within(handle, STOP_LIMIT);
    assert_eq!((r.submitted, r.accepted, r.unanswered), (2, 0, 2));
}

#[test]
fn grinding_meets_the_target() {
    let target = equihash::target_from_hex(&format!("0fff{}", "f".repeat(60))).expect("target");
    let mut header = [0u8; HEADER_LEN];
    for (i, b) in header.iter_mut().enumerate() {
        *b = (i * 13) as u8;
    }
    // (200, 9): the tail starts inside the solution; (48, 5): inside the header.
    for params in [Params::ZCASH, Params { n: 48, k: 5 }] {
        let mut sol = params.solution_prefix();
        sol.resize(params.solution_with_prefix_len(), 0x11);
        let (counter, hash) = grind_solution(&header, &mut sol, &target, 5, 10_000).expect("found");
        assert!(counter >= 5);
        assert_eq!(hash, equihash::block_hash(&header, &sol));
        assert!(equihash::hash_meets_target(&hash, &target));
        assert_eq!(sol[sol.len() - 8..], counter.to_le_bytes());
        assert!(equihash::parse_solution_hex(&hex::encode(&sol), &params).is_ok());
        // Nothing meets a zero target; the bytes then hold the last value tried.
        assert_eq!(grind_solution(&header, &mut sol, &[0; 32], 0, 10), None);
        assert_eq!(sol[sol.len() - 8..], 9u64.to_le_bytes());
    }
}

#[test]
fn subscribe_results_and_error_shapes() {
    assert_eq!(
        parse_subscribe_result(&json!(["s1", "0a0b"])),
        Some((Some("s1".into()), vec![10, 11]))
    );
    assert_eq!(
        parse_subscribe_result(&json!([null, ""])),
        Some((None, vec![]))
    );
    assert_eq!(parse_subscribe_result(&json!(["s", "0a0"])), None);
    assert_eq!(parse_subscribe_result(&json!(["s", "00".repeat(32)])), None);
    assert_eq!(parse_subscribe_result(&json!(["s"])), None);
    assert_eq!(
        describe_error(&json!([23, "Low", null])),
        (23, "Low".into())
    );
    assert_eq!(
        describe_error(&json!({"code": 21, "message": "stale"})),
        (21, "stale".into())
    );
    assert_eq!(describe_error(&json!("nope")), (-1, "nope".into()));
    assert_eq!(describe_error(&Value::Null).0, 0);
}
