//! The stats' millisecond clock: an `Instant` becomes milliseconds since a process-wide origin (0 meaning
//! "never"), stored in an `AtomicU64`, and back to Unix time for display.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The process's time origin: `Instant`s become milliseconds since it (and wall-clock time for display).
fn epoch() -> &'static (Instant, SystemTime) {
    static EPOCH: OnceLock<(Instant, SystemTime)> = OnceLock::new();
    EPOCH.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// `now` as milliseconds since the stats epoch, plus one (0 means "never").
pub(super) fn millis(now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch().0).as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// Unix time (seconds) of a `millis` value.
pub(super) fn unix_of(ms: u64) -> f64 {
    let (_, wall) = epoch();
    let base = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    base + ms.saturating_sub(1) as f64 / 1000.0
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    unix_of(millis(Instant::now()))
}
