//! A simulated Stratum V1 (SHA256d) pool for tests: it hands out jobs and unique extranonce1 values,
//! negotiates version rolling (BIP 310) and the extranonce subscription, and validates every submitted share
//! by rebuilding the coinbase, merkle root and header and checking the hash against the target of the
//! difficulty in effect when the job was sent. One thread per connection (it only serves a few).

use fastproxy_work::hex;
use fastproxy_work::work::{self, Job};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest accepted JSON line (bytes, without the newline); a longer one closes the connection.
pub const MAX_LINE: usize = 64 * 1024;
const READ_POLL: Duration = Duration::from_millis(50);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// How the simulated pool behaves.
#[derive(Clone, Debug)]
pub struct SimPoolConfig {
    /// Address to bind (127.0.0.1:0 by default: any free port).
    pub listen: SocketAddr,
    pub extranonce1_size: usize,
    pub extranonce2_size: usize,
    /// Share difficulty sent on subscribe.
    pub difficulty: f64,
    /// Broadcast a new (not clean) job this often; `None`: only on demand.
    pub job_interval: Option<Duration>,
    /// Version-rolling mask offered; `None`: `mining.configure` is answered with error 20 (unknown method).
    pub version_rolling_mask: Option<u32>,
    /// Number of merkle branch entries per job.
    pub merkle_branches: usize,
    /// If set, `mining.authorize` succeeds only for exactly this user name.
    pub user: Option<String>,
    /// False: never reply to `mining.submit` (shares are still counted and checked).
    pub answer_submits: bool,
    /// Jobs remembered per connection (older ones answer 21 "Job not found").
    pub jobs_kept: usize,
    /// More user names `mining.authorize` accepts besides `user`; with `user` unset and this empty, any name.
    pub users: Vec<String>,
}

impl Default for SimPoolConfig {
    fn default() -> Self {
        SimPoolConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extranonce1_size: 4,
            extranonce2_size: 8,
            difficulty: 1.0 / 65536.0,
            job_interval: None,
            version_rolling_mask: Some(0x1fff_e000),
            merkle_branches: 2,
            user: None,
            answer_submits: true,
            jobs_kept: 8,
            users: Vec::new(),
        }
    }
}

/// Counters of a running pool (a snapshot).
#[derive(Clone, Default, Debug)]
pub struct PoolStats {
    pub connections_total: u64,
    pub connections_open: u64,
    pub submits: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_by_code: BTreeMap<i64, u64>,
    pub duplicates: u64,
    pub accepted_shares: Vec<AcceptedShare>,
    pub authorized_users: Vec<String>,
    pub configure_requests: u64,
    pub extranonce_subscribes: u64,
    /// Every refused submit, in order, with its reason (see [`RejectedShare`]).
    pub rejected_shares: Vec<RejectedShare>,
}

/// One share the pool accepted.
#[derive(Clone, Debug)]
pub struct AcceptedShare {
    pub conn_id: u64,
    /// The connection's extranonce1 when the job was sent to it.
    pub extranonce1: Vec<u8>,
    pub extranonce2: Vec<u8>,
    pub worker: String,
    pub job_id: String,
    pub nonce: u32,
    pub version_bits: Option<u32>,
    /// The share's ntime as submitted.
    pub ntime: u32,
    /// The header version hashed (the job's, with the rolled bits applied).
    pub version: u32,
}

impl AcceptedShare {
    /// extranonce1 || extranonce2: the coinbase bytes between coinb1 and coinb2 (a proxy that splits the
    /// extranonce space leaves these the same on both of its sides).
    pub fn full_extranonce(&self) -> Vec<u8> {
        [&self.extranonce1[..], &self.extranonce2[..]].concat()
    }
}

/// One submit the pool refused.
#[derive(Clone, Debug)]
pub struct RejectedShare {
    pub conn_id: u64,
    /// The error code and message the pool answered (22 for a duplicate, 23 for low difficulty, ...).
    pub code: i64,
    pub reason: &'static str,
    /// The connection's extranonce1 at the time.
    pub extranonce1: Vec<u8>,
    /// The submit's params as sent (strings as they were, anything else as JSON text).
    pub params: Vec<String>,
}

