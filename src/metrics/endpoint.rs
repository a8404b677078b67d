//! A tiny_http server that outlives a failed accept: the listener under the metrics endpoint and the control API.
//!
//! tiny_http's accept thread ends when descriptors run out, in one of two ways: `accept()` fails (EMFILE) and
//! the thread reports the error and stops, or `accept()` takes the last descriptor and the thread panics
//! duplicating the new stream. Either way it drops its listener, so the port would refuse every connection from
//! then on: monitoring would go dark after one descriptor spike. [`Endpoint`] keeps a duplicate of the
//! listening socket, so the port stays open (connections wait in the kernel's backlog), notices the end (the
//! reported error, or the server's duplicate no longer open: [`Endpoint::recv_timeout`]) and starts a new
//! tiny_http server on another duplicate, at most once per [`RESTART_MIN`] and backing off to [`RESTART_MAX`]
//! while the restarts keep failing or their servers keep dying young, with a log line each time.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};
use tiny_http::{Request, Server};

/// Shortest wait before a server is started again after its accept thread ended.
pub const RESTART_MIN: Duration = Duration::from_millis(200);
/// Longest wait between restarts while they keep failing.
pub const RESTART_MAX: Duration = Duration::from_secs(2);
/// Dead servers whose keep-alive connections are still served; an older one is forgotten (see `Endpoint::dead`).
pub const DEAD_KEPT: usize = 8;

/// An HTTP listener whose accepting survives errors (see the module doc).
pub struct Endpoint {
    /// What the log lines call it ("metrics", "api").
    name: &'static str,
    /// The listening socket, kept open whatever happens to the server's own duplicate.
    spare: TcpListener,
    /// The running server, the descriptor of its duplicate of the listener and when it started; none between
    /// the end of its accept thread and the restart.
    server: Option<(Server, RawFd, Instant)>,
    /// Servers whose accept thread ended, newest last, at most [`DEAD_KEPT`]: their keep-alive connections
    /// still bring requests, which are answered like the others (left in the queue, each would hold its
    /// connection's descriptor for good).
    dead: Vec<Server>,
    /// When the next restart may be tried, and the wait it came after (doubled while restarts fail or die young).
    retry: (Instant, Duration),
}

impl Endpoint {
    /// Binds the listener of the endpoint `name` calls ("metrics", "api"), so that the binary can hold it
    /// before the proxies take miners; the error names the endpoint and the address.
    pub fn bind(name: &str, listen: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(listen).map_err(|e| {
            io::Error::new(e.kind(), format!("{name}: cannot listen on {listen}: {e}"))
        })
    }

    /// Serves on `listener` (already bound).
    pub fn new(name: &'static str, listener: TcpListener) -> io::Result<Endpoint> {
        let server = serve(&listener).map_err(|e| io::Error::other(format!("{name}: {e}")))?;
        Ok(Endpoint {
            name,
            spare: listener,
            server: Some(server),
            dead: Vec::new(),
            retry: (Instant::now(), RESTART_MIN),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.spare.local_addr()
    }

    /// The next request, waiting at most `wait`; none when none came (or the server is being restarted).
    ///
    /// First it looks whether the server's accept thread is still there: its duplicate of the listener still
    /// open, and still this socket (the descriptor number may have been reused since). A thread that stopped at
    /// an accept error also reports the error (the log line names it); one that panicked says nothing.
    pub fn recv_timeout(&mut self, wait: Duration) -> Option<Request> {
        if let Some(req) = self.dead.iter().find_map(|d| d.try_recv().ok().flatten()) {
            return Some(req);
        }
        let Some((server, fd, started)) = &self.server else {
            self.restart(wait);
            return None;
        };
        // A dead thread's queue still holds the requests of connections it took, then its error if it reported
        // one: they are taken without waiting.
        let alive = same_socket(*fd, &self.spare);
        let next = if alive {
            server.recv_timeout(wait)
        } else {
            server.try_recv()
        };
        let why = match next {
            Ok(Some(req)) => return Some(req),
            Ok(None) if alive => return None,
            Ok(None) => "its accept thread ended".to_string(),
            // Only the accept thread reports errors, and it has ended: the server serves nothing more.
            Err(e) => format!("accepting a connection failed: {e}"),
        };
        // A server that died young (descriptors still short) waits twice as long as the one before it.
        let backoff = if started.elapsed() < RESTART_MAX {
            (self.retry.1 * 2).min(RESTART_MAX)
        } else {
            RESTART_MIN
        };
        log::warn!("{}: {why}; listening again in {backoff:?}", self.name);
        // Kept, not dropped: its drop connects to the port to wake an accept thread that is gone, and that
        // connection would wait for (and take a descriptor of) the next server. Past DEAD_KEPT the oldest is
        // forgotten: a few hundred bytes, and whatever keep-alive connections it still had.
        if let Some((dead, ..)) = self.server.take() {
            self.dead.push(dead);
            if self.dead.len() > DEAD_KEPT {
                std::mem::forget(self.dead.remove(0));
            }
        }
        self.retry = (Instant::now() + backoff, backoff);
        None
    }

    /// Starts a new server when the wait is over; otherwise sleeps until it is, at most `wait`.
    fn restart(&mut self, wait: Duration) {
        let (at, backoff) = self.retry;
        let now = Instant::now();
        if now < at {
            std::thread::sleep((at - now).min(wait));
            return;
        }
        match serve(&self.spare) {
            Ok(server) => {
                log::info!("{}: accepting connections again", self.name);
                self.server = Some(server);
            }
            Err(e) => {
                let next = (backoff * 2).min(RESTART_MAX);
                log::warn!(
                    "{}: cannot listen again yet ({e}); retrying in {next:?}",
                    self.name
                );
                self.retry = (now + next, next);
            }
        }
    }
}

/// A tiny_http server on a duplicate of `listener`, with the duplicate's descriptor and the time (the duplicate
/// needs a descriptor, so this can fail while they have run out).
fn serve(listener: &TcpListener) -> io::Result<(Server, RawFd, Instant)> {
    let dup = listener.try_clone()?;
    let fd = dup.as_raw_fd();
    let server = Server::from_listener(dup, None).map_err(io::Error::other)?;
    Ok((server, fd, Instant::now()))
}

/// Whether descriptor `fd` is open on the same socket as `listener` (same device and inode).
fn same_socket(fd: RawFd, listener: &TcpListener) -> bool {
    let stat = |fd: RawFd| {
        // SAFETY: fstat only writes the struct it is given; a closed descriptor is an error, not UB.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    let ours = stat(listener.as_raw_fd());
    ours.is_some() && stat(fd) == ours
}
