//! Upstreams: pool sessions that many miners share, their pool connections, handshake, failover and failback,
//! and the messages pools send.
//!
//! An [`Upstream`] outlives its connections: when a pool connection drops, miners stay attached and the
//! upstream reconnects (moving down the pool list after repeated failures). A second connection (a *probe*)
//! checks a higher-priority pool or follows `client.reconnect`; once its handshake completes it takes over and
//! the old connection drains its in-flight shares.

use crate::close::Close;
use crate::config::PoolUrl;
use crate::io::Io;
use crate::nonce::PrefixAllocator;
use crate::pending::{Entry, Pending};
use crate::protocol::json::{IdBuf, Msg};
use crate::protocol::pool_msg::{self, HandshakeReq};
use crate::protocol::Share;
use crate::reactor::{Conn, Reactor};
use crate::session::failover::{Conns, Due, Failover, Policy};
use crate::session::pool::{BadLine, Ignored, PoolEvent, PoolPhase, PoolSession};
use crate::stats::{ProxyStats, Reject};
use crate::validate::JobBook;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Instant;

/// Bytes queued for a pool before the connection is considered stuck.
pub(crate) const POOL_OUT_LIMIT: usize = 64 * 1024 * 1024;

/// What a request sent upstream was.
#[derive(Debug)]
pub(crate) enum Req {
    Submit {
        miner: usize,
        gen: u64,
        id: IdBuf,
        prefix: u64,
        epoch: u32,
        /// The miner was answered already (`share_reply: immediate`).
        replied: bool,
        /// The share's difficulty (the miner's under vardiff, else the pool's), for hashrate figures.
        difficulty: f64,
    },
    /// A miner's own authorize, passed to the pool (`auth: passthrough`).
    MinerAuthorize { miner: usize, gen: u64, id: IdBuf },
    /// A passthrough worker authorized again on a new pool connection; nobody waits for the answer.
    ReAuthorize,
    /// The proxy's own handshake.
    Handshake(HandshakeReq),
}

/// One TCP connection to a pool: its socket and its protocol session.
#[derive(Debug)]
pub(crate) struct PoolConn {
    pub io: Io,
    pub upstream: usize,
    pub session: PoolSession,
    /// The address this connection goes to (one of its pool's name).
    pub addr: std::net::SocketAddr,
    /// The addresses of the pool's name not tried yet (the next one gets a turn if this connect fails).
    pub next_addrs: std::collections::VecDeque<std::net::SocketAddr>,
}

/// A pool session shared by up to `prefixes.capacity()` miners.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub proxy: usize,
    /// Number for logs (per proxy).
    pub number: usize,
    pub active: Option<usize>,
    pub probe: Option<usize>,
    pub draining: Vec<usize>,
    /// Index in the proxy's pool list of the pool in use (or being tried).
    pub pool_idx: usize,
    /// Back-off, failover, failback and reconnect.
    pub failover: Failover,
    /// The active connection is ready and its extranonce applies.
    pub ready: bool,
    pub ever_ready: bool,
    pub e1: Vec<u8>,
    pub n: usize,
    pub prefixes: PrefixAllocator,
    /// Bumped when prefixes are laid out anew, so stale shares cannot release new prefixes.
    pub epoch: u32,
    pub pool_mask: Option<u32>,
    pub difficulty_line: Vec<u8>,
    pub notify_line: Vec<u8>,
    /// Attached miners.
    pub miners: Vec<usize>,
    /// Attached miners whose subscribe waits for a prefix.
    pub waiting: usize,
    pub pending: Pending<Req>,
    /// Prefixes of departed miners whose shares are still in flight, with their count.
    pub orphans: HashMap<u64, u32>,
    /// Jobs broadcast, for local validation.
    pub book: JobBook,
    /// The pool's current share difficulty (V1), the ceiling of every miner's vardiff difficulty.
    pub pool_difficulty: f64,
    /// The host name lookup a connection attempt (active or probe) waits for; at most one at a time.
    pub lookup: Option<crate::connect::Lookup>,
}

