//! The simulated Stratum V1 miner's hashing: the work for one job (extranonce2 counting, version bits, the
//! SHA-256 midstate of the header) and a fast nonce search for tests that build their shares themselves.

use fastproxy_work::sha256x2::{compress, IV};
use fastproxy_work::work::{self, Job};
use sha2::digest::core_api::{Block, Buffer, UpdateCore, VariableOutputCore};
use sha2::digest::Output;
use sha2::Sha256VarCore;

pub(super) const NONCE_SPACE: u64 = 1 << 32;

/// A share found by hashing, ready to submit.
pub(super) struct FoundShare {
    pub(super) job_id: String,
    pub(super) extranonce2: Vec<u8>,
    pub(super) ntime: u32,
    pub(super) nonce: u32,
    pub(super) version_bits: Option<u32>,
}

/// The job being hashed with one extranonce1/extranonce2 and target.
pub(super) struct Work {
    job: Job,
    /// The extranonce1 hashed (tampered when configured so).
    extranonce1: Vec<u8>,
    pub(super) extranonce2: Vec<u8>,
    /// `extranonce2` as a number, and the value this work started with.
    pub(super) e2_value: u64,
    e2_first: u64,
    target: [u8; 32],
    /// Next nonce to try (NONCE_SPACE when the range is done).
    pub(super) nonce: u64,
    version_bits: Option<u32>,
    /// Header version in use (the job's, or with rolled bits).
    version: u32,
    header: [u8; 80],
    midstate: Midstate,
    pub(super) exhausted: bool,
}

impl Work {
    pub(super) fn new(
        job: Job,
        extranonce1: Vec<u8>,
        extranonce2_size: usize,
        first_e2: u64,
        target: [u8; 32],
    ) -> Work {
        let first = extranonce2_space(extranonce2_size).map_or(first_e2, |space| first_e2 % space);
        let mut work = Work {
            version: job.version,
            job,
            extranonce1,
            extranonce2: extranonce2_bytes(first, extranonce2_size),
            e2_value: first,
            e2_first: first,
            target,
            nonce: 0,
            version_bits: None,
            header: [0; 80],
            midstate: Midstate::new(&[0; 80]),
            exhausted: false,
        };
        work.rebuild_header();
        work
    }

    fn rebuild_header(&mut self) {
        let coinbase = self.job.coinbase(&self.extranonce1, &self.extranonce2);
        let merkle = self.job.merkle_root(&coinbase);
        self.header = self
            .job
            .header_with_merkle_root(&merkle, self.job.ntime, 0, self.version);
        self.midstate = Midstate::new(&self.header);
    }

    /// Uses rolled version bits `bits` (within `mask`) from now on.
    pub(super) fn set_version_bits(&mut self, bits: Option<u32>, mask: u32) {
        if bits == self.version_bits {
            return;
        }
        self.version_bits = bits;
        self.version = match bits {
            Some(bits) => work::rolled_version(self.job.version, mask, bits),
            None => self.job.version,
        };
        self.header[0..4].copy_from_slice(&self.version.to_le_bytes());
        self.midstate = Midstate::new(&self.header);
    }

    /// Moves to the next extranonce2 (wrapping); the work is exhausted when it is back at its first value.
    pub(super) fn next_extranonce2(&mut self) {
        let size = self.extranonce2.len();
        let next = match extranonce2_space(size) {
            Some(space) => (self.e2_value + 1) % space,
            None => self.e2_value.wrapping_add(1),
        };
        if next == self.e2_first {
            self.exhausted = true;
            return;
        }
        self.e2_value = next;
        self.extranonce2 = extranonce2_bytes(next, size);
        self.nonce = 0;
        self.rebuild_header();
    }

    /// Hashes up to `count` nonces; returns how many were hashed and the shares found.
    pub(super) fn hash_batch(&mut self, count: u64) -> (u64, Vec<FoundShare>) {
        if self.exhausted {
            return (0, Vec::new());
        }
        let start = self.nonce;
        let end = (start + count).min(NONCE_SPACE);
        let mut found = Vec::new();
        for nonce in start..end {
            let nonce = nonce as u32;
            let hash = self.midstate.sha256d_with_nonce(nonce);
            if work::hash_meets_target(&hash, &self.target) {
                found.push(FoundShare {
                    job_id: self.job.job_id.clone(),
                    extranonce2: self.extranonce2.clone(),
                    ntime: self.job.ntime,
                    nonce,
                    version_bits: self.version_bits,
                });
            }
        }
        self.nonce = end;
        if end == NONCE_SPACE {
            self.next_extranonce2();
        }
        (end - start, found)
    }
}

