//! Lingering close of a kicked miner (an `impl Reactor` block): its last replies are flushed, its sending side is
//! shut (FIN), and what it still sends is read and dropped until it closes or [`LINGER`] passes.
//!
//! A socket that sends more than [`MAX_DISCARD`] meanwhile is closed at once (a flood is cut off as before).
//! Only a socket whose output the kernel took entirely lingers: output left queued would hold memory outside the
//! output budget (`budget`), and is dropped with an immediate close as before.
//!
//! Closing a socket with unread input makes the kernel answer with a reset, and a reset makes the miner's kernel
//! drop every byte it received and the miner had not read yet: the replies to its last shares and the reason of
//! the kick. So a miner the proxy closes on purpose ([`Close::is_kick`](crate::close::Close::is_kick)) is drained
//! first. The miner itself is gone at the kick (upstream, route and stats as before); what lingers is only a
//! socket ([`Lingering`]). At most [`MAX_LINGERING`] per reactor; its descriptor is counted against the miners'
//! share (`limits::linger_begin`), and when a listener must wait for descriptors every lingering socket of the
//! reactor is closed at once.

use crate::io::Io;
use crate::reactor::{Reactor, READS_PER_ROUND};
use crate::state::{Conn, Lingering};
use mio::{Interest, Token};
use std::io::Read;
use std::time::{Duration, Instant};

/// How long a kicked miner's socket is drained before it is closed anyway.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// Lingering sockets per reactor; past it a kicked miner is closed at once.
pub(crate) const MAX_LINGERING: usize = 1024;

/// Bytes dropped from one lingering socket before it is closed anyway: a miner with a few requests in flight
/// sends far less; a flood is cut off as before.
pub(crate) const MAX_DISCARD: u64 = 256 * 1024;

impl Reactor {
    /// Takes the socket of a miner closed for `kick` (already gone from every structure; its output flushed
    /// once) for a lingering close; otherwise (not a kick, over the cap, descriptors short, the socket failed)
    /// it is closed at once as it is dropped.
    pub(crate) fn linger_or_close(&mut self, mut io: Io, gen: u64, kick: bool) {
        if !kick || self.lingering.len() >= MAX_LINGERING || !self.paused.is_empty() {
            return;
        }
        if let Some(tls) = io.tls.as_mut() {
            tls.send_close_notify();
        }
        // Output the kernel does not take now is dropped with an immediate close, as before: it would hold memory
        // outside the output budget, and a miner that far behind is not reading anyway.
        if io.flush().ok() != Some(true) || io.socket.shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        if !crate::limits::linger_begin() {
            return;
        }
        // Only the socket is needed from here: its buffers and TLS session go now.
        io.tls = None;
        io.partial = Vec::new();
        io.pre = Vec::new();
        let entry = self.conns.vacant_entry();
        let t = entry.key();
        if self
            .poll
            .registry()
            .register(&mut io.socket, Token(t), Interest::READABLE)
            .is_err()
        {
            crate::limits::linger_end(1);
            return;
        }
        let until = Instant::now() + LINGER;
        entry.insert(Conn::Lingering(Lingering {
            io,
            gen,
            discarded: 0,
        }));
        self.lingering.push_back((until, t, gen));
    }

    /// A readiness event on lingering socket `t`: what the miner sends is dropped.
    pub(crate) fn on_lingering_event(&mut self, t: usize, readable: bool) {
        if !readable {
            return;
        }
        let mut buf = [0u8; 4096];
        for _ in 0..READS_PER_ROUND {
            let Some(Conn::Lingering(l)) = self.conns.get_mut(t) else {
                return;
            };
            match l.io.socket.read(&mut buf) {
                Ok(0) => return self.close_lingering(t, "the miner closed"),
                Ok(n) => {
                    l.discarded += n as u64;
                    if l.discarded > MAX_DISCARD {
                        return self.close_lingering(t, "it kept sending");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.close_lingering(t, "read failed"),
            }
        }
        self.requeue_read(t);
    }

    /// Closes lingering socket `t` for good.
    fn close_lingering(&mut self, t: usize, why: &str) {
        let Some(Conn::Lingering(_)) = self.conns.get(t) else {
            return;
        };
        let Conn::Lingering(mut l) = self.conns.remove(t) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut l.io.socket);
        if let Some(i) = self
            .lingering
            .iter()
            .position(|&(_, k, g)| k == t && g == l.gen)
        {
            self.lingering.remove(i);
        }
        crate::limits::linger_end(1);
        self.retry_accept = true;
        log::debug!(
            "kicked miner's socket closed ({why}; {} byte(s) it sent after the kick dropped)",
            l.discarded
        );
    }

    /// On the tick: lingering sockets past their deadline are closed.
    pub(crate) fn expire_lingering(&mut self, now: Instant) {
        while let Some(&(until, t, _)) = self.lingering.front() {
            if until > now {
                break;
            }
            self.lingering.pop_front();
            self.close_lingering(t, "deadline passed");
        }
    }

    /// Closes every lingering socket of this reactor (descriptors are short, or the reactor stops).
    pub(crate) fn close_all_lingering(&mut self) {
        while let Some((_, t, _)) = self.lingering.pop_front() {
            self.close_lingering(t, "descriptors needed");
        }
    }
}
