//! One reactor: a mio poll loop on one thread owning every listener, miner and pool socket of its shard in a
//! slab, with reading and framing lines, output queues and flushing, the timers and shutdown. It imports only the
//! runtime's data (`state`) and the layers below; the handlers are `impl Reactor` blocks in other files
//! (miners: `downstream`; pools: `upstream`, `connect`, `pool_driver`; accepting: `admission`; ...).

use crate::close::Close;
use crate::io::Sent;
use crate::protocol::json::Parser;
use crate::state::{Admission, Command, Conn, Listening, ProxyState, Upstream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The waker's token: never a slab key.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// How often timers are looked at.
const TICK: Duration = Duration::from_millis(100);

/// Reads handled for one socket per event round before others get their turn.
pub(crate) const READS_PER_ROUND: u32 = 16;

/// Size of the shared read buffer.
const SCRATCH: usize = 64 * 1024;

/// The reactor's state.
pub(crate) struct Reactor {
    pub poll: Poll,
    pub conns: Slab<Conn>,
    pub upstreams: Slab<Upstream>,
    pub proxies: Vec<ProxyState>,
    /// Shared read buffer (taken while a read is handled).
    scratch: Vec<u8>,
    /// JSON parser (taken while a line is handled).
    pub parser: Option<Parser>,
    /// Tokens with queued output to flush at the end of the round.
    dirty: Vec<usize>,
    /// Tokens whose reads were cut short for fairness.
    requeue: Vec<usize>,
    /// V1 shares waiting to be hashed (many at a time) at the end of the round.
    pub share_batch: crate::share_batch::ShareBatch,
    /// The parked shares' hashes and the memory [`crate::share_hash::hash_many`] reuses.
    pub share_hashing: (Vec<Option<[u8; 32]>>, crate::share_hash::ManyScratch),
    /// The event being handled also said the peer closed (or failed): read on to the end of stream.
    peer_closed: bool,
    /// Why the connection being handled must close (set by a line handler that stops framing).
    pub(crate) close_reason: Option<crate::close::Close>,
    /// Generation of the next miner: tells a reused slot from its previous occupant.
    pub next_gen: u64,
    /// Verdict cache and failure counts for `auth: { users }`.
    pub authenticator: crate::auth::Authenticator,
    shutdown: Arc<AtomicBool>,
    next_slow_tick: Instant,
    /// Set once shutdown began: listeners are closed, and the loop ends at this deadline or when no share is
    /// pending any more.
    pub draining: Option<Instant>,
    /// How long a shutdown waits for pending shares.
    drain_timeout: Duration,
    /// Commands from the owning thread (config reloads), with the waker as their doorbell.
    pub(crate) commands: std::sync::mpsc::Receiver<Command>,
    /// `max_miners` counts shared with the other reactors.
    pub(crate) admission: Arc<Admission>,
    /// Listeners waiting for a free descriptor or miner slot (see `admission`).
    pub(crate) paused: Vec<usize>,
    /// A miner left: retry the paused listeners at the end of the round.
    pub(crate) retry_accept: bool,
    /// Bytes queued per miner whose last flush left some (see `budget`), and their sum.
    pub(crate) out_queued: std::collections::HashMap<usize, usize>,
    pub(crate) out_total: usize,
    /// Pool host name lookups on other threads; their answers ring the same waker.
    pub(crate) resolver: crate::resolve::Resolver,
    /// Kicked miners' lingering sockets (deadline, slab key, generation), oldest first (see `linger`).
    pub(crate) lingering: std::collections::VecDeque<(Instant, usize, u64)>,
}

impl Reactor {
    /// A reactor serving `proxies` on the given listeners (`(proxy index, listener, TLS config)`).
    // Each argument is a separate shared handle made by `proxy::start`; the sans-IO runtime will own them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        poll: Poll,
        proxies: Vec<ProxyState>,
        listeners: Vec<Listening>,
        shutdown: Arc<AtomicBool>,
        drain_timeout: Duration,
        commands: std::sync::mpsc::Receiver<Command>,
        admission: Arc<Admission>,
        resolver: crate::resolve::Resolver,
    ) -> std::io::Result<Reactor> {
        let mut r = Reactor {
            poll,
            conns: Slab::new(),
            upstreams: Slab::new(),
            proxies,
            scratch: vec![0; SCRATCH],
            parser: Some(Parser::default()),
            dirty: Vec::new(),
            requeue: Vec::new(),
            share_batch: Default::default(),
            share_hashing: Default::default(),
            close_reason: None,
            peer_closed: true,
            next_gen: 1,
            authenticator: crate::auth::Authenticator::default(),
            shutdown,
            next_slow_tick: Instant::now(),
            draining: None,
            drain_timeout,
            commands,
            admission,
            paused: Vec::new(),
            retry_accept: false,
            out_queued: Default::default(),
            out_total: 0,
            resolver,
            lingering: Default::default(),
        };
        for (proxy, mut listener, tls, proxy_protocol) in listeners {
            let entry = r.conns.vacant_entry();
            r.poll
                .registry()
                .register(&mut listener, Token(entry.key()), Interest::READABLE)?;
            entry.insert(Conn::Listener {
                listener,
                proxy,
                tls,
                proxy_protocol,
            });
        }
        for p in 0..r.proxies.len() {
            for route in 0..r.proxies[p].routes.len() {
                r.open_upstream(p, route, "the proxy started");
            }
        }
        Ok(r)
    }

    /// Runs until shutdown is requested.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("poll failed, reactor stops: {e}");
                break;
            }
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKER {
                    self.on_commands();
                    self.on_resolved();
                    continue;
                }
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                self.peer_closed = ev.is_read_closed() || ev.is_error();
                self.dispatch(t.0, readable, ev.is_writable());
            }
            let requeue = std::mem::take(&mut self.requeue);
            self.peer_closed = true;
            for t in requeue {
                self.dispatch(t, true, false);
            }
            self.judge_waiting_shares();
            self.flush_dirty();
            self.enforce_output_budget();
            if self.retry_accept && !self.paused.is_empty() {
                self.retry_paused();
                self.flush_dirty();
            }
            let now = Instant::now();
            if self.shutdown.load(Ordering::Relaxed) {
                match self.draining {
                    None => self.begin_drain(now),
                    Some(deadline) if now >= deadline || self.nothing_pending() => break,
                    Some(_) => {}
                }
            }
            if now >= next_tick {
                self.on_tick(now);
                self.flush_dirty();
                self.enforce_output_budget();
                next_tick = now + TICK;
            }
        }
        self.stop_all();
    }

    fn dispatch(&mut self, t: usize, readable: bool, writable: bool) {
        match self.conns.get(t) {
            Some(Conn::Listener { .. }) => self.accept(t),
            Some(Conn::Miner(_)) => self.on_miner_event(t, readable, writable),
            Some(Conn::Pool(_)) => self.on_pool_event(t, readable, writable),
            Some(Conn::Lingering(_)) => self.on_lingering_event(t, readable),
            None => {}
        }
    }

    /// Reads from socket `t` until it would block, framing lines and handing each to `on_line`.
    /// Returns why the connection must close, if it must.
    pub(crate) fn read_lines(
        &mut self,
        t: usize,
        max_line: usize,
        on_line: fn(&mut Reactor, usize, &mut [u8]) -> std::ops::ControlFlow<()>,
    ) -> Option<Close> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut reads = 0;
        let reason = loop {
            let io = match self.conns.get_mut(t) {
                Some(Conn::Miner(m)) => &mut m.io,
                Some(Conn::Pool(p)) => &mut p.io,
                _ => break None,
            };
            let got = io.read(&mut scratch);
            if io.dirty {
                // TLS has records to send (handshake, or plaintext released when the handshake completed).
                self.dirty.push(t);
            }
            let n = match got {
                Ok(0) => break Some(Close::PeerClosed),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break Some(Close::PeerReset)
                }
                Err(e) => break Some(Close::ReadError(e)),
            };
            let mut partial = std::mem::take(&mut io.partial);
            self.count_pool_bytes(t, n, true);
            let framed = crate::framing::feed(&mut partial, &mut scratch[..n], max_line, |line| {
                on_line(self, t, line)
            });
            match self.conns.get_mut(t) {
                Some(Conn::Miner(m)) => m.io.partial = partial,
                Some(Conn::Pool(p)) => p.io.partial = partial,
                _ => break None,
            }
            match framed {
                crate::framing::Framed::Ok => {}
                crate::framing::Framed::Stopped => {
                    break Some(self.close_reason.take().unwrap_or(Close::ByHandler))
                }
                crate::framing::Framed::TooLong => {
                    break Some(Close::LineTooLong { limit: max_line })
                }
            }
            // A short plain read emptied the socket: the next byte brings a new edge, so skip the read that
            // would only say WouldBlock (one syscall less per share).
            if n < scratch.len() && !self.peer_closed && self.plain_and_drained(t) {
                break None;
            }
            reads += 1;
            if reads >= READS_PER_ROUND {
                self.requeue.push(t);
                break None;
            }
        };
        self.scratch = scratch;
        reason
    }

    /// Reads of `t` resume after the other sockets had their turn this round.
    pub(crate) fn requeue_read(&mut self, t: usize) {
        self.requeue.push(t);
    }

    /// True when `t` is a plain (non-TLS) connection with no bytes kept back from an earlier raw read.
    fn plain_and_drained(&self, t: usize) -> bool {
        let io = match self.conns.get(t) {
            Some(Conn::Miner(m)) => &m.io,
            Some(Conn::Pool(p)) => &p.io,
            _ => return false,
        };
        io.tls.is_none() && io.pre.is_empty()
    }

    /// Queues `bytes` for connection `t` (flushed at the end of the round). False when the connection is gone
    /// or its queue overflowed (it is then closed).
    pub(crate) fn queue(&mut self, t: usize, bytes: &[u8]) -> bool {
        self.queue_with(t, |out| out.extend_from_slice(bytes))
    }

    /// Queues what `write` writes for connection `t`, straight into its output queue (flushed at the end of the
    /// round). False when the connection is gone or its queue overflowed (it is then closed).
    pub(crate) fn queue_with(&mut self, t: usize, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        let sent = match self.conns.get_mut(t) {
            Some(Conn::Miner(m)) => m.io.queue_with(write),
            Some(Conn::Pool(p)) => {
                let before = p.io.queued();
                let sent = p.io.queue_with(write);
                let n = p.io.queued().saturating_sub(before);
                self.count_pool_bytes(t, n, false);
                sent
            }
            _ => return false,
        };
        match sent {
            Sent::Ok => {
                self.mark_dirty(t);
                true
            }
            _ => {
                self.close_conn(t, Close::OutputFull);
                false
            }
        }
    }

    /// Counts bytes read from (`inbound`) or queued to pool connection `t` (nothing for miners).
    pub(crate) fn count_pool_bytes(&self, t: usize, n: usize, inbound: bool) {
        let Some(Conn::Pool(pc)) = self.conns.get(t) else {
            return;
        };
        let Some(up) = self.upstreams.get(pc.upstream) else {
            return;
        };
        let pool = self.proxies[up.proxy].stats.pool(pc.session.pool_idx);
        if inbound {
            pool.on_bytes_in(n);
        } else {
            pool.on_bytes_out(n);
        }
    }

    /// Remembers that `t` has output to flush this round.
    pub(crate) fn mark_dirty(&mut self, t: usize) {
        self.dirty.push(t);
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &t in &dirty {
            self.flush(t);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Writes what `t` has queued and sets its write interest to match what is left.
    pub(crate) fn flush(&mut self, t: usize) {
        let (io, miner) = match self.conns.get_mut(t) {
            Some(Conn::Miner(m)) => (&mut m.io, true),
            Some(Conn::Pool(p)) => (&mut p.io, false),
            _ => return,
        };
        let had = io.want_write;
        match io.flush() {
            Ok(drained) => {
                let queued = io.queued();
                let mut failed = None;
                if drained == io.want_write {
                    io.want_write = !drained;
                    let interest = if drained {
                        Interest::READABLE
                    } else {
                        Interest::READABLE | Interest::WRITABLE
                    };
                    if let Err(e) =
                        self.poll
                            .registry()
                            .reregister(&mut io.socket, Token(t), interest)
                    {
                        failed = Some(e);
                    }
                }
                if miner {
                    self.note_output(t, had, queued);
                }
                if let Some(e) = failed {
                    self.close_conn(t, Close::Reregister(e));
                    return;
                }
                if drained {
                    self.after_drain(t);
                }
            }
            Err(e) => self.close_conn(t, Close::WriteError(e)),
        }
    }

    /// Closes any connection with a reason.
    pub(crate) fn close_conn(&mut self, t: usize, reason: Close) {
        match self.conns.get(t) {
            Some(Conn::Miner(_)) => self.close_miner(t, reason),
            Some(Conn::Pool(_)) => self.pool_conn_failed(t, reason),
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Instant) {
        if !self.paused.is_empty() {
            self.retry_paused();
        }
        // Lookup answers come with a wake; taking any here too costs one empty channel read.
        self.on_resolved();
        self.expire_lingering(now);
        self.tick_upstreams(now);
        if now >= self.next_slow_tick {
            self.next_slow_tick = now + Duration::from_secs(1);
            self.tick_miners(now);
            self.retarget_miners(now);
            self.tick_routing(now);
            self.tick_sv2_channels(now);
        }
    }

    /// Shutdown, first step: stop accepting; pending shares get until the drain deadline for their verdicts.
    fn begin_drain(&mut self, now: Instant) {
        let listeners: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c, Conn::Listener { .. }))
            .map(|(k, _)| k)
            .collect();
        for _ in self.paused.drain(..) {
            crate::limits::pause_end();
        }
        for t in listeners {
            if let Conn::Listener { mut listener, .. } = self.conns.remove(t) {
                let _ = self.poll.registry().deregister(&mut listener);
            }
        }
        let pending: usize = self.upstreams.iter().map(|(_, u)| u.pending.len()).sum();
        log::info!(
            "shutting down: no new miners; waiting up to {:.1}s for {pending} pending pool request(s)",
            self.drain_timeout.as_secs_f64()
        );
        self.draining = Some(now + self.drain_timeout);
    }

    /// No share waits for a pool's verdict.
    fn nothing_pending(&self) -> bool {
        self.upstreams.iter().all(|(_, u)| {
            !u.pending
                .values()
                .any(|r| matches!(r, crate::state::Req::Submit { .. }))
        })
    }

    /// Shutdown, last step: answer every waiting share, close every socket.
    fn stop_all(&mut self) {
        let keys: Vec<usize> = self.upstreams.iter().map(|(k, _)| k).collect();
        for u in keys {
            self.fail_all_pending(u, "proxy is shutting down");
        }
        self.flush_dirty();
        let tokens: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for t in tokens {
            if let Some(Conn::Miner(m)) = self.conns.get_mut(t) {
                let _ = m.io.flush();
            }
        }
        self.release_all_miners();
        self.close_all_lingering();
        crate::limits::upstreams_closed(self.upstreams.len() as u64);
        self.conns.clear();
    }

    /// The waker that interrupts `poll` from another thread.
    pub(crate) fn waker(poll: &Poll) -> std::io::Result<Waker> {
        Waker::new(poll.registry(), WAKER)
    }
}