/// The first nonce of `nonces` with which `header` (its last four bytes replaced by the nonce) hashes to meet
/// `target`: a nonce search for tests that build their shares themselves. The state after the header's first
/// 64 bytes is kept, and each nonce costs two calls of the sha2 crate's compression function (optimized even
/// in debug builds), so thousands of shares a second at a small difficulty stay cheap.
pub fn search_nonce(
    header: &[u8; 80],
    target: &[u8; 32],
    nonces: std::ops::Range<u32>,
) -> Option<u32> {
    let mut mid = IV;
    let mut first = [0u8; 64];
    first.copy_from_slice(&header[..64]);
    compress(&mut mid, &first);
    // The header's last 16 bytes, padded (80 bytes = 640 bits); then the 32-byte first hash, padded.
    let mut tail = [0u8; 64];
    tail[..12].copy_from_slice(&header[64..76]);
    tail[16] = 0x80;
    tail[62..].copy_from_slice(&640u16.to_be_bytes());
    let mut second = [0u8; 64];
    second[32] = 0x80;
    second[62..].copy_from_slice(&256u16.to_be_bytes());
    // The hash is a little-endian number: its top 32 bits are the last state word, bytes swapped. Most nonces
    // are decided by that word alone (this runs in unoptimized test builds: keep the per-nonce work small).
    let target_top = u32::from_be_bytes([target[0], target[1], target[2], target[3]]);
    for n in nonces {
        tail[12..16].copy_from_slice(&n.to_le_bytes());
        let mut state = mid;
        compress(&mut state, &tail);
        // An index loop: about three times faster than chunks/zip without optimizations.
        #[allow(clippy::needless_range_loop)]
        for i in 0..8 {
            second[4 * i..4 * i + 4].copy_from_slice(&state[i].to_be_bytes());
        }
        let mut state = IV;
        compress(&mut state, &second);
        let top = state[7].swap_bytes();
        if top < target_top {
            return Some(n);
        }
        if top == target_top {
            let mut hash = [0u8; 32];
            for (out, word) in hash.chunks_exact_mut(4).zip(state) {
                out.copy_from_slice(&word.to_be_bytes());
            }
            if work::hash_meets_target(&hash, target) {
                return Some(n);
            }
        }
    }
    None
}

/// sha256d of an 80-byte header for many nonces: the SHA-256 state after the first 64 bytes is kept, and
/// the block-level API is used directly (noticeably faster than `Digest` in unoptimized builds).
#[derive(Clone)]
pub(super) struct Midstate {
    core: Sha256VarCore,
    /// Header bytes 64..76 (end of the merkle root, ntime, nbits).
    tail: [u8; 12],
}

impl Midstate {
    pub(super) fn new(header: &[u8; 80]) -> Midstate {
        let mut core = new_sha256_core();
        core.update_blocks(std::slice::from_ref(Block::<Sha256VarCore>::from_slice(
            &header[..64],
        )));
        let mut tail = [0u8; 12];
        tail.copy_from_slice(&header[64..76]);
        Midstate { core, tail }
    }

    pub(super) fn sha256d_with_nonce(&self, nonce: u32) -> [u8; 32] {
        let mut last = [0u8; 16];
        last[..12].copy_from_slice(&self.tail);
        last[12..].copy_from_slice(&nonce.to_le_bytes());
        let mut first = Output::<Sha256VarCore>::default();
        self.core
            .clone()
            .finalize_variable_core(&mut Buffer::<Sha256VarCore>::new(&last), &mut first);
        let mut second = Output::<Sha256VarCore>::default();
        new_sha256_core()
            .finalize_variable_core(&mut Buffer::<Sha256VarCore>::new(&first), &mut second);
        second.into()
    }
}

fn new_sha256_core() -> Sha256VarCore {
    // 32 bytes is SHA-256's own output size, always accepted.
    Sha256VarCore::new(32).unwrap_or_else(|_| unreachable!("SHA-256 supports 32-byte output"))
}

/// How many extranonce2 values `size` bytes hold (`None`: at least 2^64).
pub(super) fn extranonce2_space(size: usize) -> Option<u64> {
    (size < 8).then(|| 1u64 << (8 * size))
}

/// `value` as `size` big-endian bytes (high bytes dropped or zero-filled).
pub(super) fn extranonce2_bytes(value: u64, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    let n = size.min(8);
    out[size - n..].copy_from_slice(&value.to_be_bytes()[8 - n..]);
    out
}

/// Deposits the low bits of `value` into the set bits of `mask`, lowest first.
pub(super) fn spread_bits(mut value: u32, mask: u32) -> u32 {
    let mut out = 0;
    let mut rest = mask;
    while rest != 0 {
        let lowest = rest & rest.wrapping_neg();
        if value & 1 != 0 {
            out |= lowest;
        }
        value >>= 1;
        rest &= rest - 1;
    }
    out
}
