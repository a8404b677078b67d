//! One monotonic clock for the whole run: nanoseconds since the run started, as plain u64, so the pool's and
//! the miners' timestamps (same thread) compare directly.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Nanoseconds since the start.
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }

    /// `secs` from the start, in the clock's nanoseconds.
    pub fn at(&self, secs: f64) -> u64 {
        Duration::from_secs_f64(secs.max(0.0)).as_nanos() as u64
    }
}

/// Nanoseconds as milliseconds.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Nanoseconds as microseconds.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}
