//! A simulated Equihash stratum (ZIP 301) pool for tests: it hands out jobs, unique NONCE_1 values and a
//! share target, supports the extranonce subscription, and checks every submitted share: known job, TIME and
//! NONCE_2 format, the solution's compactSize prefix and length, duplicates, optionally the Equihash solution
//! itself, and the block hash against the target in effect when the job was sent. One thread per connection
//! (it only serves a few).
//!
//! The simulated miners cannot solve Equihash (200, 9) in test time, so by default solutions are not
//! verified; the miners instead vary their (fake) solution until the block hash meets the target, so a share
//! whose 32-byte nonce the pool rebuilds differently from the miner (a wrong NONCE_1 prefix) fails the target
//! check, as in Stratum V1. For an exact check, compare [`EquihashPoolStats::accepted_shares`] nonces with
//! the miners' submitted nonces.

use super::pool::{is_timeout, read_line_bounded, LineRead, MAX_LINE};
use fastproxy_work::equihash::{self, EquihashJob, Params, ShareError, NONCE_LEN};
use fastproxy_work::hex;
use fastproxy_work::work;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const READ_POLL: Duration = Duration::from_millis(50);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// The default share target: 0x00ff..ff (one hash in 256 meets it).
pub const EASY_TARGET_HEX: &str =
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// How the simulated Equihash pool behaves.
#[derive(Clone, Debug)]
pub struct EquihashPoolConfig {
    /// Address to bind (127.0.0.1:0 by default: any free port).
    pub listen: SocketAddr,
    /// Bytes of NONCE_1 per connection (less than 32); miners fill the other 32 - `nonce1_size` bytes.
    pub nonce1_size: usize,
    /// Test hook: every `mining.subscribe` gets this NONCE_1 (not unique!) instead of a fresh one, e.g. to
    /// replay a known block's nonce. `mining.set_extranonce` still hands out fresh values of its length.
    pub fixed_nonce1: Option<Vec<u8>>,
    /// Share target sent with `mining.set_target` on subscribe: 64 hex digits, big-endian.
    pub target_hex: String,
    /// Broadcast a new (not clean) job this often; `None`: only on demand.
    pub job_interval: Option<Duration>,
    /// False: never reply to `mining.submit` (shares are still counted and checked).
    pub answer_submits: bool,
    /// Equihash parameters: the solution length expected, and the verification.
    pub params: Params,
    /// Verify each Equihash solution against the rebuilt header (an invalid one is rejected with 20). Off by
    /// default: the simulated miners submit well-formed but fake solutions.
    pub verify_solutions: bool,
    /// Reject shares whose block hash is above the target with 23 (on by default; the simulated miners
    /// vary their solution until the hash meets the target).
    pub check_target: bool,
    /// Jobs remembered per connection (older ones answer 21 "Job not found").
    pub jobs_kept: usize,
}

impl Default for EquihashPoolConfig {
    fn default() -> Self {
        EquihashPoolConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            nonce1_size: 4,
            fixed_nonce1: None,
            target_hex: EASY_TARGET_HEX.into(),
            job_interval: None,
            answer_submits: true,
            params: Params::ZCASH,
            verify_solutions: false,
            check_target: true,
            jobs_kept: 8,
        }
    }
}

/// Counters of a running Equihash pool (a snapshot).
#[derive(Clone, Default, Debug)]
pub struct EquihashPoolStats {
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// `mining.submit` requests received.
    pub submits: u64,
    /// Submits accepted.
    pub accepted: u64,
    /// Submits rejected (any code).
    pub rejected: u64,
    /// Rejected submits per error code.
    pub rejected_by_code: BTreeMap<i64, u64>,
    /// Submits rejected as duplicates (22).
    pub duplicates: u64,
    /// Every accepted share, in order.
    pub accepted_shares: Vec<EquihashShare>,
    /// Worker names authorized, in order.
    pub authorized_users: Vec<String>,
    /// `mining.extranonce.subscribe` requests received.
    pub extranonce_subscribes: u64,
    /// The params of every `mining.subscribe` received (agent, session id, host, port).
    pub subscribe_params: Vec<Value>,
}

/// One share the pool accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EquihashShare {
    /// The pool's id of the connection.
    pub conn_id: u64,
    /// The connection's NONCE_1 when the job was sent to it.
    pub nonce1: Vec<u8>,
    /// The submit's NONCE_2.
    pub nonce2: Vec<u8>,
    /// The header nonce the pool rebuilt: `nonce1 || nonce2`.
    pub nonce: [u8; NONCE_LEN],
    /// The submit's worker name.
    pub worker: String,
    /// The submit's job id.
    pub job_id: String,
    /// The submit's TIME, as in the header.
    pub time: [u8; 4],
    /// sha256d(header || solution), header byte order.
    pub block_hash: [u8; 32],
}