/// A running simulated pool. Dropping it stops it (see [`SimPool::stop`]).
pub struct SimPool {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

/// Everything the pool's threads share.
struct Shared {
    cfg: SimPoolConfig,
    /// Distinguishes pools in one process (job ids, extranonce1 values, job contents).
    instance: u64,
    stop: AtomicBool,
    state: Mutex<State>,
    conn_threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set by [`SimPool::set_answer_submits`]`(false)`: submits are checked and counted but not answered.
    muted: AtomicBool,
    /// Verdicts queued by [`SimPool::reject_next`], used (oldest first) instead of checking the next submits.
    forced: Mutex<VecDeque<Reject>>,
    /// Bytes of complete lines read from all connections.
    bytes_received: AtomicU64,
    /// Bytes written to all connections.
    bytes_sent: Arc<AtomicU64>,
}

/// Mutable pool state, behind one lock (connection count is small).
struct State {
    conns: BTreeMap<u64, Conn>,
    stats: PoolStats,
    difficulty: f64,
    current_job: Option<Arc<Job>>,
    job_counter: u64,
    extranonce_counter: u64,
    next_conn_id: u64,
}

/// One miner-side connection to the pool.
struct Conn {
    id: u64,
    stream: TcpStream,
    subscribed: bool,
    extranonce1: Vec<u8>,
    extranonce_subscribed: bool,
    /// Negotiated version-rolling mask (after a successful `mining.configure`).
    version_mask: Option<u32>,
    workers: BTreeSet<String>,
    jobs: VecDeque<SentJob>,
    seen: HashSet<ShareKey>,
    /// The pool's count of bytes written (shared by its connections).
    bytes_sent: Arc<AtomicU64>,
}

/// A job as sent to one connection, with what the share check needs from that moment.
struct SentJob {
    job: Arc<Job>,
    extranonce1: Vec<u8>,
    target: [u8; 32],
}

/// Identity of a share for duplicate detection: job, extranonce2, ntime, nonce, header version.
type ShareKey = (String, Vec<u8>, u32, u32, u32);

/// Why a submit was refused: a conventional Stratum error code and message.
type Reject = (i64, &'static str);

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimPool {
    /// Binds `cfg.listen` and starts accepting connections.
    pub fn start(cfg: SimPoolConfig) -> io::Result<SimPool> {
        let listener = TcpListener::bind(cfg.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = State {
            conns: BTreeMap::new(),
            stats: PoolStats::default(),
            difficulty: cfg.difficulty,
            current_job: None,
            job_counter: 0,
            extranonce_counter: 0,
            next_conn_id: 1,
        };
        let shared = Arc::new(Shared {
            cfg,
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            stop: AtomicBool::new(false),
            state: Mutex::new(state),
            conn_threads: Mutex::new(Vec::new()),
            muted: AtomicBool::new(false),
            forced: Mutex::new(VecDeque::new()),
            bytes_received: AtomicU64::new(0),
            bytes_sent: Arc::new(AtomicU64::new(0)),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("simpool-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(SimPool {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PoolStats {
        lock(&self.shared.state).stats.clone()
    }

    /// Broadcasts a new job to every subscribed connection.
    pub fn new_job(&self, clean: bool) {
        self.shared.broadcast_job(clean);
    }

    /// Broadcasts `mining.set_difficulty`, then a new (not clean) job that carries it.
    pub fn set_difficulty(&self, diff: f64) {
        {
            let mut st = lock(&self.shared.state);
            st.difficulty = diff;
            let msg = notification("mining.set_difficulty", json!([diff]));
            for conn in st.conns.values_mut().filter(|c| c.subscribed) {
                conn.send(&msg);
            }
        }
        self.shared.broadcast_job(false);
    }

    /// Gives each connection that sent `mining.extranonce.subscribe` a fresh extranonce1 (same size) via
    /// `mining.set_extranonce`, followed by a new clean job for it. Other connections see nothing.
    pub fn set_extranonce_all(&self) {
        let shared = &self.shared;
        let mut guard = lock(&shared.state);
        let st = &mut *guard;
        let job = st.make_job(shared, true);
        let target = work::target_from_difficulty(st.difficulty);
        let ids: Vec<u64> = st
            .conns
            .values()
            .filter(|c| c.subscribed && c.extranonce_subscribed)
            .map(|c| c.id)
            .collect();
        for id in ids {
            let e1 = st.next_extranonce1(shared);
            if let Some(conn) = st.conns.get_mut(&id) {
                let params = json!([hex::encode(&e1), shared.cfg.extranonce2_size]);
                conn.extranonce1 = e1;
                conn.send(&notification("mining.set_extranonce", params));
                conn.send_job(&job, true, target, shared.cfg.jobs_kept);
            }
        }
    }

    /// Sends `client.reconnect` `[host, port, wait]` to every connection (`null` for a missing host or
    /// port; `[]` when all three are empty/zero).
    pub fn send_reconnect_all(&self, host: Option<&str>, port: Option<u16>, wait: u32) {
        let params = if host.is_none() && port.is_none() && wait == 0 {
            json!([])
        } else {
            json!([host, port, wait])
        };
        let msg = notification("client.reconnect", params);
        for conn in lock(&self.shared.state).conns.values_mut() {
            conn.send(&msg);
        }
    }

    /// Sends `client.show_message` `[text]` to every connection (miners are to show it to their operator).
    pub fn show_message_all(&self, text: &str) {
        let msg = notification("client.show_message", json!([text]));
        for conn in lock(&self.shared.state).conns.values_mut() {
            conn.send(&msg);
        }
    }

    /// Sends `mining.set_version_mask` to each connection that negotiated version rolling; its new mask is
    /// `mask` limited to the pool's configured mask.
    pub fn set_version_mask_all(&self, mask: u32) {
        let allowed = mask & self.shared.cfg.version_rolling_mask.unwrap_or(0);
        let msg = notification(
            "mining.set_version_mask",
            json!([work::u32_to_hex(allowed)]),
        );
        for conn in lock(&self.shared.state).conns.values_mut() {
            if conn.version_mask.is_some() {
                conn.version_mask = Some(allowed);
                conn.send(&msg);
            }
        }
    }

    /// From now on answer `mining.submit` (`true`, the default) or leave it unanswered (`false`; shares are
    /// still checked and counted, as with `SimPoolConfig::answer_submits: false`).
    pub fn set_answer_submits(&self, answer: bool) {
        self.shared.muted.store(!answer, Ordering::SeqCst);
    }

    /// Refuses the next submit (whichever connection sends it, valid or not) with error `[code, message,
    /// null]` instead of checking it; calls queue up, one verdict per submit. Counted as a rejection.
    pub fn reject_next(&self, code: i64, message: &'static str) {
        lock(&self.shared.forced).push_back((code, message));
    }

    /// Bytes read from (complete lines) and written to all connections so far: `(received, sent)`.
    pub fn byte_counts(&self) -> (u64, u64) {
        (
            self.shared.bytes_received.load(Ordering::SeqCst),
            self.shared.bytes_sent.load(Ordering::SeqCst),
        )
    }

    /// Closes every connection; the listener keeps accepting new ones.
    pub fn disconnect_all(&self) {
        lock(&self.shared.state).close_all();
    }

    /// Stops accepting, closes every connection and joins all threads; the port is free afterwards.
    pub fn stop(self) {
        drop(self);
    }

    /// Stops (as [`SimPool::stop`]) and returns the final counters: no share is accepted after them.
    pub fn stop_with_stats(mut self) -> PoolStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        lock(&self.shared.state).close_all();
        let threads: Vec<JoinHandle<()>> = lock(&self.shared.conn_threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for SimPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts connections until stopped; also emits the periodic jobs.
fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_job_at = shared.cfg.job_interval.map(|d| Instant::now() + d);
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                log::debug!("simpool: connection from {peer}");
                spawn_conn(&shared, stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                log::debug!("simpool: accept failed: {e}");
                thread::sleep(ACCEPT_POLL);
            }
        }
        if let (Some(at), Some(every)) = (next_job_at, shared.cfg.job_interval) {
            if Instant::now() >= at {
                shared.broadcast_job(false);
                next_job_at = Some(Instant::now() + every);
            }
        }
    }
}

fn spawn_conn(shared: &Arc<Shared>, stream: TcpStream) {
    let Some(id) = shared.register(&stream) else {
        return;
    };
    let conn_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("simpool-conn-{id}"))
        .spawn(move || serve_conn(conn_shared, id, stream));
    match spawned {
        Ok(handle) => {
            let mut threads = lock(&shared.conn_threads);
            threads.retain(|t| !t.is_finished());
            threads.push(handle);
        }
        Err(e) => {
            log::debug!("simpool: cannot spawn a connection thread: {e}");
            lock(&shared.state).remove_conn(id);
        }
    }
}

/// Reads and answers one connection's lines until it closes or the pool stops.
fn serve_conn(shared: Arc<Shared>, id: u64, stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match read_line_bounded(&mut reader, &mut line, MAX_LINE) {
            Ok(LineRead::Line) => {
                let n = line.len() as u64;
                shared.bytes_received.fetch_add(n, Ordering::SeqCst);
                shared.handle_line(id, &line);
                line.clear();
            }
            Ok(LineRead::Eof) | Ok(LineRead::TooLong) => break,
            Err(e) if is_timeout(&e) => {}
            Err(e) => {
                log::debug!("simpool: conn {id}: read error: {e}");
                break;
            }
        }
    }
    lock(&shared.state).remove_conn(id);
}

/// Result of [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// `buf` holds a complete line ending in `\n`.
    Line,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
    /// More than `max` bytes without a newline.
    TooLong,
}

/// Reads into `buf` up to and including the next `\n`, never letting `buf` grow past `max + 1` bytes. On a
/// timeout the error is returned and the partial line stays in `buf`: call again with the same `buf`.
pub(crate) fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let room = (max + 1).saturating_sub(buf.len()) as u64;
    reader.by_ref().take(room).read_until(b'\n', buf)?;
    if buf.last() == Some(&b'\n') {
        Ok(LineRead::Line)
    } else if buf.len() > max {
        Ok(LineRead::TooLong)
    } else {
        Ok(LineRead::Eof)
    }
}

/// True for the errors a read timeout or a non-blocking socket produce.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn notification(method: &str, params: Value) -> Value {
    json!({"id": null, "method": method, "params": params})
}

