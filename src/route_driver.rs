//! The weighted split in the runtime (issue 15; an `impl Reactor` block): placing new miners on routes, moving
//! miners between routes at job boundaries, a share's upstream chosen by its job id's tag, and the shared
//! `Control` state (weights, enabled routes and pools, kicks) applied on the tick, and workers reported to it.
//!
//! In an entry with several routes every job id sent to miners carries its upstream's key (`tag.job`, see
//! `pool_msg::tag_notify`), so two pools' equal job ids cannot be confused. A moved miner keeps its previous
//! assignment (upstream, prefix, epoch) until its next move: a share for a job of the route it left goes
//! there, under the old extranonce, and the pool's verdict comes back to it. The scheduler is
//! [`crate::routing::Scheduler`]; this file feeds it and applies its moves.

use crate::close::{Close, Refusal};
use crate::control::{Command as ControlCommand, WorkerInfo};
use crate::protocol::{pool_msg, Share};
use crate::reactor::Reactor;
use crate::routing::Move;
use crate::state::{Conn, PrevSeat, Req};
use crate::stats::ProxyStats;
use crate::validate::Verdict;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// What a share for a job of no assignment of its miner is refused as.
const STALE: Verdict = Verdict::Stale;
/// Seconds of accepted shares one hashrate sample spans at least.
const SAMPLE_SECS: f64 = 3.0;

/// A share with the pool's own job id in place of the tagged one.
fn with_job_id<'s>(share: Share<'s>, job: &'s str) -> Share<'s> {
    match share {
        Share::Stratum(mut s) => {
            s.job_id = job;
            Share::Stratum(s)
        }
        Share::Equihash(mut s) => {
            s.job_id = job;
            Share::Equihash(s)
        }
    }
}

