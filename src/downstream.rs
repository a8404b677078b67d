//! Miners: accepting them, their requests (configure, subscribe, authorize, submit, ...), and their end.
//!
//! A miner is attached to one upstream (a pool session) from its first mining request; it gets a nonce prefix
//! from that upstream when its subscribe is answered, which may wait until the pool connection is ready.

use crate::auth::{AuthConfig, AuthMode, Refusal as AuthRefusal};
use crate::close::{Close, ProxyHeader, Refusal};
use crate::config::ShareReply;
use crate::io::Io;
use crate::protocol::json::{self, IdBuf, Msg, Scalar};
use crate::protocol::stratum::{self, ConfigureRequest, SubmitError};
use crate::protocol::{equihash, Dialect, Share};
use crate::reactor::{Conn, Reactor};
use crate::share_batch::{Parked, ShareBatch};
use crate::share_hash::{self, ShareInput};
use crate::stats::ProxyStats;
use crate::validate::{self, Vardiff, Verdict};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Instant;

/// Invalid lines a miner may send before it is disconnected.
const MAX_BAD_LINES: u32 = 8;

/// How long a miner's previous vardiff target still counts after a retarget.
pub(crate) const VARDIFF_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest worker name kept.
const MAX_WORKER_NAME: usize = 128;

/// One miner connection.
#[derive(Debug)]
pub(crate) struct Miner {
    pub io: Io,
    pub addr: SocketAddr,
    /// Tells this miner from an earlier one in the same slot.
    pub gen: u64,
    pub proxy: usize,
    /// The upstream it is attached to, and its index in that upstream's miner list.
    pub upstream: Option<usize>,
    pub slot_in_upstream: usize,
    /// Its nonce prefix, once its subscribe is answered.
    pub prefix: Option<u64>,
    /// Its subscribe has been answered.
    pub subscribed: bool,
    pub authorized: bool,
    pub extranonce_subscribed: bool,
    /// The version-rolling mask agreed with it.
    pub version_mask: Option<u32>,
    /// The version-rolling mask it asked for in `mining.configure` (a pool's new mask is cut to it).
    pub requested_mask: Option<u32>,
    /// Requests waiting for the upstream to be ready.
    pub deferred_configure: Option<(IdBuf, ConfigureRequest)>,
    pub deferred_subscribe: Option<IdBuf>,
    pub waiting_since: Option<Instant>,
    pub worker: Box<str>,
    /// Shares sent upstream and not yet answered.
    pub pending_shares: u32,
    pub connected_at: Instant,
    pub bad_lines: u32,
    /// It closed its sending side; it is closed once its pending shares are answered.
    pub read_closed: bool,
    /// A PROXY protocol header is still expected (before anything else, TLS included).
    pub proxy_header: Option<crate::proxy_protocol::Mode>,
    /// Its own difficulty, when the proxy runs vardiff.
    pub vardiff: Option<Box<Vardiff>>,
    /// With `auth: passthrough`: the worker name and password the pool authorizes (and submits carry).
    pub pool_account: Option<(Box<str>, Box<str>)>,
    /// With `auth: passthrough`: an authorize waiting for a ready pool connection.
    pub deferred_authorize: Option<IdBuf>,
    /// Its worker's counters (shares, hashrate), once authorized.
    pub worker_stats: Option<std::sync::Arc<crate::stats::WorkerStats>>,
}

impl Miner {
    /// A miner just accepted, on `io`, of proxy entry `proxy`.
    pub fn new(
        io: Io,
        addr: SocketAddr,
        gen: u64,
        proxy: usize,
        proxy_header: Option<crate::proxy_protocol::Mode>,
        vardiff: bool,
    ) -> Miner {
        let now = Instant::now();
        Miner {
            io,
            addr,
            gen,
            proxy,
            upstream: None,
            slot_in_upstream: 0,
            prefix: None,
            subscribed: false,
            authorized: false,
            extranonce_subscribed: false,
            version_mask: None,
            requested_mask: None,
            deferred_configure: None,
            deferred_subscribe: None,
            waiting_since: None,
            worker: "".into(),
            pending_shares: 0,
            connected_at: now,
            bad_lines: 0,
            read_closed: false,
            proxy_header,
            vardiff: vardiff.then(|| Box::new(Vardiff::new(now))),
            pool_account: None,
            deferred_authorize: None,
            worker_stats: None,
        }
    }

    /// Subscribed and authorized: it gets jobs.
    pub fn gets_jobs(&self) -> bool {
        self.subscribed && self.authorized
    }
}

