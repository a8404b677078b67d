//! The hashrate history the status page draws: the total estimated hashrate, sampled at a fixed interval,
//! in a ring of bounded length (by default every 10 s for an hour: 360 samples).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples of (unix seconds, H/s), oldest first.
#[derive(Debug)]
pub struct History {
    interval: Duration,
    len: usize,
    samples: VecDeque<(f64, f64)>,
    next: Option<Instant>,
}

impl History {
    /// A history sampled every `interval`, keeping `len` samples.
    pub fn new(interval: Duration, len: usize) -> History {
        History {
            interval,
            len: len.max(1),
            samples: VecDeque::with_capacity(len.clamp(1, 100_000)),
            next: None,
        }
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes a sample with `sample()` when one is due at `now`; the first call samples at once.
    pub fn tick(&mut self, now: Instant, unix_now: f64, sample: impl FnOnce() -> f64) {
        if self.next.is_some_and(|n| now < n) {
            return;
        }
        self.next = Some(now + self.interval);
        if self.samples.len() == self.len {
            self.samples.pop_front();
        }
        self.samples.push_back((unix_now, sample()));
    }

    /// Time until the next sample is due.
    pub fn due_in(&self, now: Instant) -> Duration {
        self.next
            .map_or(Duration::ZERO, |n| n.saturating_duration_since(now))
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.samples.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_spaced() {
        let mut h = History::new(Duration::from_secs(10), 3);
        let t = Instant::now();
        for i in 0..50u64 {
            h.tick(t + Duration::from_secs(i), i as f64, || i as f64);
        }
        let s: Vec<_> = h.samples().collect();
        assert_eq!(s, vec![(20.0, 20.0), (30.0, 30.0), (40.0, 40.0)]);
        assert_eq!(
            h.due_in(t + Duration::from_secs(45)),
            Duration::from_secs(5)
        );
    }
}
