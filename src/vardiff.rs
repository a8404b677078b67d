//! Per-miner difficulty (vardiff) in the reactor: each miner gets its own `mining.set_difficulty`, never above
//! the pool's, retargeted on a window to aim at a share rate. Shares are validated locally against the miner's
//! target (see `validate`); only those meeting the pool's target go upstream.

use crate::reactor::{Conn, Reactor};
use crate::validate::Retarget;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Appends `mining.set_difficulty [d]`.
fn difficulty_line(d: f64) -> Vec<u8> {
    let mut params = Vec::with_capacity(32);
    params.push(b'[');
    crate::downstream::scalar_json(&crate::protocol::json::Scalar::Float(d), "", &mut params);
    params.push(b']');
    let mut line = Vec::with_capacity(80);
    crate::protocol::json::write_notification(&mut line, "mining.set_difficulty", &params);
    line
}

impl Reactor {
    /// For a miner that just became ready under vardiff: picks its first difficulty (its suggestion, the
    /// configured start, or the pool's; never above the pool's) and returns the line announcing it.
    pub(crate) fn start_vardiff(&mut self, t: usize) -> Option<Vec<u8>> {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return None;
        };
        let cfg = self.proxies[m.proxy].cfg.vardiff.as_ref()?;
        let pool = m
            .upstream
            .and_then(|u| self.upstreams.get(u))
            .map_or(1.0, |up| up.pool_difficulty);
        let vd = m.vardiff.as_mut()?;
        let start = vd.suggested.or(cfg.start_difficulty).unwrap_or(pool);
        let d = start.clamp(cfg.min_difficulty.min(pool), pool);
        vd.set(d, Instant::now());
        Some(difficulty_line(d))
    }

    /// The pool lowered its difficulty: miners above it come down to it.
    pub(crate) fn cap_miner_difficulties(&mut self, u: usize) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let pool = up.pool_difficulty;
        let now = Instant::now();
        let mut lowered = Vec::new();
        for &t in &up.miners {
            if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                if let Some(vd) = m
                    .vardiff
                    .as_mut()
                    .filter(|v| v.started && v.difficulty > pool)
                {
                    vd.set(pool, now);
                    lowered.push(t);
                }
            }
        }
        let line = difficulty_line(pool);
        for t in lowered {
            self.queue(t, &line);
        }
    }

    /// Once a second: miners whose window is over get a new difficulty when their share rate is off target.
    /// The new difficulty is followed by the current job again, so the miner switches at once.
    pub(crate) fn retarget_miners(&mut self, now: Instant) {
        let mut changes = Vec::new();
        for (t, c) in self.conns.iter_mut() {
            let Conn::Miner(m) = c else { continue };
            let Some(cfg) = self.proxies[m.proxy].cfg.vardiff.as_ref() else {
                continue;
            };
            let Some(vd) = m.vardiff.as_mut().filter(|v| v.started) else {
                continue;
            };
            if now.duration_since(vd.since)
                < crate::config::ProxyConfig::secs(cfg.retarget_interval)
            {
                continue;
            }
            let Some(up) = m.upstream.and_then(|u| self.upstreams.get(u)) else {
                continue;
            };
            match vd.retarget(
                cfg.shares_per_minute,
                cfg.min_difficulty,
                up.pool_difficulty,
                now,
            ) {
                Retarget::Wait => {}
                Retarget::Change(d) => {
                    vd.set(d, now);
                    changes.push((t, d, m.upstream));
                    self.proxies[m.proxy]
                        .validation
                        .retargets
                        .fetch_add(1, Ordering::Relaxed);
                }
                Retarget::Keep => {
                    // On target: start a new window.
                    vd.shares = 0;
                    vd.since = now;
                }
            }
        }
        for (t, d, u) in changes {
            let mut out = difficulty_line(d);
            if let Some(up) = u.and_then(|u| self.upstreams.get(u)) {
                out.extend_from_slice(&up.notify_line);
            }
            log::debug!("miner slot {t}: vardiff difficulty {d}");
            self.queue(t, &out);
        }
    }
}