impl Upstream {
    /// The extranonce2 size each miner gets.
    pub fn miner_extranonce2_size(&self) -> usize {
        self.n.saturating_sub(self.prefixes.prefix_len())
    }

    /// The connection shares go to, when ready.
    pub fn ready_conn(&self) -> Option<usize> {
        if self.ready {
            self.active
        } else {
            None
        }
    }

    /// Room for one more miner (assumed while the capacity is unknown).
    fn has_room(&self) -> bool {
        !self.ever_ready
            || self.prefixes.in_use() + (self.waiting as u64) < self.prefixes.capacity()
    }
}

impl Reactor {
    /// The failover settings of upstream `u`'s proxy.
    fn policy(&self, u: usize) -> Policy {
        let proxy = &self.proxies[self.upstreams[u].proxy];
        Policy {
            pools: proxy.pools.len(),
            failover_after: proxy.cfg.failover_after,
            failback: proxy.cfg.failback.then_some(proxy.timing.failback),
            failback_interval: proxy.timing.failback,
            retry_initial: proxy.timing.retry_initial,
            retry_max: proxy.timing.retry_max,
        }
    }

    fn pool_conn(&mut self, t: usize) -> Option<&mut PoolConn> {
        match self.conns.get_mut(t) {
            Some(Conn::Pool(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn name(&self, u: usize) -> String {
        match self.upstreams.get(u) {
            Some(up) => format!("{}#{}", self.proxies[up.proxy].cfg.name, up.number),
            None => "?".into(),
        }
    }

    /// Opens a new upstream for proxy `p` and starts connecting it.
    pub(crate) fn open_upstream(&mut self, p: usize, why: &str) -> usize {
        let number = self.proxies[p].upstreams.len() + 1;
        let u = self.upstreams.insert(Upstream {
            proxy: p,
            number,
            active: None,
            probe: None,
            draining: Vec::new(),
            pool_idx: 0,
            failover: Failover::default(),
            ready: false,
            ever_ready: false,
            e1: Vec::new(),
            n: 0,
            prefixes: PrefixAllocator::new(0),
            epoch: 0,
            pool_mask: None,
            difficulty_line: Vec::new(),
            notify_line: Vec::new(),
            miners: Vec::new(),
            waiting: 0,
            pending: Pending::default(),
            orphans: HashMap::new(),
            book: JobBook::default(),
            pool_difficulty: 1.0,
            lookup: None,
        });
        let proxy = &mut self.proxies[p];
        proxy.upstreams.push(u);
        ProxyStats::inc(&proxy.stats.upstreams);
        crate::limits::upstream_opened();
        proxy.stats.upstream_moved(None, Some(0));
        let url = proxy.pools[0].clone();
        log::info!(
            "[{}#{number}] opening upstream to {}:{}: {why}",
            proxy.cfg.name,
            url.host,
            url.port
        );
        self.connect(u, false, 0, url);
        u
    }

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
        if readable {
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

    fn start_handshake(&mut self, t: usize) {
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

    fn pool_reply(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
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
            Req::Submit {
                miner,
                gen,
                id,
                prefix,
                epoch,
                replied,
                difficulty,
            } => {
                let accepted = pool_msg::accepted(msg);
                ProxyStats::inc(if accepted {
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
                if accepted {
                    pool.on_accepted(difficulty);
                } else {
                    pool.on_rejected(Reject::from_error_json(msg.error_json));
                }
                // Also with local validation: a forwarded share counts for its worker by the pool's verdict.
                if let Some(w) = self.worker_of(miner, gen) {
                    if accepted {
                        w.on_accepted(difficulty, now);
                    } else {
                        w.on_rejected(now);
                    }
                }
                if replied {
                    if !accepted {
                        log::info!(
                            "[{}] pool rejected a share already answered true: {}",
                            self.name(u),
                            msg.error_json.unwrap_or("false")
                        );
                    }
                    if !self.note_share_answered(miner, gen) {
                        self.orphan_answered(u, prefix, epoch);
                    }
                    self.close_if_drained(t);
                    return ControlFlow::Continue(());
                }
                let delivered = self.deliver_share_reply_with(miner, gen, |out| {
                    pool_msg::write_share_reply(out, id.as_bytes(), msg)
                });
                if !delivered {
                    self.orphan_answered(u, prefix, epoch);
                }
                self.close_if_drained(t);
                return ControlFlow::Continue(());
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

    /// Pool connection `t` completed its handshake: it serves as the active connection or takes over as the probe.
    fn pool_ready(&mut self, t: usize) {
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

    /// The active connection `t` of `u` completed its handshake: apply what it brought and serve miners.
    fn upstream_ready(&mut self, u: usize, t: usize) {
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
        let (pool_target, pool_difficulty, last_job) =
            (ss.pool_target, ss.pool_difficulty, ss.last_job.clone());
        let name = self.name(u);
        let policy = self.policy(u);
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let proxy = &self.proxies[up.proxy];
        up.failover.ready(Instant::now(), pool_idx, &policy);
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
    fn serve_waiting(&mut self, u: usize) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let miners = up.miners.clone();
        for t in miners {
            let waits = matches!(self.conns.get(t), Some(Conn::Miner(m))
                if m.deferred_subscribe.is_some() || m.deferred_configure.is_some());
            if waits && !self.serve_deferred(t) {
                self.move_miner(t);
            }
        }
    }

    /// The pool gave upstream `u` a new extranonce: miners that asked for extranonce updates get theirs, the
    /// others are disconnected so they reconnect and subscribe anew.
    fn change_extranonce(&mut self, u: usize, e1: Vec<u8>, n: usize) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let proxy = &self.proxies[up.proxy];
        let dialect = proxy.dialect;
        let p = dialect.prefix_len(n, proxy.cfg.min_extranonce2_size);
        let relayout = p != up.prefixes.prefix_len();
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
            if !m.subscribed {
                continue;
            }
            let up = &mut self.upstreams[u];
            if relayout {
                m.prefix = up.prefixes.alloc();
            }
            match m.prefix {
                Some(prefix) if m.extranonce_subscribed => {
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
    pub(crate) fn broadcast(
        &mut self,
        u: usize,
        line: &[u8],
        filter: fn(&crate::downstream::Miner) -> bool,
    ) {
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
    fn set_version_masks(&mut self, u: usize, pool_mask: u32) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let mut line = Vec::with_capacity(64);
        for t in up.miners.clone() {
            let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
                continue;
            };
            let (Some(_), Some(asked)) = (m.version_mask, m.requested_mask) else {
                continue;
            };
            let mask = pool_mask & asked;
            m.version_mask = Some(mask);
            line.clear();
            pool_msg::write_set_version_mask(&mut line, mask);
            self.queue(t, &line);
        }
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
        let difficulty = match self.conns.get(miner) {
            Some(Conn::Miner(m)) => m.vardiff.as_ref().map(|v| v.difficulty),
            _ => None,
        };
        let Some(up) = self.upstreams.get_mut(u) else {
            return false;
        };
        let difficulty = difficulty.unwrap_or(up.pool_difficulty);
        let proxy = &self.proxies[up.proxy];
        if !matches!(self.conns.get(conn), Some(Conn::Pool(_))) {
            return false;
        }
        let now = Instant::now();
        let pid = up.pending.insert(
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
            Some(now + proxy.timing.share),
        );
        // With passthrough the pool sees the miner's own worker name.
        let user = match self.conns.get(miner) {
            Some(Conn::Miner(m)) => m.pool_account.as_ref().map(|a| a.0.clone()),
            _ => None,
        };
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

    /// A notification or request from a pool: the session handles it, the upstream applies what it means when
    /// `t` is its live connection.
    fn pool_message(&mut self, t: usize, method: &str, msg: &Msg<'_>) -> ControlFlow<()> {
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
    fn on_pool_target(&mut self, u: usize, line: Vec<u8>, difficulty: Option<f64>) {
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

    fn pool_reconnect_request(
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

    /// The probe of `u` is ready: it becomes the active connection, the old one drains.
    fn switch_to_probe(&mut self, u: usize) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let Some(probe) = up.probe.take() else { return };
        let old = up.active.replace(probe);
        up.ready = false;
        if let Some(old) = old {
            if let Some(pc) = self.pool_conn(old) {
                pc.session.drain();
            }
            self.upstreams[u].draining.push(old);
            self.close_if_drained(old);
        }
        let name = self.name(u);
        if let Some(pc) = self.pool_conn(probe) {
            let url = &pc.session.url;
            log::info!("[{name}] switching to pool {}:{}", url.host, url.port);
        }
        self.upstream_ready(u, probe);
    }

    /// Closes a draining connection once nothing sent on it waits.
    fn close_if_drained(&mut self, t: usize) {
        let Some(pc) = self.pool_conn(t) else { return };
        if !matches!(pc.session.phase, PoolPhase::Draining(_)) {
            return;
        }
        let u = pc.upstream;
        if !self
            .upstreams
            .get(u)
            .is_some_and(|up| up.pending.has_conn(t))
        {
            self.pool_conn_failed(t, "replaced by another pool connection");
        }
    }

    /// Pool connection `t` is gone (or must go): its in-flight shares get errors, its upstream recovers.
    pub(crate) fn pool_conn_failed(&mut self, t: usize, reason: impl std::fmt::Display) {
        let Some(Conn::Pool(_)) = self.conns.get(t) else {
            return;
        };
        let Conn::Pool(mut pc) = self.conns.remove(t) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut pc.io.socket);
        let u = pc.upstream;
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let was_ready = pc.session.was_ready();
        self.proxies[up.proxy]
            .stats
            .pool(pc.session.pool_idx)
            .on_closed(was_ready);
        let mut entries = Vec::new();
        up.pending.drain_conn(t, &mut entries);
        let name = self.name(u);
        let url = format!("{}:{}", pc.session.url.host, pc.session.url.port);
        for e in entries {
            self.answer_failed(
                u,
                e,
                "pool connection lost before the pool answered this share",
                Reject::PoolUnavailable,
            );
        }
        let up = &mut self.upstreams[u];
        if up.active == Some(t) {
            up.active = None;
            up.ready = false;
            log::warn!("[{name}] pool {url}: {reason}");
            self.attempt_failed(u, false);
        } else if up.probe == Some(t) {
            up.probe = None;
            let policy = self.policy(u);
            self.upstreams[u]
                .failover
                .probe_failed(Instant::now(), &policy);
            log::info!("[{name}] pool {url} not usable yet: {reason}");
        } else {
            up.draining.retain(|&d| d != t);
            log::debug!("[{name}] pool {url} connection closed: {reason}");
        }
    }

    /// A connection attempt of `u` failed: back off, and move down the pool list after repeated failures.
    pub(crate) fn attempt_failed(&mut self, u: usize, probe: bool) {
        if !self.upstreams.contains(u) {
            return;
        }
        let policy = self.policy(u);
        let up = &mut self.upstreams[u];
        let proxy = &self.proxies[up.proxy];
        let now = Instant::now();
        if probe {
            up.probe = None;
            up.failover.probe_failed(now, &policy);
            return;
        }
        let from = up.pool_idx;
        let successor = up.probe.is_some() || up.lookup.is_some();
        if up
            .failover
            .active_failed(now, &policy, &mut up.pool_idx, successor)
        {
            proxy.stats.upstream_moved(Some(from), Some(up.pool_idx));
            ProxyStats::inc(&proxy.stats.failovers);
            let next = proxy.pool(up.pool_idx);
            log::warn!(
                "[{}#{}] failing over to pool {} ({}:{})",
                proxy.cfg.name,
                up.number,
                up.pool_idx + 1,
                next.host,
                next.port
            );
        }
        if let Some(p) = up.probe.take() {
            // A connection to another pool is already on its way: it becomes the active one.
            up.active = Some(p);
            if matches!(self.conns.get(p), Some(Conn::Pool(pc)) if matches!(pc.session.phase, PoolPhase::Ready(_)))
            {
                self.upstream_ready(u, p);
            }
            return;
        }
        if let Some(lookup) = up.lookup.as_mut() {
            // The same for a probe still resolving its pool's name.
            lookup.probe = false;
        }
    }

    /// Answers a request that will get no reply from the pool.
    fn answer_failed(&mut self, u: usize, e: Entry<Req>, why: &str, reason: Reject) {
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
                if !self.note_share_answered(miner, gen) {
                    self.orphan_answered(u, prefix, epoch);
                }
                return;
            }
            if let Some(up) = self.upstreams.get(u) {
                ProxyStats::inc(&self.proxies[up.proxy].stats.shares_errored);
            }
            let mut line = Vec::with_capacity(128);
            pool_msg::write_failure(&mut line, id.as_bytes(), why);
            if !self.deliver_share_reply(miner, gen, &line) {
                self.orphan_answered(u, prefix, epoch);
            }
        }
    }

    /// A share of a departed miner was answered: its prefix is free once all of them are.
    fn orphan_answered(&mut self, u: usize, prefix: u64, epoch: u32) {
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

    /// Attaches miner `t` to an upstream with room (opening one if all are full) and answers what it can.
    pub(crate) fn attach_and_serve(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        let proxy = m.proxy;
        let u = match m.upstream {
            Some(u) => u,
            None => {
                let u = self.pick_upstream(proxy);
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
            if m.deferred_subscribe.is_some() && m.waiting_since.is_none() {
                m.waiting_since = Some(Instant::now());
                self.upstreams[u].waiting += 1;
            }
        }
        if !self.serve_deferred(t) {
            self.move_miner(t);
        }
    }

    fn pick_upstream(&mut self, p: usize) -> usize {
        let proxy = &self.proxies[p];
        if let Some(&u) = proxy
            .upstreams
            .iter()
            .find(|&&u| self.upstreams[u].has_room())
        {
            return u;
        }
        let n = proxy.upstreams.len();
        let cap = proxy
            .upstreams
            .first()
            .map_or(0, |&u| self.upstreams[u].prefixes.capacity());
        self.open_upstream(
            p,
            &format!("all {n} upstream(s) are full ({cap} miners each)"),
        )
    }

    /// Moves a miner whose subscribe found its upstream full to one with room.
    fn move_miner(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return;
        };
        let Some(u) = m.upstream.take() else { return };
        let slot = m.slot_in_upstream;
        let counted = m.waiting_since.take().is_some();
        self.unlink(u, t, slot, counted);
        self.attach_and_serve(t);
    }

    /// Removes miner `t` (at `slot`) from upstream `u`'s list.
    fn unlink(&mut self, u: usize, t: usize, slot: usize, counted_waiting: bool) {
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
    pub(crate) fn detach_miner(&mut self, m: &crate::downstream::Miner, t: usize) {
        let Some(u) = m.upstream else { return };
        self.unlink(u, t, m.slot_in_upstream, m.waiting_since.is_some());
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        if let Some(prefix) = m.prefix {
            if m.pending_shares > 0 {
                *up.orphans.entry(prefix).or_insert(0) += m.pending_shares;
            } else {
                up.prefixes.release(prefix);
            }
        }
        let primary = self.proxies[up.proxy].upstreams.first() == Some(&u);
        if up.miners.is_empty() && !primary {
            self.close_upstream(u, "its last miner left");
        }
    }

    /// Closes an extra upstream and its connections.
    fn close_upstream(&mut self, u: usize, why: &str) {
        log::info!("[{}] closing upstream: {why}", self.name(u));
        self.fail_all_pending(u, "upstream closed");
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let conns: Vec<usize> = up
            .active
            .into_iter()
            .chain(up.probe)
            .chain(up.draining.iter().copied())
            .collect();
        let p = up.proxy;
        for t in conns {
            if let Some(Conn::Pool(mut pc)) = self.conns.try_remove(t) {
                let _ = self.poll.registry().deregister(&mut pc.io.socket);
                let was_ready = pc.session.was_ready();
                self.proxies[p]
                    .stats
                    .pool(pc.session.pool_idx)
                    .on_closed(was_ready);
            }
        }
        let up = self.upstreams.remove(u);
        let proxy = &mut self.proxies[up.proxy];
        proxy.stats.upstream_moved(Some(up.pool_idx), None);
        proxy.upstreams.retain(|&x| x != u);
        ProxyStats::dec(&proxy.stats.upstreams);
        crate::limits::upstreams_closed(1);
    }

    /// Timers of every upstream: share timeouts, handshake timeouts, retries, failback and reconnect probes.
    pub(crate) fn tick_upstreams(&mut self, now: Instant) {
        // By slot number rather than a collected key list: a tick allocates nothing when nothing happens.
        for u in 0..self.upstreams.capacity() {
            let Some(up) = self.upstreams.get_mut(u) else {
                continue;
            };
            let timing = self.proxies[up.proxy].timing;
            let mut expired = Vec::new();
            up.pending.expire(now, &mut expired);
            if !expired.is_empty() {
                let why = format!(
                    "the pool did not answer within {}s",
                    timing.share.as_secs_f64()
                );
                for e in expired {
                    self.answer_failed(u, e, &why, Reject::Timeout);
                }
            }
            let Some(up) = self.upstreams.get(u) else {
                continue;
            };
            let draining = up.draining.clone();
            for t in draining {
                self.close_if_drained(t);
            }
            let Some(up) = self.upstreams.get(u) else {
                continue;
            };
            for t in up.active.into_iter().chain(up.probe) {
                let Some(Conn::Pool(pc)) = self.conns.get(t) else {
                    continue;
                };
                if let Some(connecting) = pc.session.handshake_overdue(now, timing.handshake) {
                    let why = format!(
                        "no complete handshake within {}s",
                        timing.handshake.as_secs_f64()
                    );
                    if connecting {
                        self.connect_failed(t, &why);
                    } else {
                        self.pool_conn_failed(t, &why);
                    }
                }
            }
            self.expire_lookup(u, now);
            self.start_due_connections(u, now);
        }
    }

    fn start_due_connections(&mut self, u: usize, now: Instant) {
        if !self.upstreams.contains(u) {
            return;
        }
        let policy = self.policy(u);
        let up = &mut self.upstreams[u];
        let conns = Conns {
            active: up.active.is_some(),
            ready: up.ready,
            probe: up.probe.is_some(),
            lookup: up.lookup.is_some(),
        };
        let idx = up.pool_idx;
        match up.failover.due(now, conns, idx, &policy) {
            Due::Nothing => {}
            Due::Retry => {
                let url = self.proxies[up.proxy].pool(idx).clone();
                self.connect(u, false, idx, url);
            }
            Due::Reconnect(url) => self.connect(u, true, idx, url),
            Due::Failback => {
                let url = self.proxies[up.proxy].pools[0].clone();
                log::debug!("[{}] checking whether pool 1 is back", self.name(u));
                self.connect(u, true, 0, url);
            }
        }
    }
}
