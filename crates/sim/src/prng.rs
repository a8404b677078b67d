//! What the simulated pools make jobs and ids from: a deterministic pseudo-random byte source, values unique
//! within one pool (extranonce1, NONCE_1) and the clock for job times.

use fastproxy_work::work;
use std::time::{SystemTime, UNIX_EPOCH};

/// Deterministic byte source for simulated jobs and solutions: sha256d(seed || counter).
pub(crate) struct Prng {
    seed: [u8; 16],
    counter: u64,
}

impl Prng {
    /// A source for the pair `(a, b)` (e.g. pool instance and job number).
    pub(crate) fn new(a: u64, b: u64) -> Prng {
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&a.to_le_bytes());
        seed[8..].copy_from_slice(&b.to_le_bytes());
        Prng { seed, counter: 0 }
    }

    /// The next 32 pseudo-random bytes.
    pub(crate) fn next(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut input = [0u8; 24];
        input[..16].copy_from_slice(&self.seed);
        input[16..].copy_from_slice(&self.counter.to_le_bytes());
        work::sha256d(&input)
    }

    /// Fills `out` with pseudo-random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let block = self.next();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// `size` bytes unique to (pool `instance`, `counter`): a big-endian number, zero-filled in front beyond 8
/// bytes (a new extranonce1 or NONCE_1 for each counter value).
pub(crate) fn unique_bytes(instance: u64, counter: u64, size: usize) -> Vec<u8> {
    let value = instance
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(counter);
    let bytes = value.to_be_bytes();
    let mut out = vec![0u8; size.saturating_sub(8)];
    out.extend_from_slice(&bytes[8usize.saturating_sub(size)..]);
    out
}

/// Seconds since the Unix epoch (saturating at `u32::MAX`).
pub(crate) fn unix_time() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}