fn ok_reply(id: &Value, result: Value) -> Value {
    json!({"id": id, "result": result, "error": null})
}

fn error_reply(id: &Value, (code, message): Reject) -> Value {
    json!({"id": id, "result": null, "error": [code, message, null]})
}

fn unix_time() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

impl Shared {
    /// Adds a connection; `None` if the socket cannot be set up.
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let setup = || -> io::Result<TcpStream> {
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(READ_POLL))?;
            stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
            stream.set_nodelay(true)?;
            stream.try_clone()
        };
        let writer = setup()
            .map_err(|e| log::debug!("simpool: socket setup failed: {e}"))
            .ok()?;
        let mut st = lock(&self.state);
        let id = st.next_conn_id;
        st.next_conn_id += 1;
        let mut conn = Conn::new(id, writer);
        conn.bytes_sent = Arc::clone(&self.bytes_sent);
        st.conns.insert(id, conn);
        st.stats.connections_total += 1;
        st.stats.connections_open += 1;
        Some(id)
    }

    fn broadcast_job(&self, clean: bool) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let job = st.make_job(self, clean);
        st.current_job = Some(Arc::clone(&job));
        let target = work::target_from_difficulty(st.difficulty);
        for conn in st.conns.values_mut().filter(|c| c.subscribed) {
            conn.send_job(&job, clean, target, self.cfg.jobs_kept);
        }
    }

    /// Parses and answers one line from connection `id`. Garbage and replies are ignored.
    fn handle_line(&self, id: u64, line: &[u8]) {
        let text = line.trim_ascii();
        if text.is_empty() {
            return;
        }
        let msg: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                log::debug!("simpool: conn {id}: ignoring invalid JSON: {e}");
                return;
            }
        };
        let Some(method) = msg.get("method").and_then(Value::as_str) else {
            return; // a reply or something unknown: nothing to answer
        };
        let req_id = msg.get("id").cloned().unwrap_or(Value::Null);
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if !st.conns.contains_key(&id) {
            return; // disconnected meanwhile
        }
        match method {
            "mining.configure" => st.on_configure(self, id, &req_id, &params),
            "mining.subscribe" => st.on_subscribe(self, id, &req_id),
            "mining.authorize" => st.on_authorize(self, id, &req_id, &params),
            "mining.extranonce.subscribe" => st.on_extranonce_subscribe(id, &req_id),
            "mining.submit" => st.on_submit(self, id, &req_id, &params),
            "mining.suggest_difficulty" => st.reply(id, ok_reply(&req_id, json!(true))),
            _ => st.reply(id, error_reply(&req_id, (20, "Unknown method"))),
        }
    }
}

