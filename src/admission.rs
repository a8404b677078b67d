//! Accepting miners: within the descriptors left after the proxy's reserve (`limits`) and within `max_miners`.
//! A listener that cannot accept (no miner slot, or EMFILE, ENFILE, ENOBUFS, ENOMEM) is *paused*: its backlog
//! waits, in order, and is accepted again as soon as a miner leaves (the same poll round) or at the next tick
//! (100 ms; a slot freed by another reactor, a descriptor freed elsewhere). mio listeners are edge-triggered, so
//! the reactor retries them itself; nothing is retried in between, so a paused proxy does not spin.
//!
//! Past `max_miners` (the entry's or the total) a new connection is closed at once and counted
//! (`miners_refused`). Exhaustion and refusal are logged once when they begin and once when they end.

use crate::io::Io;
use crate::reactor::Reactor;
use crate::state::{Conn, Miner};
use crate::stats::ProxyStats;
use mio::{Interest, Token};
use std::sync::atomic::Ordering::Relaxed;

/// What an accept error means for the listener.
enum AcceptError {
    /// The backlog is empty.
    Drained,
    /// This one connection failed (reset before it was accepted, interrupted): try the next.
    Next,
    /// No descriptor or memory (or an unknown error): wait until one is free.
    Pause,
}

fn classify(e: &std::io::Error) -> AcceptError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock => return AcceptError::Drained,
        std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted => {
            return AcceptError::Next
        }
        _ => {}
    }
    match e.raw_os_error() {
        Some(libc::EPROTO | libc::EPERM | libc::ECONNRESET) => AcceptError::Next,
        _ => AcceptError::Pause,
    }
}

impl Reactor {
    /// Accepts the connections waiting on listener `t`, until its backlog is empty or no miner can be taken.
    pub(crate) fn accept(&mut self, t: usize) {
        loop {
            let Some(Conn::Listener {
                listener, proxy, ..
            }) = self.conns.get(t)
            else {
                return;
            };
            let proxy = *proxy;
            if !crate::limits::take_miner_slot() {
                self.pause_listener(t, "every miner slot is taken");
                return;
            }
            let (socket, addr) = match listener.accept() {
                Ok(x) => x,
                Err(e) => {
                    crate::limits::give_back_miners(1);
                    match classify(&e) {
                        AcceptError::Drained => self.listener_drained(t),
                        AcceptError::Next => continue,
                        AcceptError::Pause => self.pause_listener(t, &format!("accept: {e}")),
                    }
                    return;
                }
            };
            if self.paused.contains(&t) {
                crate::limits::delayed();
            }
            if let Some((scope, limit)) = self.take_proxy_slot(proxy) {
                crate::limits::give_back_miners(1);
                drop(socket);
                ProxyStats::inc(&self.proxies[proxy].stats.miners_refused);
                self.admission.refusing[scope].refused(&limit);
                continue;
            }
            self.end_refusing(proxy);
            self.new_miner(t, proxy, socket, addr);
        }
    }

    /// Turns an accepted connection into a miner (its slots are taken).
    fn new_miner(
        &mut self,
        t: usize,
        proxy: usize,
        mut socket: mio::net::TcpStream,
        addr: std::net::SocketAddr,
    ) {
        let Some(Conn::Listener {
            tls,
            proxy_protocol,
            ..
        }) = self.conns.get(t)
        else {
            return;
        };
        let tls = tls.clone();
        let proxy_header = *proxy_protocol;
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, Token(key), Interest::READABLE)
        {
            log::warn!("cannot register miner {addr}: {e}");
            self.release_miner_slot(proxy);
            return;
        }
        let p = &self.proxies[proxy];
        let mut io = Io::new(socket, p.cfg.max_write_buffer);
        // Keep room for a share reply, not for the burst of subscribe answers and the first job.
        io.keep_capacity = 256;
        if let Some(cfg) = tls {
            match rustls::ServerConnection::new(cfg) {
                Ok(c) => io.set_tls(rustls::Connection::Server(c)),
                Err(e) => {
                    log::warn!("[{}] TLS session for {addr} failed: {e}", p.cfg.name);
                    let _ = self.poll.registry().deregister(&mut io.socket);
                    self.release_miner_slot(proxy);
                    return;
                }
            }
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        let vardiff = p.cfg.vardiff.is_some();
        entry.insert(Conn::Miner(Miner::new(
            io,
            addr,
            gen,
            proxy,
            p.dialect,
            proxy_header,
            vardiff,
        )));
        ProxyStats::inc(&p.stats.miners_total);
        log::debug!("[{}] miner {addr} connected", p.cfg.name);
    }

