//! Miners and their upstream: attaching a miner to an upstream with room (opening one when all are full),
//! detaching it, serving miners that waited for a pool, and what reaches every miner of an upstream (a new
//! pool's work, extranonce and version mask; failed requests answered).

use crate::close::Close;
use crate::nonce::PrefixAllocator;
use crate::pending::Entry;
use crate::protocol::pool_msg;
use crate::reactor::Reactor;
use crate::state::{Conn, Miner, Req};
use crate::stats::{ProxyStats, Reject};
use std::time::Instant;

impl Reactor {
    /// The active connection `t` of `u` completed its handshake: apply what it brought and serve miners.
    pub(crate) fn upstream_ready(&mut self, u: usize, t: usize) {
        let Some(Conn::Pool(pc)) = self.conns.get(t) else {
            return;
        };
        let ss = &pc.session;
        let Some(g) = ss.granted() else {
            return;
        };
        let (e1, n, mask) = (g.e1.clone(), g.n, g.mask);
        let pool_idx = ss.pool_idx;
        let (diff, notify) = (ss.difficulty_line.clone(), ss.notify_line.clone());
        let notify = self.job_line_for(u, notify);
        self.note_pool_up(u, pool_idx, true);
        let (pool_target, pool_difficulty, last_job) =
            (ss.pool_target, ss.pool_difficulty, ss.last_job.clone());
        let name = self.name(u);
        let policy = self.policy(u);
        let local = self.local_pool(u, pool_idx);
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let proxy = &self.proxies[up.proxy];
        up.failover.ready(Instant::now(), local, &policy);
        proxy
            .stats
            .upstream_moved(Some(up.pool_idx), Some(pool_idx));
        up.pool_idx = pool_idx;
        let first = !up.ever_ready;
        up.ever_ready = true;
        up.ready = true;
        let mask_changed = !first && up.pool_mask != mask;
        up.pool_mask = mask;
        up.difficulty_line = diff;
        up.notify_line = notify;
        up.pool_difficulty = pool_difficulty;
        up.book.clear();
        if let Some(job) = last_job {
            up.book.add(job, pool_target);
        }
        if first {
            let p = proxy.dialect.prefix_len(n, proxy.cfg.min_extranonce2_size);
            up.e1 = e1;
            up.n = n;
            up.prefixes = PrefixAllocator::new(p);
            if n - p < proxy.cfg.min_extranonce2_size {
                log::warn!(
                    "[{name}] the pool's extranonce2_size {n} leaves miners {} bytes (< min_extranonce2_size {}): one miner per pool connection",
                    n - p,
                    proxy.cfg.min_extranonce2_size
                );
            }
            log::info!(
                "[{name}] serving up to {} miners ({p}-byte prefixes, {} bytes of extranonce2 each)",
                up.prefixes.capacity(),
                n - p
            );
        } else {
            if (up.e1.as_slice(), up.n) != (e1.as_slice(), n) {
                self.change_extranonce(u, e1, n);
            }
            self.reauthorize_workers(u);
        }
        if mask_changed {
            // A pool without version rolling: miners that roll must stop (mask 0).
            self.set_version_masks(u, mask.unwrap_or(0));
        }
        if let Some(up) = self.upstreams.get(u) {
            let mut work = up.difficulty_line.clone();
            work.extend_from_slice(&up.notify_line);
            if !work.is_empty() {
                self.broadcast(u, &work, |m| m.gets_jobs());
            }
        }
        self.serve_waiting(u);
    }