impl State {
    fn reply(&mut self, id: u64, msg: Value) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.send(&msg);
        }
    }

    fn remove_conn(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            let _ = conn.stream.shutdown(Shutdown::Both);
            self.stats.connections_open = self.stats.connections_open.saturating_sub(1);
        }
    }

    fn close_all(&mut self) {
        for conn in self.conns.values() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        self.conns.clear();
        self.stats.connections_open = 0;
    }

    /// A fresh extranonce1, unique within this pool.
    fn next_extranonce1(&mut self, shared: &Shared) -> Vec<u8> {
        self.extranonce_counter += 1;
        let value = shared
            .instance
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(self.extranonce_counter);
        let size = shared.cfg.extranonce1_size;
        let bytes = value.to_be_bytes();
        let mut e1 = vec![0u8; size.saturating_sub(8)];
        e1.extend_from_slice(&bytes[8usize.saturating_sub(size)..]);
        e1
    }

    /// A new job with deterministic pseudo-random contents and a pool-unique id.
    fn make_job(&mut self, shared: &Shared, clean: bool) -> Arc<Job> {
        self.job_counter += 1;
        let n = self.job_counter;
        let mut rng = Prng::new(shared.instance, n);
        let e_len = shared.cfg.extranonce1_size + shared.cfg.extranonce2_size;
        let (coinb1, coinb2) = make_coinbase_parts(&mut rng, n, e_len);
        Arc::new(Job {
            job_id: format!("{:x}{:06x}", shared.instance, n),
            prevhash: rng.next(),
            coinb1,
            coinb2,
            merkle_branch: (0..shared.cfg.merkle_branches)
                .map(|_| rng.next())
                .collect(),
            version: 0x2000_0000,
            nbits: 0x1d00_ffff,
            ntime: unix_time(),
            clean_jobs: clean,
        })
    }

    fn on_configure(&mut self, shared: &Shared, id: u64, req_id: &Value, params: &Value) {
        self.stats.configure_requests += 1;
        let Some(pool_mask) = shared.cfg.version_rolling_mask else {
            return self.reply(id, error_reply(req_id, (20, "Unknown method")));
        };
        let extensions = params.get(0).and_then(Value::as_array);
        let options = params.get(1);
        let mut result = Map::new();
        let mut granted_mask = None;
        for ext in extensions.into_iter().flatten().filter_map(Value::as_str) {
            if ext != "version-rolling" {
                result.insert(ext.to_string(), json!(false));
                continue;
            }
            let granted = pool_mask & requested_mask(options);
            let min_bits = options
                .and_then(|o| o.get("version-rolling.min-bit-count"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let ok = u64::from(granted.count_ones()) >= min_bits;
            result.insert(ext.to_string(), json!(ok));
            if ok {
                result.insert(
                    "version-rolling.mask".into(),
                    json!(work::u32_to_hex(granted)),
                );
                granted_mask = Some(granted);
            }
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.version_mask = granted_mask;
            conn.send(&ok_reply(req_id, Value::Object(result)));
        }
    }

    fn on_subscribe(&mut self, shared: &Shared, id: u64, req_id: &Value) {
        let needs_e1 = self.conns.get(&id).is_some_and(|c| !c.subscribed);
        let fresh_e1 = needs_e1.then(|| self.next_extranonce1(shared));
        let job = match &self.current_job {
            Some(job) => Arc::clone(job),
            None => {
                let job = self.make_job(shared, true);
                self.current_job = Some(Arc::clone(&job));
                job
            }
        };
        let difficulty = self.difficulty;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(e1) = fresh_e1 {
            conn.extranonce1 = e1;
        }
        conn.subscribed = true;
        let sub_id = format!("{:x}", conn.id);
        let result = json!([
            [["mining.set_difficulty", sub_id], ["mining.notify", sub_id]],
            hex::encode(&conn.extranonce1),
            shared.cfg.extranonce2_size
        ]);
        conn.send(&ok_reply(req_id, result));
        conn.send(&notification("mining.set_difficulty", json!([difficulty])));
        let target = work::target_from_difficulty(difficulty);
        conn.send_job(&job, true, target, shared.cfg.jobs_kept);
    }

    fn on_authorize(&mut self, shared: &Shared, id: u64, req_id: &Value, params: &Value) {
        let Some(user) = params.get(0).and_then(Value::as_str) else {
            return self.reply(id, error_reply(req_id, (20, "Invalid params")));
        };
        let cfg = &shared.cfg;
        let allowed = (cfg.user.is_none() && cfg.users.is_empty())
            || cfg.user.as_deref() == Some(user)
            || cfg.users.iter().any(|u| u == user);
        if allowed {
            self.stats.authorized_users.push(user.to_string());
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.workers.insert(user.to_string());
            }
        }
        self.reply(id, ok_reply(req_id, json!(allowed)));
    }

    fn on_extranonce_subscribe(&mut self, id: u64, req_id: &Value) {
        self.stats.extranonce_subscribes += 1;
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.extranonce_subscribed = true;
            conn.send(&ok_reply(req_id, json!(true)));
        }
    }

    fn on_submit(&mut self, shared: &Shared, id: u64, req_id: &Value, params: &Value) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let forced = lock(&shared.forced).pop_front();
        let outcome = match forced {
            Some(reject) => Err(reject),
            None => conn.check_share(params, shared.cfg.extranonce2_size),
        };
        let reply = match &outcome {
            Ok(_) => ok_reply(req_id, json!(true)),
            Err(reject) => error_reply(req_id, *reject),
        };
        if shared.cfg.answer_submits && !shared.muted.load(Ordering::SeqCst) {
            conn.send(&reply);
        }
        self.stats.submits += 1;
        match outcome {
            Ok(share) => {
                self.stats.accepted += 1;
                self.stats.accepted_shares.push(share);
            }
            Err((code, reason)) => {
                let extranonce1 = self.conns.get(&id).map(|c| c.extranonce1.clone());
                self.stats.rejected_shares.push(RejectedShare {
                    conn_id: id,
                    code,
                    reason,
                    extranonce1: extranonce1.unwrap_or_default(),
                    params: submit_params_text(params),
                });
                self.stats.rejected += 1;
                *self.stats.rejected_by_code.entry(code).or_default() += 1;
                if code == 22 {
                    self.stats.duplicates += 1;
                }
            }
        }
    }
}

