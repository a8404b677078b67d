//! Pool host names resolved off the reactor thread: each lookup runs on a short-lived thread of its own (a few
//! at most per reactor) and its answer comes back through a channel, with the reactor's waker as doorbell.
//!
//! A thread per lookup rather than one resolver thread: `getaddrinfo` cannot be cancelled, so a name whose
//! resolver hangs would hold a single thread and delay every other pool's lookup behind it (the backup pool's
//! too, which defeats failover). Threads are started only per connection attempt (paced by the retry
//! back-off), and at most [`MAX_IN_FLIGHT`] per reactor run at once, counted until their lookup really
//! returns: when that many hang, further attempts fail at once and back off like any failed attempt.
//!
//! The reactor gives a lookup up after `handshake_timeout` (the attempt fails); each lookup carries an id, and an
//! answer whose id is not the one the upstream waits for is dropped.

use mio::Waker;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, RwLock};

/// Lookups of one reactor running at once (including ones given up that have not returned yet).
pub const MAX_IN_FLIGHT: usize = 8;

/// A stand-in for the system resolver, for tests: it answers a name itself, or hands it on with `None`.
pub type LookupHook = fn(host: &str, port: u16) -> Option<io::Result<Vec<SocketAddr>>>;

static HOOK: RwLock<Option<LookupHook>> = RwLock::new(None);

/// Installs (or with `None` removes) the process-wide lookup hook. Meant for tests: it is not a setting, and
/// production code never calls it.
pub fn set_lookup_hook(hook: Option<LookupHook>) {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = hook;
}

/// Every address `host:port` resolves to, in the resolver's order (blocking: call it off the reactor).
pub fn lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let hook = *HOOK.read().unwrap_or_else(|e| e.into_inner());
    if let Some(answer) = hook.and_then(|h| h(host, port)) {
        return answer;
    }
    Ok((host, port).to_socket_addrs()?.collect())
}

/// The address of an IP literal host (no lookup needed), else `None`.
pub fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

/// A finished lookup.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The id [`Resolver::start`] returned.
    pub id: u64,
    /// The upstream that asked (its slot may hold another upstream by now: match by `id`).
    pub upstream: usize,
    /// The addresses, never empty when `Ok`.
    pub result: Result<Vec<SocketAddr>, String>,
}

/// One reactor's lookups in flight.
pub(crate) struct Resolver {
    waker: Arc<Waker>,
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    in_flight: Arc<AtomicUsize>,
    next_id: u64,
}

/// Counts a lookup thread until it ends, however it ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Resolver {
    /// A resolver whose answers wake the poll that `waker` belongs to.
    pub(crate) fn new(waker: Arc<Waker>) -> Resolver {
        let (tx, rx) = channel();
        Resolver {
            waker,
            tx,
            rx,
            in_flight: Arc::new(AtomicUsize::new(0)),
            next_id: 1,
        }
    }

    /// Starts looking up `host:port` for `upstream` on a thread of its own; returns the lookup's id, or why it
    /// could not start.
    pub(crate) fn start(&mut self, host: &str, port: u16, upstream: usize) -> Result<u64, String> {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(format!("{MAX_IN_FLIGHT} lookups already in flight"));
        }
        let guard = InFlight(self.in_flight.clone());
        let id = self.next_id;
        self.next_id += 1;
        let (tx, waker, host) = (self.tx.clone(), self.waker.clone(), host.to_string());
        std::thread::Builder::new()
            .name("resolve".into())
            .spawn(move || {
                let result = match lookup(&host, port) {
                    Ok(addrs) if addrs.is_empty() => Err("the name has no address".to_string()),
                    Ok(addrs) => Ok(addrs),
                    Err(e) => Err(e.to_string()),
                };
                drop(guard);
                // The reactor may have stopped: then nobody waits for the answer.
                if tx
                    .send(Answer {
                        id,
                        upstream,
                        result,
                    })
                    .is_ok()
                {
                    let _ = waker.wake();
                }
            })
            .map(|_| id)
            .map_err(|e| format!("cannot start a lookup thread: {e}"))
    }

    /// The next finished lookup, if any.
    pub(crate) fn try_recv(&self) -> Option<Answer> {
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_skip_the_resolver_and_names_do_not() {
        assert_eq!(
            literal("127.0.0.1", 3333),
            Some(SocketAddr::from(([127, 0, 0, 1], 3333)))
        );
        assert_eq!(literal("::1", 1).map(|a| a.is_ipv6()), Some(true));
        assert_eq!(literal("localhost", 3333), None);
        assert_eq!(literal("pool.example.com", 3333), None);
    }
}
