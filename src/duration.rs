//! Duration settings: a number of seconds from the config file as a `Duration`.
//!
//! [`crate::config::ProxyConfig::secs`] and the authenticator's ban time both use it; it sits below both so
//! that auth does not import the config that holds its settings.

use std::time::Duration;

/// A duration setting in seconds as a `Duration` (negative or NaN: zero; capped at 10^7 s).
#[inline]
pub(crate) fn secs(v: f64) -> Duration {
    if v.is_finite() {
        Duration::from_secs_f64(v.clamp(0.0, 1e7))
    } else {
        Duration::ZERO
    }
}
