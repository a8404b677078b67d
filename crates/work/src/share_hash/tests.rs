//! Unit tests of the share hashes against the reference: fixed-length hashes, two shares side by side, mixed
//! batches, and the job hasher for every coinb1 length.

use super::*;
use crate::work::sha256d;
use sha2::Digest;

#[test]
fn fixed_length_hashes_equal_the_generic_ones() {
    let mut data = [0u8; 80];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    assert_eq!(
        sha256d_64(data[..64].try_into().unwrap()),
        sha256d(&data[..64])
    );
    assert_eq!(sha256d_80_lanes([&data])[0], sha256d(&data));
    let mut state = IV;
    compress(&mut state, data[..64].try_into().unwrap());
    let first = state_bytes(&state);
    assert_eq!(
        sha256_of_states([state, state]),
        [<[u8; 32]>::from(sha2::Sha256::digest(first)); 2]
    );
    assert_eq!(
        sha256_of_states([state])[0],
        sha256_of_states([state, state])[1]
    );
}

fn test_job(coinb1_len: usize, coinb2_len: usize, depth: usize) -> Job {
    Job {
        job_id: "j".into(),
        prevhash: [0x5a; 32],
        coinb1: (0..coinb1_len).map(|i| i as u8).collect(),
        coinb2: (0..coinb2_len).map(|i| (i * 3) as u8).collect(),
        merkle_branch: (0..depth).map(|i| [i as u8 + 1; 32]).collect(),
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: 0x6000_0000,
        clean_jobs: true,
    }
}

#[test]
fn two_shares_side_by_side_equal_the_reference() {
    // Same job; jobs whose coinbases differ in block count (one beyond the stack buffer) and whose
    // branches differ in depth.
    let jobs = [
        test_job(41, 97, 12),
        test_job(41, 97, 12),
        test_job(130, 600, 3),
        test_job(0, 20, 0),
    ];
    let hashers = jobs.each_ref().map(JobHasher::new);
    let e1 = [9u8, 8, 7, 6, 0, 1];
    let en2s = [[0u8, 0, 0, 1], [0, 0, 0, 2], [5, 5, 5, 5], [1, 2, 3, 4]];
    let input = |k: usize| ShareInput {
        job: &jobs[k],
        hasher: &hashers[k],
        extranonce1: &e1,
        extranonce2: &en2s[k],
        ntime: jobs[k].ntime + k as u32,
        nonce: 0xdead_0000 + k as u32,
        version: 0x2000_0000 | ((k as u32) << 13),
    };
    let reference = |k: usize| {
        let i = input(k);
        jobs[k].share_hash(&e1, &en2s[k], i.ntime, i.nonce, i.version)
    };
    for (a, b) in [(0, 1), (0, 2), (2, 3), (3, 0), (1, 1)] {
        let [ha, hb] = share_hashes([&input(a), &input(b)]);
        assert_eq!((ha, hb), (reference(a), reference(b)), "lanes {a} and {b}");
    }
}

#[test]
fn hash_many_equals_the_reference_for_mixed_batches() {
    // Up to 37 shares of one job, 12 of a job with a coinbase past the stack buffer, 3 of a job without
    // branch, one with a longer extranonce2 and gaps without job, interleaved; batches of several sizes,
    // so every path of hash_many runs: thirty-two lanes, sixteen, pairs and a single share.
    let jobs = [
        test_job(41, 97, 12),
        test_job(130, 600, 3),
        test_job(0, 20, 0),
    ];
    let hashers = jobs.each_ref().map(JobHasher::new);
    let e1s: Vec<[u8; 6]> = (0..60u8).map(|i| [9, 8, 7, 6, 0, i]).collect();
    let plan: Vec<Option<(usize, usize)>> = (0..60)
        .map(|i| match i % 11 {
            0 if i > 0 => None,
            3 | 7 => Some((1, 4)),
            5 if i < 20 => Some((2, 4)),
            9 if i == 9 => Some((0, 8)),
            _ => Some((0, 4)),
        })
        .collect();
    let en2s: Vec<[u8; 8]> = (0..60u32).map(|i| [0, 0, 0, 0, 1, 2, 3, i as u8]).collect();
    let input = |i: usize| {
        plan[i].map(|(k, en2_len)| ShareInput {
            job: &jobs[k],
            hasher: &hashers[k],
            extranonce1: &e1s[i],
            extranonce2: &en2s[i][..en2_len],
            ntime: jobs[k].ntime + i as u32,
            nonce: 0xdead_0000 + i as u32,
            version: 0x2000_0000 | ((i as u32) << 13),
        })
    };
    let (mut out, mut scratch) = (Vec::new(), ManyScratch::default());
    for n in [60, 40, 30, 16, 12, 10, 9, 1, 0] {
        hash_many(n, input, &mut out, &mut scratch);
        assert_eq!(out.len(), n);
        for (i, h) in out.iter().enumerate() {
            let want = input(i).map(|x| {
                x.job
                    .share_hash(x.extranonce1, x.extranonce2, x.ntime, x.nonce, x.version)
            });
            assert_eq!(*h, want, "batch of {n}, input {i}");
        }
    }
}

#[test]
fn job_hasher_equals_the_reference_for_every_coinb1_length() {
    // coinb1 lengths around the 64-byte block boundary, branches of 0, 1 and 12 levels.
    for (coinb1_len, depth) in [
        (0, 0),
        (1, 1),
        (41, 12),
        (63, 3),
        (64, 0),
        (65, 2),
        (130, 12),
    ] {
        let job = Job {
            job_id: "j".into(),
            prevhash: [0x5a; 32],
            coinb1: (0..coinb1_len).map(|i| i as u8).collect(),
            coinb2: (0..97).map(|i| (i * 3) as u8).collect(),
            merkle_branch: (0..depth).map(|i| [i as u8 + 1; 32]).collect(),
            version: 0x2000_0000,
            nbits: 0x1d00_ffff,
            ntime: 0x6000_0000,
            clean_jobs: true,
        };
        let hasher = JobHasher::new(&job);
        for nonce in 0..3u32 {
            let (e1, en2) = ([1, 2, 3, 4, 0, 7], nonce.to_be_bytes());
            let version = 0x2000_0000 | (nonce << 13);
            let input = ShareInput {
                job: &job,
                hasher: &hasher,
                extranonce1: &e1,
                extranonce2: &en2,
                ntime: job.ntime + nonce,
                nonce,
                version,
            };
            assert_eq!(
                share_hashes([&input])[0],
                job.share_hash(&e1, &en2, job.ntime + nonce, nonce, version),
                "coinb1 {coinb1_len} bytes, branch {depth}, nonce {nonce}"
            );
        }
    }
}