impl Reactor {
    /// The route for new miner `t`: the scheduler's choice by hashrate (this entry's mean measured hashrate
    /// until its own is known); route 0 in an entry with one route.
    pub(crate) fn place_miner(&mut self, t: usize) -> usize {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return 0;
        };
        let movable = m.session.extranonce_subscribed;
        let Some(router) = self.proxies[m.proxy].router.as_mut() else {
            return 0;
        };
        let now = Instant::now();
        let guess = if router.mean_hashrate > 0.0 {
            router.mean_hashrate
        } else {
            1.0
        };
        let at = router.now(now);
        let route = router
            .sched
            .place(t as u64, guess, movable, at)
            .unwrap_or(0);
        m.seat.placed = true;
        m.seat.sampled = Some(now);
        route
    }

    /// In an entry with several routes: the upstream and prefix share `share` of miner `t` goes by (`u` and
    /// `prefix`: its current ones), chosen by its job id's tag (its current upstream, or the one it left at
    /// its last move, unless that one's extranonce1 changed since), and the share with the pool's own job id.
    /// Err: a job of neither (stale).
    pub(crate) fn route_share<'s>(
        &self,
        t: usize,
        u: usize,
        prefix: u64,
        share: Share<'s>,
    ) -> Result<(usize, u64, Share<'s>), Refusal<'static>> {
        let stale = || Refusal::of_verdict(&STALE).unwrap_or(Refusal::PoolUnavailable);
        let job_id: &'s str = match share {
            Share::Stratum(s) => s.job_id,
            Share::Equihash(s) => s.job_id,
        };
        let Some((tag, job)) = pool_msg::split_job_tag(job_id) else {
            return Err(stale());
        };
        let share = with_job_id(share, job);
        if tag == u {
            return Ok((u, prefix, share));
        }
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return Err(stale());
        };
        match m.seat.prev {
            // Not after the upstream's extranonce1 changed: the share would reach the pool under the new one,
            // which its miner never had (refused as low difficulty, and counted against the farm).
            Some(pv)
                if pv.upstream == tag
                    && self.upstreams.get(tag).is_some_and(|up| {
                        up.epoch == pv.epoch && up.e1_changes == pv.e1_changes
                    }) =>
            {
                Ok((tag, pv.prefix, share))
            }
            _ => Err(stale()),
        }
    }

    /// Upstream `u`'s relayed job line as miners get it: tagged with `u` in an entry with several routes.
    pub(crate) fn job_line_for(&self, u: usize, line: Vec<u8>) -> Vec<u8> {
        let routed = self
            .upstreams
            .get(u)
            .is_some_and(|up| self.proxies[up.proxy].routed());
        if !routed || line.is_empty() {
            return line;
        }
        pool_msg::tag_notify(&line, u).unwrap_or(line)
    }

    /// Frees `prefix` of upstream `u` (epoch `epoch`) that miner `t` (generation `gen`) no longer uses: at
    /// once, or once its shares still in flight there are answered.
    pub(crate) fn free_prefix_after_shares(
        &mut self,
        u: usize,
        t: usize,
        gen: u64,
        prefix: u64,
        epoch: u32,
    ) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        if up.epoch != epoch {
            return;
        }
        let in_flight = up
            .pending
            .values()
            .filter(|r| {
                matches!(r, Req::Submit { miner, gen: g, prefix: p, epoch: e, .. }
                    if *miner == t && *g == gen && *p == prefix && *e == epoch)
            })
            .count() as u32;
        if in_flight > 0 {
            *up.orphans.entry(prefix).or_insert(0) += in_flight;
        } else {
            up.prefixes.release(prefix);
        }
    }

    /// A share of upstream `u` under `prefix` was answered (`delivered` to its miner): a prefix given up while
    /// it was in flight is freed once all such shares are.
    pub(crate) fn share_settled(&mut self, u: usize, prefix: u64, epoch: u32, delivered: bool) {
        let orphaned = self
            .upstreams
            .get(u)
            .is_some_and(|up| up.orphans.contains_key(&prefix));
        if !delivered || orphaned {
            self.orphan_answered(u, prefix, epoch);
        }
    }

    /// Moves miner `t` (which accepts extranonce changes) to route `to` at its next job: a prefix on a ready
    /// upstream of that route, then `mining.set_extranonce`, the difficulty and that upstream's job with
    /// clean_jobs. Its assignment so far becomes its previous one. False when it cannot move now.
    fn move_seat(&mut self, t: usize, to: usize) -> bool {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return false;
        };
        let (p, Some(from), Some(old_prefix)) = (m.proxy, m.upstream, m.session.prefix()) else {
            return false;
        };
        if !m.session.extranonce_subscribed || !m.gets_jobs() || m.session.waits() {
            return false;
        }
        let back = m.seat.prev.filter(|pv| {
            self.upstreams
                .get(pv.upstream)
                .is_some_and(|up| up.route == to && up.ready && up.epoch == pv.epoch)
        });
        let (nu, new_prefix) = match back {
            Some(pv) => (pv.upstream, pv.prefix),
            None => {
                let upstreams = &self.upstreams;
                let found = self.proxies[p].upstreams.iter().copied().find(|&x| {
                    let up = &upstreams[x];
                    up.route == to && up.ready && up.has_room()
                });
                let Some(nu) = found else {
                    return false;
                };
                let Some(px) = self.upstreams[nu].prefixes.alloc() else {
                    return false;
                };
                self.release_prev(t);
                (nu, px)
            }
        };
        let (old_epoch, old_e1_changes) =
            (self.upstreams[from].epoch, self.upstreams[from].e1_changes);
        let old_mask = self.upstreams[from].pool_mask;
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return false;
        };
        let slot = m.slot_in_upstream;
        self.unlink(from, t, slot, false);
        let Reactor {
            conns,
            upstreams,
            proxies,
            ..
        } = self;
        let up = &mut upstreams[nu];
        up.miners.push(t);
        let Some(Conn::Miner(m)) = conns.get_mut(t) else {
            return false;
        };
        m.upstream = Some(nu);
        m.slot_in_upstream = up.miners.len() - 1;
        m.session.set_prefix(Some(new_prefix));
        m.seat.prev = Some(PrevSeat {
            upstream: from,
            prefix: old_prefix,
            epoch: old_epoch,
            e1_changes: old_e1_changes,
        });
        let proxy = &proxies[p];
        let mut line = Vec::with_capacity(256 + up.notify_line.len());
        pool_msg::write_set_extranonce(
            proxy.dialect,
            &mut line,
            &up.e1,
            up.prefixes.bytes(new_prefix),
            up.miner_extranonce2_size(),
        );
        if up.pool_mask != old_mask {
            m.session.on_pool_mask(up.pool_mask.unwrap_or(0), &mut line);
        }
        if proxy.cfg.vardiff.is_none() {
            line.extend_from_slice(&up.difficulty_line);
        }
        line.extend_from_slice(&pool_msg::notify_clean(&up.notify_line));
        ProxyStats::inc(&proxy.stats.extranonce_updates);
        let worker = m.session.worker.clone();
        self.queue(t, &line);
        self.count_worker(p, &worker, Some(t), 0);
        true
    }

    /// Closes miner `t` on purpose, first answering the requests already in its socket: a close with unread
    /// input resets the connection, and the miner would lose the replies written just before.
    fn close_answered(&mut self, t: usize, reason: Close) {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        let gen = m.gen;
        self.on_miner_event(t, true, false);
        self.judge_waiting_shares();
        if matches!(self.conns.get(t), Some(Conn::Miner(m)) if m.gen == gen) {
            self.close_miner(t, reason);
        }
    }

    /// Drops miner `t`'s previous assignment (its prefix there is freed once its shares are answered).
    pub(crate) fn release_prev(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return;
        };
        let Some(pv) = m.seat.prev.take() else {
            return;
        };
        let gen = m.gen;
        self.free_prefix_after_shares(pv.upstream, t, gen, pv.prefix, pv.epoch);
    }

    /// Whether some miner's previous assignment is on upstream `u` (it must stay open for their shares).
    pub(crate) fn held_as_prev(&self, u: usize) -> bool {
        self.conns.iter().any(
            |(_, c)| matches!(c, Conn::Miner(m) if m.seat.prev.is_some_and(|pv| pv.upstream == u)),
        )
    }

    /// A pool accepted a share of `difficulty` on upstream `u` from miner `t` (generation `gen`): the
    /// route's accepted difficulty (control state and scheduler) and the miner's measured hashrate.
    pub(crate) fn route_accepted(&mut self, u: usize, t: usize, gen: u64, difficulty: f64) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let (p, route) = (up.proxy, up.route);
        let ps = &mut self.proxies[p];
        if let Some(rc) = ps
            .control
            .proxies
            .get(ps.index)
            .and_then(|pc| pc.routes.get(route))
        {
            rc.accepted.add(difficulty);
        }
        let Some(router) = ps.router.as_mut() else {
            return;
        };
        router.sched.record_accepted(route, difficulty);
        if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
            if m.gen == gen {
                m.seat.credited += difficulty;
            }
        }
    }

    /// Once a second: the control state (weights, flags, kicks), and for entries with several routes the
    /// routes' availability, the miners' hashrates and the scheduler's moves.
    pub(crate) fn tick_routing(&mut self, now: Instant) {
        for p in 0..self.proxies.len() {
            self.apply_control(p);
            self.apply_kicks(p);
            if self.proxies[p].router.is_some() {
                self.route_availability(p);
                self.sample_hashrates(p, now);
                self.rebalance(p, now);
            }
        }
    }

    /// Applies a changed control state to entry `p`: weights and enabled routes to the scheduler, and a
    /// disabled pool in use is left (its upstream fails over to the next enabled pool of its route).
    fn apply_control(&mut self, p: usize) {
        let ps = &mut self.proxies[p];
        let version = ps.control.version();
        if version == ps.control_version {
            return;
        }
        ps.control_version = version;
        let control = ps.control.clone();
        let Some(pc) = control.proxies.get(ps.index) else {
            return;
        };
        if let Some(router) = ps.router.as_mut() {
            for (r, rc) in pc.routes.iter().enumerate() {
                router.sched.set_weight(r, rc.weight.get());
                router.sched.set_enabled(r, rc.enabled.load(Relaxed));
            }
        }
        let mut leave = Vec::new();
        for &u in &ps.upstreams {
            let Some(up) = self.upstreams.get(u) else {
                continue;
            };
            let span = ps.route(up.route);
            let local = up.pool_idx.saturating_sub(span.start);
            let Some(rc) = pc.routes.get(up.route) else {
                continue;
            };
            let pools = rc.pools();
            let enabled = |i: usize| pools.get(i).is_none_or(|pl| pl.enabled.load(Relaxed));
            if !enabled(local) && (0..span.len).any(enabled) {
                if let Some(t) = up.active {
                    leave.push((u, t));
                }
            }
        }
        for (u, t) in leave {
            log::info!(
                "[{}] pool {} disabled through the control API: failing over",
                self.name(u),
                self.upstreams[u].pool_idx + 1
            );
            self.upstreams[u].failover.skip_pool = true;
            self.pool_conn_failed(t, "pool disabled through the control API");
        }
    }

    /// Whether pool `pool_idx` (of the entry's list) of route `route` of entry `p` is enabled in the control
    /// state (pools it does not know are).
    pub(crate) fn pool_enabled(&self, p: usize, route: usize, pool_idx: usize) -> bool {
        let ps = &self.proxies[p];
        let local = pool_idx.saturating_sub(ps.route(route).start);
        let Some(rc) = ps
            .control
            .proxies
            .get(ps.index)
            .and_then(|pc| pc.routes.get(route))
        else {
            return true;
        };
        let pools = rc.pools();
        pools.get(local).is_none_or(|pl| pl.enabled.load(Relaxed))
    }

    /// Marks a pool up or down in the control state.
    pub(crate) fn note_pool_up(&self, u: usize, pool_idx: usize, up_now: bool) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let ps = &self.proxies[up.proxy];
        let local = pool_idx.saturating_sub(ps.route(up.route).start);
        if let Some(rc) = ps
            .control
            .proxies
            .get(ps.index)
            .and_then(|pc| pc.routes.get(up.route))
        {
            if let Some(pl) = rc.pools().get(local) {
                pl.up.store(up_now, Relaxed);
            }
        }
    }

    /// Kicks queued through the control API for entry `p`: every connection of that worker is closed.
    fn apply_kicks(&mut self, p: usize) {
        let ps = &mut self.proxies[p];
        let commands = ps.control.commands_since(ps.command_seen);
        let Some(&(last, _)) = commands.last() else {
            return;
        };
        ps.command_seen = last;
        for (_, cmd) in commands {
            let ControlCommand::Kick { proxy, worker } = cmd;
            if proxy != self.proxies[p].cfg.name {
                continue;
            }
            let targets: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| matches!(c, Conn::Miner(m) if m.proxy == p && *m.session.worker == *worker))
                .map(|(t, _)| t)
                .collect();
            log::info!(
                "[{proxy}] kicking worker '{worker}' ({} connection(s) here) as asked through the control API",
                targets.len()
            );
            for t in targets {
                self.close_answered(t, Close::Kicked);
            }
        }
    }

    /// A route is up when one of its upstreams is ready on an enabled pool.
    fn route_availability(&mut self, p: usize) {
        let n = self.proxies[p].routes.len();
        for r in 0..n {
            let up_now = self.proxies[p].upstreams.iter().any(|&u| {
                self.upstreams.get(u).is_some_and(|up| {
                    up.route == r && up.ready && self.pool_enabled(p, r, up.pool_idx)
                })
            });
            if let Some(router) = self.proxies[p].router.as_mut() {
                router.sched.set_up(r, up_now);
            }
        }
    }

    /// Each placed miner's hashrate from the difficulty its pools accepted (a sample every few seconds,
    /// smoothed), and whether it accepts extranonce changes now.
    fn sample_hashrates(&mut self, p: usize, now: Instant) {
        let Reactor { conns, proxies, .. } = self;
        let Some(router) = proxies[p].router.as_mut() else {
            return;
        };
        let (mut sum, mut n) = (0.0, 0u32);
        for (t, c) in conns.iter_mut() {
            let Conn::Miner(m) = c else { continue };
            if m.proxy != p || !m.seat.placed {
                continue;
            }
            let id = t as u64;
            router
                .sched
                .set_movable(id, m.session.extranonce_subscribed);
            let since = *m.seat.sampled.get_or_insert(now);
            let dt = now.saturating_duration_since(since).as_secs_f64();
            if dt >= SAMPLE_SECS {
                let sample = m.seat.credited / dt;
                m.seat.hashrate = if m.seat.hashrate > 0.0 {
                    0.6 * m.seat.hashrate + 0.4 * sample
                } else {
                    sample
                };
                m.seat.credited = 0.0;
                m.seat.sampled = Some(now);
                router.sched.set_hashrate(id, m.seat.hashrate);
            }
            if m.seat.hashrate > 0.0 {
                sum += m.seat.hashrate;
                n += 1;
            }
        }
        router.mean_hashrate = if n > 0 { sum / f64::from(n) } else { 0.0 };
    }

    /// The scheduler's moves for entry `p`, applied: a movable miner moves at its next job; a miner that is
    /// not movable and whose route went away is closed (it reconnects to an available route).
    fn rebalance(&mut self, p: usize, now: Instant) {
        let Some(router) = self.proxies[p].router.as_mut() else {
            return;
        };
        let at = router.now(now);
        let moves: Vec<Move> = router.sched.rebalance(at);
        for mv in moves {
            let t = mv.miner as usize;
            let movable = matches!(self.conns.get(t), Some(Conn::Miner(m))
                if m.proxy == p && m.session.extranonce_subscribed);
            if !matches!(self.conns.get(t), Some(Conn::Miner(m)) if m.proxy == p) {
                if let Some(r) = self.proxies[p].router.as_mut() {
                    r.sched.remove(mv.miner);
                }
                continue;
            }
            if movable && self.move_seat(t, mv.to) {
                log::debug!(
                    "[{}] miner {t} moved from route '{}' to '{}'",
                    self.proxies[p].cfg.name,
                    self.proxies[p].route(mv.from).name,
                    self.proxies[p].route(mv.to).name
                );
                continue;
            }
            if mv.forced && !movable {
                self.close_answered(t, Close::RouteGone);
                continue;
            }
            // Not now (not working yet, or no ready upstream with room): it stays, the next tick tries again.
            if let Some(r) = self.proxies[p].router.as_mut() {
                r.sched.set_route(mv.miner, mv.from);
            }
        }
    }

    /// Reports `delta` connections more (or fewer) of worker `worker` of entry `p` to the control state, with
    /// the state of miner `t` (its route, hashrate, whether it can be moved), if still there.
    pub(crate) fn count_worker(&mut self, p: usize, worker: &str, t: Option<usize>, delta: i32) {
        if worker.is_empty() {
            return;
        }
        let ps = &self.proxies[p];
        let miner = t.and_then(|t| match self.conns.get(t) {
            Some(Conn::Miner(m)) => Some(m),
            _ => None,
        });
        let route = miner
            .and_then(|m| m.upstream)
            .and_then(|u| self.upstreams.get(u))
            .map_or(0, |up| up.route);
        let info = WorkerInfo {
            route: ps.route(route).name.clone(),
            hashrate: miner.map_or(0.0, |m| m.seat.hashrate),
            movable: miner.is_some_and(|m| m.session.extranonce_subscribed),
            connections: 0,
        };
        ps.control
            .worker_connections(&ps.cfg.name, worker, info, delta);
    }
}
