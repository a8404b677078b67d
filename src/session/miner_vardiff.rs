//! What the pool's side changes in a miner's session: its version-rolling mask (BIP 310) and, under vardiff,
//! its own difficulty (first pick, the pool's cap, retargets), each written as the miner's notification.

use super::miner::MinerSession;
use crate::config::VardiffConfig;
use crate::protocol::miner_msg;
use crate::validate::Retarget;
use std::time::Instant;

impl MinerSession {
    /// The pool's version-rolling mask is now `pool_mask`: a miner that negotiated version rolling gets its own
    /// `mining.set_version_mask` (the pool's within the one it asked for); false for one that did not.
    pub fn on_pool_mask(&mut self, pool_mask: u32, out: &mut Vec<u8>) -> bool {
        let (Some(_), Some(asked)) = (self.version.agreed, self.version.requested) else {
            return false;
        };
        let mask = pool_mask & asked;
        self.version.agreed = Some(mask);
        miner_msg::write_set_version_mask(out, mask);
        true
    }

    /// Vardiff: it just became ready; picks its first difficulty (its suggestion, the configured start, or the
    /// pool's; never above the pool's) and writes it. False without vardiff.
    pub fn start_vardiff(
        &mut self,
        cfg: Option<&VardiffConfig>,
        pool: f64,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        let (Some(cfg), Some(vd)) = (cfg, self.vardiff.as_mut()) else {
            return false;
        };
        let start = vd.suggested.or(cfg.start_difficulty).unwrap_or(pool);
        let d = start.clamp(cfg.min_difficulty.min(pool), pool);
        vd.set(d, now);
        miner_msg::write_set_difficulty(out, d);
        true
    }

    /// Vardiff: the pool lowered its difficulty to `pool`: true when this miner's came down to it (the runtime
    /// sends the one line to every such miner).
    pub fn cap_difficulty(&mut self, pool: f64, now: Instant) -> bool {
        match self
            .vardiff
            .as_mut()
            .filter(|v| v.started && v.difficulty > pool)
        {
            Some(vd) => {
                vd.set(pool, now);
                true
            }
            None => false,
        }
    }

    /// Vardiff, once a second: when its window is over and its share rate is off target, its new difficulty
    /// (written to `out`).
    pub fn retarget(
        &mut self,
        cfg: &VardiffConfig,
        pool: f64,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Option<f64> {
        let vd = self.vardiff.as_mut().filter(|v| v.started)?;
        if now.duration_since(vd.since) < crate::duration::secs(cfg.retarget_interval) {
            return None;
        }
        match vd.retarget(cfg.shares_per_minute, cfg.min_difficulty, pool, now) {
            Retarget::Wait => None,
            Retarget::Change(d) => {
                vd.set(d, now);
                miner_msg::write_set_difficulty(out, d);
                Some(d)
            }
            Retarget::Keep => {
                // On target: start a new window.
                vd.shares = 0;
                vd.since = now;
                None
            }
        }
    }
}
