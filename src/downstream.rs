//! Miners in the runtime (an `impl Reactor` block; a miner's data is `state::Miner`): reading their PROXY header
//! and lines, handing each request to the miner's sans-IO session (`session::miner`) with its output queue as the
//! outbox, and applying what the session asks for; idle and pool-wait timers, closing a miner.
//!
//! A miner is attached to one upstream (a pool session) from its first mining request; it gets a nonce prefix
//! from that upstream when its subscribe is answered, which may wait until the pool connection is ready.

use crate::close::{Close, ProxyHeader};
use crate::protocol::json::{IdBuf, Msg};
use crate::protocol::miner_msg::MinerRequest;
use crate::reactor::Reactor;
use crate::session::miner::{MinerAction, MinerEnv, MinerSession, PoolOffer, Served, UpstreamView};
use crate::state::{with_outbox, Conn};
use crate::stats::{ProxyStats, Reject};
use std::ops::ControlFlow;
use std::time::Instant;

impl Reactor {
    /// A readiness event on miner `t`.
    pub(crate) fn on_miner_event(&mut self, t: usize, readable: bool, writable: bool) {
        if writable {
            self.flush(t);
        }
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        if !readable || m.session.read_closed() {
            return;
        }
        if m.session.proxy_header().is_some() {
            match self.read_proxy_header(t) {
                Ok(true) => {}
                Ok(false) => return,
                Err(reason) => {
                    self.close_miner(t, Close::ProxyHeader(reason));
                    return;
                }
            }
        }
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        let max_line = self.proxies[m.proxy].cfg.max_line_length;
        let reason = self.read_lines(t, max_line, Reactor::on_miner_line);
        let Some(reason) = reason else {
            return;
        };
        // A miner that closed its sending side still gets the replies to the shares it sent.
        if reason.is_half_close() {
            if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                if m.session.on_peer_closed() {
                    return;
                }
            }
        }
        self.close_miner(t, reason);
    }

    /// Reads the PROXY protocol header of miner `t`: `Ok(true)` once done (the miner's address is then the one
    /// it names), `Ok(false)` while more bytes are needed, `Err` with the reason to close.
    fn read_proxy_header(&mut self, t: usize) -> Result<bool, ProxyHeader> {
        use crate::proxy_protocol::MAX_HEADER;
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return Ok(false);
        };
        let mut buf = [0u8; MAX_HEADER];
        loop {
            let room = MAX_HEADER.saturating_sub(m.io.pre.len());
            if room == 0 {
                return Err(ProxyHeader::TooLong);
            }
            match m.io.read_raw(&mut buf[..room]) {
                Ok(0) => return Err(ProxyHeader::ClosedBefore),
                Ok(n) => m.io.pre.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(ProxyHeader::Read(e)),
            }
            let Some((len, source)) = m.session.on_proxy_bytes(&m.io.pre)? else {
                continue;
            };
            m.io.pre.drain(..len);
            if let Some(src) = source {
                log::debug!(
                    "[{}] miner {src} connected (PROXY header from {})",
                    self.proxies[m.proxy].cfg.name,
                    m.addr
                );
                m.addr = src;
            }
            return Ok(true);
        }
    }

    /// After `t`'s output queue drained: a half-closed miner with nothing pending is done.
    pub(crate) fn after_drain(&mut self, t: usize) {
        if let Some(Conn::Miner(m)) = self.conns.get(t) {
            if m.session.done() {
                self.close_miner(t, Close::PeerClosed);
            }
        }
    }

    /// One line from miner `t`.
    pub(crate) fn on_miner_line(&mut self, t: usize, line: &mut [u8]) -> ControlFlow<()> {
        // Taken out while a line is handled (never re-entered, so the fallback never allocates).
        let mut parser = self.parser.take().unwrap_or_default();
        let flow = parser.parse(line, |msg| match msg {
            Ok(msg) => self.on_miner_msg(t, &msg),
            Err(e) => self.on_miner_session(t, |s, out| s.bad_line(&IdBuf::null(), e.text(), out)),
        });
        self.parser = Some(parser);
        flow
    }

    /// One request from miner `t`, parsed in its dialect and handed to its session.
    fn on_miner_msg(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let Reactor {
            conns,
            proxies,
            upstreams,
            authenticator,
            draining,
            ..
        } = self;
        let Some(Conn::Miner(m)) = conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let req = m.session.dialect.miner_request(msg);
        let proxy = &proxies[m.proxy];
        if matches!(req, MinerRequest::Submit { .. }) {
            ProxyStats::inc(&proxy.stats.shares_submitted);
        }
        let now = Instant::now();
        let upstream = match m.upstream.map(|u| upstreams.get(u)) {
            None => UpstreamView::None,
            Some(None) => UpstreamView::Gone,
            Some(Some(up)) => UpstreamView::Ready {
                extranonce2_size: up.miner_extranonce2_size(),
                solution: &proxy.solution,
            },
        };
        let env = MinerEnv {
            auth: &proxy.cfg.auth,
            authenticator,
            ip: m.addr.ip(),
            now,
            draining: draining.is_some(),
            upstream,
        };
        let (action, grew) = with_outbox(m, |s, out| s.on_request(req, &msg.id, env, out));
        self.apply_miner_action(t, &msg.id, action, grew, now)
    }

    /// Calls the session of miner `t` with its output queue as the outbox, and applies what it returns.
    fn on_miner_session(
        &mut self,
        t: usize,
        f: impl FnOnce(&mut MinerSession, &mut Vec<u8>) -> MinerAction<'static>,
    ) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let (action, grew) = with_outbox(m, f);
        self.apply_miner_action(t, &IdBuf::null(), action, grew, Instant::now())
    }

    /// Applies a session's action for miner `t` (after its reply bytes were queued: `grew`, see
    /// [`with_outbox`]).
    fn apply_miner_action(
        &mut self,
        t: usize,
        id: &IdBuf,
        action: MinerAction<'_>,
        grew: Option<bool>,
        now: Instant,
    ) -> ControlFlow<()> {
        match grew {
            None => {
                self.close_conn(t, Close::OutputFull);
                return ControlFlow::Break(());
            }
            Some(true) => self.mark_dirty(t),
            Some(false) => {}
        }
        match action {
            MinerAction::Continue => ControlFlow::Continue(()),
            MinerAction::Attach => {
                self.attach_and_serve(t);
                ControlFlow::Continue(())
            }
            MinerAction::Admitted { first } => {
                self.admitted(t, first, now);
                ControlFlow::Continue(())
            }
            MinerAction::Share { share, prefix } => self.judge_share(t, id, share, prefix, now),
            MinerAction::Refused(reject) => {
                self.count_refusal(t, reject);
                ControlFlow::Continue(())
            }
            MinerAction::AuthRefused => {
                if let Some(Conn::Miner(m)) = self.conns.get(t) {
                    log::info!(
                        "[{}] miner {}: authorization refused for '{}'",
                        self.proxies[m.proxy].cfg.name,
                        m.addr,
                        m.session.worker
                    );
                }
                ControlFlow::Continue(())
            }
            MinerAction::Close(reason) => {
                if let (Close::BadRequests { why }, Some(Conn::Miner(m))) =
                    (&reason, self.conns.get(t))
                {
                    log::warn!(
                        "[{}] miner {}: {} bad requests (last: {why}), disconnecting",
                        self.proxies[m.proxy].cfg.name,
                        m.addr,
                        m.session.bad_lines
                    );
                }
                self.close_reason = Some(reason);
                ControlFlow::Break(())
            }
        }
    }

    /// Counts a share refused before the pool saw it under `reject`.
    pub(crate) fn count_refusal(&mut self, t: usize, reject: Reject) {
        if let Some(Conn::Miner(m)) = self.conns.get(t) {
            let stats = &self.proxies[m.proxy].stats;
            ProxyStats::inc(&stats.shares_errored);
            stats.on_share_error(reject);
            if let Some(w) = &m.worker_stats {
                w.on_rejected(Instant::now());
            }
        }
    }

    /// Marks miner `t` authorized, answers its authorize with `result`, and sends it work if it is ready.
    pub(crate) fn admit(&mut self, t: usize, id: &IdBuf, result: &[u8]) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let (action, grew) = with_outbox(m, |s, out| s.admit(id, result, out));
        self.apply_miner_action(t, id, action, grew, Instant::now())
    }

    /// Miner `t` was authorized (`first`: for the first time): its worker's counters, and work if it is ready.
    fn admitted(&mut self, t: usize, first: bool, now: Instant) {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return;
        };
        let worker = &m.session.worker;
        let name_changed = m
            .worker_stats
            .as_ref()
            .is_none_or(|w| w.name() != &**worker);
        if name_changed {
            let p = m.proxy;
            let old_name = m.worker_stats.take().map(|old| {
                old.detach();
                old.name().to_string()
            });
            m.worker_stats = Some(self.proxies[p].stats.workers.attach(worker, now));
            let worker = worker.to_string();
            if let Some(old) = old_name {
                self.count_worker(p, &old, None, -1);
            }
            self.count_worker(p, &worker, Some(t), 1);
        }
        if first {
            self.send_current_work(t);
        }
    }

    /// Sends the current difficulty and job to a miner that just became subscribed and authorized.
    pub(crate) fn send_current_work(&mut self, t: usize) {
        let Reactor {
            conns,
            upstreams,
            proxies,
            ..
        } = self;
        let Some(Conn::Miner(m)) = conns.get_mut(t) else {
            return;
        };
        if !m.gets_jobs() {
            return;
        }
        let Some(u) = m.upstream else { return };
        let up = upstreams.get(u);
        let cfg = proxies[m.proxy].cfg.vardiff.as_ref();
        let pool = up.map_or(1.0, |up| up.pool_difficulty);
        let now = Instant::now();
        let (_, grew) = with_outbox(m, |s, out| {
            let started = s.start_vardiff(cfg, pool, now, out);
            if let Some(up) = up {
                if !started {
                    out.extend_from_slice(&up.difficulty_line);
                }
                out.extend_from_slice(&up.notify_line);
            }
        });
        match grew {
            None => self.close_conn(t, Close::OutputFull),
            Some(true) => self.mark_dirty(t),
            Some(false) => {}
        }
    }

    /// The worker counters of miner `t`, if it is still the miner of generation `gen`.
    pub(crate) fn worker_of(
        &self,
        t: usize,
        gen: u64,
    ) -> Option<std::sync::Arc<crate::stats::WorkerStats>> {
        match self.conns.get(t) {
            Some(Conn::Miner(m)) if m.gen == gen => m.worker_stats.clone(),
            _ => None,
        }
    }

    /// Answers a share's pool verdict (or an error in its place) to the miner that sent it, if still there.
    pub(crate) fn deliver_share_reply(&mut self, t: usize, gen: u64, line: &[u8]) -> bool {
        self.deliver_share_reply_with(t, gen, |out| out.extend_from_slice(line))
    }

    /// Like [`Reactor::deliver_share_reply`], writing the reply straight into the miner's queue.
    pub(crate) fn deliver_share_reply_with(
        &mut self,
        t: usize,
        gen: u64,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        match self.conns.get_mut(t) {
            Some(Conn::Miner(m)) if m.gen == gen => {
                // A half-closed miner owed nothing more is closed once its queue drains (`after_drain`).
                m.session.share_answered();
                self.queue_with(t, write);
                true
            }
            _ => false,
        }
    }

    /// Closes miner `t`, releasing its place on its upstream; a kick (see [`Close::is_kick`]) is counted, and its
    /// socket lingers (`linger_or_close`) so its last replies are not lost to a reset.
    pub(crate) fn close_miner(&mut self, t: usize, reason: Close) {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        if reason.is_kick() {
            ProxyStats::inc(&self.proxies[m.proxy].stats.miners_kicked);
        }
        // Shares it parked this round are judged (and forwarded) while it is still here.
        self.judge_waiting_shares();
        let Some(Conn::Miner(_)) = self.conns.get(t) else {
            return;
        };
        let Conn::Miner(mut m) = self.conns.remove(t) else {
            return;
        };
        let _ = m.io.flush();
        let _ = self.poll.registry().deregister(&mut m.io.socket);
        self.forget_output(t);
        self.release_miner_slot(m.proxy);
        if let Some(w) = &m.worker_stats {
            w.detach();
            let (proxy, name) = (m.proxy, w.name().to_string());
            self.count_worker(proxy, &name, None, -1);
        }
        let p = &self.proxies[m.proxy];
        log::log!(
            reason.miner_log_level(),
            "[{}] miner {} ({}) disconnected: {reason}",
            p.cfg.name,
            m.addr,
            m.session.worker
        );
        self.detach_miner(&m, t);
        self.linger_or_close(m.io, m.gen, reason.is_kick());
    }

    /// Once a second: miners that never subscribed and authorized, and subscribes that waited too long (their
    /// waiting requests are answered first).
    pub(crate) fn tick_miners(&mut self, now: Instant) {
        let mut closing = Vec::new();
        let Reactor { conns, proxies, .. } = self;
        for (t, c) in conns.iter_mut() {
            let Conn::Miner(m) = c else { continue };
            let timing = proxies[m.proxy].timing;
            let (reason, grew) =
                with_outbox(m, |s, out| s.tick(now, timing.idle, timing.pool_wait, out));
            match (reason, grew) {
                (Some(reason), Some(grew)) => closing.push((t, reason, grew)),
                (_, None) => closing.push((t, Close::OutputFull, false)),
                (None, Some(_)) => {}
            }
        }
        for (t, reason, answered) in closing {
            if answered {
                self.flush(t);
            }
            self.close_miner(t, reason);
        }
    }

    /// Answers a miner's deferred configure and subscribe from its (ready) upstream. Returns false when the
    /// upstream has no free prefix left for it.
    pub(crate) fn serve_deferred(&mut self, t: usize) -> bool {
        let Reactor {
            conns, upstreams, ..
        } = self;
        let Some(Conn::Miner(m)) = conns.get_mut(t) else {
            return true;
        };
        let Some(u) = m.upstream else { return true };
        let Some(up) = upstreams.get_mut(u) else {
            return true;
        };
        if !up.ready {
            return true;
        }
        let authorize = m.session.deferred_authorize.is_some();
        let offer = PoolOffer {
            mask: up.pool_mask,
            e1: &up.e1,
            extranonce2_size: up.miner_extranonce2_size(),
            prefixes: &mut up.prefixes,
        };
        let (served, grew): (Served, _) = with_outbox(m, |s, out| s.serve(offer, out));
        if served.subscribed {
            up.waiting = up.waiting.saturating_sub(1);
        }
        match grew {
            None => self.close_conn(t, Close::OutputFull),
            Some(true) => {
                self.mark_dirty(t);
                self.send_current_work(t);
            }
            Some(false) => {}
        }
        if authorize {
            self.forward_miner_authorize(t);
        }
        !served.full
    }
}
