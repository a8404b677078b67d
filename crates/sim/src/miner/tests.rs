//! Unit tests of the simulated Stratum V1 miner against the simulated pool: clean runs, a tamperer, the
//! pool's notifications followed, handshake variants and endings, and the hashing helpers.

use super::hashing::{
    extranonce2_bytes, extranonce2_space, spread_bits, Midstate, Work, NONCE_SPACE,
};
use super::session::{granted_mask, parse_subscribe_result};
use super::*;
use crate::client::testing::{join_within, wait_for, MINER_DURATION, STOP_LIMIT};
use crate::lines::describe_error;
use crate::pool::{SimPool, SimPoolConfig};
use fastproxy_work::work::{self, Job};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn miner(pool: &SimPool, worker: &str) -> SimMinerConfig {
    SimMinerConfig {
        addr: pool.addr(),
        worker: worker.into(),
        max_shares: Some(5),
        duration: MINER_DURATION,
        ..SimMinerConfig::default()
    }
}

fn join(handle: JoinHandle<MinerReport>) -> MinerReport {
    handle.join().expect("miner thread")
}

fn assert_clean(r: &MinerReport, accepted: u64) {
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
}

#[test]
fn search_nonce_finds_the_first_nonce_the_reference_hash_accepts() {
    let mut header = [0u8; 80];
    for (i, b) in header.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37);
    }
    let target = work::target_from_difficulty(1.0 / 65536.0);
    let mut meets = |n: u32| {
        header[76..].copy_from_slice(&n.to_le_bytes());
        work::hash_meets_target(&work::sha256d(&header), &target)
    };
    let expected = (0..1_000_000).find(|&n| meets(n));
    assert!(expected.is_some());
    assert_eq!(search_nonce(&header, &target, 0..1_000_000), expected);
    let first = expected.unwrap_or(0);
    assert_eq!(search_nonce(&header, &target, 0..first), None);
}

#[test]
fn miners_direct_to_pool_and_a_tamperer() {
    // The honest miners at an easy difficulty (a share in 4,096 hashes: little hashing, so a starved machine
    // still gets there); the tamperer on a pool at the default one, where a share hashed with a wrong
    // extranonce1 meets the target only once in 65,536.
    let pool = SimPool::start(SimPoolConfig {
        difficulty: 1.0 / 1_048_576.0,
        ..SimPoolConfig::default()
    })
    .expect("pool");
    let tamper_pool = SimPool::start(SimPoolConfig::default()).expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let plain = spawn_miner(miner(&pool, "plain"), Arc::clone(&stop));
    let rolling = spawn_miner(
        SimMinerConfig {
            version_rolling: true,
            ..miner(&pool, "rolling")
        },
        Arc::clone(&stop),
    );
    let xsub = spawn_miner(
        SimMinerConfig {
            extranonce_subscribe: true,
            ..miner(&pool, "xsub")
        },
        Arc::clone(&stop),
    );
    let tamper = spawn_miner(
        SimMinerConfig {
            tamper_extranonce1: true,
            ..miner(&tamper_pool, "tamper")
        },
        Arc::clone(&stop),
    );
    let reports = [join(plain), join(rolling), join(xsub)];
    let tampered = join(tamper);
    for r in &reports {
        assert_clean(r, 5);
        assert_eq!(r.extranonce2_size, 8);
        assert!(r.jobs_received >= 1 && r.hashes > 0);
    }
    assert_eq!(reports[1].version_mask, Some(0x1fff_e000));
    assert_eq!(reports[0].version_mask, None);

    assert_eq!(
        (tampered.submitted, tampered.accepted, tampered.rejected),
        (5, 0, 5)
    );
    assert_eq!(tampered.reject_codes.get(&23), Some(&5));
    assert_eq!(tampered.reject_messages[0], "Low difficulty share");
    assert_eq!(tampered.unanswered, 0);

    let refused = tamper_pool.stats();
    let counts = (refused.submits, refused.accepted, refused.rejected);
    assert_eq!(counts, (5, 0, 5));
    assert_eq!(refused.rejected_by_code.get(&23), Some(&5));
    assert!(refused.accepted_shares.is_empty());

    let stats = pool.stats();
    assert_eq!((stats.submits, stats.accepted, stats.rejected), (15, 15, 0));
    assert_eq!(stats.extranonce_subscribes, 1);
    assert_eq!(stats.configure_requests, 1);
    for (worker, report) in ["plain", "rolling", "xsub"].iter().zip(&reports) {
        let shares: Vec<_> = stats
            .accepted_shares
            .iter()
            .filter(|s| s.worker == *worker)
            .collect();
        assert_eq!(shares.len(), 5, "{worker}");
        assert!(shares.iter().all(|s| s.extranonce1 == report.extranonce1));
        assert_eq!(
            shares.iter().all(|s| s.version_bits.is_some()),
            *worker == "rolling"
        );
    }
    let rolled = stats.accepted_shares.iter().filter_map(|s| s.version_bits);
    assert!(rolled.clone().all(|b| b & !0x1fff_e000 == 0));
    assert!(rolled.clone().any(|b| b != 0));
}

