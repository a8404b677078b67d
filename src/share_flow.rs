//! A miner's share in the runtime, from the session's checked [`Share`] to the pool: local validation (V1
//! shares parked and hashed many at a time at the end of the round), the verdict, and forwarding.

use crate::close::Refusal;
use crate::config::ShareReply;
use crate::protocol::json::IdBuf;
use crate::protocol::miner_msg;
use crate::protocol::Share;
use crate::reactor::Reactor;
use crate::share_batch::{Parked, ShareBatch};
use crate::share_hash::{self, ShareInput};
use crate::state::{Conn, VARDIFF_GRACE};
use crate::stats::ProxyStats;
use crate::sv2_driver::Sv2Refusal;
use crate::validate::{self, Verdict};
use std::ops::ControlFlow;
use std::time::Instant;

impl Reactor {
    /// A share of miner `t`'s, checked for form by its session (`prefix`: its nonce prefix): judged locally
    /// when the proxy validates (V1 shares are parked for batched hashing), then answered or forwarded.
    pub(crate) fn judge_share(
        &mut self,
        t: usize,
        id: &IdBuf,
        share: Share<'_>,
        prefix: u64,
        now: Instant,
    ) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return ControlFlow::Break(());
        };
        let Some(u) = m.upstream else {
            return self.refuse_share(t, id, Refusal::NotSubscribed);
        };
        // With several routes the job id's tag names the upstream (the miner's, or the one it just left).
        let (u, prefix, share) = if self.proxies[m.proxy].routed() {
            match self.route_share(t, u, prefix, share) {
                Ok(routed) => routed,
                Err(refusal) => return self.refuse_share(t, id, refusal),
            }
        } else {
            (u, prefix, share)
        };
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return ControlFlow::Break(());
        };
        let proxy = &self.proxies[m.proxy];
        if !proxy.cfg.validates() {
            return self.share_judged(t, id, &share, u, prefix, None, now);
        }
        let Some(up) = self.upstreams.get(u) else {
            return self.refuse_share(t, id, Refusal::PoolUnavailable);
        };
        let gen = m.gen;
        let vd_target = m
            .session
            .vardiff
            .as_ref()
            .map(|v| v.target(now, VARDIFF_GRACE));
        let mask = m.session.version.agreed.unwrap_or(0);
        let (max_roll, params) = (proxy.cfg.max_ntime_roll, proxy.cfg.equihash_params());
        // The miner's extranonce1 (pool E1 || prefix), on the stack.
        let mut e1p_buf = [0u8; validate::MAX_EXTRANONCE1];
        let e1p_len = up.e1.len() + up.prefixes.prefix_len();
        let Some(e1p) = e1p_buf.get_mut(..e1p_len) else {
            return self.refuse_share(t, id, Refusal::Extranonce1TooLong);
        };
        let (pool_part, prefix_part) = e1p.split_at_mut(up.e1.len());
        pool_part.copy_from_slice(&up.e1);
        for (d, b) in prefix_part.iter_mut().zip(up.prefixes.bytes(prefix)) {
            *d = b;
        }
        let e1p = &e1p_buf[..e1p_len];
        let Some(up) = self.upstreams.get_mut(u) else {
            return self.refuse_share(t, id, Refusal::PoolUnavailable);
        };
        let verdict = match up.book.find(share.job_id()) {
            None => Verdict::Stale,
            Some(entry) => {
                let miner_target = vd_target.unwrap_or(entry.pool_target);
                match &share {
                    Share::Stratum(s) => {
                        match validate::prepare_stratum(entry, e1p, s, mask, max_roll) {
                            Err(v) => v,
                            Ok(check) => {
                                // Hashed at the end of this round, beside another share if one comes.
                                let parked = Parked {
                                    miner: t,
                                    gen,
                                    id: id.clone(),
                                    upstream: u,
                                    prefix,
                                    check,
                                    miner_target,
                                    now,
                                };
                                self.share_batch.park(parked, s);
                                return ControlFlow::Continue(());
                            }
                        }
                    }
                    Share::Equihash(s) => validate::check_equihash(entry, e1p, s, &params),
                }
            }
        };
        self.share_judged(t, id, &share, u, prefix, Some(verdict), now)
    }

    /// Answers a share with an error and counts it under the refusal's label.
    fn refuse_share(&mut self, t: usize, id: &IdBuf, refusal: Refusal<'_>) -> ControlFlow<()> {
        self.count_refusal(t, refusal.reject());
        let code = refusal.code();
        let queued = refusal.with_text(|why| {
            self.queue_with(t, |out| miner_msg::write_refusal(out, id, code, why))
        });
        if queued {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    /// Answers a share `true` (valid below the pool's target, or `share_reply: immediate`).
    fn accept_share(&mut self, t: usize, id: &IdBuf) -> ControlFlow<()> {
        if self.queue_with(t, |out| miner_msg::write_true(out, id)) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    /// What happens to a share once it is judged (`verdict`: the local validation's, None without it):
    /// refused, answered here (valid but below the pool's target), or forwarded to the pool.
    #[allow(clippy::too_many_arguments)]
    fn share_judged(
        &mut self,
        t: usize,
        id: &IdBuf,
        share: &Share<'_>,
        u: usize,
        prefix: u64,
        verdict: Option<Verdict>,
        now: Instant,
    ) -> ControlFlow<()> {
        // Before any local acceptance too: a share that rolls the version of an SV2 job fixing it is work the
        // pool would refuse, whatever the miner's mask is now (a later job may have widened it again).
        let conn = self.upstreams.get(u).and_then(|up| up.ready_conn());
        if let (Share::Stratum(s), Some(conn)) = (share, conn) {
            if let Some(refusal) = self.sv2_share_refusal(conn, s) {
                if let (Some(_), Some(Conn::Miner(m))) = (&verdict, self.conns.get(t)) {
                    // The local validation's count of stale shares includes these (their job was an earlier
                    // connection's).
                    if refusal == Sv2Refusal::UnknownJob {
                        self.proxies[m.proxy].validation.count(&Verdict::Stale);
                    }
                }
                return self.refuse_share(t, id, refusal.refusal());
            }
        }
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let proxy_idx = m.proxy;
        let gen = m.gen;
        if let Some(verdict) = verdict {
            self.proxies[proxy_idx].validation.count(&verdict);
            if let Some(refusal) = Refusal::of_verdict(&verdict) {
                return self.refuse_share(t, id, refusal);
            }
            let credited = match m.session.vardiff.as_mut() {
                Some(vd) => {
                    vd.shares += 1;
                    vd.difficulty
                }
                None => self.upstreams.get(u).map_or(0.0, |up| up.pool_difficulty),
            };
            if verdict == Verdict::BelowPool {
                // A valid share at the miner's difficulty: the pool would not take it. A forwarded share
                // counts for its worker when the pool's verdict comes (`pool_reply`), or as rejected if none does.
                if let Some(w) = &m.worker_stats {
                    w.on_accepted(credited, now);
                }
                if let Some(up) = self.upstreams.get_mut(u) {
                    up.rate.credit(credited);
                }
                return self.accept_share(t, id);
            }
        }
        let (pending, max_pending) = (
            m.session.pending_shares,
            self.proxies[proxy_idx].cfg.max_pending_shares,
        );
        let Some(up) = self.upstreams.get(u) else {
            return self.refuse_share(t, id, Refusal::PoolUnavailable);
        };
        if pending >= max_pending {
            return self.refuse_share(t, id, Refusal::TooManyPending);
        }
        let Some(conn) = up.ready_conn() else {
            return self.refuse_share(t, id, Refusal::NotForwarded);
        };
        let immediate = self.proxies[proxy_idx].cfg.share_reply == ShareReply::Immediate;
        if self.forward_share(u, conn, t, gen, id, share, prefix, immediate) {
            if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                m.session.share_forwarded();
            }
            ProxyStats::inc(&self.proxies[proxy_idx].stats.shares_forwarded);
            if immediate {
                // The pool's verdict is counted and logged when it comes; the miner moves on now.
                return self.accept_share(t, id);
            }
            ControlFlow::Continue(())
        } else {
            self.refuse_share(t, id, Refusal::NotForwarded)
        }
    }
    /// Hashes the V1 shares parked this round (thirty-two, sixteen or two at a time,
    /// [`share_hash::hash_many`]) and judges each in the order they came (see [`crate::share_batch`]).
    pub(crate) fn judge_waiting_shares(&mut self) {
        if self.share_batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.share_batch);
        let (mut hashes, mut scratch) = std::mem::take(&mut self.share_hashing);
        {
            let this = &*self;
            share_hash::hash_many(
                batch.len(),
                |k| this.parked_input(&batch, k),
                &mut hashes,
                &mut scratch,
            );
        }
        for (i, hash) in hashes.iter().enumerate() {
            let p = batch.get(i);
            let alive = matches!(self.conns.get(p.miner), Some(Conn::Miner(m)) if m.gen == p.gen);
            if !alive {
                // Cannot happen: a closing miner's parked shares are judged before it goes.
                log::warn!("share of a miner that left before it was judged: not forwarded");
                continue;
            }
            let verdict = match (hash, self.upstreams.get_mut(p.upstream)) {
                (Some(h), Some(up)) => match up.book.find(batch.submit(i).job_id) {
                    Some(entry) => validate::judge(entry, *h, &p.miner_target),
                    None => Verdict::Stale,
                },
                _ => Verdict::Stale,
            };
            let share = Share::Stratum(batch.submit(i));
            let _ = self.share_judged(
                p.miner,
                &p.id,
                &share,
                p.upstream,
                p.prefix,
                Some(verdict),
                p.now,
            );
        }
        batch.clear();
        self.share_batch = batch;
        self.share_hashing = (hashes, scratch);
    }

    /// What parked share `k`'s hash is computed from (None: its job is gone).
    fn parked_input<'a>(&'a self, batch: &'a ShareBatch, k: usize) -> Option<ShareInput<'a>> {
        let p = batch.get(k);
        let entry = self
            .upstreams
            .get(p.upstream)?
            .book
            .get(batch.submit(k).job_id)?;
        entry.share_input(&p.check)
    }
}
