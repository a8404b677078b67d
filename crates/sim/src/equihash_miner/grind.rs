//! The simulated Equihash miner's fake solutions: a share being prepared, and the search that varies a
//! solution's last bytes until the block hash sha256d(header || solution) meets the target.

use fastproxy_work::equihash::{self, HEADER_LEN, NONCE_LEN};
use sha2::{Digest, Sha256};

/// The share being prepared: its solution is varied until the block hash meets the target.
pub(super) struct Grind {
    pub(super) job_id: String,
    pub(super) time: [u8; 4],
    pub(super) nonce2: Vec<u8>,
    /// The nonce hashed (tampered when so configured).
    pub(super) nonce: [u8; NONCE_LEN],
    pub(super) header: [u8; HEADER_LEN],
    pub(super) solution: Vec<u8>,
    pub(super) target: [u8; 32],
    /// Next counter value to try.
    pub(super) next: u64,
}

impl Grind {
    /// Tries up to `batch` solution variants; returns how many were tried and whether one met the target.
    pub(super) fn try_batch(&mut self, batch: u64) -> (u64, bool) {
        let found = grind_solution(
            &self.header,
            &mut self.solution,
            &self.target,
            self.next,
            batch,
        );
        let tried = found.map_or(batch, |(counter, _)| {
            counter.wrapping_sub(self.next).wrapping_add(1)
        });
        self.next = self.next.wrapping_add(tried);
        (tried, found.is_some())
    }
}

/// Varies the last (up to 8) bytes of `solution_with_prefix`, as a little-endian counter from `start`,
/// until sha256d(`header` || solution) meets `target`, trying at most `max_tries` values. On success the
/// solution holds the winning bytes and `(winning counter, block hash)` is returned; otherwise it holds the
/// last value tried. The SHA-256 state of the unchanging leading blocks is computed once.
pub fn grind_solution(
    header: &[u8; HEADER_LEN],
    solution_with_prefix: &mut [u8],
    target: &[u8; 32],
    start: u64,
    max_tries: u64,
) -> Option<(u64, [u8; 32])> {
    let vary = solution_with_prefix.len().min(8);
    let total = HEADER_LEN + solution_with_prefix.len();
    let fixed = (total - vary) / 64 * 64;
    let mut base = Sha256::new();
    let mut tail = Vec::with_capacity(total - fixed);
    if fixed <= HEADER_LEN {
        base.update(&header[..fixed]);
        tail.extend_from_slice(&header[fixed..]);
        tail.extend_from_slice(solution_with_prefix);
    } else {
        base.update(header);
        base.update(&solution_with_prefix[..fixed - HEADER_LEN]);
        tail.extend_from_slice(&solution_with_prefix[fixed - HEADER_LEN..]);
    }
    let at = tail.len() - vary;
    let sol_at = solution_with_prefix.len() - vary;
    let mut found = None;
    for i in 0..max_tries {
        let counter = start.wrapping_add(i);
        tail[at..].copy_from_slice(&counter.to_le_bytes()[..vary]);
        let first = base.clone().chain_update(&tail).finalize();
        let hash: [u8; 32] = Sha256::digest(first).into();
        if equihash::hash_meets_target(&hash, target) {
            found = Some((counter, hash));
            break;
        }
    }
    solution_with_prefix[sol_at..].copy_from_slice(&tail[at..]);
    found
}
