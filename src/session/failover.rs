//! An upstream's failover state as an enum: connecting, backing off until a time, active (with its failback
//! check due), or probing a second connection; and the back-off, failover and failback arithmetic.

use crate::config::PoolUrl;
use std::time::{Duration, Instant};

/// Where an upstream is in getting and keeping a pool connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// An attempt (lookup, connect, handshake) on the current pool is on its way.
    Connecting,
    /// The last attempt failed: the next one starts at `until`.
    BackingOff { until: Instant },
    /// The active connection serves; on a lower pool with failback on, pool 1 is checked again at `failback_at`.
    Active { failback_at: Option<Instant> },
    /// A second connection (a failback check or a `client.reconnect`) is on its way while the active one serves.
    Probing,
}

/// The settings failover follows (from the proxy's config and timing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Pools in the list.
    pub pools: usize,
    /// Failed attempts on one pool before moving down the list.
    pub failover_after: u32,
    /// Back to pool 1 when it answers again, checked this often (`None`: failback off).
    pub failback: Option<Duration>,
    /// The failback check interval (also after a failed probe).
    pub failback_interval: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// What is due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    Nothing,
    /// Connect again (as the active connection) to the current pool.
    Retry,
    /// Open a probe to `client.reconnect`'s target.
    Reconnect(PoolUrl),
    /// Open a probe to pool 1.
    Failback,
}

/// An upstream's failover state.
#[derive(Debug)]
pub(crate) struct Failover {
    pub phase: Phase,
    /// Failed attempts since the last ready connection (for back-off).
    pub attempts: u32,
    /// Failed attempts on the current pool (for failover).
    pub failures_here: u32,
    /// The current pool cannot be used (its answer would not change): fail over at once.
    pub skip_pool: bool,
    /// A `client.reconnect` (or a reload) to follow at the given time.
    pub reconnect: Option<(Instant, PoolUrl)>,
    /// The failure just coming is the pool's answer to an option the next attempt changes (an SV2 pool that
    /// refused to require version rolling): no failure counted, no back-off, the same pool again at once.
    pub retry_now: bool,
    /// The probe under way follows the pool's redirect to this URL (None: no probe, or a failback's).
    pub following: Option<PoolUrl>,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            phase: Phase::Connecting,
            attempts: 0,
            failures_here: 0,
            skip_pool: false,
            reconnect: None,
            retry_now: false,
            following: None,
        }
    }
}

/// The back-off before attempt `attempts + 1`: doubling from `initial`, at most `max`.
pub(crate) fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    (initial * factor).min(max)
}

impl Failover {
    /// The active connection (on pool `pool_idx`) completed its handshake.
    pub fn ready(&mut self, now: Instant, pool_idx: usize, policy: &Policy) {
        self.following = None;
        self.attempts = 0;
        self.failures_here = 0;
        let failback_at = match policy.failback {
            Some(every) if pool_idx > 0 => Some(now + every),
            _ => None,
        };
        self.phase = Phase::Active { failback_at };
    }

    /// A probe failed (or its attempt did): the active connection keeps serving, pool 1 is checked again later.
    /// A failure answering an option the next attempt changes ([`Failover::retry_now`]) tries again at once: a
    /// failback's probe as such, a redirect's by following the redirect again (unless another came meanwhile).
    pub fn probe_failed(&mut self, now: Instant, policy: &Policy) {
        let again = std::mem::take(&mut self.retry_now);
        let redirect = self.following.take();
        let wait = if again && redirect.is_none() {
            Duration::ZERO
        } else {
            policy.failback_interval
        };
        self.phase = Phase::Active {
            failback_at: Some(now + wait),
        };
        if let (true, Some(url), None) = (again, redirect, &self.reconnect) {
            self.reconnect = Some((now, url));
        }
    }

    /// The active connection (or its attempt) failed on pool `*pool_idx`: counts the failure, moves `pool_idx`
    /// down the list after `failover_after` failures (or at once when the pool was unusable) and backs off,
    /// unless `successor` (a probe or a lookup under way) takes over. True when it moved down the list.
    pub fn active_failed(
        &mut self,
        now: Instant,
        policy: &Policy,
        pool_idx: &mut usize,
        successor: bool,
    ) -> bool {
        if std::mem::take(&mut self.retry_now) {
            self.phase = if successor {
                Phase::Connecting
            } else {
                Phase::BackingOff { until: now }
            };
            return false;
        }
        self.attempts += 1;
        self.failures_here += 1;
        let skip = std::mem::take(&mut self.skip_pool);
        let moved = (skip || self.failures_here >= policy.failover_after) && policy.pools > 1;
        if moved {
            *pool_idx = (*pool_idx + 1) % policy.pools;
            self.failures_here = 0;
        }
        self.phase = if successor {
            Phase::Connecting
        } else {
            Phase::BackingOff {
                until: now + backoff(policy.retry_initial, policy.retry_max, self.attempts),
            }
        };
        moved
    }

    /// The pool asked to reconnect (to `url`) after `wait`.
    pub fn reconnect_requested(&mut self, now: Instant, wait: Duration, url: PoolUrl) {
        self.reconnect = Some((now + wait, url));
    }

    /// A reload kept the active pool, now at `pool_idx` of the list: failback rules apply from there at once.
    pub fn reload_kept(&mut self, now: Instant, pool_idx: usize) {
        self.failures_here = 0;
        if let Phase::Active { failback_at } = &mut self.phase {
            if pool_idx > 0 {
                *failback_at = Some(now);
            }
        }
    }

    /// A reload removed the active pool: move to `first` as soon as it answers.
    pub fn reload_moved(&mut self, now: Instant, first: PoolUrl) {
        self.failures_here = 0;
        self.reconnect = Some((now, first));
    }

    /// What to start now, given the upstream's connections: an active one (`ready` or not), a probe, a lookup
    /// under way. Taking a due step moves the phase on (`Retry` to connecting, the others to probing).
    pub fn due(&mut self, now: Instant, conns: Conns, pool_idx: usize, policy: &Policy) -> Due {
        if conns.lookup {
            return Due::Nothing;
        }
        if !conns.active {
            if matches!(self.phase, Phase::BackingOff { until } if until <= now) {
                self.phase = Phase::Connecting;
                return Due::Retry;
            }
            return Due::Nothing;
        }
        if !conns.ready || conns.probe {
            return Due::Nothing;
        }
        if self.reconnect.as_ref().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, url)) = self.reconnect.take() {
                self.phase = Phase::Probing;
                self.following = Some(url.clone());
                return Due::Reconnect(url);
            }
        }
        let failback_due =
            matches!(self.phase, Phase::Active { failback_at: Some(at) } if at <= now);
        if pool_idx > 0 && policy.failback.is_some() && failback_due {
            self.phase = Phase::Probing;
            self.following = None;
            return Due::Failback;
        }
        Due::Nothing
    }
}

/// The upstream's connections, as [`Failover::due`] needs them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Conns {
    pub active: bool,
    pub ready: bool,
    pub probe: bool,
    pub lookup: bool,
}
