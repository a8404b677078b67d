//! The simulated Stratum V1 and Equihash pools' threads: a listener polled by an accept thread (which also
//! emits the periodic jobs), one reader thread per connection, each connection's JSON-line writer, and a stop that joins them all.

use crate::lines::{is_timeout, read_line_bounded, LineRead, MAX_LINE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const READ_POLL: Duration = Duration::from_millis(50);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// Locks `m`, also after a thread panicked holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A pool as its threads see it: what to do with a new connection, a line read, a closed connection.
pub(crate) trait Service: Send + Sync + 'static {
    /// Log and thread name prefix ("simpool", "eqpool").
    const NAME: &'static str;
    /// The threads' shared flags and counters.
    fn threads(&self) -> &Threads;
    /// How often the accept thread broadcasts a new (not clean) job; `None`: only on demand.
    fn job_interval(&self) -> Option<Duration>;
    /// Broadcasts a new (not clean) job.
    fn periodic_job(&self);
    /// Adds a connection that writes with `writer`; returns its id.
    fn add_conn(&self, writer: impl FnOnce(u64) -> Writer) -> u64;
    /// Parses and answers one line from connection `id`.
    fn handle_line(&self, id: u64, line: &[u8]);
    /// Forgets connection `id` (its reader thread ended).
    fn remove_conn(&self, id: u64);
    /// Closes every connection.
    fn close_all(&self);
}

/// What a pool's threads share besides the pool's own state.
#[derive(Default)]
pub(crate) struct Threads {
    pub(crate) stop: AtomicBool,
    conn_threads: Mutex<Vec<JoinHandle<()>>>,
    /// Bytes of complete lines read from all connections.
    pub(crate) bytes_received: AtomicU64,
    /// Bytes written to all connections.
    pub(crate) bytes_sent: Arc<AtomicU64>,
}

/// A listening pool: its address, its shared state and the accept thread. Dropping it stops it.
pub(crate) struct Server<S: Service> {
    pub(crate) addr: SocketAddr,
    pub(crate) shared: Arc<S>,
    accept_thread: Option<JoinHandle<()>>,
}

impl<S: Service> Server<S> {
    /// Binds `listen` and starts accepting connections for `shared`.
    pub(crate) fn start(listen: SocketAddr, shared: S) -> io::Result<Server<S>> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(shared);
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("{}-accept", S::NAME))
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(Server {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// Stops accepting, closes every connection and joins all threads; the port is free afterwards.
    pub(crate) fn shutdown(&mut self) {
        let threads = self.shared.threads();
        threads.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        self.shared.close_all();
        let handles: Vec<JoinHandle<()>> = lock(&threads.conn_threads).drain(..).collect();
        for t in handles {
            let _ = t.join();
        }
    }
}

impl<S: Service> Drop for Server<S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts connections until stopped; also emits the periodic jobs.
fn accept_loop<S: Service>(listener: TcpListener, shared: Arc<S>) {
    let name = S::NAME;
    let mut next_job_at = shared.job_interval().map(|d| Instant::now() + d);
    while !shared.threads().stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                log::debug!("{name}: connection from {peer}");
                spawn_conn(&shared, stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                log::debug!("{name}: accept failed: {e}");
                thread::sleep(ACCEPT_POLL);
            }
        }
        if let (Some(at), Some(every)) = (next_job_at, shared.job_interval()) {
            if Instant::now() >= at {
                shared.periodic_job();
                next_job_at = Some(Instant::now() + every);
            }
        }
    }
}

/// Sets up the socket, registers the connection and starts its reader thread.
fn spawn_conn<S: Service>(shared: &Arc<S>, stream: TcpStream) {
    let setup = || -> io::Result<TcpStream> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(READ_POLL))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        stream.try_clone()
    };
    let writer = match setup() {
        Ok(writer) => writer,
        Err(e) => return log::debug!("{}: socket setup failed: {e}", S::NAME),
    };
    let bytes_sent = Arc::clone(&shared.threads().bytes_sent);
    let id = shared.add_conn(|id| Writer {
        id,
        stream: writer,
        name: S::NAME,
        bytes_sent,
    });
    let conn_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("{}-conn-{id}", S::NAME))
        .spawn(move || serve_conn(conn_shared, id, stream));
    match spawned {
        Ok(handle) => {
            let mut threads = lock(&shared.threads().conn_threads);
            threads.retain(|t| !t.is_finished());
            threads.push(handle);
        }
        Err(e) => {
            log::debug!("{}: cannot spawn a connection thread: {e}", S::NAME);
            shared.remove_conn(id);
        }
    }
}

/// Reads and answers one connection's lines until it closes or the pool stops.
fn serve_conn<S: Service>(shared: Arc<S>, id: u64, stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let threads = shared.threads();
    while !threads.stop.load(Ordering::SeqCst) {
        match read_line_bounded(&mut reader, &mut line, MAX_LINE) {
            Ok(LineRead::Line) => {
                let n = line.len() as u64;
                threads.bytes_received.fetch_add(n, Ordering::SeqCst);
                shared.handle_line(id, &line);
                line.clear();
            }
            Ok(LineRead::Eof) | Ok(LineRead::TooLong) => break,
            Err(e) if is_timeout(&e) => {}
            Err(e) => {
                log::debug!("{}: conn {id}: read error: {e}", S::NAME);
                break;
            }
        }
    }
    shared.remove_conn(id);
}

/// The writing half of one pool connection.
pub(crate) struct Writer {
    pub(crate) id: u64,
    stream: TcpStream,
    name: &'static str,
    /// The pool's count of bytes written (shared by its connections).
    bytes_sent: Arc<AtomicU64>,
}

impl Writer {
    /// Writes one JSON line; on failure the socket is shut down (its reader thread then cleans up).
    pub(crate) fn send(&mut self, msg: &Value) {
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.stream.write_all(&line) {
            log::debug!("{}: conn {}: write failed: {e}", self.name, self.id);
            self.shutdown();
        } else {
            let n = line.len() as u64;
            self.bytes_sent.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// Closes the connection both ways.
    pub(crate) fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A pool's connections by id, each with its [`Writer`].
pub(crate) trait HasWriter {
    fn writer(&self) -> &Writer;
}

/// Closes and forgets connection `id`; `open` counts the open connections.
pub(crate) fn remove_conn<C: HasWriter>(conns: &mut BTreeMap<u64, C>, open: &mut u64, id: u64) {
    if let Some(conn) = conns.remove(&id) {
        conn.writer().shutdown();
        *open = open.saturating_sub(1);
    }
}

/// Closes and forgets every connection.
pub(crate) fn close_all<C: HasWriter>(conns: &mut BTreeMap<u64, C>, open: &mut u64) {
    for conn in conns.values() {
        conn.writer().shutdown();
    }
    conns.clear();
    *open = 0;
}