#[test]
fn miner_follows_set_extranonce_and_difficulty() {
    // An easy difficulty (a share in 4,096 hashes): little hashing, so a starved machine still gets there.
    let pool = SimPool::start(SimPoolConfig {
        difficulty: 1.0 / 1_048_576.0,
        ..SimPoolConfig::default()
    })
    .expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = SimMinerConfig {
        extranonce_subscribe: true,
        max_shares: None,
        ..miner(&pool, "x")
    };
    let handle = spawn_miner(cfg, Arc::clone(&stop));
    wait_for("two shares accepted", || pool.stats().accepted >= 2);
    let first_e1 = pool.stats().accepted_shares[0].extranonce1.clone();
    // The difficulty first: a share under the new extranonce1 is then hashed after the miner read both.
    pool.set_difficulty(1.0 / 2_097_152.0);
    pool.set_extranonce_all();
    wait_for("a share accepted under the new extranonce1", || {
        let stats = pool.stats();
        stats
            .accepted_shares
            .iter()
            .any(|s| s.extranonce1 != first_e1)
    });
    stop.store(true, Ordering::Relaxed);
    let r = join_within(handle, STOP_LIMIT);
    assert_eq!(r.set_extranonce_received, 1);
    assert_eq!(r.difficulty, 1.0 / 2_097_152.0);
    assert_eq!(
        (r.accepted + r.rejected, r.unanswered),
        (r.submitted, 0),
        "{r:?}"
    );
    // Shares in flight across the clean job may be stale (21); nothing else may fail.
    assert!(r.reject_codes.keys().all(|&c| c == 21), "{r:?}");
    let stats = pool.stats();
    let e1s: HashSet<&Vec<u8>> = stats
        .accepted_shares
        .iter()
        .map(|s| &s.extranonce1)
        .collect();
    assert_eq!(e1s.len(), 2, "shares under both extranonce1 values");
    assert!(stats
        .accepted_shares
        .iter()
        .any(|s| s.extranonce1 == r.extranonce1));
}

