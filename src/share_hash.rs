//! The share hash on the proxy's hot path: double SHA-256 of a V1 share's header with no allocation and no
//! more SHA-256 compressions than the data needs.
//!
//! [`crate::work::Job::share_hash`] is the plain reference (build the coinbase, hash it, fold the branch,
//! hash the header); the simulated pool uses it. This module computes the same value faster:
//! - per job, coinb1's whole 64-byte blocks are compressed once ([`JobHasher::new`]); a share resumes from
//!   that midstate with the tail of coinb1, the extranonces and coinb2;
//! - the merkle fold and the header use fixed-length double hashes that call the compression function
//!   directly with their constant padding blocks (three compressions per branch level, three for the header).
//!
//! The sha2 crate picks its SHA-NI or AVX2 backend at run time.

use crate::work::{swap_words, Job};
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

type Block = GenericArray<u8, sha2::digest::consts::U64>;

const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The padding block of a message of exactly 64 bytes: 0x80, zeros, bit length 512.
const PAD_64: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// SHA-256 of a 32-byte digest: one compression (data, 0x80, zeros, bit length 256).
fn sha256_of_digest(digest: &[u8; 32]) -> [u8; 32] {
    let mut block = Block::default();
    block[..32].copy_from_slice(digest);
    block[32] = 0x80;
    block[62] = 0x01;
    let mut state = IV;
    sha2::compress256(&mut state, std::slice::from_ref(&block));
    state_bytes(&state)
}

/// sha256d of exactly 64 bytes (one merkle step): three compressions.
pub fn sha256d_64(data: &[u8; 64]) -> [u8; 32] {
    let mut state = IV;
    let blocks = [*Block::from_slice(data), *Block::from_slice(&PAD_64)];
    sha2::compress256(&mut state, &blocks);
    sha256_of_digest(&state_bytes(&state))
}

/// sha256d of an 80-byte block header: three compressions.
pub fn sha256d_80(header: &[u8; 80]) -> [u8; 32] {
    let mut tail = Block::default();
    tail[..16].copy_from_slice(&header[64..]);
    tail[16] = 0x80;
    // Bit length 640 = 0x280.
    tail[62] = 0x02;
    tail[63] = 0x80;
    let mut state = IV;
    sha2::compress256(&mut state, &[*Block::from_slice(&header[..64]), tail]);
    sha256_of_digest(&state_bytes(&state))
}

/// Folds a merkle branch onto a coinbase transaction hash: merkle = sha256d(merkle || h) per entry.
pub fn merkle_fold(coinbase_hash: [u8; 32], branch: &[[u8; 32]]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    branch.iter().fold(coinbase_hash, |acc, h| {
        pair[..32].copy_from_slice(&acc);
        pair[32..].copy_from_slice(h);
        sha256d_64(&pair)
    })
}

/// What a job's shares have in common, computed once per job.
#[derive(Clone)]
pub struct JobHasher {
    /// SHA-256 state after coinb1 (whole blocks compressed, the rest buffered).
    coinb1: Sha256,
    /// prevhash in header byte order.
    prevhash: [u8; 32],
}

impl std::fmt::Debug for JobHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHasher").finish_non_exhaustive()
    }
}

impl JobHasher {
    pub fn new(job: &Job) -> JobHasher {
        JobHasher {
            coinb1: Sha256::new().chain_update(&job.coinb1),
            prevhash: swap_words(&job.prevhash),
        }
    }

    /// sha256d of the share's header; equal to [`Job::share_hash`] for the job this was made from.
    pub fn share_hash(
        &self,
        job: &Job,
        extranonce1: &[u8],
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> [u8; 32] {
        let first: [u8; 32] = self
            .coinb1
            .clone()
            .chain_update(extranonce1)
            .chain_update(extranonce2)
            .chain_update(&job.coinb2)
            .finalize()
            .into();
        let merkle = merkle_fold(sha256_of_digest(&first), &job.merkle_branch);
        let mut header = [0u8; 80];
        header[0..4].copy_from_slice(&version.to_le_bytes());
        header[4..36].copy_from_slice(&self.prevhash);
        header[36..68].copy_from_slice(&merkle);
        header[68..72].copy_from_slice(&ntime.to_le_bytes());
        header[72..76].copy_from_slice(&job.nbits.to_le_bytes());
        header[76..80].copy_from_slice(&nonce.to_le_bytes());
        sha256d_80(&header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::sha256d;

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
        assert_eq!(sha256d_80(&data), sha256d(&data));
        assert_eq!(
            sha256_of_digest(data[..32].try_into().unwrap()),
            <[u8; 32]>::from(Sha256::digest(&data[..32]))
        );
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
                assert_eq!(
                    hasher.share_hash(&job, &e1, &en2, job.ntime + nonce, nonce, version),
                    job.share_hash(&e1, &en2, job.ntime + nonce, nonce, version),
                    "coinb1 {coinb1_len} bytes, branch {depth}, nonce {nonce}"
                );
            }
        }
    }
}