/// A running simulated Equihash pool. Dropping it stops it (see [`EquihashPool::stop`]).
pub struct EquihashPool {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

/// Everything the pool's threads share.
struct Shared {
    cfg: EquihashPoolConfig,
    /// Distinguishes pools in one process (job ids, NONCE_1 values, session ids, job contents).
    instance: u64,
    stop: AtomicBool,
    state: Mutex<State>,
    conn_threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Mutable pool state, behind one lock (connection count is small).
struct State {
    conns: BTreeMap<u64, Conn>,
    stats: EquihashPoolStats,
    target: [u8; 32],
    current_job: Option<Arc<EquihashJob>>,
    job_counter: u64,
    nonce1_counter: u64,
    next_conn_id: u64,
}

/// One miner-side connection to the pool.
struct Conn {
    id: u64,
    stream: TcpStream,
    subscribed: bool,
    nonce1: Vec<u8>,
    extranonce_subscribed: bool,
    workers: BTreeSet<String>,
    jobs: VecDeque<SentJob>,
    /// (job id, block hash) of the accepted shares of live jobs.
    seen: HashSet<(String, [u8; 32])>,
}

/// A job as sent to one connection, with what the share check needs from that moment.
struct SentJob {
    job: Arc<EquihashJob>,
    nonce1: Vec<u8>,
    target: [u8; 32],
}

/// Why a submit was refused: a conventional Stratum error code and message.
type Reject = (i64, &'static str);

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl EquihashPool {
    /// Checks `cfg` (target, NONCE_1 size below 32, parameters), binds `cfg.listen` and starts accepting.
    pub fn start(cfg: EquihashPoolConfig) -> io::Result<EquihashPool> {
        let target = equihash::target_from_hex(&cfg.target_hex)
            .ok_or_else(|| invalid_input(format!("bad target {:?}", cfg.target_hex)))?;
        let nonce1_len = cfg.fixed_nonce1.as_ref().map_or(cfg.nonce1_size, Vec::len);
        if nonce1_len >= NONCE_LEN {
            return Err(invalid_input(format!("NONCE_1 of {nonce1_len} bytes")));
        }
        cfg.params.check().map_err(invalid_input)?;
        let listener = TcpListener::bind(cfg.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = State {
            conns: BTreeMap::new(),
            stats: EquihashPoolStats::default(),
            target,
            current_job: None,
            job_counter: 0,
            nonce1_counter: 0,
            next_conn_id: 1,
        };
        let shared = Arc::new(Shared {
            cfg,
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            stop: AtomicBool::new(false),
            state: Mutex::new(state),
            conn_threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("eqpool-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(EquihashPool {
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
    pub fn stats(&self) -> EquihashPoolStats {
        lock(&self.shared.state).stats.clone()
    }

    /// Broadcasts a new job to every subscribed connection.
    pub fn new_job(&self, clean: bool) {
        let shared = &self.shared;
        let mut guard = lock(&shared.state);
        let job = guard.make_job(shared, clean);
        guard.broadcast(shared, job);
    }

    /// Makes `job` the current job and broadcasts it as given (its `clean_jobs` flag included); connections
    /// subscribing later get it too (as a clean job). Test hook, e.g. for a real block's header; the caller
    /// keeps job ids unique.
    pub fn push_job(&self, job: EquihashJob) {
        let shared = &self.shared;
        lock(&shared.state).broadcast(shared, Arc::new(job));
    }

    /// Broadcasts `mining.set_target` `[target_hex]`, then a new (not clean) job that carries it. Earlier
    /// jobs keep the target they were sent with.
    pub fn set_target(&self, target_hex: &str) -> Result<(), String> {
        let target = equihash::target_from_hex(target_hex)
            .ok_or_else(|| format!("bad target {target_hex:?}"))?;
        let shared = &self.shared;
        let mut guard = lock(&shared.state);
        guard.target = target;
        let msg = notification("mining.set_target", json!([hex::encode(&target)]));
        for conn in guard.conns.values_mut().filter(|c| c.subscribed) {
            conn.send(&msg);
        }
        let job = guard.make_job(shared, false);
        guard.broadcast(shared, job);
        Ok(())
    }

    /// Gives each connection that sent `mining.extranonce.subscribe` a fresh NONCE_1 (same size) via
    /// `mining.set_extranonce` `[NONCE_1_HEX]`, followed by a new clean job for it. Other connections see
    /// nothing.
    pub fn set_extranonce_all(&self) {
        let shared = &self.shared;
        let mut guard = lock(&shared.state);
        let st = &mut *guard;
        let job = st.make_job(shared, true);
        let target = st.target;
        let ids: Vec<u64> = st
            .conns
            .values()
            .filter(|c| c.subscribed && c.extranonce_subscribed)
            .map(|c| c.id)
            .collect();
        for id in ids {
            let nonce1 = st.next_nonce1(shared);
            if let Some(conn) = st.conns.get_mut(&id) {
                let params = json!([hex::encode(&nonce1)]);
                conn.nonce1 = nonce1;
                conn.send(&notification("mining.set_extranonce", params));
                conn.send_job(&job, true, target, shared.cfg.jobs_kept);
            }
        }
    }

    /// Sends `client.reconnect` `[host, port, wait]` to every connection (`[]` when all are empty/zero).
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

    /// Closes every connection; the listener keeps accepting new ones.
    pub fn disconnect_all(&self) {
        lock(&self.shared.state).close_all();
    }

    /// Stops accepting, closes every connection and joins all threads; the port is free afterwards.
    pub fn stop(self) {
        drop(self);
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

impl Drop for EquihashPool {
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
                log::debug!("eqpool: connection from {peer}");
                spawn_conn(&shared, stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                log::debug!("eqpool: accept failed: {e}");
                thread::sleep(ACCEPT_POLL);
            }
        }
        if let (Some(at), Some(every)) = (next_job_at, shared.cfg.job_interval) {
            if Instant::now() >= at {
                let mut guard = lock(&shared.state);
                let job = guard.make_job(&shared, false);
                guard.broadcast(&shared, job);
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
        .name(format!("eqpool-conn-{id}"))
        .spawn(move || serve_conn(conn_shared, id, stream));
    match spawned {
        Ok(handle) => {
            let mut threads = lock(&shared.conn_threads);
            threads.retain(|t| !t.is_finished());
            threads.push(handle);
        }
        Err(e) => {
            log::debug!("eqpool: cannot spawn a connection thread: {e}");
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
                shared.handle_line(id, &line);
                line.clear();
            }
            Ok(LineRead::Eof) | Ok(LineRead::TooLong) => break,
            Err(e) if is_timeout(&e) => {}
            Err(e) => {
                log::debug!("eqpool: conn {id}: read error: {e}");
                break;
            }
        }
    }
    lock(&shared.state).remove_conn(id);
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
            .map_err(|e| log::debug!("eqpool: socket setup failed: {e}"))
            .ok()?;
        let mut st = lock(&self.state);
        let id = st.next_conn_id;
        st.next_conn_id += 1;
        st.conns.insert(id, Conn::new(id, writer));
        st.stats.connections_total += 1;
        st.stats.connections_open += 1;
        Some(id)
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
                log::debug!("eqpool: conn {id}: ignoring invalid JSON: {e}");
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
            "mining.subscribe" => st.on_subscribe(self, id, &req_id, &params),
            "mining.authorize" => st.on_authorize(id, &req_id, &params),
            "mining.extranonce.subscribe" => st.on_extranonce_subscribe(id, &req_id),
            "mining.submit" => st.on_submit(self, id, &req_id, &params),
            "mining.suggest_target" => st.reply(id, ok_reply(&req_id, json!(true))),
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

    /// Makes `job` current and sends it (with its own clean flag) to every subscribed connection.
    fn broadcast(&mut self, shared: &Shared, job: Arc<EquihashJob>) {
        self.current_job = Some(Arc::clone(&job));
        let target = self.target;
        for conn in self.conns.values_mut().filter(|c| c.subscribed) {
            conn.send_job(&job, job.clean_jobs, target, shared.cfg.jobs_kept);
        }
    }

    /// A fresh NONCE_1, unique within this pool, of the configured size.
    fn next_nonce1(&mut self, shared: &Shared) -> Vec<u8> {
        self.nonce1_counter += 1;
        let value = shared
            .instance
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(self.nonce1_counter);
        let size = shared
            .cfg
            .fixed_nonce1
            .as_ref()
            .map_or(shared.cfg.nonce1_size, Vec::len);
        let bytes = value.to_be_bytes();
        let mut nonce1 = vec![0u8; size.saturating_sub(8)];
        nonce1.extend_from_slice(&bytes[8usize.saturating_sub(size)..]);
        nonce1
    }

    /// A new job with deterministic pseudo-random contents and a pool-unique id.
    fn make_job(&mut self, shared: &Shared, clean: bool) -> Arc<EquihashJob> {
        self.job_counter += 1;
        let n = self.job_counter;
        let mut rng = Prng::new(shared.instance, n);
        Arc::new(EquihashJob {
            job_id: format!("{:x}{:06x}", shared.instance, n),
            version: 4u32.to_le_bytes(),
            prevhash: rng.next(),
            merkleroot: rng.next(),
            reserved: rng.next(),
            time: unix_time().to_le_bytes(),
            bits: 0x1f07_ffffu32.to_le_bytes(),
            clean_jobs: clean,
        })
    }

    fn on_subscribe(&mut self, shared: &Shared, id: u64, req_id: &Value, params: &Value) {
        self.stats.subscribe_params.push(params.clone());
        let needs_nonce1 = self.conns.get(&id).is_some_and(|c| !c.subscribed);
        let fresh = needs_nonce1.then(|| match &shared.cfg.fixed_nonce1 {
            Some(fixed) => fixed.clone(),
            None => self.next_nonce1(shared),
        });
        let job = match &self.current_job {
            Some(job) => Arc::clone(job),
            None => {
                let job = self.make_job(shared, true);
                self.current_job = Some(Arc::clone(&job));
                job
            }
        };
        let target = self.target;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(nonce1) = fresh {
            conn.nonce1 = nonce1;
        }
        conn.subscribed = true;
        // A fresh session id each time: resuming is not supported, and the id differs from any asked for.
        let session_id = format!("{:x}{:08x}", shared.instance, conn.id);
        let result = json!([session_id, hex::encode(&conn.nonce1)]);
        conn.send(&ok_reply(req_id, result));
        conn.send(&notification(
            "mining.set_target",
            json!([hex::encode(&target)]),
        ));
        conn.send_job(&job, true, target, shared.cfg.jobs_kept);
    }

    fn on_authorize(&mut self, id: u64, req_id: &Value, params: &Value) {
        let Some(user) = params.get(0).and_then(Value::as_str) else {
            return self.reply(id, error_reply(req_id, (20, "Invalid params")));
        };
        self.stats.authorized_users.push(user.to_string());
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.workers.insert(user.to_string());
        }
        self.reply(id, ok_reply(req_id, json!(true)));
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
        let outcome = conn.check_share(params, &shared.cfg);
        let reply = match &outcome {
            Ok(_) => ok_reply(req_id, json!(true)),
            Err(reject) => error_reply(req_id, *reject),
        };
        if shared.cfg.answer_submits {
            conn.send(&reply);
        }
        self.stats.submits += 1;
        match outcome {
            Ok(share) => {
                self.stats.accepted += 1;
                self.stats.accepted_shares.push(share);
            }
            Err((code, _)) => {
                self.stats.rejected += 1;
                *self.stats.rejected_by_code.entry(code).or_default() += 1;
                if code == 22 {
                    self.stats.duplicates += 1;
                }
            }
        }
    }
}

impl Conn {
    fn new(id: u64, stream: TcpStream) -> Conn {
        Conn {
            id,
            stream,
            subscribed: false,
            nonce1: Vec::new(),
            extranonce_subscribed: false,
            workers: BTreeSet::new(),
            jobs: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Writes one JSON line; on failure the socket is shut down (its reader thread then cleans up).
    fn send(&mut self, msg: &Value) {
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.stream.write_all(&line) {
            log::debug!("eqpool: conn {}: write failed: {e}", self.id);
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }

    /// Records and sends a job; `clean` forgets the earlier ones.
    fn send_job(&mut self, job: &Arc<EquihashJob>, clean: bool, target: [u8; 32], kept: usize) {
        if clean {
            self.jobs.clear();
        }
        self.jobs.push_back(SentJob {
            job: Arc::clone(job),
            nonce1: self.nonce1.clone(),
            target,
        });
        while self.jobs.len() > kept.max(1) {
            self.jobs.pop_front();
        }
        let live: HashSet<&str> = self.jobs.iter().map(|j| j.job.job_id.as_str()).collect();
        self.seen.retain(|key| live.contains(key.0.as_str()));
        let mut params = job.to_notify_params();
        if let Some(flag) = params.as_array_mut().and_then(|p| p.get_mut(7)) {
            *flag = Value::Bool(clean);
        }
        self.send(&notification("mining.notify", params));
    }

    /// Validates a `mining.submit` `[WORKER, JOB_ID, TIME, NONCE_2, EQUIHASH_SOLUTION]` and remembers it
    /// when accepted.
    fn check_share(
        &mut self,
        params: &Value,
        cfg: &EquihashPoolConfig,
    ) -> Result<EquihashShare, Reject> {
        let fields: Vec<&str> = params
            .as_array()
            .filter(|p| p.len() == 5)
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
        let time = hex::decode_array::<4>(fields[2]).ok_or((20, "Invalid time"))?;
        let nonce2 = hex::decode(fields[3])
            .filter(|n2| n2.len() + sent.nonce1.len() == NONCE_LEN)
            .ok_or((20, "Invalid nonce_2 size"))?;
        let nonce = equihash::nonce_from_parts(&sent.nonce1, &nonce2)
            .ok_or((20, "Invalid nonce_2 size"))?;
        let solution = equihash::parse_solution_hex(fields[4], &cfg.params)
            .map_err(|_| (20, "Invalid solution size"))?;
        let job = &sent.job;
        let block_hash = equihash::block_hash(&job.header_with_time(&time, &nonce), &solution);
        let key = (job.job_id.clone(), block_hash);
        if self.seen.contains(&key) {
            return Err((22, "Duplicate share"));
        }
        let target = if cfg.check_target {
            sent.target
        } else {
            work::MAX_TARGET
        };
        let checked = equihash::check_share(
            job,
            &cfg.params,
            &time,
            &nonce,
            &solution,
            &target,
            cfg.verify_solutions,
        );
        if let Err(e) = &checked {
            if let ShareError::InvalidSolution(why) = e {
                log::debug!("eqpool: conn {}: {why}", self.id);
            }
            return Err((e.code(), e.message()));
        }
        let share = EquihashShare {
            conn_id: self.id,
            nonce1: sent.nonce1.clone(),
            nonce2,
            nonce,
            worker: worker.to_string(),
            job_id: job.job_id.clone(),
            time,
            block_hash,
        };
        self.seen.insert(key);
        Ok(share)
    }
}

/// Deterministic byte source for simulated jobs and solutions: sha256d(seed || counter).
pub(crate) struct Prng {
    seed: [u8; 16],
    counter: u64,
}

impl Prng {
    /// A source for the pair `(a, b)` (e.g. pool instance and job number).
    pub(crate) fn new(a: u64, b: u64) -> Prng {
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&a.to_le_bytes());
        seed[8..].copy_from_slice(&b.to_le_bytes());
        Prng { seed, counter: 0 }
    }

    /// The next 32 pseudo-random bytes.
    pub(crate) fn next(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut input = [0u8; 24];
        input[..16].copy_from_slice(&self.seed);
        input[16..].copy_from_slice(&self.counter.to_le_bytes());
        work::sha256d(&input)
    }

    /// Fills `out` with pseudo-random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let block = self.next();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::equihash_miner::grind_solution;
    use fastproxy_work::equihash::test_vectors::genesis;
    use std::io::BufRead;

    const WAIT: Duration = Duration::from_secs(5);

    /// A raw JSON-lines Stratum client; keeps notifications that arrive while it waits for a reply.
    struct Client {
        reader: BufReader<TcpStream>,
        queued: VecDeque<Value>,
    }

    /// What a login returns: session id, NONCE_1, the target and the first job.
    struct Login {
        session: String,
        nonce1: Vec<u8>,
        target: [u8; 32],
        job: EquihashJob,
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
            for _ in 0..100 {
                let msg = self.recv().expect("reply before timeout");
                if msg.get("method").is_none() && msg.get("id") == Some(&id) {
                    return msg;
                }
                self.queued.push_back(msg);
            }
            panic!("no reply to {id}");
        }

        /// The next message with `method` (queued ones first).
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

        fn job(&mut self) -> EquihashJob {
            EquihashJob::from_notify_params(&self.notification("mining.notify")).expect("job")
        }

        /// Subscribes (asking to resume session "old") and authorizes `worker`.
        fn login(&mut self, worker: &str) -> Login {
            let port = self.reader.get_ref().peer_addr().map_or(0, |a| a.port());
            let params = json!(["test/1", "old", "127.0.0.1", port]);
            let sub = self.call(json!("sub-1"), "mining.subscribe", params);
            assert_eq!(sub["id"], json!("sub-1"), "string id echoed");
            assert_eq!(sub["error"], Value::Null);
            let result = sub["result"].as_array().cloned().unwrap_or_default();
            assert_eq!(result.len(), 2, "{sub}");
            let session = result[0].as_str().expect("session id").to_string();
            assert_ne!(session, "old", "resuming is not supported");
            let nonce1 = hex::decode(result[1].as_str().expect("nonce1")).expect("hex");
            // set_target comes first, then the clean job.
            let first = self.recv().expect("set_target");
            assert_eq!(first["method"], json!("mining.set_target"), "{first}");
            let target = equihash::target_from_hex(first["params"][0].as_str().unwrap_or(""))
                .expect("target hex");
            let notify = self.recv().expect("notify");
            assert_eq!(notify["method"], json!("mining.notify"), "{notify}");
            assert_eq!(notify["id"], Value::Null);
            assert_eq!(notify["params"].as_array().map(Vec::len), Some(8));
            let job = EquihashJob::from_notify_params(&notify["params"]).expect("job");
            assert!(job.clean_jobs);
            let auth = self.call(json!(7), "mining.authorize", json!([worker, "x"]));
            assert_eq!(auth, json!({"id": 7, "result": true, "error": null}));
            Login {
                session,
                nonce1,
                target,
                job,
            }
        }

        fn submit(&mut self, params: Value) -> Value {
            self.call(json!(100), "mining.submit", params)
        }
    }

    fn code(reply: &Value) -> i64 {
        reply["error"][0].as_i64().unwrap_or(0)
    }

    /// A well-formed solution for `job` and `nonce` whose block hash meets (`valid`) or misses `target`.
    fn solution(job: &EquihashJob, nonce: &[u8; 32], target: &[u8; 32], valid: bool) -> Vec<u8> {
        let mut sol = Params::ZCASH.solution_prefix();
        sol.resize(Params::ZCASH.solution_with_prefix_len(), 0x5a);
        let header = job.header(nonce);
        if valid {
            grind_solution(&header, &mut sol, target, 0, 1_000_000).expect("a solution");
        } else {
            let tail = sol.len() - 8;
            let miss = (0u64..1_000)
                .find(|i| {
                    sol[tail..].copy_from_slice(&i.to_le_bytes());
                    !equihash::hash_meets_target(&equihash::block_hash(&header, &sol), target)
                })
                .expect("a miss");
            sol[tail..].copy_from_slice(&miss.to_le_bytes());
        }
        sol
    }

    fn share(worker: &str, job: &EquihashJob, nonce2: &[u8], solution: &[u8]) -> Value {
        json!([
            worker,
            job.job_id,
            hex::encode(&job.time),
            hex::encode(nonce2),
            hex::encode(solution)
        ])
    }

    #[test]
    fn submit_validation_codes() {
        let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
        let mut c = Client::connect(pool.addr());
        let not_yet = json!(["w1", "j", "00000000", "00".repeat(28), "00"]);
        assert_eq!(code(&c.submit(not_yet)), 25);
        let login = c.login("w1");
        assert_eq!(login.nonce1.len(), 4);
        assert_eq!(
            Some(login.target),
            equihash::target_from_hex(EASY_TARGET_HEX)
        );
        let job = login.job;
        let nonce2 = [3u8; 28];
        let nonce = equihash::nonce_from_parts(&login.nonce1, &nonce2).expect("nonce");
        let good = solution(&job, &nonce, &login.target, true);

        assert_eq!(code(&c.submit(share("nobody", &job, &nonce2, &good))), 24);
        let ok = c.submit(share("w1", &job, &nonce2, &good));
        assert_eq!(ok, json!({"id": 100, "result": true, "error": null}));
        assert_eq!(code(&c.submit(share("w1", &job, &nonce2, &good))), 22);
        let mut unknown = job.clone();
        unknown.job_id = "nope".into();
        assert_eq!(code(&c.submit(share("w1", &unknown, &nonce2, &good))), 21);
        for bad_nonce2 in [&nonce2[..27], &[3u8; 29][..], &[][..]] {
            let reply = c.submit(share("w1", &job, bad_nonce2, &good));
            assert_eq!(reply["error"], json!([20, "Invalid nonce_2 size", null]));
        }
        let mut odd = share("w1", &job, &nonce2, &good);
        odd[3] = json!(format!("{}0", hex::encode(&nonce2)));
        assert_eq!(code(&c.submit(odd)), 20);
        for bad_time in ["xyz", "000000", "0000000000", "0000000g"] {
            let mut p = share("w1", &job, &nonce2, &good);
            p[2] = json!(bad_time);
            assert_eq!(c.submit(p)["error"], json!([20, "Invalid time", null]));
        }
        for bad in [
            &good[..good.len() - 1],
            &good[3..],
            &[&good[..], &[0][..]].concat(),
        ] {
            let reply = c.submit(share("w1", &job, &nonce2, bad));
            assert_eq!(reply["error"], json!([20, "Invalid solution size", null]));
        }
        let mut wrong_prefix = good.clone();
        wrong_prefix[1] = 0x41;
        assert_eq!(
            code(&c.submit(share("w1", &job, &nonce2, &wrong_prefix))),
            20
        );
        let mut short = share("w1", &job, &nonce2, &good);
        short.as_array_mut().map(Vec::pop);
        assert_eq!(code(&c.submit(short)), 20);
        let other2 = [9u8; 28];
        let nonce_low = equihash::nonce_from_parts(&login.nonce1, &other2).expect("nonce");
        let low = solution(&job, &nonce_low, &login.target, false);
        let low_reply = c.submit(share("w1", &job, &other2, &low));
        assert_eq!(
            low_reply["error"],
            json!([23, "Low difficulty share", null])
        );

        // A clean job makes the old one stale.
        pool.new_job(true);
        let next = c.job();
        assert!(next.clean_jobs);
        assert_ne!(next.job_id, job.job_id);
        assert_eq!(next.version, [4, 0, 0, 0]);
        let fresh2 = [4u8; 28];
        let fresh = equihash::nonce_from_parts(&login.nonce1, &fresh2).expect("nonce");
        let old_good = solution(&job, &fresh, &login.target, true);
        assert_eq!(code(&c.submit(share("w1", &job, &fresh2, &old_good))), 21);
        let new_good = solution(&next, &fresh, &login.target, true);
        let accepted = c.submit(share("w1", &next, &fresh2, &new_good));
        assert_eq!(accepted["result"], json!(true));

        // Garbage is ignored, unknown methods get 20, the connection keeps working.
        c.send_raw("this is not json\n{\"id\": 5}\n\n");
        assert_eq!(code(&c.call(json!(9), "mining.frobnicate", json!([]))), 20);
        let suggest = c.call(json!(10), "mining.suggest_target", json!([EASY_TARGET_HEX]));
        assert_eq!(suggest["result"], json!(true));

        let stats = pool.stats();
        assert_eq!(stats.accepted, 2);
        let codes: Vec<(i64, u64)> = stats.rejected_by_code.clone().into_iter().collect();
        let twenties = stats.rejected_by_code.get(&20).copied().unwrap_or(0);
        assert_eq!(twenties, 13, "{codes:?}");
        assert_eq!(stats.rejected_by_code.get(&21), Some(&2));
        assert_eq!(stats.rejected_by_code.get(&22), Some(&1));
        assert_eq!(stats.rejected_by_code.get(&24), Some(&1));
        assert_eq!(stats.rejected_by_code.get(&25), Some(&1));
        assert_eq!(stats.rejected_by_code.get(&23), Some(&1));
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.submits, stats.accepted + stats.rejected);
        let first = &stats.accepted_shares[0];
        assert_eq!(first.nonce1, login.nonce1);
        assert_eq!(first.nonce2, nonce2.to_vec());
        assert_eq!(first.nonce, nonce);
        assert_eq!(
            (first.worker.as_str(), first.job_id.as_str()),
            ("w1", job.job_id.as_str())
        );
        assert_eq!(first.time, job.time);
        assert_eq!(
            first.block_hash,
            equihash::block_hash(&job.header(&nonce), &good)
        );
        assert_eq!(stats.authorized_users, vec!["w1".to_string()]);
        assert_eq!(stats.subscribe_params[0][0], json!("test/1"));
        assert!(!login.session.is_empty());
    }

    /// `verify_solutions`: the Zcash mainnet genesis block (height 0, hash 00040fe8ec84...ce08) submitted
    /// on a job built from its header, with the pool's NONCE_1 fixed to the first 4 bytes of its nonce.
    #[test]
    fn verified_genesis_share() {
        let g = genesis();
        let cfg = EquihashPoolConfig {
            fixed_nonce1: Some(g.nonce[..4].to_vec()),
            target_hex: hex::encode(&g.pow_limit),
            verify_solutions: true,
            ..EquihashPoolConfig::default()
        };
        let pool = EquihashPool::start(cfg).expect("pool");
        let mut c = Client::connect(pool.addr());
        let login = c.login("w");
        assert_eq!(login.nonce1, g.nonce[..4].to_vec());
        pool.push_job(g.job.clone());
        let pushed = c.job();
        assert_eq!(pushed, g.job);
        let nonce2 = &g.nonce[4..];
        let genesis_share = share("w", &g.job, nonce2, &g.solution_with_prefix);
        assert_eq!(genesis_share[2], json!("90041358"));
        assert_eq!(c.submit(genesis_share.clone())["result"], json!(true));
        assert_eq!(code(&c.submit(genesis_share.clone())), 22);

        // One byte of NONCE_2 changed, or a fake solution: the solution does not verify.
        let mut other2 = nonce2.to_vec();
        other2[27] ^= 1;
        let reply = c.submit(share("w", &g.job, &other2, &g.solution_with_prefix));
        assert_eq!(reply["error"], json!([20, "Invalid solution", null]));
        let nonce = equihash::nonce_from_parts(&login.nonce1, nonce2).expect("nonce");
        let fake = solution(&g.job, &nonce, &g.pow_limit, true);
        assert_eq!(code(&c.submit(share("w", &g.job, nonce2, &fake))), 20);
        // Another time in the submit changes the header: invalid too.
        let mut later = genesis_share.clone();
        later[2] = json!("91041358");
        assert_eq!(code(&c.submit(later)), 20);

        // A target below the genesis hash (0x00040fe8...): the valid solution is a low difficulty share.
        pool.set_target(&format!("0003{}", "f".repeat(60)))
            .expect("target");
        assert_eq!(
            c.notification("mining.set_target"),
            json!([format!("0003{}", "f".repeat(60))])
        );
        let carrier = c.job(); // set_target is followed by a job that carries it
        assert!(!carrier.clean_jobs);
        let mut again = g.job.clone();
        again.job_id = "genesis-again".into();
        pool.push_job(again.clone());
        assert_eq!(c.job().job_id, "genesis-again");
        let low = c.submit(share("w", &again, nonce2, &g.solution_with_prefix));
        assert_eq!(low["error"], json!([23, "Low difficulty share", null]));
        assert!(pool.set_target("nope").is_err());

        let stats = pool.stats();
        assert_eq!(stats.accepted, 1);
        assert_eq!(stats.accepted_shares[0].nonce, g.nonce);
        assert_eq!(stats.accepted_shares[0].block_hash, g.hash);
        let codes: Vec<(i64, u64)> = stats.rejected_by_code.into_iter().collect();
        assert_eq!(codes, vec![(20, 3), (22, 1), (23, 1)]);
    }

    #[test]
    fn extranonce_subscription_reconnect_and_disconnect() {
        let pool = EquihashPool::start(EquihashPoolConfig {
            nonce1_size: 8,
            ..EquihashPoolConfig::default()
        })
        .expect("pool");
        let mut subscribed = Client::connect(pool.addr());
        let first = subscribed.login("a");
        assert_eq!(first.nonce1.len(), 8);
        let ack = subscribed.call(json!(3), "mining.extranonce.subscribe", json!([]));
        assert_eq!(ack["result"], json!(true));
        let mut plain = Client::connect(pool.addr());
        let other = plain.login("b");
        assert_ne!(first.nonce1, other.nonce1);
        assert_ne!(first.session, other.session);

        pool.set_extranonce_all();
        let set = subscribed.notification("mining.set_extranonce");
        assert_eq!(set.as_array().map(Vec::len), Some(1));
        let new_nonce1 = hex::decode(set[0].as_str().expect("nonce1")).expect("hex");
        assert_eq!(new_nonce1.len(), 8);
        assert_ne!(new_nonce1, first.nonce1);
        let job = subscribed.job();
        assert!(job.clean_jobs);
        let nonce2 = [1u8; 24];
        let nonce = equihash::nonce_from_parts(&new_nonce1, &nonce2).expect("nonce");
        let sol = solution(&job, &nonce, &first.target, true);
        let reply = subscribed.submit(share("a", &job, &nonce2, &sol));
        assert_eq!(reply["result"], json!(true));
        assert_eq!(pool.stats().accepted_shares[0].nonce1, new_nonce1);
        assert_eq!(pool.stats().accepted_shares[0].nonce, nonce);

        // The other connection got nothing: the next thing it reads is its own reply.
        let pong = plain.call(json!(4), "mining.suggest_target", json!([EASY_TARGET_HEX]));
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
        let cfg = EquihashPoolConfig {
            job_interval: Some(Duration::from_millis(50)),
            answer_submits: false,
            ..EquihashPoolConfig::default()
        };
        let pool = EquihashPool::start(cfg).expect("pool");
        let addr = pool.addr();
        let mut c = Client::connect(addr);
        let login = c.login("w");
        let second = c.job();
        assert_ne!(login.job.job_id, second.job_id);
        assert!(!second.clean_jobs);

        let params = share("w", &login.job, &[0; 28], &[0; 1347]);
        c.send_raw(&format!(
            "{}\n",
            json!({"id": 50, "method": "mining.submit", "params": params})
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
        let again = EquihashPool::start(EquihashPoolConfig {
            listen: addr,
            ..EquihashPoolConfig::default()
        })
        .expect("same address is free after stop");
        assert_eq!(again.addr(), addr);
    }

    #[test]
    fn bad_configs_are_refused() {
        let refused = |cfg: EquihashPoolConfig| {
            EquihashPool::start(cfg).err().map(|e| e.kind()) == Some(io::ErrorKind::InvalidInput)
        };
        let base = EquihashPoolConfig::default;
        assert!(refused(EquihashPoolConfig {
            nonce1_size: 32,
            ..base()
        }));
        assert!(refused(EquihashPoolConfig {
            fixed_nonce1: Some(vec![0; 32]),
            ..base()
        }));
        assert!(refused(EquihashPoolConfig {
            target_hex: "00ff".into(),
            ..base()
        }));
        assert!(refused(EquihashPoolConfig {
            params: Params { n: 201, k: 9 },
            ..base()
        }));
        // Other parameters change the expected solution length.
        let pool = EquihashPool::start(EquihashPoolConfig {
            params: Params { n: 144, k: 5 },
            nonce1_size: 0,
            ..base()
        })
        .expect("pool");
        let mut c = Client::connect(pool.addr());
        let login = c.login("w");
        assert!(login.nonce1.is_empty());
        let nonce2 = [7u8; 32];
        let mut sol = vec![100u8];
        sol.resize(101, 0);
        grind_solution(
            &login.job.header(&nonce2),
            &mut sol,
            &login.target,
            0,
            100_000,
        )
        .expect("a solution");
        assert_eq!(
            c.submit(share("w", &login.job, &nonce2, &sol))["result"],
            json!(true)
        );
        let zcash_sized = solution(&login.job, &nonce2, &login.target, true);
        assert_eq!(
            code(&c.submit(share("w", &login.job, &nonce2, &zcash_sized))),
            20
        );
    }
}
