//! Property test of the fast share hash (per-job midstate, fixed-length double hashes, two shares side by
//! side with SHA-NI, sixteen or thirty-two at a time with AVX-512) against the plain reference
//! `work::Job::share_hash`, on random jobs and shares.

use fastproxy::share_hash::{hash_many, share_hashes, JobHasher, ManyScratch, ShareInput};
use fastproxy::work::Job;
use proptest::prelude::*;

fn job() -> impl Strategy<Value = Job> {
    (
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec(any::<u8>(), 0..700),
        prop::collection::vec(any::<[u8; 32]>(), 0..14),
        any::<[u8; 32]>(),
        any::<(u32, u32, u32)>(),
    )
        .prop_map(
            |(coinb1, coinb2, merkle_branch, prevhash, (version, nbits, ntime))| Job {
                job_id: "p".into(),
                prevhash,
                coinb1,
                coinb2,
                merkle_branch,
                version,
                nbits,
                ntime,
                clean_jobs: false,
            },
        )
}

/// The miner's part of a share: extranonce1, extranonce2, ntime, nonce, version.
type Share = (Vec<u8>, Vec<u8>, u32, u32, u32);

fn share() -> impl Strategy<Value = Share> {
    (
        prop::collection::vec(any::<u8>(), 0..20),
        prop::collection::vec(any::<u8>(), 0..16),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
}

fn input<'a>(job: &'a Job, hasher: &'a JobHasher, s: &'a Share) -> ShareInput<'a> {
    ShareInput {
        job,
        hasher,
        extranonce1: &s.0,
        extranonce2: &s.1,
        ntime: s.2,
        nonce: s.3,
        version: s.4,
    }
}

/// A round's parked shares: most with one extranonce layout (so groups of one job form), a few with their own.
fn batch() -> impl Strategy<Value = Vec<(bool, Share)>> {
    (0usize..20, 0usize..16).prop_flat_map(|(e1_len, en2_len)| {
        let usual = (
            prop::collection::vec(any::<u8>(), e1_len),
            prop::collection::vec(any::<u8>(), en2_len),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        );
        let entry = prop_oneof![8 => (any::<bool>(), usual), 1 => (any::<bool>(), share())];
        prop::collection::vec(entry, 0..48)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Two shares, of the same job or of two jobs, hashed alone and side by side: always the reference.
    #[test]
    fn fast_share_hashes_equal_the_reference(
        jobs in (job(), job()),
        same_job in any::<bool>(),
        a in share(),
        b in share(),
    ) {
        let (ja, jb) = (&jobs.0, if same_job { &jobs.0 } else { &jobs.1 });
        let (ha, hb) = (JobHasher::new(ja), JobHasher::new(jb));
        let (ia, ib) = (input(ja, &ha, &a), input(jb, &hb, &b));
        let reference = [
            ja.share_hash(&a.0, &a.1, a.2, a.3, a.4),
            jb.share_hash(&b.0, &b.1, b.2, b.3, b.4),
        ];
        prop_assert_eq!(share_hashes([&ia, &ib]), reference);
        prop_assert_eq!(share_hashes([&ia]), [reference[0]]);
        prop_assert_eq!(share_hashes([&ib]), [reference[1]]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A round's shares of two jobs hashed together, as the reactor does (groups of one job sixteen or
    /// thirty-two at a time with AVX-512, the rest in pairs): each share's hash is the reference.
    #[test]
    fn a_round_of_shares_hashed_together_equals_the_reference(
        jobs in (job(), job()),
        shares in batch(),
    ) {
        let hashers = [JobHasher::new(&jobs.0), JobHasher::new(&jobs.1)];
        let job_of = |second: bool| if second { (&jobs.1, &hashers[1]) } else { (&jobs.0, &hashers[0]) };
        let (mut out, mut scratch) = (Vec::new(), ManyScratch::default());
        hash_many(
            shares.len(),
            |i| {
                let (second, s) = &shares[i];
                let (job, hasher) = job_of(*second);
                Some(input(job, hasher, s))
            },
            &mut out,
            &mut scratch,
        );
        prop_assert_eq!(out.len(), shares.len());
        for ((second, s), h) in shares.iter().zip(&out) {
            let (job, _) = job_of(*second);
            prop_assert_eq!(*h, Some(job.share_hash(&s.0, &s.1, s.2, s.3, s.4)));
        }
    }
}
