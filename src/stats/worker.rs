//! The counters of one worker name ([`WorkerStats`]): connected miners, verdicts, and the accepted difficulty
//! in a ring of one-minute buckets that gives the estimated hashrate over the last ten minutes.

use std::sync::atomic::{AtomicU64, Ordering, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::atomic::{sat_dec, AtomicF64};
use super::clock::{millis, unix_of};

/// Length of one hashrate bucket.
pub const HASHRATE_BUCKET: Duration = Duration::from_secs(60);
/// Number of buckets: the hashrate window is `HASHRATE_BUCKETS × HASHRATE_BUCKET` (10 minutes).
pub const HASHRATE_BUCKETS: usize = 10;
const BUCKET_MS: u64 = HASHRATE_BUCKET.as_millis() as u64;

/// The name of the registry's overflow bucket (`WorkerRegistry::OTHER`).
pub(super) const OTHER: &str = "__other__";

/// Accepted difficulty of one minute.
#[derive(Debug, Default)]
struct Bucket {
    /// The minute (since the epoch) whose shares it holds.
    minute: AtomicU64,
    difficulty: AtomicF64,
}

/// Counters of one worker name (or of the `other` bucket that takes names beyond the registry's cap).
#[derive(Debug)]
pub struct WorkerStats {
    name: Box<str>,
    /// Miners connected under this name now.
    pub connected: AtomicU64,
    /// Shares accepted by the pool.
    pub accepted: AtomicU64,
    /// Shares rejected by the pool or answered with an error by the proxy.
    pub rejected: AtomicU64,
    /// Sum of the difficulty of accepted shares.
    pub accepted_difficulty: AtomicF64,
    last_share: AtomicU64,
    first_seen: AtomicU64,
    window: [Bucket; HASHRATE_BUCKETS],
}

impl WorkerStats {
    pub(super) fn new(name: &str, now: Instant) -> WorkerStats {
        WorkerStats {
            name: name.into(),
            connected: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            accepted_difficulty: AtomicF64::new(0.0),
            last_share: AtomicU64::new(0),
            first_seen: AtomicU64::new(millis(now)),
            window: Default::default(),
        }
    }

    /// The worker name (`WorkerRegistry::OTHER` for the overflow bucket).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for the bucket that counts the names beyond the registry's cap.
    pub fn is_other(&self) -> bool {
        &*self.name == OTHER
    }

    /// The pool accepted a share of difficulty `difficulty` at `now`.
    pub fn on_accepted(&self, difficulty: f64, now: Instant) {
        self.accepted.fetch_add(1, Relaxed);
        self.accepted_difficulty.add(difficulty);
        let ms = millis(now);
        self.last_share.fetch_max(ms, Relaxed);
        let minute = ms / BUCKET_MS;
        let b = &self.window[(minute % HASHRATE_BUCKETS as u64) as usize];
        let seen = b.minute.load(Ordering::Acquire);
        if seen < minute {
            // Rotate: whoever moves the bucket to this minute removes the old minute's sum. Nothing can have
            // been added for this minute before that move, so only the old content is taken away.
            let old = b.difficulty.get();
            if b.minute
                .compare_exchange(seen, minute, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                b.difficulty.add(-old);
            }
        }
        if b.minute.load(Ordering::Acquire) == minute {
            b.difficulty.add(difficulty);
        }
    }

    /// A share of this worker was rejected or answered with an error at `now`.
    pub fn on_rejected(&self, now: Instant) {
        self.rejected.fetch_add(1, Relaxed);
        self.last_share.fetch_max(millis(now), Relaxed);
    }

    /// A miner using this name left (pairs with `WorkerRegistry::attach`).
    pub fn detach(&self) {
        sat_dec(&self.connected);
    }

    /// Estimated hashrate (H/s) at `now`: accepted difficulty × 2^32 over the last 10 minutes (or since the
    /// name was first seen, at least one minute, when that is shorter), divided by that time.
    pub fn hashrate(&self, now: Instant) -> f64 {
        let ms = millis(now);
        let minute = ms / BUCKET_MS;
        let oldest = minute.saturating_sub(HASHRATE_BUCKETS as u64 - 1);
        let sum: f64 = self
            .window
            .iter()
            .filter(|b| (oldest..=minute).contains(&b.minute.load(Relaxed)))
            .map(|b| b.difficulty.get().max(0.0))
            .sum();
        if sum <= 0.0 {
            return 0.0;
        }
        let full = (HASHRATE_BUCKETS as u64 - 1) * BUCKET_MS + ms % BUCKET_MS;
        let age = ms.saturating_sub(self.first_seen.load(Relaxed));
        let span = full.min(age.max(BUCKET_MS)).max(1);
        sum * crate::work::HASHES_PER_DIFF1 / (span as f64 / 1000.0)
    }

    /// Unix time of the last share answered, if any.
    pub fn last_share_unix(&self) -> Option<f64> {
        match self.last_share.load(Relaxed) {
            0 => None,
            ms => Some(unix_of(ms)),
        }
    }

    /// The later of the last share and the first sighting (registry eviction).
    pub(super) fn last_activity(&self) -> u64 {
        self.last_share
            .load(Relaxed)
            .max(self.first_seen.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::WorkerRegistry;

    #[test]
    fn hashrate_window_rotates() {
        let reg = WorkerRegistry::new(10);
        let t0 = Instant::now();
        let w = reg.attach("rig", t0);
        assert_eq!(w.hashrate(t0), 0.0);
        // 60 shares of difficulty 1 over ten minutes: 2^32 × 60 / 600 s.
        for i in 0..60 {
            w.on_accepted(1.0, t0 + Duration::from_secs(i * 10));
        }
        let at = t0 + Duration::from_secs(600);
        let expect = 4_294_967_296.0 * 60.0 / 600.0;
        let got = w.hashrate(at);
        assert!((got / expect - 1.0).abs() < 0.15, "{got} vs {expect}");
        // Twenty minutes later with no shares: nothing left in the window.
        assert_eq!(w.hashrate(t0 + Duration::from_secs(1800)), 0.0);
        // New shares reuse (and reset) old buckets.
        let t1 = t0 + Duration::from_secs(1800);
        w.on_accepted(2.0, t1);
        let h = w.hashrate(t1);
        let expect = 2.0 * 4_294_967_296.0 / ((HASHRATE_BUCKETS as f64 - 1.0) * 60.0);
        assert!(h > 0.0 && h <= expect * 1.2, "{h} vs {expect}");
        assert_eq!(w.accepted.load(Relaxed), 61);
        assert!((w.accepted_difficulty.get() - 62.0).abs() < 1e-9);
    }
}