/// A submit's params as text: strings as they were, anything else as JSON.
fn submit_params_text(params: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    params.as_array().map_or_else(
        || vec![params.to_string()],
        |p| p.iter().map(text).collect(),
    )
}

/// The version-rolling mask a `mining.configure` asked for (all bits when absent or unreadable).
fn requested_mask(options: Option<&Value>) -> u32 {
    options
        .and_then(|o| o.get("version-rolling.mask"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 8)
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .unwrap_or(u32::MAX)
}

impl Conn {
    fn new(id: u64, stream: TcpStream) -> Conn {
        Conn {
            id,
            stream,
            subscribed: false,
            extranonce1: Vec::new(),
            extranonce_subscribed: false,
            version_mask: None,
            workers: BTreeSet::new(),
            jobs: VecDeque::new(),
            seen: HashSet::new(),
            bytes_sent: Arc::default(),
        }
    }

    /// Writes one JSON line; on failure the socket is shut down (its reader thread then cleans up).
    fn send(&mut self, msg: &Value) {
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.stream.write_all(&line) {
            log::debug!("simpool: conn {}: write failed: {e}", self.id);
            let _ = self.stream.shutdown(Shutdown::Both);
        } else {
            let n = line.len() as u64;
            self.bytes_sent.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// Records and sends a job; `clean` forgets the earlier ones.
    fn send_job(&mut self, job: &Arc<Job>, clean: bool, target: [u8; 32], kept: usize) {
        if clean {
            self.jobs.clear();
        }
        self.jobs.push_back(SentJob {
            job: Arc::clone(job),
            extranonce1: self.extranonce1.clone(),
            target,
        });
        while self.jobs.len() > kept.max(1) {
            self.jobs.pop_front();
        }
        let live: HashSet<&str> = self.jobs.iter().map(|j| j.job.job_id.as_str()).collect();
        self.seen.retain(|key| live.contains(key.0.as_str()));
        let mut params = job.to_notify_params();
        if let Some(flag) = params.as_array_mut().and_then(|p| p.get_mut(8)) {
            *flag = Value::Bool(clean);
        }
        self.send(&notification("mining.notify", params));
    }

    /// Validates a `mining.submit` and remembers it when accepted.
    fn check_share(&mut self, params: &Value, e2_size: usize) -> Result<AcceptedShare, Reject> {
        let fields: Vec<&str> = params
            .as_array()
            .filter(|p| p.len() == 5 || p.len() == 6)
            .and_then(|p| p.iter().map(Value::as_str).collect())
            .ok_or((20, "Invalid params"))?;
        if !self.subscribed {
            return Err((25, "Not subscribed"));
        }
        let worker = fields[0];
        if !self.workers.contains(worker) {
            return Err((24, "Unauthorized worker"));
        }
        let sent = self
            .jobs
            .iter()
            .find(|j| j.job.job_id == fields[1])
            .ok_or((21, "Job not found"))?;
        let extranonce2 = hex::decode(fields[2])
            .filter(|e2| e2.len() == e2_size)
            .ok_or((20, "Invalid extranonce2 size"))?;
        let ntime = work::u32_from_hex(fields[3]).ok_or((20, "Invalid ntime"))?;
        let nonce = work::u32_from_hex(fields[4]).ok_or((20, "Invalid nonce"))?;
        let version_bits = match fields.get(5) {
            None => None,
            Some(bits) => Some(check_version_bits(bits, self.version_mask)?),
        };
        let job = &sent.job;
        let version = match (version_bits, self.version_mask) {
            (Some(bits), Some(mask)) => work::rolled_version(job.version, mask, bits),
            _ => job.version,
        };
        let key: ShareKey = (
            job.job_id.clone(),
            extranonce2.clone(),
            ntime,
            nonce,
            version,
        );
        if self.seen.contains(&key) {
            return Err((22, "Duplicate share"));
        }
        let hash = job.share_hash(&sent.extranonce1, &extranonce2, ntime, nonce, version);
        if !work::hash_meets_target(&hash, &sent.target) {
            return Err((23, "Low difficulty share"));
        }
        let share = AcceptedShare {
            conn_id: self.id,
            extranonce1: sent.extranonce1.clone(),
            extranonce2,
            worker: worker.to_string(),
            job_id: job.job_id.clone(),
            nonce,
            version_bits,
            ntime,
            version,
        };
        self.seen.insert(key);
        Ok(share)
    }
}

/// Parses a submit's version bits and checks them against the negotiated mask.
fn check_version_bits(bits: &str, mask: Option<u32>) -> Result<u32, Reject> {
    let mask = mask.ok_or((20, "Version rolling not negotiated"))?;
    let bits = work::u32_from_hex(bits).ok_or((20, "Invalid version bits"))?;
    if bits & !mask != 0 {
        return Err((20, "Version bits outside the mask"));
    }
    Ok(bits)
}

/// Deterministic byte source: sha256d(instance || job number || counter).
struct Prng {
    seed: [u8; 16],
    counter: u64,
}

impl Prng {
    fn new(instance: u64, job: u64) -> Prng {
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&instance.to_le_bytes());
        seed[8..].copy_from_slice(&job.to_le_bytes());
        Prng { seed, counter: 0 }
    }

    fn next(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut input = [0u8; 24];
        input[..16].copy_from_slice(&self.seed);
        input[16..].copy_from_slice(&self.counter.to_le_bytes());
        work::sha256d(&input)
    }
}

/// A Bitcoin-like coinbase transaction split around `extranonce_len` bytes of extranonce (which sit in a
/// push inside the input script, after the height and some random bytes).
fn make_coinbase_parts(rng: &mut Prng, height: u64, extranonce_len: usize) -> (Vec<u8>, Vec<u8>) {
    const TAG: &[u8] = b"/fastproxy-sim/";
    let random = rng.next();
    let mut script_head = vec![3];
    script_head.extend_from_slice(&height.to_le_bytes()[..3]);
    script_head.push(8);
    script_head.extend_from_slice(&random[..8]);
    if (1..=75).contains(&extranonce_len) {
        script_head.push(extranonce_len as u8); // a direct push of the extranonce bytes
    }
    let mut script_tail = vec![TAG.len() as u8];
    script_tail.extend_from_slice(TAG);
    let script_len = script_head.len() + extranonce_len + script_tail.len();

    let mut coinb1 = Vec::new();
    coinb1.extend_from_slice(&1u32.to_le_bytes()); // tx version
    coinb1.push(1); // one input
    coinb1.extend_from_slice(&[0u8; 32]); // null prevout hash
    coinb1.extend_from_slice(&u32::MAX.to_le_bytes()); // prevout index
    push_varint(&mut coinb1, script_len as u64);
    coinb1.extend_from_slice(&script_head);

    let mut coinb2 = script_tail;
    coinb2.extend_from_slice(&u32::MAX.to_le_bytes()); // sequence
    coinb2.push(1); // one output
    coinb2.extend_from_slice(&625_000_000u64.to_le_bytes());
    coinb2.extend_from_slice(&[0x19, 0x76, 0xa9, 0x14]); // P2PKH script
    coinb2.extend_from_slice(&random[8..28]);
    coinb2.extend_from_slice(&[0x88, 0xac]);
    coinb2.extend_from_slice(&0u32.to_le_bytes()); // lock time
    (coinb1, coinb2)
}

/// Bitcoin's CompactSize encoding.
fn push_varint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    /// A raw JSON-lines Stratum client; keeps notifications that arrive while it waits for a reply.
    struct Client {
        reader: BufReader<TcpStream>,
        queued: VecDeque<Value>,
    }

    impl Client {
        fn connect(addr: SocketAddr) -> Client {
            let stream = TcpStream::connect(addr).expect("connect");
            stream.set_read_timeout(Some(WAIT)).expect("timeout");
            Client {
                reader: BufReader::new(stream),
                queued: VecDeque::new(),
            }
        }

        fn send_raw(&mut self, text: &str) {
            let mut stream = self.reader.get_ref();
            stream.write_all(text.as_bytes()).expect("write");
        }

        fn recv(&mut self) -> Option<Value> {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(n) if n > 0 => Some(serde_json::from_str(&line).expect("pool sent JSON")),
                _ => None,
            }
        }

        /// Sends a request and returns its reply (matched by id).
        fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
            let msg = json!({"id": id, "method": method, "params": params});
            self.send_raw(&format!("{msg}\n"));
            self.reply_to(&id)
        }

        fn reply_to(&mut self, id: &Value) -> Value {
            for _ in 0..100 {
                let msg = self.recv().expect("reply before timeout");
                if msg.get("method").is_none() && msg.get("id") == Some(id) {
                    return msg;
                }
                self.queued.push_back(msg);
            }
            panic!("no reply to {id}");
        }

        fn notification(&mut self, method: &str) -> Value {
            if let Some(i) = self.queued.iter().position(|m| m["method"] == method) {
                return self.queued.remove(i).unwrap_or_default()["params"].clone();
            }
            for _ in 0..100 {
                let msg = self.recv().expect("notification before timeout");
                if msg["method"] == method {
                    return msg["params"].clone();
                }
                self.queued.push_back(msg);
            }
            panic!("no {method}");
        }

        /// Subscribes and authorizes; returns (extranonce1, extranonce2 size, first job).
        fn login(&mut self, worker: &str) -> (Vec<u8>, usize, Job) {
            let sub = self.call(json!("sub-1"), "mining.subscribe", json!(["test/1"]));
            assert_eq!(sub["id"], json!("sub-1"), "string id echoed");
            let e1 = hex::decode(sub["result"][1].as_str().expect("e1")).expect("e1 hex");
            let n2 = sub["result"][2].as_u64().expect("n2") as usize;
            let auth = self.call(json!(7), "mining.authorize", json!([worker, "x"]));
            assert_eq!(auth, json!({"id": 7, "result": true, "error": null}));
            let job = Job::from_notify_params(&self.notification("mining.notify")).expect("job");
            (e1, n2, job)
        }

        fn submit(&mut self, params: Value) -> Value {
            self.call(json!(100), "mining.submit", params)
        }
    }

    fn code(reply: &Value) -> i64 {
        reply["error"][0].as_i64().unwrap_or(0)
    }

    /// The first nonce from `from` whose share meets (or, with `valid` false, misses) `target`.
    fn find_nonce(
        job: &Job,
        e1: &[u8],
        e2: &[u8],
        version: u32,
        target: &[u8; 32],
        from: u32,
        valid: bool,
    ) -> u32 {
        let merkle = job.merkle_root(&job.coinbase(e1, e2));
        let mut header = job.header_with_merkle_root(&merkle, job.ntime, 0, version);
        (from..from + 5_000_000)
            .find(|&n| {
                header[76..].copy_from_slice(&n.to_le_bytes());
                work::hash_meets_target(&work::sha256d(&header), target) == valid
            })
            .expect("a nonce within 5M tries")
    }

    fn share(worker: &str, job: &Job, e2: &[u8], nonce: u32) -> Value {
        json!([
            worker,
            job.job_id,
            hex::encode(e2),
            work::u32_to_hex(job.ntime),
            work::u32_to_hex(nonce)
        ])
    }

    #[test]
    fn submit_validation_codes() {
        let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
        let mut c = Client::connect(pool.addr());
        let (e1, n2, job) = c.login("w1");
        assert_eq!((e1.len(), n2), (4, 8));
        let target = work::target_from_difficulty(1.0 / 65536.0);
        let e2 = vec![0u8; 8];
        let good = find_nonce(&job, &e1, &e2, job.version, &target, 0, true);

        assert_eq!(code(&c.submit(share("nobody", &job, &e2, good))), 24);
        let ok = c.submit(share("w1", &job, &e2, good));
        assert_eq!(ok, json!({"id": 100, "result": true, "error": null}));
        assert_eq!(code(&c.submit(share("w1", &job, &e2, good))), 22);
        let mut unknown = job.clone();
        unknown.job_id = "nope".into();
        assert_eq!(code(&c.submit(share("w1", &unknown, &e2, good))), 21);
        assert_eq!(code(&c.submit(share("w1", &job, &e2[..7], good))), 20);
        let mut bad_ntime = share("w1", &job, &e2, good);
        bad_ntime[3] = json!("xyz");
        assert_eq!(code(&c.submit(bad_ntime)), 20);
        let mut with_bits = share("w1", &job, &e2, good);
        with_bits
            .as_array_mut()
            .expect("array")
            .push(json!("00002000"));
        assert_eq!(
            code(&c.submit(with_bits)),
            20,
            "version bits without configure"
        );
        let low = find_nonce(&job, &e1, &e2, job.version, &target, 0, false);
        let low_reply = c.submit(share("w1", &job, &e2, low));
        assert_eq!(
            low_reply["error"],
            json!([23, "Low difficulty share", null])
        );

        // A clean job makes the old one stale.
        pool.new_job(true);
        let next = Job::from_notify_params(&c.notification("mining.notify")).expect("job");
        assert!(next.clean_jobs);
        assert_ne!(next.job_id, job.job_id);
        let old_good = find_nonce(&job, &e1, &e2, job.version, &target, good + 1, true);
        assert_eq!(code(&c.submit(share("w1", &job, &e2, old_good))), 21);
        let new_good = find_nonce(&next, &e1, &e2, next.version, &target, 0, true);
        assert_eq!(
            c.submit(share("w1", &next, &e2, new_good))["result"],
            json!(true)
        );

        // Garbage is ignored, unknown methods get 20, the connection keeps working.
        c.send_raw("this is not json\n{\"id\": 5}\n\n");
        let unknown_method = c.call(json!(9), "mining.frobnicate", json!([]));
        assert_eq!(code(&unknown_method), 20);

        let stats = pool.stats();
        assert_eq!((stats.submits, stats.accepted, stats.rejected), (10, 2, 8));
        let codes: Vec<(i64, u64)> = stats.rejected_by_code.into_iter().collect();
        assert_eq!(codes, vec![(20, 3), (21, 2), (22, 1), (23, 1), (24, 1)]);
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.accepted_shares[0].extranonce1, e1);
        assert_eq!(stats.accepted_shares[0].nonce, good);
        assert_eq!(stats.accepted_shares[0].ntime, job.ntime);
        assert_eq!(stats.accepted_shares[0].version, job.version);
        assert_eq!(
            stats.accepted_shares[0].full_extranonce(),
            [&e1[..], &e2[..]].concat()
        );
        let refused: Vec<i64> = stats.rejected_shares.iter().map(|r| r.code).collect();
        assert_eq!(refused, vec![24, 22, 21, 20, 20, 20, 23, 21]);
        let low_share = &stats.rejected_shares[6];
        assert_eq!(
            (low_share.reason, &low_share.extranonce1),
            ("Low difficulty share", &e1)
        );
        assert_eq!(low_share.params[4], work::u32_to_hex(low));
        assert_eq!(stats.authorized_users, vec!["w1".to_string()]);
    }

    #[test]
    fn not_subscribed_and_unauthorized() {
        let cfg = SimPoolConfig {
            user: Some("alice".into()),
            ..SimPoolConfig::default()
        };
        let pool = SimPool::start(cfg).expect("pool");
        let mut c = Client::connect(pool.addr());
        let auth = c.call(json!(1), "mining.authorize", json!(["alice", "x"]));
        assert_eq!(auth["result"], json!(true));
        let params = json!(["alice", "j", "0000000000000000", "00000000", "00000000"]);
        assert_eq!(code(&c.submit(params)), 25);
        let bob = c.call(json!(2), "mining.authorize", json!(["bob", "x"]));
        assert_eq!(bob["result"], json!(false));
        assert_eq!(pool.stats().authorized_users, vec!["alice".to_string()]);
    }

    #[test]
    fn version_rolling_negotiation_and_check() {
        let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
        let mut c = Client::connect(pool.addr());
        let opts = json!({"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2});
        let conf = c.call(
            json!(1),
            "mining.configure",
            json!([["version-rolling", "minimum-difficulty"], opts]),
        );
        assert_eq!(
            conf["result"],
            json!({"version-rolling": true, "version-rolling.mask": "1fffe000", "minimum-difficulty": false})
        );
        let (e1, _, job) = c.login("w");
        let target = work::target_from_difficulty(1.0 / 65536.0);
        let e2 = [1u8; 8];
        let bits = 0x0004_6000;
        let version = work::rolled_version(job.version, 0x1fff_e000, bits);
        let nonce = find_nonce(&job, &e1, &e2, version, &target, 0, true);
        let mut params = share("w", &job, &e2, nonce);
        params
            .as_array_mut()
            .expect("array")
            .push(json!(work::u32_to_hex(bits)));
        assert_eq!(c.submit(params.clone())["result"], json!(true));
        params[5] = json!("00001000");
        assert_eq!(code(&c.submit(params)), 20, "bits outside the mask");
        let stats = pool.stats();
        assert_eq!(stats.accepted_shares[0].version_bits, Some(bits));
        assert_eq!(stats.accepted_shares[0].version, version);
        assert_eq!(stats.configure_requests, 1);

        // A pool without version rolling does not know mining.configure.
        let plain = SimPool::start(SimPoolConfig {
            version_rolling_mask: None,
            ..SimPoolConfig::default()
        })
        .expect("pool");
        let mut c = Client::connect(plain.addr());
        let conf = c.call(
            json!(1),
            "mining.configure",
            json!([["version-rolling"], {}]),
        );
        assert_eq!(code(&conf), 20);
    }

    #[test]
    fn extranonce_reconnect_and_disconnect() {
        let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
        let mut subscribed = Client::connect(pool.addr());
        let (e1, _, _) = subscribed.login("a");
        let ack = subscribed.call(json!(3), "mining.extranonce.subscribe", json!([]));
        assert_eq!(ack["result"], json!(true));
        let mut plain = Client::connect(pool.addr());
        let (plain_e1, _, _) = plain.login("b");
        assert_ne!(e1, plain_e1);

        pool.set_extranonce_all();
        let set = subscribed.notification("mining.set_extranonce");
        let new_e1 = hex::decode(set[0].as_str().expect("e1")).expect("hex");
        assert_eq!((new_e1.len(), set[1].clone()), (4, json!(8)));
        assert_ne!(new_e1, e1);
        let job = Job::from_notify_params(&subscribed.notification("mining.notify")).expect("job");
        assert!(job.clean_jobs);
        let target = work::target_from_difficulty(1.0 / 65536.0);
        let e2 = [0u8; 8];
        let nonce = find_nonce(&job, &new_e1, &e2, job.version, &target, 0, true);
        assert_eq!(
            subscribed.submit(share("a", &job, &e2, nonce))["result"],
            json!(true)
        );
        assert_eq!(pool.stats().accepted_shares[0].extranonce1, new_e1);

        // The other connection got nothing: the next thing it reads is its own reply.
        plain.queued.clear(); // its login's set_difficulty
        let pong = plain.call(json!(4), "mining.suggest_difficulty", json!([1]));
        assert_eq!(pong["result"], json!(true));
        assert!(plain.queued.is_empty(), "unexpected {:?}", plain.queued);

        pool.send_reconnect_all(Some("127.0.0.1"), Some(1), 0);
        assert_eq!(
            plain.notification("client.reconnect"),
            json!(["127.0.0.1", 1, 0])
        );
        pool.disconnect_all();
        assert_eq!(pool.stats().connections_open, 0);
        assert_eq!(pool.stats().connections_total, 2);
        let drained = (0..10).take_while(|_| plain.recv().is_some()).count();
        assert!(drained < 10, "connection closed");
    }

    #[test]
    fn periodic_jobs_unanswered_submits_and_restart() {
        let cfg = SimPoolConfig {
            job_interval: Some(Duration::from_millis(50)),
            answer_submits: false,
            ..SimPoolConfig::default()
        };
        let pool = SimPool::start(cfg).expect("pool");
        let addr = pool.addr();
        let mut c = Client::connect(addr);
        let (_, _, first) = c.login("w");
        let second = Job::from_notify_params(&c.notification("mining.notify")).expect("job");
        assert_ne!(first.job_id, second.job_id);
        assert!(!second.clean_jobs);

        c.send_raw(&format!(
            "{}\n",
            json!({"id": 50, "method": "mining.submit", "params": share("w", &first, &[0; 8], 1)})
        ));
        let deadline = Instant::now() + WAIT;
        while pool.stats().submits == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.stats().submits, 1);
        // Only notifications arrive, never a reply.
        for _ in 0..3 {
            let msg = c.recv().expect("message");
            assert_eq!(msg["method"], json!("mining.notify"));
        }

        pool.stop();
        let again = SimPool::start(SimPoolConfig {
            listen: addr,
            ..SimPoolConfig::default()
        })
        .expect("same address is free after stop");
        assert_eq!(again.addr(), addr);
    }

    #[test]
    fn bounded_line_reader() {
        let data = b"short\nlonger line\nno newline".to_vec();
        let mut r = BufReader::new(&data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 8).ok(),
            Some(LineRead::Line)
        );
        assert_eq!(buf, b"short\n");
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 8).ok(),
            Some(LineRead::TooLong)
        );
        assert_eq!(buf.len(), 9);
        let mut r = BufReader::new(&b"tail"[..]);
        buf.clear();
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 8).ok(),
            Some(LineRead::Eof)
        );
    }
}
