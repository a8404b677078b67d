//! Per-miner difficulty (vardiff) in the runtime: each miner gets its own `mining.set_difficulty`, never above
//! the pool's, retargeted on a window to aim at a share rate. Shares are validated locally against the miner's
//! target (see `validate`); only those meeting the pool's target go upstream. The decisions and the bytes are
//! the miner session's (`session::miner`); this file walks the miners and queues what they write.

use crate::close::Close;
use crate::protocol::miner_msg;
use crate::reactor::Reactor;
use crate::state::{with_outbox, Conn};
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Reactor {
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
                if m.session.cap_difficulty(pool, now) {
                    lowered.push(t);
                }
            }
        }
        let mut line = Vec::with_capacity(80);
        miner_msg::write_set_difficulty(&mut line, pool);
        for t in lowered {
            self.queue(t, &line);
        }
    }

    /// Once a second: miners whose window is over get a new difficulty when their share rate is off target.
    /// The new difficulty is followed by the current job again, so the miner switches at once.
    pub(crate) fn retarget_miners(&mut self, now: Instant) {
        let mut changed = Vec::new();
        let Reactor {
            conns,
            upstreams,
            proxies,
            ..
        } = self;
        for (t, c) in conns.iter_mut() {
            let Conn::Miner(m) = c else { continue };
            let proxy = &proxies[m.proxy];
            let Some(cfg) = proxy.cfg.vardiff.as_ref() else {
                continue;
            };
            let Some(up) = m.upstream.and_then(|u| upstreams.get(u)) else {
                continue;
            };
            let (d, grew) = with_outbox(m, |s, out| {
                let d = s.retarget(cfg, up.pool_difficulty, now, out);
                if d.is_some() {
                    out.extend_from_slice(&up.notify_line);
                }
                d
            });
            if let Some(d) = d {
                proxy.validation.retargets.fetch_add(1, Ordering::Relaxed);
                log::debug!("miner slot {t}: vardiff difficulty {d}");
            }
            match grew {
                None => changed.push((t, false)),
                Some(true) => changed.push((t, true)),
                Some(false) => {}
            }
        }
        for (t, ok) in changed {
            if ok {
                self.mark_dirty(t);
            } else {
                self.close_conn(t, Close::OutputFull);
            }
        }
    }
}
