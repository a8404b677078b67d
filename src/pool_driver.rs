//! Driving a pool connection: its socket's readiness, its lines parsed and handed to its [`PoolSession`], and
//! the session's events applied to the upstream and its miners (jobs, targets, extranonce, verdicts, reconnect).

use crate::close::Close;
use crate::config::PoolUrl;
use crate::pending::Entry;
use crate::protocol::json::{IdBuf, Msg};
use crate::protocol::pool_msg;
use crate::protocol::Share;
use crate::reactor::Reactor;
use crate::session::pool::{BadLine, Ignored, PoolEvent, PoolPhase};
use crate::state::{Conn, Req};
use crate::stats::{ProxyStats, Reject};
use std::ops::ControlFlow;
use std::time::Instant;

impl Reactor {
    /// A readiness event on pool connection `t`.
    pub(crate) fn on_pool_event(&mut self, t: usize, readable: bool, writable: bool) {
        let Some(pc) = self.pool_conn(t) else { return };
        if pc.session.phase == PoolPhase::Connecting {
            if let Ok(Some(e)) | Err(e) = pc.io.socket.take_error() {
                self.connect_failed(t, &format!("connect failed: {e}"));
                return;
            }
            match pc.io.socket.peer_addr() {
                Ok(_) => self.start_handshake(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
                Err(e) => {
                    self.connect_failed(t, &format!("connect failed: {e}"));
                    return;
                }
            }
        }
        if writable {
            self.flush(t);
        }
        if readable && self.is_sv2_conn(t) {
            self.on_sv2_readable(t);
        } else if readable {
            let Some(pc) = self.pool_conn(t) else { return };
            let u = pc.upstream;
            let Some(up) = self.upstreams.get(u) else {
                return;
            };
            let max_line = self.proxies[up.proxy].cfg.max_line_length;
            if let Some(reason) = self.read_lines(t, max_line, Reactor::on_pool_line) {
                self.pool_conn_failed(t, reason);
            }
        }
    }

    pub(crate) fn start_handshake(&mut self, t: usize) {
        if self.sv2_start(t) {
            return;
        }
        let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
            return;
        };
        let u = pc.upstream;
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let now = Instant::now();
        let mut out = Vec::with_capacity(512);
        // The handshake's own timeout covers these; some pools never answer extranonce.subscribe.
        pc.session.start_handshake(&mut out, |r| {
            up.pending.insert(Req::Handshake(r), t, now, None)
        });
        log::debug!("[{}] connected, handshaking", self.name(u));
        self.queue(t, &out);
    }

    /// One line from pool connection `t`.
    pub(crate) fn on_pool_line(&mut self, t: usize, line: &mut [u8]) -> ControlFlow<()> {
        // Taken out while a line is handled (never re-entered, so the fallback never allocates).
        let mut parser = self.parser.take().unwrap_or_default();
        // Pool notifications are passed on as received: keep their params as text.
        let flow = parser.parse_keeping_params(line, |msg| {
            let Some(pc) = self.pool_conn(t) else {
                return ControlFlow::Break(());
            };
            match msg {
                Ok(msg) => {
                    pc.session.line_ok();
                    match msg.method {
                        Some(method) => self.pool_message(t, method, &msg),
                        None if msg.is_reply => self.pool_reply(t, &msg),
                        None => ControlFlow::Continue(()),
                    }
                }
                Err(e) => {
                    let u = pc.upstream;
                    match pc.session.bad_line() {
                        // A pool that only sends garbage is not a pool: drop it (and fail over as for any loss).
                        BadLine::Close { count } => {
                            self.close_reason = Some(Close::PoolGarbage { count });
                            return ControlFlow::Break(());
                        }
                        BadLine::Warn => log::warn!(
                            "[{}] pool sent a bad line ({}), ignored",
                            self.name(u),
                            e.text()
                        ),
                        BadLine::Quiet => {}
                    }
                    ControlFlow::Continue(())
                }
            }
        });
        self.parser = Some(parser);
        flow
    }