    /// Answers every attached miner whose configure or subscribe waited; moves those that do not fit.
    pub(crate) fn serve_waiting(&mut self, u: usize) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let miners = up.miners.clone();
        for t in miners {
            let waits = matches!(self.conns.get(t), Some(Conn::Miner(m))
                if m.session.waits());
            if waits && !self.serve_deferred(t) {
                self.move_miner(t);
            }
        }
    }

    /// The pool gave upstream `u` a new extranonce: miners that asked for extranonce updates get theirs, the
    /// others are disconnected so they reconnect and subscribe anew.
    pub(crate) fn change_extranonce(&mut self, u: usize, e1: Vec<u8>, n: usize) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let proxy = &self.proxies[up.proxy];
        let dialect = proxy.dialect;
        let p = dialect.prefix_len(n, proxy.cfg.min_extranonce2_size);
        let relayout = p != up.prefixes.prefix_len();
        if (up.e1.as_slice(), up.n) != (e1.as_slice(), n) {
            up.e1_changes = up.e1_changes.wrapping_add(1);
        }
        up.e1 = e1;
        up.n = n;
        if relayout {
            up.prefixes = PrefixAllocator::new(p);
            up.orphans.clear();
            up.epoch = up.epoch.wrapping_add(1);
        }
        let miners = up.miners.clone();
        let mut kick = Vec::new();
        let mut updates = 0;
        for t in miners {
            let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
                continue;
            };
            if !m.session.subscribed() {
                continue;
            }
            let up = &mut self.upstreams[u];
            if relayout {
                m.session.set_prefix(up.prefixes.alloc());
            }
            match m.session.prefix() {
                Some(prefix) if m.session.extranonce_subscribed => {
                    let mut line = Vec::with_capacity(96);
                    pool_msg::write_set_extranonce(
                        dialect,
                        &mut line,
                        &up.e1,
                        up.prefixes.bytes(prefix),
                        up.miner_extranonce2_size(),
                    );
                    updates += 1;
                    self.queue(t, &line);
                }
                Some(_) => kick.push((t, Close::ExtranonceNotSubscribed)),
                None => kick.push((t, Close::NoNonceSpace)),
            }
        }
        let stats = self.proxies[self.upstreams[u].proxy].stats.clone();
        stats
            .extranonce_updates
            .fetch_add(updates, std::sync::atomic::Ordering::Relaxed);
        log::info!(
            "[{}] extranonce changed: {updates} miners updated, {} disconnected",
            self.name(u),
            kick.len()
        );
        for (t, why) in kick {
            self.close_miner(t, why);
        }
    }

    /// Sends `line` to every miner of `u` that `filter` selects, straight from the one buffer.
    pub(crate) fn broadcast(&mut self, u: usize, line: &[u8], filter: fn(&Miner) -> bool) {
        let Reactor {
            conns, upstreams, ..
        } = self;
        let Some(up) = upstreams.get(u) else { return };
        let mut failed = Vec::new();
        let mut partial = Vec::new();
        for &t in &up.miners {
            if let Some(Conn::Miner(m)) = conns.get_mut(t) {
                if !filter(m) {
                    continue;
                }
                match m.io.send_now(line) {
                    crate::io::Sent::Ok => {
                        if m.io.queued() > 0 {
                            partial.push(t);
                        }
                    }
                    crate::io::Sent::Overflow => failed.push((t, Close::BroadcastOverflow)),
                    crate::io::Sent::Failed => failed.push((t, Close::BroadcastFailed)),
                }
            }
        }
        for &t in &partial {
            self.mark_dirty(t);
        }
        self.note_queues(&partial);
        for (t, why) in failed {
            self.close_miner(t, why);
        }
    }

    /// The pool's version-rolling mask is now `pool_mask`: each miner of `u` that negotiated version rolling
    /// gets its own `mining.set_version_mask`, the pool's mask within the one it asked for (BIP 310), and its
    /// later shares are checked against that. Miners that did not negotiate get nothing.
    pub(crate) fn set_version_masks(&mut self, u: usize, pool_mask: u32) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let mut line = Vec::with_capacity(64);
        for t in up.miners.clone() {
            let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
                continue;
            };
            line.clear();
            if m.session.on_pool_mask(pool_mask, &mut line) {
                self.queue(t, &line);
            }
        }
    }

    /// Attaches miner `t` to an upstream with room (opening one if all are full) and answers what it can.
    pub(crate) fn attach_and_serve(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        let proxy = m.proxy;
        let u = match m.upstream {
            Some(u) => u,
            None => {
                let route = self.place_miner(t);
                let u = self.pick_upstream(proxy, route);
                let up = &mut self.upstreams[u];
                up.miners.push(t);
                let slot = up.miners.len() - 1;
                if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                    m.upstream = Some(u);
                    m.slot_in_upstream = slot;
                }
                u
            }
        };
        if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
            if m.session.start_waiting(Instant::now()) {
                self.upstreams[u].waiting += 1;
            }
        }
        if !self.serve_deferred(t) {
            self.move_miner(t);
        }
    }

    /// An upstream of route `route` of proxy `p` with room (a new one when all are full).
    pub(crate) fn pick_upstream(&mut self, p: usize, route: usize) -> usize {
        let proxy = &self.proxies[p];
        let upstreams = &self.upstreams;
        let of_route = || {
            proxy
                .upstreams
                .iter()
                .filter(|&&u| upstreams[u].route == route)
        };
        if let Some(&u) = of_route().find(|&&u| upstreams[u].has_room()) {
            return u;
        }
        let n = of_route().count();
        let cap = of_route()
            .next()
            .map_or(0, |&u| upstreams[u].prefixes.capacity());
        self.open_upstream(
            p,
            route,
            &format!("all {n} upstream(s) are full ({cap} miners each)"),
        )
    }

    /// Whether `u` is the first upstream of its route (opened at start, never closed).
    pub(crate) fn is_primary(&self, u: usize) -> bool {
        let Some(up) = self.upstreams.get(u) else {
            return false;
        };
        self.proxies[up.proxy]
            .upstreams
            .iter()
            .find(|&&x| self.upstreams.get(x).is_some_and(|o| o.route == up.route))
            == Some(&u)
    }

    /// Moves a miner whose subscribe found its upstream full to one with room.
    pub(crate) fn move_miner(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return;
        };
        let Some(u) = m.upstream.take() else { return };
        let slot = m.slot_in_upstream;
        let counted = m.session.stop_waiting();
        self.unlink(u, t, slot, counted);
        self.attach_and_serve(t);
    }

    /// Removes miner `t` (at `slot`) from upstream `u`'s list.
    pub(crate) fn unlink(&mut self, u: usize, t: usize, slot: usize, counted_waiting: bool) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        if up.miners.get(slot) == Some(&t) {
            up.miners.swap_remove(slot);
            if let Some(&moved) = up.miners.get(slot) {
                if let Some(Conn::Miner(m)) = self.conns.get_mut(moved) {
                    m.slot_in_upstream = slot;
                }
            }
        }
        if counted_waiting {
            up.waiting = up.waiting.saturating_sub(1);
        }
    }

    /// A miner (already out of the slab) leaves its upstream: its prefix is freed once its shares are answered,
    /// and an extra upstream with no miners left is closed.
    pub(crate) fn detach_miner(&mut self, m: &Miner, t: usize) {
        if m.seat.placed {
            if let Some(router) = self.proxies[m.proxy].router.as_mut() {
                router.sched.remove(t as u64);
            }
        }
        if let Some(pv) = m.seat.prev {
            self.free_prefix_after_shares(pv.upstream, t, m.gen, pv.prefix, pv.epoch);
        }
        let Some(u) = m.upstream else { return };
        self.unlink(
            u,
            t,
            m.slot_in_upstream,
            m.session.waiting_since().is_some(),
        );
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let routed = self.proxies[up.proxy].routed();
        if let (Some(prefix), true) = (m.session.prefix(), routed) {
            // Its shares may be in flight on two upstreams: count those of this one.
            let epoch = up.epoch;
            self.free_prefix_after_shares(u, t, m.gen, prefix, epoch);
        } else if let Some(prefix) = m.session.prefix() {
            if m.session.pending_shares > 0 {
                *up.orphans.entry(prefix).or_insert(0) += m.session.pending_shares;
            } else {
                up.prefixes.release(prefix);
            }
        }
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let empty = up.miners.is_empty();
        if empty && !self.is_primary(u) && !self.held_as_prev(u) {
            self.close_upstream(u, "its last miner left");
        }
    }

    /// Answers a request that will get no reply from the pool.
    pub(crate) fn answer_failed(&mut self, u: usize, e: Entry<Req>, why: &str, reason: Reject) {
        if let Req::MinerAuthorize { miner, gen, id } = &e.value {
            let mut line = Vec::with_capacity(96);
            pool_msg::write_failure(
                &mut line,
                id.as_bytes(),
                "pool unavailable for authorization",
            );
            if let Some(Conn::Miner(m)) = self.conns.get(*miner) {
                if m.gen == *gen {
                    self.queue(*miner, &line);
                }
            }
            return;
        }
        if let Req::Submit {
            miner,
            gen,
            id,
            prefix,
            epoch,
            replied,
            ..
        } = e.value
        {
            if let Some(up) = self.upstreams.get(u) {
                self.proxies[up.proxy].stats.on_share_error(reason);
            }
            if let Some(w) = self.worker_of(miner, gen) {
                w.on_rejected(Instant::now());
            }
            if replied {
                let delivered = self.note_share_answered(miner, gen);
                self.share_settled(u, prefix, epoch, delivered);
                return;
            }
            if let Some(up) = self.upstreams.get(u) {
                ProxyStats::inc(&self.proxies[up.proxy].stats.shares_errored);
            }
            let mut line = Vec::with_capacity(128);
            pool_msg::write_failure(&mut line, id.as_bytes(), why);
            let delivered = self.deliver_share_reply(miner, gen, &line);
            self.share_settled(u, prefix, epoch, delivered);
        }
    }

    /// A share of a departed miner was answered: its prefix is free once all of them are.
    pub(crate) fn orphan_answered(&mut self, u: usize, prefix: u64, epoch: u32) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        if up.epoch != epoch {
            return;
        }
        if let Some(c) = up.orphans.get_mut(&prefix) {
            *c -= 1;
            if *c == 0 {
                up.orphans.remove(&prefix);
                up.prefixes.release(prefix);
            }
        }
    }

    /// Answers every request waiting on `u` with an error.
    pub(crate) fn fail_all_pending(&mut self, u: usize, why: &str) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let mut entries = Vec::new();
        up.pending.drain_all(&mut entries);
        for e in entries {
            self.answer_failed(u, e, why, Reject::PoolUnavailable);
        }
    }
}
