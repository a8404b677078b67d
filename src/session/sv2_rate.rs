//! An upstream's measured hashrate for its SV2 channel, sans IO: accepted difficulty per second, sampled and
//! smoothed, and when an UpdateChannel is due (moved more than ±20 % from the last value sent, at most once per
//! interval). The estimate belongs to the upstream, so a channel opened after a failover or a reconnect starts
//! from it.

use crate::work::HASHES_PER_DIFF1 as HASHES_PER_SHARE;
use std::time::{Duration, Instant};

/// Seconds of accepted difficulty one sample spans at least.
pub(crate) const SAMPLE: Duration = Duration::from_secs(5);
/// How far (relative) the estimate must move from the value last sent before an UpdateChannel goes.
pub(crate) const UPDATE_THRESHOLD: f64 = 0.2;

/// The hashrate meter of one upstream and what its current SV2 channel was told.
#[derive(Debug, Default)]
pub(crate) struct ChannelRate {
    /// Difficulty accepted since `since`.
    credited: f64,
    since: Option<Instant>,
    /// Smoothed difficulty-1 shares per second; 0 until the first sample.
    estimate: f64,
    /// The nominal hashrate the current channel was opened with or last updated to, and when.
    sent: Option<(f32, Instant)>,
}

impl ChannelRate {
    /// A share of `difficulty` was accepted (by the pool, or locally below the pool's target).
    pub fn credit(&mut self, difficulty: f64) {
        if difficulty.is_finite() && difficulty > 0.0 {
            self.credited += difficulty;
        }
    }

    /// Takes a sample when [`SAMPLE`] has passed since the last one and folds it into the estimate.
    pub fn sample(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        let dt = now.saturating_duration_since(since);
        if dt < SAMPLE {
            return;
        }
        let sample = self.credited / dt.as_secs_f64();
        self.estimate = if self.estimate > 0.0 {
            0.6 * self.estimate + 0.4 * sample
        } else {
            sample
        };
        self.credited = 0.0;
        self.since = Some(now);
    }

    /// The estimate in hashes per second (0 without one), as SV2's `nominal_hash_rate`.
    pub fn hashes_per_second(&self) -> f32 {
        (self.estimate * HASHES_PER_SHARE) as f32
    }

    /// A new channel was opened with `nominal` (its value to compare later estimates with).
    pub fn opened(&mut self, nominal: f32, now: Instant) {
        self.sent = Some((nominal, now));
    }

    /// The nominal hashrate to send in an UpdateChannel now, if one is due: an open channel, an estimate that
    /// moved more than [`UPDATE_THRESHOLD`] from the value last sent, and `interval` passed since. Never 0 (a
    /// pool answers that with a target any hash meets). Marks it sent.
    pub fn update_due(&mut self, now: Instant, interval: Duration) -> Option<f32> {
        let (last, at) = self.sent?;
        let rate = self.hashes_per_second();
        if !(rate.is_finite() && rate > 0.0) || now.saturating_duration_since(at) < interval {
            return None;
        }
        let moved = if last > 0.0 {
            (f64::from(rate) / f64::from(last) - 1.0).abs() > UPDATE_THRESHOLD
        } else {
            true
        };
        if !moved {
            return None;
        }
        self.sent = Some((rate, now));
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// `per_sec` difficulty per second for `secs` seconds, one sample call a second.
    fn run(r: &mut ChannelRate, t: &mut Instant, per_sec: f64, secs: u64) -> Vec<f32> {
        let mut sent = Vec::new();
        for _ in 0..secs {
            *t += Duration::from_secs(1);
            r.credit(per_sec);
            r.sample(*t);
            sent.extend(r.update_due(*t, MINUTE));
        }
        sent
    }

    #[test]
    fn the_first_estimate_goes_once_the_interval_passed_and_a_steady_one_never_again() {
        let mut t = Instant::now();
        let mut r = ChannelRate::default();
        r.sample(t);
        r.opened(0.0, t);
        let sent = run(&mut r, &mut t, 2.0, 59);
        assert!(sent.is_empty(), "{sent:?}");
        let sent = run(&mut r, &mut t, 2.0, 1);
        assert_eq!(sent, vec![(2.0 * HASHES_PER_SHARE) as f32]);
        let sent = run(&mut r, &mut t, 2.0, 600);
        assert!(sent.is_empty(), "steady: {sent:?}");
    }

    #[test]
    fn a_move_past_twenty_percent_goes_at_most_once_a_minute_and_a_smaller_one_not_at_all() {
        let mut t = Instant::now();
        let mut r = ChannelRate::default();
        r.sample(t);
        let sent = run(&mut r, &mut t, 1.0, 10);
        assert!(sent.is_empty(), "no channel yet: {sent:?}");
        r.opened(r.hashes_per_second(), t);
        assert!(run(&mut r, &mut t, 1.15, 300).is_empty(), "+15 %");
        let sent = run(&mut r, &mut t, 3.0, 300);
        assert!(!sent.is_empty());
        assert!(sent.len() <= 5, "{sent:?}");
        let last = f64::from(*sent.last().unwrap()) / HASHES_PER_SHARE;
        assert!((last - 3.0).abs() < 0.6, "{last}");
    }

    #[test]
    fn without_an_estimate_or_a_channel_nothing_is_sent_and_zero_never() {
        let mut t = Instant::now();
        let mut r = ChannelRate::default();
        r.sample(t);
        assert!(run(&mut r, &mut t, 5.0, 300).is_empty(), "no channel");
        let mut r = ChannelRate::default();
        r.sample(t);
        r.opened(0.0, t);
        assert!(run(&mut r, &mut t, 0.0, 300).is_empty(), "no estimate");
        r.opened(1e9, t);
        assert!(run(&mut r, &mut t, 0.0, 300).is_empty(), "never 0");
    }
}