impl Reactor {
    /// A readiness event on miner `t`.
    pub(crate) fn on_miner_event(&mut self, t: usize, readable: bool, writable: bool) {
        if writable {
            self.flush(t);
        }
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        if !readable || m.read_closed {
            return;
        }
        if m.proxy_header.is_some() {
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
                if m.pending_shares > 0 {
                    m.read_closed = true;
                    return;
                }
            }
        }
        self.close_miner(t, reason);
    }

    /// Reads the PROXY protocol header of miner `t`: `Ok(true)` once done (the miner's address is then the one
    /// it names), `Ok(false)` while more bytes are needed, `Err` with the reason to close.
    fn read_proxy_header(&mut self, t: usize) -> Result<bool, ProxyHeader> {
        use crate::proxy_protocol::{parse, Parsed, MAX_HEADER};
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return Ok(false);
        };
        let Some(mode) = m.proxy_header else {
            return Ok(true);
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
            match parse(&m.io.pre, mode).map_err(ProxyHeader::Bad)? {
                Parsed::Incomplete => {}
                Parsed::Header { len, source } => {
                    m.io.pre.drain(..len);
                    m.proxy_header = None;
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
                Parsed::Absent => {
                    m.proxy_header = None;
                    return Ok(true);
                }
            }
        }
    }

    /// After `t`'s output queue drained: a half-closed miner with nothing pending is done.
    pub(crate) fn after_drain(&mut self, t: usize) {
        if let Some(Conn::Miner(m)) = self.conns.get(t) {
            if m.read_closed && m.pending_shares == 0 {
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
            Err(e) => self.bad_miner_line(t, &IdBuf::null(), e.text()),
        });
        self.parser = Some(parser);
        flow
    }

    /// Answers a bad request with an error; disconnects after too many.
    fn bad_miner_line(&mut self, t: usize, id: &IdBuf, why: &'static str) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        m.bad_lines += 1;
        let bad = m.bad_lines;
        let (addr, proxy) = (m.addr, m.proxy);
        let mut out = Vec::with_capacity(96);
        json::write_error(&mut out, id.as_bytes(), 20, why);
        if !self.queue(t, &out) {
            return ControlFlow::Break(());
        }
        if bad > MAX_BAD_LINES {
            log::warn!(
                "[{}] miner {addr}: {bad} bad requests (last: {why}), disconnecting",
                self.proxies[proxy].cfg.name
            );
            self.close_reason = Some(Close::BadRequests { why });
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn on_miner_msg(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let Some(method) = msg.method else {
            // A reply from the miner (to client.get_version, say): nothing waits for it.
            if msg.is_reply {
                return ControlFlow::Continue(());
            }
            return self.bad_miner_line(t, &msg.id, "request has no method");
        };
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return ControlFlow::Break(());
        };
        match self.proxies[m.proxy].dialect {
            Dialect::Stratum => self.on_stratum_request(t, method, msg),
            Dialect::Equihash => self.on_equihash_request(t, method, msg),
        }
    }

    fn on_equihash_request(&mut self, t: usize, method: &str, msg: &Msg<'_>) -> ControlFlow<()> {
        match method {
            "mining.submit" => self.miner_submit(t, msg),
            "mining.subscribe" => self.miner_subscribe(t, msg),
            "mining.authorize" => self.miner_authorize(t, msg),
            "mining.extranonce.subscribe" => {
                if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                    m.extranonce_subscribed = true;
                }
                self.reply_result(t, &msg.id, b"true")
            }
            "mining.suggest_target" | "mining.suggest_difficulty" => {
                self.reply_result(t, &msg.id, b"true")
            }
            "mining.ping" => self.reply_result(t, &msg.id, b"\"pong\""),
            _ => self.bad_miner_line(t, &msg.id, "unknown method"),
        }
    }

    fn on_stratum_request(&mut self, t: usize, method: &str, msg: &Msg<'_>) -> ControlFlow<()> {
        match method {
            "mining.submit" => self.miner_submit(t, msg),
            "mining.subscribe" => self.miner_subscribe(t, msg),
            "mining.authorize" => self.miner_authorize(t, msg),
            "mining.configure" => self.miner_configure(t, msg),
            "mining.extranonce.subscribe" => {
                if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                    m.extranonce_subscribed = true;
                }
                self.reply_result(t, &msg.id, b"true")
            }
            "mining.suggest_difficulty" => {
                // Without vardiff the pool's difficulty rules the upstream: acknowledged, not forwarded.
                if let (Some(Conn::Miner(m)), Some(d)) =
                    (self.conns.get_mut(t), msg.param(0).as_f64())
                {
                    if let Some(vd) = m.vardiff.as_mut() {
                        vd.suggested = (d.is_finite() && d > 0.0).then_some(d);
                    }
                }
                self.reply_result(t, &msg.id, b"true")
            }
            "mining.suggest_target" => self.reply_result(t, &msg.id, b"true"),
            "mining.ping" => self.reply_result(t, &msg.id, b"\"pong\""),
            "mining.get_transactions" | "mining.multi_version" => {
                self.reply_error(t, &msg.id, 20, "not supported by this proxy")
            }
            _ => self.bad_miner_line(t, &msg.id, "unknown method"),
        }
    }

    /// Queues `{"id":ID,"result":RESULT,"error":null}` unless the request was a notification.
    pub(crate) fn reply_result(&mut self, t: usize, id: &IdBuf, result: &[u8]) -> ControlFlow<()> {
        let mut out = Vec::with_capacity(64);
        json::write_result(&mut out, id.as_bytes(), result);
        if self.queue(t, &out) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    /// Queues an error reply.
    pub(crate) fn reply_error(
        &mut self,
        t: usize,
        id: &IdBuf,
        code: i32,
        message: &str,
    ) -> ControlFlow<()> {
        let mut out = Vec::with_capacity(96);
        json::write_error(&mut out, id.as_bytes(), code, message);
        if self.queue(t, &out) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    fn miner_configure(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let req = match stratum::parse_configure(msg.params_json) {
            Ok(r) => r,
            Err(e) => return self.bad_miner_line(t, &msg.id, e),
        };
        if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
            m.deferred_configure = Some((msg.id.clone(), req));
        }
        self.attach_and_serve(t);
        ControlFlow::Continue(())
    }

    fn miner_subscribe(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        if m.subscribed || m.deferred_subscribe.is_some() {
            return self.reply_error(t, &msg.id, 20, "already subscribed");
        }
        m.deferred_subscribe = Some(msg.id.clone());
        self.attach_and_serve(t);
        ControlFlow::Continue(())
    }

    fn miner_authorize(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let Some(worker) = msg.param(0).as_str() else {
            return self.bad_miner_line(t, &msg.id, "authorize needs a worker name");
        };
        let password = msg.param(1).as_str().unwrap_or("");
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let cut = worker
            .char_indices()
            .nth(MAX_WORKER_NAME)
            .map_or(worker.len(), |(i, _)| i);
        m.worker = worker[..cut].into();
        let (proxy, ip, addr) = (m.proxy, m.addr.ip(), m.addr);
        match &self.proxies[proxy].cfg.auth {
            AuthConfig::Mode(AuthMode::None) => {}
            AuthConfig::Mode(AuthMode::Passthrough) => {
                // The pool decides; the answer comes back through the reply table.
                m.pool_account = Some((m.worker.clone(), password.into()));
                m.deferred_authorize = Some(msg.id.clone());
                self.attach_and_serve(t);
                return ControlFlow::Continue(());
            }
            AuthConfig::Users(cfg) => {
                let cfg = cfg.clone();
                match self
                    .authenticator
                    .check(&cfg, worker, password, ip, Instant::now())
                {
                    Ok(()) => {}
                    Err(AuthRefusal::BadCredentials) => {
                        log::info!(
                            "[{}] miner {addr}: authorization refused for '{}'",
                            self.proxies[proxy].cfg.name,
                            &worker[..cut]
                        );
                        return self.reply_error(t, &msg.id, 24, "unauthorized worker");
                    }
                    Err(AuthRefusal::TooManyFailures) => {
                        let _ = self.reply_error(
                            t,
                            &msg.id,
                            24,
                            "too many failed authorizations from this address, try later",
                        );
                        self.close_reason = Some(Close::AuthFailures);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        self.admit(t, &msg.id, b"true")
    }

    /// Marks miner `t` authorized, answers its authorize with `result`, and sends it work if it is ready.
    pub(crate) fn admit(&mut self, t: usize, id: &IdBuf, result: &[u8]) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return ControlFlow::Break(());
        };
        let first = !m.authorized;
        m.authorized = true;
        let now = Instant::now();
        let name_changed = m
            .worker_stats
            .as_ref()
            .is_none_or(|w| w.name() != &*m.worker);
        if name_changed {
            if let Some(old) = m.worker_stats.take() {
                old.detach();
            }
            m.worker_stats = Some(self.proxies[m.proxy].stats.workers.attach(&m.worker, now));
        }
        let flow = self.reply_result(t, id, result);
        if first {
            self.send_current_work(t);
        }
        flow
    }

    fn miner_submit(&mut self, t: usize, msg: &Msg<'_>) -> ControlFlow<()> {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return ControlFlow::Break(());
        };
        ProxyStats::inc(&self.proxies[m.proxy].stats.shares_submitted);
        if self.draining.is_some() {
            return self.refuse_share(t, &msg.id, Refusal::ShuttingDown);
        }
        if !m.subscribed {
            return self.refuse_share(t, &msg.id, Refusal::NotSubscribed);
        }
        if !m.authorized {
            return self.refuse_share(t, &msg.id, Refusal::Unauthorized);
        }
        let (Some(u), Some(prefix)) = (m.upstream, m.prefix) else {
            return self.refuse_share(t, &msg.id, Refusal::NotSubscribed);
        };
        let gen = m.gen;
        let Some(up) = self.upstreams.get(u) else {
            return self.refuse_share(t, &msg.id, Refusal::PoolUnavailable);
        };
        let proxy = &self.proxies[m.proxy];
        let size = up.miner_extranonce2_size();
        let share = match proxy.dialect {
            Dialect::Stratum => {
                stratum::check_submit(&msg.params, msg.params_len, size).and_then(|s| {
                    let bits = s
                        .version_bits
                        .map(|v| u32::from_str_radix(v, 16).unwrap_or(u32::MAX));
                    match (bits, m.version_mask) {
                        (Some(b), mask) if b & !mask.unwrap_or(0) != 0 => {
                            Err(SubmitError::OutsideMask)
                        }
                        _ => Ok(Share::Stratum(s)),
                    }
                })
            }
            Dialect::Equihash => {
                equihash::check_submit(&msg.params, msg.params_len, size, &proxy.solution)
                    .map(Share::Equihash)
            }
        };
        let share = match share {
            Ok(s) => s,
            Err(e) => return self.refuse_share(t, &msg.id, Refusal::BadSubmit(e)),
        };
        if !proxy.cfg.validates() {
            return self.share_judged(t, &msg.id, &share, u, prefix, None, Instant::now());
        }
        let now = Instant::now();
        let vd_target = m.vardiff.as_ref().map(|v| v.target(now, VARDIFF_GRACE));
        let mask = m.version_mask.unwrap_or(0);
        let (max_roll, params) = (proxy.cfg.max_ntime_roll, proxy.cfg.equihash_params());
        // The miner's extranonce1 (pool E1 || prefix), on the stack.
        let mut e1p_buf = [0u8; validate::MAX_EXTRANONCE1];
        let e1p_len = up.e1.len() + up.prefixes.prefix_len();
        let Some(e1p) = e1p_buf.get_mut(..e1p_len) else {
            return self.refuse_share(t, &msg.id, Refusal::Extranonce1TooLong);
        };
        let (pool_part, prefix_part) = e1p.split_at_mut(up.e1.len());
        pool_part.copy_from_slice(&up.e1);
        for (d, b) in prefix_part.iter_mut().zip(up.prefixes.bytes(prefix)) {
            *d = b;
        }
        let e1p = &e1p_buf[..e1p_len];
        let Some(up) = self.upstreams.get_mut(u) else {
            return self.refuse_share(t, &msg.id, Refusal::PoolUnavailable);
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
                                    id: msg.id.clone(),
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
        self.share_judged(t, &msg.id, &share, u, prefix, Some(verdict), now)
    }

    /// Answers a share with an error and counts it under the refusal's label.
    fn refuse_share(&mut self, t: usize, id: &IdBuf, refusal: Refusal<'_>) -> ControlFlow<()> {
        if let Some(Conn::Miner(m)) = self.conns.get(t) {
            let stats = &self.proxies[m.proxy].stats;
            ProxyStats::inc(&stats.shares_errored);
            stats.on_share_error(refusal.reject());
            if let Some(w) = &m.worker_stats {
                w.on_rejected(Instant::now());
            }
        }
        let code = refusal.code();
        refusal.with_text(|why| self.reply_error(t, id, code, why))
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
            let credited = match m.vardiff.as_mut() {
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
                return self.reply_result(t, id, b"true");
            }
        }
        let (pending, max_pending) = (
            m.pending_shares,
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
                m.pending_shares += 1;
            }
            ProxyStats::inc(&self.proxies[proxy_idx].stats.shares_forwarded);
            if immediate {
                // The pool's verdict is counted and logged when it comes; the miner moves on now.
                return self.reply_result(t, id, b"true");
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

    /// Sends the current difficulty and job to a miner that just became subscribed and authorized.
    pub(crate) fn send_current_work(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get(t) else {
            return;
        };
        if !m.gets_jobs() {
            return;
        }
        let Some(u) = m.upstream else { return };
        let mut out = self.start_vardiff(t).unwrap_or_default();
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        if out.is_empty() {
            out.extend_from_slice(&up.difficulty_line);
        }
        out.extend_from_slice(&up.notify_line);
        if !out.is_empty() {
            self.queue(t, &out);
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
                m.pending_shares = m.pending_shares.saturating_sub(1);
                self.queue_with(t, write);
                true
            }
            _ => false,
        }
    }

    /// Closes miner `t`, releasing its place on its upstream; a kick (see [`Close::is_kick`]) is counted.
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
        let p = &self.proxies[m.proxy];
        if let Some(w) = &m.worker_stats {
            w.detach();
        }
        log::log!(
            reason.miner_log_level(),
            "[{}] miner {} ({}) disconnected: {reason}",
            p.cfg.name,
            m.addr,
            m.worker
        );
        self.detach_miner(&m, t);
    }

    /// Once a second: miners that never subscribed and authorized, and subscribes that waited too long.
    pub(crate) fn tick_miners(&mut self, now: Instant) {
        let mut idle = Vec::new();
        let mut waited = Vec::new();
        for (t, c) in self.conns.iter() {
            let Conn::Miner(m) = c else { continue };
            let timing = &self.proxies[m.proxy].timing;
            if let Some(since) = m.waiting_since {
                if now.duration_since(since) >= timing.pool_wait {
                    waited.push(t);
                    continue;
                }
            }
            if !m.gets_jobs()
                && m.deferred_subscribe.is_none()
                && now.duration_since(m.connected_at) >= timing.idle
            {
                idle.push(t);
            }
        }
        for t in idle {
            self.close_miner(t, Close::Idle);
        }
        for t in waited {
            let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
                continue;
            };
            let configure = m.deferred_configure.take();
            let subscribe = m.deferred_subscribe.take();
            for id in configure.map(|c| c.0).into_iter().chain(subscribe) {
                let _ = self.reply_error(t, &id, 20, "no pool connection available");
            }
            self.flush(t);
            self.close_miner(t, Close::NoPoolInTime);
        }
    }

    /// Answers a miner's deferred configure and subscribe from its (ready) upstream. Returns false when the
    /// upstream has no free prefix left for it.
    pub(crate) fn serve_deferred(&mut self, t: usize) -> bool {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return true;
        };
        let Some(u) = m.upstream else { return true };
        let Some(up) = self.upstreams.get_mut(u) else {
            return true;
        };
        if !up.ready {
            return true;
        }
        let dialect = self.proxies[m.proxy].dialect;
        let mut out = Vec::new();
        if let Some((id, req)) = m.deferred_configure.take() {
            let vr = req
                .version_rolling
                .map(|asked| up.pool_mask.map(|pm| pm & asked));
            m.version_mask = vr.flatten();
            m.requested_mask = req.version_rolling;
            stratum::write_configure_result(&mut out, &id, vr, &req.others);
        }
        let mut full = false;
        if let Some(id) = m.deferred_subscribe.take() {
            match up.prefixes.alloc() {
                Some(prefix) => {
                    up.waiting = up.waiting.saturating_sub(1);
                    m.prefix = Some(prefix);
                    m.subscribed = true;
                    m.waiting_since = None;
                    let bytes = up.prefixes.bytes(prefix);
                    match dialect {
                        Dialect::Stratum => stratum::write_subscribe_result(
                            &mut out,
                            &id,
                            m.gen,
                            &up.e1,
                            bytes,
                            up.miner_extranonce2_size(),
                        ),
                        Dialect::Equihash => {
                            equihash::write_subscribe_result(&mut out, &id, m.gen, &up.e1, bytes)
                        }
                    }
                }
                None => {
                    m.deferred_subscribe = Some(id);
                    full = true;
                }
            }
        }
        let authorize = m.deferred_authorize.is_some();
        if !out.is_empty() && self.queue(t, &out) {
            self.send_current_work(t);
        }
        if authorize {
            self.forward_miner_authorize(t);
        }
        !full
    }
}

/// The JSON text of a scalar result from a pool, passed to the miner.
pub(crate) fn scalar_json(s: &Scalar<'_>, complex: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    match *s {
        Scalar::Missing | Scalar::Null => out.extend_from_slice(b"null"),
        Scalar::Bool(true) => out.extend_from_slice(b"true"),
        Scalar::Bool(false) => out.extend_from_slice(b"false"),
        Scalar::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Scalar::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Scalar::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Scalar::Str(s) => json::write_str(out, s),
        Scalar::Complex => out.extend_from_slice(complex.as_bytes()),
    }
}
