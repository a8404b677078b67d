//! The reply-latency histogram of a pool: fixed millisecond buckets of relaxed atomics, with the sum and a
//! quantile estimate interpolated the way Prometheus' `histogram_quantile` does.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (ms) of the reply-latency histogram buckets; a last bucket takes the rest (+Inf).
pub const LATENCY_BOUNDS_MS: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
];

/// A histogram with fixed buckets of atomics.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per bucket (not cumulative): `LATENCY_BOUNDS_MS` then +Inf.
    buckets: [AtomicU64; 12],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    pub(super) const fn new() -> LatencyHistogram {
        LatencyHistogram {
            buckets: [const { AtomicU64::new(0) }; 12],
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = LATENCY_BOUNDS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Counts per bucket (not cumulative), the last one for +Inf.
    pub fn counts(&self) -> [u64; 12] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    /// Sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_us.load(Relaxed) as f64 / 1e6
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// An estimate of quantile `q` (0..=1) in ms, interpolated inside its bucket the way Prometheus'
    /// `histogram_quantile` does; `None` without observations. The +Inf bucket answers its lower bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        for (i, &c) in counts.iter().enumerate() {
            if c > 0 && (seen + c) as f64 >= rank {
                let lo = if i == 0 {
                    0.0
                } else {
                    LATENCY_BOUNDS_MS[i - 1]
                };
                let Some(&hi) = LATENCY_BOUNDS_MS.get(i) else {
                    return Some(lo);
                };
                return Some(lo + (hi - lo) * ((rank - seen as f64) / c as f64).clamp(0.0, 1.0));
            }
            seen += c;
        }
        LATENCY_BOUNDS_MS.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile_ms(0.5), None);
        for ms in [0.2, 0.5, 3.0, 7.0, 2000.0] {
            h.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let c = h.counts();
        assert_eq!((c[0], c[3], c[4], c[11]), (2, 1, 1, 1));
        assert_eq!(h.count(), 5);
        assert!((h.sum_seconds() - 2.0107).abs() < 1e-4);
        let p50 = h.quantile_ms(0.5).unwrap();
        assert!((2.0..=5.0).contains(&p50), "{p50}");
        assert_eq!(h.quantile_ms(1.0), Some(1000.0));
    }
}
