//! The lock-free cells the counters are made of besides plain `AtomicU64`s: an `f64` stored in an
//! `AtomicU64` ([`AtomicF64`]) and a gauge decrement that stops at zero.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An `f64` in an `AtomicU64` (its bits).
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    /// A cell holding `v`.
    pub const fn new(v: f64) -> AtomicF64 {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }

    /// The value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed);
    }

    /// Adds `v` (a compare-exchange loop: lock-free).
    pub fn add(&self, v: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + v).to_bits())
        });
    }
}

/// Subtracts one from a gauge, never below zero.
pub(super) fn sat_dec(c: &AtomicU64) {
    let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
}