    pub(crate) fn pool_reply(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let Some(pc) = self.pool_conn(t) else {
            return ControlFlow::Break(());
        };
        let u = pc.upstream;
        let Some(up) = self.upstreams.get_mut(u) else {
            return ControlFlow::Break(());
        };
        let stats = self.proxies[up.proxy].stats.clone();
        let Some(entry) = msg.id_scalar.as_u64().and_then(|id| up.pending.take(id)) else {
            ProxyStats::inc(&stats.unknown_replies);
            log::debug!(
                "[{}] reply with unknown id {:?} ignored",
                self.name(u),
                msg.id
            );
            return ControlFlow::Continue(());
        };
        match entry.value {
            Req::MinerAuthorize { miner, gen, id } => {
                self.miner_authorize_reply(miner, gen, &id, msg);
            }
            Req::ReAuthorize => {
                if !pool_msg::accepted(msg) {
                    log::warn!(
                        "[{}] the pool refused a worker on re-authorization",
                        self.name(u)
                    );
                }
            }
            Req::Submit { .. } => {
                let rejected = (!pool_msg::accepted(msg)).then(|| {
                    (
                        Reject::from_error_json(msg.error_json),
                        msg.error_json.unwrap_or("false"),
                    )
                });
                self.share_verdict(u, t, entry, rejected, |out, id| {
                    pool_msg::write_share_reply(out, id, msg)
                });
            }
            Req::Handshake(req) => {
                let Some(pc) = self.pool_conn(t) else {
                    return ControlFlow::Break(());
                };
                match pc.session.on_handshake_reply(req, msg) {
                    Ok(PoolEvent::Ready) => self.pool_ready(t),
                    Ok(_) => {}
                    Err(e) => {
                        // Retrying this pool would give the same answer: move down the list.
                        self.upstreams[u].failover.skip_pool |= e.skips_pool();
                        self.close_reason = Some(Close::PoolHandshake(e));
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A forwarded share's verdict from pool connection `t` of upstream `u`, whatever the pool's protocol: it
    /// is counted (proxy, pool, worker, route), answered to its miner with `write_reply(out, id)` unless it was
    /// answered already (`share_reply: immediate`, or a timeout), and its prefix settled. `rejected` is `None`
    /// for an accepted share, else the reason (for the counters) and the pool's text (for the log).
    pub(crate) fn share_verdict(
        &mut self,
        u: usize,
        t: usize,
        entry: Entry<Req>,
        rejected: Option<(Reject, &str)>,
        write_reply: impl FnOnce(&mut Vec<u8>, &[u8]),
    ) {
        let Req::Submit {
            miner,
            gen,
            id,
            prefix,
            epoch,
            replied,
            difficulty,
        } = entry.value
        else {
            return;
        };
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let stats = self.proxies[up.proxy].stats.clone();
        ProxyStats::inc(if rejected.is_none() {
            &stats.shares_accepted
        } else {
            &stats.shares_rejected
        });
        let now = Instant::now();
        let pool_idx = self
            .pool_conn(t)
            .map_or(usize::MAX, |pc| pc.session.pool_idx);
        let pool = stats.pool(pool_idx);
        pool.on_reply(now.saturating_duration_since(entry.sent));
        match rejected {
            None => pool.on_accepted(difficulty),
            Some((reason, _)) => pool.on_rejected(reason),
        }
        // Also with local validation: a forwarded share counts for its worker by the pool's verdict.
        if let Some(w) = self.worker_of(miner, gen) {
            match rejected {
                None => w.on_accepted(difficulty, now),
                Some(_) => w.on_rejected(now),
            }
        }
        if rejected.is_none() {
            // The weighted split counts what the pools accepted.
            self.route_accepted(u, miner, gen, difficulty);
            self.upstreams[u].rate.credit(difficulty);
        }
        let delivered = if replied {
            if let Some((_, text)) = rejected {
                log::info!(
                    "[{}] pool rejected a share already answered true: {text}",
                    self.name(u)
                );
            }
            self.note_share_answered(miner, gen)
        } else {
            self.deliver_share_reply_with(miner, gen, |out| write_reply(out, id.as_bytes()))
        };
        // A prefix its miner left behind (a move, a departure) is freed once its shares are settled.
        self.share_settled(u, prefix, epoch, delivered);
        self.close_if_drained(t);
    }

    /// Pool connection `t` completed its handshake: it serves as the active connection or takes over as the probe.
    pub(crate) fn pool_ready(&mut self, t: usize) {
        let Some(Conn::Pool(pc)) = self.conns.get(t) else {
            return;
        };
        let (u, pool_idx) = (pc.upstream, pc.session.pool_idx);
        let Some(g) = pc.session.granted() else {
            return;
        };
        let url = format!("{}:{}", pc.session.url.host, pc.session.url.port);
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        ProxyStats::inc(&self.proxies[up.proxy].stats.pool_ready);
        self.proxies[up.proxy].stats.pool(pool_idx).on_ready();
        log::info!(
            "[{}] pool {url} ready: extranonce1 {}, extranonce2_size {}, version rolling {}",
            self.name(u),
            crate::hex::encode(&g.e1),
            g.n,
            g.mask
                .map_or("off".to_string(), |m| format!("mask {m:08x}"))
        );
        if up.active == Some(t) {
            self.upstream_ready(u, t);
        } else if up.probe == Some(t) {
            self.switch_to_probe(u);
        }
    }

    /// A notification or request from a pool: the session handles it, the upstream applies what it means when
    /// `t` is its live connection.
    pub(crate) fn pool_message(
        &mut self,
        t: usize,
        method: &str,
        msg: &Msg<'_>,
    ) -> ControlFlow<()> {
        let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let u = pc.upstream;
        let Some(up) = self.upstreams.get(u) else {
            return ControlFlow::Break(());
        };
        let live = up.active == Some(t) && up.ready;
        let validates = self.proxies[up.proxy].cfg.validates();
        let parsed = pool_msg::parse(pc.session.dialect, method, msg);
        let mut answer = Vec::new();
        let event = pc
            .session
            .on_message(parsed, &msg.id, validates, &mut answer);
        let pool_idx = pc.session.pool_idx;
        if !answer.is_empty() {
            self.queue(t, &answer);
        }
        let stats = self.proxies[self.upstreams[u].proxy].stats.clone();
        match event {
            PoolEvent::Nothing | PoolEvent::Ready => {}
            PoolEvent::Job { line, job, target } => {
                stats.pool(pool_idx).on_job();
                if live {
                    let line = self.job_line_for(u, line);
                    let up = &mut self.upstreams[u];
                    up.notify_line.clone_from(&line);
                    if validates {
                        up.book.add(job, target);
                    }
                    self.broadcast(u, &line, |m| m.gets_jobs());
                }
            }
            PoolEvent::Target { line, difficulty } => {
                if let Some(d) = difficulty {
                    stats.pool(pool_idx).set_difficulty(d);
                }
                if live {
                    self.on_pool_target(u, line, difficulty);
                }
            }
            PoolEvent::VersionMask(mask) => {
                if live {
                    self.upstreams[u].pool_mask = Some(mask);
                    self.set_version_masks(u, mask);
                }
            }
            PoolEvent::Extranonce { e1, n } => {
                if live {
                    self.change_extranonce(u, e1, n);
                }
            }
            PoolEvent::Reconnect { host, port, wait } => {
                self.pool_reconnect_request(u, host, port, wait)
            }
            PoolEvent::ShowMessage(text) => {
                log::info!("[{}] message from the pool: {text}", self.name(u));
                if live {
                    let mut line = Vec::new();
                    pool_msg::write_show_message(&mut line, text);
                    self.broadcast(u, &line, |m| m.gets_jobs());
                }
            }
            PoolEvent::Ignored(why) => {
                let name = self.name(u);
                match why {
                    Ignored::BadJob(e) => {
                        log::warn!("[{name}] pool sent a malformed mining.notify ({e}), ignored")
                    }
                    Ignored::BadDifficulty => {
                        log::warn!("[{name}] pool sent an invalid difficulty, ignored")
                    }
                    Ignored::BadTarget => {
                        log::warn!("[{name}] pool sent an invalid target, ignored")
                    }
                    Ignored::BadVersionMask => {}
                    Ignored::BadExtranonce(e) => log::warn!("[{name}] {e}, ignored"),
                    Ignored::Unknown(other) => {
                        log::debug!("[{name}] pool sent {other}, ignored")
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A new share difficulty (V1) or target (Equihash) from the live connection, for jobs sent after it. With
    /// vardiff the miners keep their own difficulties (lowered where they exceed the pool's); otherwise it goes
    /// to all.
    pub(crate) fn on_pool_target(&mut self, u: usize, line: Vec<u8>, difficulty: Option<f64>) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        up.difficulty_line.clone_from(&line);
        if let Some(d) = difficulty {
            up.pool_difficulty = d;
        }
        if self.proxies[up.proxy].cfg.vardiff.is_some() {
            self.cap_miner_difficulties(u);
        } else {
            self.broadcast(u, &line, |m| m.gets_jobs());
        }
    }

    pub(crate) fn pool_reconnect_request(
        &mut self,
        u: usize,
        host: Option<&str>,
        port: Option<u16>,
        wait: std::time::Duration,
    ) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let proxy = &self.proxies[up.proxy];
        let current = proxy.pool(up.pool_idx).clone();
        let target = match (host, proxy.cfg.allow_reconnect_redirect) {
            (Some(h), true) => PoolUrl {
                host: h.to_string(),
                port: port.unwrap_or(current.port),
                tls: current.tls,
            },
            (Some(h), false) => {
                log::warn!(
                    "[{}] pool asked to reconnect to {h}:{}; allow_reconnect_redirect is off, reconnecting to {}:{}",
                    self.name(u),
                    port.unwrap_or(current.port),
                    current.host,
                    current.port
                );
                current
            }
            (None, _) => current,
        };
        log::info!(
            "[{}] pool asked to reconnect (in {}s) to {}:{}; miners stay connected",
            self.name(u),
            wait.as_secs_f64(),
            target.host,
            target.port
        );
        let up = &mut self.upstreams[u];
        up.failover
            .reconnect_requested(Instant::now(), wait, target);
    }

    /// Enters a share going to pool connection `conn` of upstream `u` in the reply table, whatever the pool's
    /// protocol: its difficulty (the miner's under vardiff, else the pool's, for the hashrate figures) and its
    /// `share_timeout` (`sv2_share_timeout`) deadline. Its request id; `None` without that upstream.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pending_submit(
        &mut self,
        u: usize,
        conn: usize,
        miner: usize,
        gen: u64,
        id: &IdBuf,
        prefix: u64,
        replied: bool,
    ) -> Option<u64> {
        let difficulty = match self.conns.get(miner) {
            Some(Conn::Miner(m)) => m.session.vardiff.as_ref().map(|v| v.difficulty),
            _ => None,
        };
        let sv2 = self.is_sv2_conn(conn);
        let up = self.upstreams.get_mut(u)?;
        let difficulty = difficulty.unwrap_or(up.pool_difficulty);
        let now = Instant::now();
        let deadline = now + self.proxies[up.proxy].timing.share_for(sv2);
        Some(up.pending.insert(
            Req::Submit {
                miner,
                gen,
                id: id.clone(),
                prefix,
                epoch: up.epoch,
                replied,
                difficulty,
            },
            conn,
            now,
            Some(deadline),
        ))
    }

    /// Sends a miner's share to the pool; false when the pool connection cannot take it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_share(
        &mut self,
        u: usize,
        conn: usize,
        miner: usize,
        gen: u64,
        id: &IdBuf,
        share: &Share<'_>,
        prefix: u64,
        replied: bool,
    ) -> bool {
        if let (true, Share::Stratum(s)) = (self.is_sv2_conn(conn), share) {
            return self.forward_sv2_share(u, conn, miner, gen, id, s, prefix, replied);
        }
        if !matches!(self.conns.get(conn), Some(Conn::Pool(_))) {
            return false;
        }
        let Some(pid) = self.pending_submit(u, conn, miner, gen, id, prefix, replied) else {
            return false;
        };
        // With passthrough the pool sees the miner's own worker name.
        let user = match self.conns.get(miner) {
            Some(Conn::Miner(m)) => m.session.pool_account.as_ref().map(|a| a.0.clone()),
            _ => None,
        };
        let up = &mut self.upstreams[u];
        let proxy = &self.proxies[up.proxy];
        let Some(Conn::Pool(pc)) = self.conns.get_mut(conn) else {
            return false;
        };
        let user: &str = user.as_deref().unwrap_or(&pc.session.user);
        let prefix = up.prefixes.bytes(prefix);
        let before = pc.io.queued();
        let sent = pc
            .io
            .queue_with(|out| pool_msg::write_submit(out, pid, user, share, prefix));
        if sent != crate::io::Sent::Ok {
            up.pending.take(pid);
            return false;
        }
        proxy
            .stats
            .pool(pc.session.pool_idx)
            .on_bytes_out(pc.io.queued().saturating_sub(before));
        self.mark_dirty(conn);
        true
    }
}
