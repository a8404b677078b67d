//! SV2 work as Stratum V1 work: an extended job plus the prev hash that activates it become the fields of a
//! V1 `mining.notify` (a `work::Job`), and a V1 share's pieces become a SubmitSharesExtended's fields.
//!
//! Coinbase = coinbase_tx_prefix ‖ channel extranonce_prefix ‖ extranonce ‖ coinbase_tx_suffix (§5.3.16), so
//! coinb1 = prefix, coinb2 = suffix and the V1 extranonce1 starts with the channel's prefix.

use crate::work::{swap_words, Job};

use super::messages::{ExtendedJob, Extranonce, PrevHash};

/// The V1 job for `job` under `prev`: job_id in decimal, prevhash in notify order (each 4-byte word of the
/// header-order hash reversed), merkle branch as on the wire, ntime the job's min_ntime or else the prev
/// hash's. `clean_jobs` is true when this prev hash replaced another one.
pub fn v1_job(job: &ExtendedJob, prev: &PrevHash, clean_jobs: bool) -> Job {
    Job {
        job_id: job.job_id.to_string(),
        prevhash: swap_words(&prev.prev_hash),
        coinb1: job.coinbase_tx_prefix.clone(),
        coinb2: job.coinbase_tx_suffix.clone(),
        merkle_branch: job.merkle_path.clone(),
        version: job.version,
        nbits: prev.nbits,
        ntime: job.min_ntime.unwrap_or(prev.min_ntime),
        clean_jobs,
    }
}

/// An SV2 target (little-endian on the wire) in the big-endian form `work::hash_meets_target` takes.
pub fn target_to_be(le: &[u8; 32]) -> [u8; 32] {
    let mut be = *le;
    be.reverse();
    be
}

/// The V1 difficulty for a big-endian share target: DIFF1 / target, raised where needed so that the target
/// miners derive from it is never easier than `target_be` (their shares then always meet the channel's).
pub fn difficulty_for_target(target_be: &[u8; 32]) -> f64 {
    let value = target_be
        .iter()
        .fold(0.0f64, |acc, &b| acc * 256.0 + f64::from(b));
    if value <= 0.0 {
        return f64::MAX;
    }
    let diff1 = 65535.0 * 2f64.powi(208);
    let mut d = diff1 / value;
    for _ in 0..64 {
        if crate::work::target_from_difficulty(d) <= *target_be {
            break;
        }
        d *= 1.0 + 1e-12;
    }
    d
}

/// SubmitSharesExtended.extranonce for a V1 share: everything after the channel's prefix, i.e. the V1
/// extranonce1's part after the channel prefix (the proxy's per-miner bytes) then the miner's extranonce2.
/// None when the result is not exactly the channel's `extranonce_size` (or longer than 32 bytes).
pub fn share_extranonce(
    miner_prefix: &[u8],
    extranonce2: &[u8],
    extranonce_size: usize,
) -> Option<Extranonce> {
    if miner_prefix.len() + extranonce2.len() != extranonce_size {
        return None;
    }
    Extranonce::concat(miner_prefix, extranonce2)
}

/// The full nVersion of a share: the job's version with the miner's rolled bits inside `mask`; the job's
/// own version when the pool does not allow rolling for it.
pub fn submit_version(job: &ExtendedJob, mask: u32, miner_bits: u32) -> u32 {
    if job.version_rolling_allowed {
        crate::work::rolled_version(job.version, mask, miner_bits)
    } else {
        job.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;
    use crate::work::{hash_meets_target, target_from_nbits};

    fn display_order(s: &str) -> [u8; 32] {
        let mut b = hex::decode_array::<32>(s).unwrap();
        b.reverse();
        b
    }

    /// Block 1 of the Bitcoin chain as an SV2 job: its header rebuilt through the V1 job must hash to the
    /// block's known hash (prevhash byte order, coinbase split, ntime and nbits all checked against the chain).
    #[test]
    fn block_one_through_the_v1_job_hashes_to_its_known_hash() {
        let coinbase = hex::decode(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff\
             0704ffff001d0104ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae1390\
             813a627c66fb8be7947be63c52da7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c8\
             58eeac00000000",
        )
        .unwrap();
        // prefix ends after "0704ffff001d"; the channel prefix is 0x01, the extranonce 0x04.
        let cut = 4 + 1 + 32 + 4 + 1 + 5;
        let job = ExtendedJob {
            channel_id: 2,
            job_id: 1,
            min_ntime: None,
            version: 1,
            version_rolling_allowed: false,
            merkle_path: vec![],
            coinbase_tx_prefix: coinbase[..cut].to_vec(),
            coinbase_tx_suffix: coinbase[cut + 2..].to_vec(),
        };
        let prev = PrevHash {
            channel_id: 2,
            job_id: 1,
            prev_hash: display_order(
                "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
            ),
            min_ntime: 1_231_469_665,
            nbits: 0x1d00_ffff,
        };
        let v1 = v1_job(&job, &prev, true);
        assert_eq!(v1.job_id, "1");
        assert_eq!(v1.ntime, 1_231_469_665);
        let extranonce = share_extranonce(&[], &[0x04], 1).unwrap();
        let version = submit_version(&job, 0x1fff_e000, 0x1fff_e000);
        assert_eq!(version, 1, "rolling not allowed: the job's version stands");
        let hash = v1.share_hash(&[0x01], &extranonce, v1.ntime, 2_573_394_689, version);
        assert_eq!(
            hash,
            display_order("00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048")
        );
        assert!(hash_meets_target(&hash, &target_from_nbits(v1.nbits)));
        // The notify form of the prev hash is the header order with words swapped, not the display order.
        assert_ne!(v1.prevhash, prev.prev_hash);
    }

    #[test]
    fn extranonce_and_version_helpers() {
        assert_eq!(
            share_extranonce(&[1, 2], &[3, 4, 5], 5).as_deref(),
            Some(&[1, 2, 3, 4, 5][..])
        );
        assert_eq!(share_extranonce(&[1, 2], &[3, 4], 5), None);
        assert_eq!(share_extranonce(&[1; 2], &[3; 31], 33), None);
        let mut e = Extranonce::from_slice(&[7; 32]).unwrap();
        assert_eq!(e.pop(), Some(7));
        assert_eq!(e.len(), 31);
        assert_eq!(Extranonce::from_slice(&[0; 33]), None);
        let mut job = ExtendedJob {
            channel_id: 0,
            job_id: 0,
            min_ntime: Some(5),
            version: 0x2000_0000,
            version_rolling_allowed: true,
            merkle_path: vec![],
            coinbase_tx_prefix: vec![],
            coinbase_tx_suffix: vec![],
        };
        assert_eq!(submit_version(&job, 0x1fff_e000, 0xffff_ffff), 0x3fff_e000);
        job.version_rolling_allowed = false;
        assert_eq!(submit_version(&job, 0x1fff_e000, 0xffff_ffff), 0x2000_0000);
        let mut le = [0u8; 32];
        le[31] = 0x7f;
        assert_eq!(target_to_be(&le)[0], 0x7f);
    }
}
