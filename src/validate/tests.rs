//! Unit tests of local share validation: the job book (duplicates, stale jobs), Stratum shares judged against
//! real hashes for each target, ntime and version-bit bounds, and the vardiff retarget rule.

use super::*;

#[test]
fn retarget_waits_for_enough_shares_and_moves_at_most_four_times() {
    let t0 = std::time::Instant::now();
    let mut v = Vardiff::new(t0);
    v.set(1.0, t0);
    let at = |s: u64| t0 + std::time::Duration::from_secs(s);
    // 20 per minute wanted: 8 expected after 24 s. One share in 10 s says nothing yet.
    v.shares = 1;
    assert_eq!(v.retarget(20.0, 1e-9, 100.0, at(10)), Retarget::Wait);
    // Nothing in 30 s: down, by at most 4x.
    v.shares = 0;
    assert_eq!(
        v.retarget(20.0, 1e-9, 100.0, at(30)),
        Retarget::Change(0.25)
    );
    // 100 in 5 s (a much faster miner): up at once, by at most 4x, capped by the pool's difficulty.
    v.shares = 100;
    assert_eq!(v.retarget(20.0, 1e-9, 100.0, at(5)), Retarget::Change(4.0));
    assert_eq!(v.retarget(20.0, 1e-9, 2.0, at(5)), Retarget::Change(2.0));
    // On target: no change.
    v.shares = 10;
    assert_eq!(v.retarget(20.0, 1e-9, 100.0, at(30)), Retarget::Keep);
}

fn job(id: &str, clean: bool) -> Job {
    Job {
        job_id: id.into(),
        prevhash: [7; 32],
        coinb1: vec![1, 2, 3],
        coinb2: vec![4, 5],
        merkle_branch: vec![[9; 32]],
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: 0x5f5e_1000,
        clean_jobs: clean,
    }
}

fn submit<'a>(
    en2: &'a str,
    ntime: &'a str,
    nonce: &'a str,
    vb: Option<&'a str>,
) -> stratum::Submit<'a> {
    stratum::Submit {
        job_id: "j",
        extranonce2: en2,
        ntime,
        nonce,
        version_bits: vb,
    }
}

/// Finds a nonce whose share meets `target` (tiny targets only).
fn find_nonce(j: &Job, e1: &[u8], en2: &[u8], target: &[u8; 32], want: bool) -> u32 {
    (0u32..)
        .find(|&n| {
            work::hash_meets_target(&j.share_hash(e1, en2, j.ntime, n, j.version), target) == want
        })
        .unwrap()
}

#[test]
fn the_duplicate_set_keeps_two_generations() {
    let mut seen = Seen::default();
    for k in 0..10u64 {
        assert!(seen.insert(k, 4), "{k} is new");
    }
    // 8 and 9 are in the current generation, 4 to 7 in the previous one; 0 to 3 are forgotten.
    for k in 4..10 {
        assert!(!seen.insert(k, 4), "{k} is a duplicate");
    }
    assert!(seen.insert(0, 4));
    assert!(seen.current.len() + seen.previous.len() <= 8);
}

#[test]
fn clean_jobs_make_older_ones_stale() {
    let mut book = JobBook::default();
    book.add(BookJob::Stratum(job("a", true)), [0xff; 32]);
    book.add(BookJob::Stratum(job("b", false)), [0xff; 32]);
    assert!(book.find("a").is_some());
    book.add(BookJob::Stratum(job("c", true)), [0xff; 32]);
    assert!(book.find("a").is_none() && book.find("b").is_none());
    assert!(book.find("c").is_some());
}

#[test]
fn shares_below_at_and_above_both_targets() {
    let j = job("j", true);
    let e1 = [0xaa, 0xbb, 0, 1];
    let en2 = [0u8; 4];
    // Tiny difficulties (about 1 in 1,024 and 1 in 64 hashes), so debug builds find shares at once.
    let pool_target = work::target_from_difficulty(1.0 / 4_194_304.0);
    let miner_target = work::target_from_difficulty(1.0 / 67_108_864.0);
    let mut book = JobBook::default();
    book.add(BookJob::Stratum(j.clone()), pool_target);
    let entry = book.find("j").unwrap();
    let meets_pool = find_nonce(&j, &e1, &en2, &pool_target, true);
    let hex = |n: u32| format!("{n:08x}");
    let s = hex(meets_pool);
    assert_eq!(
        check_stratum(
            entry,
            &e1,
            &submit("00000000", "5f5e1000", &s, None),
            0,
            &miner_target,
            7200
        ),
        Verdict::MeetsPool
    );
    assert_eq!(
        check_stratum(
            entry,
            &e1,
            &submit("00000000", "5f5e1000", &s, None),
            0,
            &miner_target,
            7200
        ),
        Verdict::Duplicate
    );
    // A nonce meeting the miner's target but not the pool's.
    let below = (0u32..)
        .find(|&n| {
            let h = j.share_hash(&e1, &en2, j.ntime, n, j.version);
            work::hash_meets_target(&h, &miner_target) && !work::hash_meets_target(&h, &pool_target)
        })
        .unwrap();
    assert_eq!(
        check_stratum(
            entry,
            &e1,
            &submit("00000000", "5f5e1000", &hex(below), None),
            0,
            &miner_target,
            7200
        ),
        Verdict::BelowPool
    );
    let bad = find_nonce(&j, &e1, &en2, &miner_target, false);
    assert_eq!(
        check_stratum(
            entry,
            &e1,
            &submit("00000000", "5f5e1000", &hex(bad), None),
            0,
            &miner_target,
            7200
        ),
        Verdict::LowDifficulty
    );
    // The same nonce with another miner's extranonce1 is a different share: the split matters.
    let other = [0xaa, 0xbb, 0, 2];
    let v = check_stratum(
        entry,
        &other,
        &submit("00000000", "5f5e1000", &s, None),
        0,
        &miner_target,
        7200,
    );
    assert_ne!(v, Verdict::Duplicate);
}

#[test]
fn ntime_and_version_bits_are_bounded() {
    let mut book = JobBook::default();
    book.add(BookJob::Stratum(job("j", true)), [0xff; 32]);
    let e = book.find("j").unwrap();
    let t = [0xff; 32];
    let early = check_stratum(
        e,
        &[0; 4],
        &submit("00000000", "5f5e0fff", "00000000", None),
        0,
        &t,
        7200,
    );
    assert!(matches!(early, Verdict::Invalid(_)), "{early:?}");
    let late = check_stratum(
        e,
        &[0; 4],
        &submit("00000000", "5f5e2c21", "00000000", None),
        0,
        &t,
        7200,
    );
    assert!(matches!(late, Verdict::Invalid(_)), "{late:?}");
    let edge = check_stratum(
        e,
        &[0; 4],
        &submit("00000000", "5f5e2c20", "00000000", None),
        0,
        &t,
        7200,
    );
    assert_eq!(edge, Verdict::MeetsPool);
    let vb = check_stratum(
        e,
        &[0; 4],
        &submit("00000000", "5f5e1000", "00000001", Some("00004000")),
        0x1fffe000,
        &t,
        7200,
    );
    assert_eq!(vb, Verdict::MeetsPool);
    let out = check_stratum(
        e,
        &[0; 4],
        &submit("00000000", "5f5e1000", "00000001", Some("00000001")),
        0x1fffe000,
        &t,
        7200,
    );
    assert!(matches!(out, Verdict::Invalid(_)), "{out:?}");
}