    /// Counts a miner of `proxy` against the `max_miners` limits; the limit reached instead, if one is (its
    /// refusal scope: the proxy's index, or the number of proxies for the total).
    fn take_proxy_slot(&mut self, proxy: usize) -> Option<(usize, String)> {
        let a = &self.admission;
        let under = |max: u64| move |n: u64| (n < max).then_some(n + 1);
        if a.miners
            .fetch_update(Relaxed, Relaxed, under(self.max_total()))
            .is_err()
        {
            return Some((self.proxies.len(), self.total_limit()));
        }
        let p = &self.proxies[proxy];
        let max = p.cfg.max_miners.as_ref().map_or(u64::MAX, |m| m.value);
        let connected = &p.stats.miners_connected;
        if connected
            .fetch_update(Relaxed, Relaxed, under(max))
            .is_err()
        {
            a.miners.fetch_sub(1, Relaxed);
            return Some((proxy, self.proxy_limit(proxy)));
        }
        None
    }

    fn max_total(&self) -> u64 {
        self.admission.max_total.load(Relaxed)
    }

    fn total_limit(&self) -> String {
        format!("max_miners {} (all proxies)", self.max_total())
    }

    fn proxy_limit(&self, proxy: usize) -> String {
        let p = &self.proxies[proxy].cfg;
        let max = p.max_miners.as_ref().map_or(u64::MAX, |m| m.value);
        format!("[{}] max_miners {max}", p.name)
    }

    /// A miner of `proxy` was admitted: refusal episodes of its entry and of the total end.
    fn end_refusing(&self, proxy: usize) {
        let total = self.proxies.len();
        self.admission.refusing[proxy].admitted(|| self.proxy_limit(proxy));
        self.admission.refusing[total].admitted(|| self.total_limit());
    }

    /// A miner of `proxy` is gone: its descriptor slot and its `max_miners` places are free again, and paused
    /// listeners are retried at the end of the round.
    pub(crate) fn release_miner_slot(&mut self, proxy: usize) {
        crate::limits::give_back_miners(1);
        let _ = self
            .admission
            .miners
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
        ProxyStats::dec(&self.proxies[proxy].stats.miners_connected);
        self.retry_accept = true;
    }

    /// Every miner still held is released (the reactor stops).
    pub(crate) fn release_all_miners(&mut self) {
        let miners: Vec<usize> = self
            .conns
            .iter()
            .filter_map(|(_, c)| match c {
                Conn::Miner(m) => Some(m.proxy),
                _ => None,
            })
            .collect();
        for proxy in miners {
            self.release_miner_slot(proxy);
        }
        for _ in self.paused.drain(..) {
            crate::limits::pause_end();
        }
    }

    fn pause_listener(&mut self, t: usize, cause: &str) {
        // Kicked miners' lingering sockets give their descriptors back first.
        if !self.lingering.is_empty() {
            self.close_all_lingering();
        }
        if !self.paused.contains(&t) {
            self.paused.push(t);
            crate::limits::pause_begin(cause);
        }
    }

    fn listener_drained(&mut self, t: usize) {
        if let Some(i) = self.paused.iter().position(|&p| p == t) {
            self.paused.swap_remove(i);
            crate::limits::pause_end();
        }
    }

    /// Tries the paused listeners again (a miner left, or the tick).
    pub(crate) fn retry_paused(&mut self) {
        self.retry_accept = false;
        let mut i = 0;
        while let Some(&t) = self.paused.get(i) {
            self.accept(t);
            // The listener stays at `i` while paused; a drained one was swapped out.
            if self.paused.get(i) == Some(&t) {
                i += 1;
            }
        }
    }
}