#[test]
fn handshake_variants_and_endings() {
    // mining.configure refused: the miner mines without rolling.
    let pool = SimPool::start(SimPoolConfig {
        version_rolling_mask: None,
        user: Some("alice".into()),
        difficulty: 1.0 / 1_048_576.0,
        ..SimPoolConfig::default()
    })
    .expect("pool");
    let stop = AtomicBool::new(false);
    let cfg = SimMinerConfig {
        version_rolling: true,
        max_shares: Some(2),
        ..miner(&pool, "alice")
    };
    let r = run_miner(&cfg, &stop);
    assert_clean(&r, 2);
    assert_eq!(r.version_mask, None);

    // Wrong user: authorize rejected, the miner stops.
    let r = run_miner(&miner(&pool, "bob"), &stop);
    assert!(r.subscribed && !r.authorized);
    assert!(r.error.is_some_and(|e| e.contains("authorize")));

    // The pool drops the connection: the miner notices and returns.
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = SimMinerConfig {
        max_shares: None,
        submit_interval: Some(Duration::from_secs(60)),
        ..miner(&pool, "alice")
    };
    let handle = spawn_miner(cfg, Arc::clone(&stop));
    wait_for("the second alice authorized", || {
        pool.stats().authorized_users.len() >= 2
    });
    pool.disconnect_all();
    let r = join(handle);
    assert!(r.disconnected_by_peer, "{r:?}");

    // Nobody listening.
    pool.stop();
    let r = run_miner(
        &cfg_for(SocketAddr::from(([127, 0, 0, 1], 1))),
        &AtomicBool::new(false),
    );
    assert!(r.error.is_some() && !r.subscribed);
}

fn cfg_for(addr: SocketAddr) -> SimMinerConfig {
    SimMinerConfig {
        addr,
        duration: Duration::from_secs(5),
        ..SimMinerConfig::default()
    }
}

#[test]
fn unanswered_submits_and_stop_flag() {
    let pool = SimPool::start(SimPoolConfig {
        answer_submits: false,
        difficulty: 1.0 / 1_048_576.0,
        ..SimPoolConfig::default()
    })
    .expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn_miner(
        SimMinerConfig {
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
fn midstate_hash_matches_sha256d() {
    let mut header = [0u8; 80];
    for (i, b) in header.iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    let midstate = Midstate::new(&header);
    for nonce in [0u32, 1, 0xdead_beef, u32::MAX] {
        header[76..].copy_from_slice(&nonce.to_le_bytes());
        assert_eq!(midstate.sha256d_with_nonce(nonce), work::sha256d(&header));
    }
}

#[test]
fn extranonce2_counting() {
    assert_eq!(extranonce2_bytes(0x0102, 4), vec![0, 0, 1, 2]);
    assert_eq!(extranonce2_bytes(0x0102, 1), vec![2]);
    assert_eq!(extranonce2_bytes(1, 10), vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(extranonce2_space(2), Some(65536));
    assert_eq!(extranonce2_space(8), None);
    let job = Job::from_notify_params(&json!([
        "j",
        "00".repeat(32),
        "01",
        "02",
        [],
        "20000000",
        "1d00ffff",
        "00000000",
        true
    ]))
    .expect("job");
    // One byte of extranonce2 starting at 255: wraps to 0 and ends back at 255.
    let mut w = Work::new(job, vec![], 1, 255, [0; 32]);
    assert_eq!(w.extranonce2, vec![255]);
    w.nonce = NONCE_SPACE;
    w.next_extranonce2();
    assert_eq!(
        (w.extranonce2.clone(), w.nonce, w.exhausted),
        (vec![0], 0, false)
    );
    for _ in 0..254 {
        w.next_extranonce2();
    }
    assert_eq!((w.extranonce2.clone(), w.exhausted), (vec![254], false));
    w.next_extranonce2();
    assert!(w.exhausted);
    assert_eq!(w.hash_batch(10).0, 0);
}

#[test]
fn bit_spreading_and_error_shapes() {
    assert_eq!(spread_bits(1, 0x1fff_e000), 0x0000_2000);
    assert_eq!(spread_bits(3, 0x0001_0100), 0x0001_0100);
    assert_eq!(spread_bits(2, 0x0001_0100), 0x0001_0000);
    assert_eq!(spread_bits(u32::MAX, 0), 0);
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
    assert_eq!(
        parse_subscribe_result(&json!([null, "0a0b", 4])),
        Some((vec![10, 11], 4))
    );
    assert_eq!(parse_subscribe_result(&json!([[], "0a0", 4])), None);
    assert_eq!(
        granted_mask(&json!({"version-rolling": true, "version-rolling.mask": "1fffe000"})),
        Some(0x1fff_e000)
    );
    assert_eq!(granted_mask(&json!({"version-rolling": false})), None);
}
