//! A simulated Stratum V1 (SHA256d) miner for tests: it connects, negotiates (optionally) version rolling
//! and the extranonce subscription, subscribes, authorizes, then really hashes the jobs it gets and submits
//! every share that meets its target, checking that each submit is answered exactly once.
//! Blocking std::net, one thread per miner.

use super::pool::{is_timeout, read_line_bounded, LineRead, MAX_LINE};
use fastproxy_work::hex;
use fastproxy_work::sha256x2::{compress, IV};
use fastproxy_work::work::{self, Job};
use serde_json::{json, Value};
use sha2::digest::core_api::{Block, Buffer, UpdateCore, VariableOutputCore};
use sha2::digest::Output;
use sha2::Sha256VarCore;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Nonces hashed between two looks at the socket.
const BATCH: u64 = 2_000;
const READ_TIMEOUT: Duration = Duration::from_millis(20);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for replies to outstanding submits before closing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a `mining.configure` reply before subscribing anyway.
const CONFIGURE_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_LINES_PER_READ: usize = 1_000;
const MAX_REJECT_MESSAGES: usize = 8;
const NONCE_SPACE: u64 = 1 << 32;

/// What a simulated miner does.
#[derive(Clone, Debug)]
pub struct SimMinerConfig {
    pub addr: SocketAddr,
    pub worker: String,
    pub password: String,
    /// Send `mining.configure` first and roll version bits within the granted mask.
    pub version_rolling: bool,
    /// Send `mining.extranonce.subscribe` after subscribing.
    pub extranonce_subscribe: bool,
    /// Stop after this many submits were answered (and never submit more than this).
    pub max_shares: Option<u64>,
    /// Hard stop.
    pub duration: Duration,
    /// Hash with an extranonce1 whose last byte is flipped (an extra byte if it is empty): a proxy that got
    /// the nonce split wrong. Such shares must be rejected.
    pub tamper_extranonce1: bool,
    /// Minimum time between two submits (shares found sooner are dropped).
    pub submit_interval: Option<Duration>,
    /// User agent for `mining.subscribe` and `client.get_version`.
    pub agent: String,
    /// Counters updated as replies arrive, for live progress (the demo).
    pub live: Option<Arc<LiveCounters>>,
    /// Hashes per second at most (a slower simulated machine); `None`: as fast as the CPU allows.
    pub hashrate: Option<f64>,
}

/// Accepted and rejected shares of a running miner, readable from other threads.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub accepted: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
}

impl Default for SimMinerConfig {
    fn default() -> Self {
        SimMinerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 3333)),
            worker: "sim.worker".into(),
            password: "x".into(),
            version_rolling: false,
            extranonce_subscribe: false,
            max_shares: None,
            duration: Duration::from_secs(10),
            tamper_extranonce1: false,
            submit_interval: None,
            agent: "fastproxy-simminer/0.1".into(),
            live: None,
            hashrate: None,
        }
    }
}

/// What happened during a miner's session.
#[derive(Clone, Debug, Default)]
pub struct MinerReport {
    pub subscribed: bool,
    pub authorized: bool,
    /// The latest extranonce1 received (subscribe or set_extranonce).
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
    /// The version-rolling mask granted (or set later), if any.
    pub version_mask: Option<u32>,
    pub submitted: u64,
    pub accepted: u64,
    /// Submits answered with an error or `false` (code 0 when there was no error code).
    pub rejected: u64,
    pub reject_codes: BTreeMap<i64, u64>,
    /// The first few reject messages.
    pub reject_messages: Vec<String>,
    /// Every response received (handshake and submits).
    pub replies: u64,
    /// Responses whose id was not an outstanding request (unknown, or answered twice).
    pub duplicate_or_unknown_replies: u64,
    /// Submits still unanswered at the end.
    pub unanswered: u64,
    pub jobs_received: u64,
    pub set_extranonce_received: u64,
    /// The latest difficulty received.
    pub difficulty: f64,
    pub disconnected_by_peer: bool,
    pub error: Option<String>,
    pub hashes: u64,
}

/// Runs one miner session until `max_shares` submits were answered, `duration` passed, `stop` was set,
/// the peer closed the connection, or the handshake failed. Then waits up to 2 s for outstanding replies.
pub fn run_miner(cfg: &SimMinerConfig, stop: &AtomicBool) -> MinerReport {
    let stream = match connect(cfg.addr) {
        Ok(s) => s,
        Err(e) => {
            return MinerReport {
                error: Some(format!("connect to {}: {e}", cfg.addr)),
                ..MinerReport::default()
            }
        }
    };
    let mut session = Session::new(cfg, stream);
    session.run(stop);
    session.finish()
}

/// [`run_miner`] on its own thread.
pub fn spawn_miner(cfg: SimMinerConfig, stop: Arc<AtomicBool>) -> JoinHandle<MinerReport> {
    thread::spawn(move || run_miner(&cfg, &stop))
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Handshake requests awaiting a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Configure,
    Subscribe,
    ExtranonceSubscribe,
    Authorize,
}

/// A share found by hashing, ready to submit.
struct FoundShare {
    job_id: String,
    extranonce2: Vec<u8>,
    ntime: u32,
    nonce: u32,
    version_bits: Option<u32>,
}

/// One connection's protocol state and the work being hashed.
struct Session<'a> {
    cfg: &'a SimMinerConfig,
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
    nonblocking: bool,
    report: MinerReport,
    next_id: u64,
    requests: HashMap<u64, (Request, Instant)>,
    outstanding_submits: HashSet<u64>,
    answered: u64,
    /// Target for the next job (from the latest set_difficulty).
    target: [u8; 32],
    /// Version-rolling mask in force, if negotiated.
    mask: Option<u32>,
    roll_counter: u32,
    latest_job: Option<Job>,
    job_changed: bool,
    work: Option<Work>,
    last_submit: Option<Instant>,
    /// When hashing began (for `hashrate` pacing).
    hash_started: Option<Instant>,
    /// The connection is gone (closed by the peer or after a write error).
    closed: bool,
    /// A fatal handshake error: stop now.
    failed: bool,
}

impl<'a> Session<'a> {
    fn new(cfg: &'a SimMinerConfig, stream: TcpStream) -> Session<'a> {
        Session {
            cfg,
            reader: BufReader::new(stream),
            line: Vec::new(),
            nonblocking: false,
            report: MinerReport {
                difficulty: 1.0,
                ..MinerReport::default()
            },
            next_id: 1,
            requests: HashMap::new(),
            outstanding_submits: HashSet::new(),
            answered: 0,
            target: work::target_from_difficulty(1.0),
            mask: None,
            roll_counter: 0,
            latest_job: None,
            job_changed: false,
            work: None,
            last_submit: None,
            hash_started: None,
            closed: false,
            failed: false,
        }
    }

    fn run(&mut self, stop: &AtomicBool) {
        let deadline = Instant::now() + self.cfg.duration;
        if self.cfg.version_rolling {
            let params = json!([["version-rolling"], {
                "version-rolling.mask": "ffffffff",
                "version-rolling.min-bit-count": 2
            }]);
            self.request(Request::Configure, "mining.configure", params);
        } else {
            self.send_subscribe();
        }
        while !self.should_stop(stop, deadline) {
            self.check_configure_timeout();
            self.maybe_start_work();
            let hashing = self.can_hash();
            self.set_nonblocking(hashing);
            self.read_available();
            if hashing && !self.closed {
                self.hash_batch();
            }
        }
        self.drain_replies();
    }

    fn should_stop(&self, stop: &AtomicBool, deadline: Instant) -> bool {
        let enough = self.cfg.max_shares.is_some_and(|max| self.answered >= max);
        self.closed
            || self.failed
            || enough
            || stop.load(Ordering::Relaxed)
            || Instant::now() >= deadline
    }

    fn finish(mut self) -> MinerReport {
        self.report.unanswered = self.outstanding_submits.len() as u64;
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
        self.report
    }

    /// Waits (bounded) for the replies to outstanding submits.
    fn drain_replies(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        self.set_nonblocking(false);
        while !self.closed && !self.outstanding_submits.is_empty() && Instant::now() < deadline {
            self.read_available();
        }
    }

    // ---- sending ----

    fn send(&mut self, msg: &Value) {
        if self.closed {
            return;
        }
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.write_all(&line) {
            log::debug!("simminer {}: write failed: {e}", self.cfg.worker);
            self.closed = true;
            self.report.disconnected_by_peer = true;
        }
    }

    /// Writes everything, also while the socket is non-blocking (bounded by [`WRITE_TIMEOUT`]).
    fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let mut stream = self.reader.get_ref();
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn request(&mut self, kind: Request, method: &str, params: Value) {
        let id = self.take_id();
        self.requests.insert(id, (kind, Instant::now()));
        self.send(&json!({"id": id, "method": method, "params": params}));
    }

    fn send_subscribe(&mut self) {
        let params = json!([self.cfg.agent]);
        self.request(Request::Subscribe, "mining.subscribe", params);
    }

    fn submit(&mut self, share: FoundShare) {
        let mut params = vec![
            json!(self.cfg.worker),
            json!(share.job_id),
            json!(hex::encode(&share.extranonce2)),
            json!(work::u32_to_hex(share.ntime)),
            json!(work::u32_to_hex(share.nonce)),
        ];
        if let Some(bits) = share.version_bits {
            params.push(json!(work::u32_to_hex(bits)));
        }
        let id = self.take_id();
        self.outstanding_submits.insert(id);
        self.report.submitted += 1;
        self.last_submit = Some(Instant::now());
        self.send(&json!({"id": id, "method": "mining.submit", "params": params}));
    }

    /// Subscribes anyway when a `mining.configure` stays unanswered.
    fn check_configure_timeout(&mut self) {
        let stale: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, (kind, at))| {
                *kind == Request::Configure && at.elapsed() > CONFIGURE_TIMEOUT
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.requests.remove(&id);
            self.send_subscribe();
        }
    }

    // ---- reading ----

    fn set_nonblocking(&mut self, nonblocking: bool) {
        if self.nonblocking != nonblocking
            && self.reader.get_ref().set_nonblocking(nonblocking).is_ok()
        {
            self.nonblocking = nonblocking;
        }
    }

    /// Handles the lines that are available (blocking at most one read timeout when in blocking mode).
    fn read_available(&mut self) {
        for _ in 0..MAX_LINES_PER_READ {
            match read_line_bounded(&mut self.reader, &mut self.line, MAX_LINE) {
                Ok(LineRead::Line) => {
                    let line = std::mem::take(&mut self.line);
                    self.handle_line(&line);
                    self.line = line;
                    self.line.clear();
                }
                Ok(LineRead::Eof) => return self.peer_closed("connection closed by peer"),
                Ok(LineRead::TooLong) => {
                    self.report.error = Some("line too long from peer".into());
                    self.closed = true;
                    return;
                }
                Err(e) if is_timeout(&e) => return,
                Err(e) => return self.peer_closed(&format!("read error: {e}")),
            }
        }
    }

    fn peer_closed(&mut self, why: &str) {
        log::debug!("simminer {}: {why}", self.cfg.worker);
        self.closed = true;
        self.report.disconnected_by_peer = true;
    }

    fn handle_line(&mut self, line: &[u8]) {
        let text = line.trim_ascii();
        if text.is_empty() {
            return;
        }
        let msg: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                log::debug!("simminer {}: ignoring invalid JSON: {e}", self.cfg.worker);
                return;
            }
        };
        match msg.get("method").and_then(Value::as_str) {
            Some(method) => {
                let id = msg.get("id").cloned().unwrap_or(Value::Null);
                let params = msg.get("params").cloned().unwrap_or(Value::Null);
                self.on_server_message(method, &id, &params);
            }
            None => self.on_response(&msg),
        }
    }

    fn on_response(&mut self, msg: &Value) {
        self.report.replies += 1;
        let id = msg.get("id").and_then(Value::as_u64);
        if let Some(id) = id.filter(|id| self.outstanding_submits.remove(id)) {
            log::trace!("simminer {}: submit {id} answered", self.cfg.worker);
            return self.on_submit_reply(msg);
        }
        match id.and_then(|id| self.requests.remove(&id)) {
            Some((kind, _)) => self.on_request_reply(kind, msg),
            None => self.report.duplicate_or_unknown_replies += 1,
        }
    }

    fn on_submit_reply(&mut self, msg: &Value) {
        self.answered += 1;
        let accepted = msg.get("result") == Some(&Value::Bool(true));
        if let Some(live) = &self.cfg.live {
            let c = if accepted {
                &live.accepted
            } else {
                &live.rejected
            };
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if accepted {
            self.report.accepted += 1;
            return;
        }
        let (code, message) = describe_error(msg.get("error").unwrap_or(&Value::Null));
        self.report.rejected += 1;
        *self.report.reject_codes.entry(code).or_default() += 1;
        if self.report.reject_messages.len() < MAX_REJECT_MESSAGES {
            self.report.reject_messages.push(message);
        }
    }

    fn on_request_reply(&mut self, kind: Request, msg: &Value) {
        let result = msg.get("result").unwrap_or(&Value::Null);
        let failed = !msg.get("error").is_none_or(Value::is_null);
        match kind {
            Request::Configure => {
                self.mask = granted_mask(result).filter(|_| !failed);
                self.report.version_mask = self.mask;
                self.send_subscribe();
            }
            Request::Subscribe => self.on_subscribed(result, failed),
            Request::ExtranonceSubscribe => {}
            Request::Authorize => {
                if !failed && result.as_bool() == Some(true) {
                    self.report.authorized = true;
                } else {
                    self.report.error = Some(format!("authorize rejected: {msg}"));
                    self.failed = true;
                }
            }
        }
    }

    fn on_subscribed(&mut self, result: &Value, failed: bool) {
        let parsed = (!failed).then(|| parse_subscribe_result(result)).flatten();
        let Some((extranonce1, extranonce2_size)) = parsed else {
            self.report.error = Some(format!("subscribe failed: {result}"));
            self.failed = true;
            return;
        };
        self.report.subscribed = true;
        self.report.extranonce1 = extranonce1;
        self.report.extranonce2_size = extranonce2_size;
        if self.cfg.extranonce_subscribe {
            self.request(
                Request::ExtranonceSubscribe,
                "mining.extranonce.subscribe",
                json!([]),
            );
        }
        let params = json!([self.cfg.worker, self.cfg.password]);
        self.request(Request::Authorize, "mining.authorize", params);
    }

    fn on_server_message(&mut self, method: &str, id: &Value, params: &Value) {
        let first = params.get(0);
        match method {
            "mining.notify" => match Job::from_notify_params(params) {
                Ok(job) => {
                    self.report.jobs_received += 1;
                    self.latest_job = Some(job);
                    self.job_changed = true;
                }
                Err(e) => log::debug!("simminer {}: bad notify: {e}", self.cfg.worker),
            },
            "mining.set_difficulty" => {
                if let Some(diff) = first.and_then(Value::as_f64) {
                    self.report.difficulty = diff;
                    self.target = work::target_from_difficulty(diff);
                }
            }
            "mining.set_extranonce" => self.on_set_extranonce(params),
            "mining.set_version_mask" => {
                let mask = first.and_then(Value::as_str).and_then(parse_mask);
                if let (Some(mask), true) = (mask, self.mask.is_some()) {
                    self.mask = Some(mask);
                    self.report.version_mask = Some(mask);
                }
            }
            "client.get_version" => {
                let agent = self.cfg.agent.clone();
                self.send(&json!({"id": id, "result": agent, "error": null}));
            }
            "mining.ping" => self.send(&json!({"id": id, "result": "pong", "error": null})),
            "client.reconnect" | "client.show_message" => {
                log::debug!("simminer {}: ignoring {method} {params}", self.cfg.worker);
            }
            _ if !id.is_null() => {
                self.send(
                    &json!({"id": id, "result": null, "error": [20, "Unknown method", null]}),
                );
            }
            _ => {}
        }
    }

    fn on_set_extranonce(&mut self, params: &Value) {
        let e1 = params.get(0).and_then(Value::as_str).and_then(hex::decode);
        let Some(e1) = e1 else {
            return log::debug!("simminer {}: bad set_extranonce {params}", self.cfg.worker);
        };
        self.report.set_extranonce_received += 1;
        self.report.extranonce1 = e1;
        if let Some(size) = params.get(1).and_then(Value::as_u64) {
            self.report.extranonce2_size = usize::try_from(size).unwrap_or(0);
        }
    }

    // ---- hashing ----

    /// Switches to the latest job once subscribed and authorized.
    fn maybe_start_work(&mut self) {
        if !(self.job_changed && self.report.subscribed && self.report.authorized) {
            return;
        }
        let Some(job) = self.latest_job.clone() else {
            return;
        };
        self.job_changed = false;
        let mut e1 = self.report.extranonce1.clone();
        if self.cfg.tamper_extranonce1 {
            match e1.last_mut() {
                Some(last) => *last ^= 0xff,
                None => e1.push(0xff),
            }
        }
        // extranonce2 keeps counting across jobs: a job sent again never repeats earlier work.
        let first_e2 = self.work.as_ref().map_or(0, |w| w.e2_value.wrapping_add(1));
        let e2_size = self.report.extranonce2_size;
        self.work = Some(Work::new(job, e1, e2_size, first_e2, self.target));
    }

    fn can_hash(&self) -> bool {
        self.can_submit() && self.work.as_ref().is_some_and(|w| !w.exhausted)
    }

    fn hash_batch(&mut self) {
        let bits = self.mask.map(|mask| {
            self.roll_counter = self.roll_counter.wrapping_add(1);
            spread_bits(self.roll_counter, mask)
        });
        let Some(work) = self.work.as_mut() else {
            return;
        };
        work.set_version_bits(bits, self.mask.unwrap_or(0));
        let (hashes, found) = work.hash_batch(BATCH);
        self.report.hashes += hashes;
        if let Some(rate) = self.cfg.hashrate.filter(|r| *r > 0.0) {
            let started = *self.hash_started.get_or_insert_with(Instant::now);
            let due = Duration::from_secs_f64(self.report.hashes as f64 / rate);
            let ahead = due.saturating_sub(started.elapsed());
            // Long enough to hold the rate even with whole batches (2,000 hashes at 10 kH/s is 200 ms).
            std::thread::sleep(ahead.min(Duration::from_millis(500)));
        }
        for share in found {
            if !self.can_submit() {
                break;
            }
            self.submit(share);
        }
    }

    fn can_submit(&self) -> bool {
        let below_max = self
            .cfg
            .max_shares
            .is_none_or(|max| self.report.submitted < max);
        let paced = match (self.cfg.submit_interval, self.last_submit) {
            (Some(every), Some(last)) => last.elapsed() >= every,
            _ => true,
        };
        below_max && paced
    }
}

/// The job being hashed with one extranonce1/extranonce2 and target.
struct Work {
    job: Job,
    /// The extranonce1 hashed (tampered when configured so).
    extranonce1: Vec<u8>,
    extranonce2: Vec<u8>,
    /// `extranonce2` as a number, and the value this work started with.
    e2_value: u64,
    e2_first: u64,
    target: [u8; 32],
    /// Next nonce to try (NONCE_SPACE when the range is done).
    nonce: u64,
    version_bits: Option<u32>,
    /// Header version in use (the job's, or with rolled bits).
    version: u32,
    header: [u8; 80],
    midstate: Midstate,
    exhausted: bool,
}

impl Work {
    fn new(
        job: Job,
        extranonce1: Vec<u8>,
        extranonce2_size: usize,
        first_e2: u64,
        target: [u8; 32],
    ) -> Work {
        let first = extranonce2_space(extranonce2_size).map_or(first_e2, |space| first_e2 % space);
        let mut work = Work {
            version: job.version,
            job,
            extranonce1,
            extranonce2: extranonce2_bytes(first, extranonce2_size),
            e2_value: first,
            e2_first: first,
            target,
            nonce: 0,
            version_bits: None,
            header: [0; 80],
            midstate: Midstate::new(&[0; 80]),
            exhausted: false,
        };
        work.rebuild_header();
        work
    }

    fn rebuild_header(&mut self) {
        let coinbase = self.job.coinbase(&self.extranonce1, &self.extranonce2);
        let merkle = self.job.merkle_root(&coinbase);
        self.header = self
            .job
            .header_with_merkle_root(&merkle, self.job.ntime, 0, self.version);
        self.midstate = Midstate::new(&self.header);
    }

    /// Uses rolled version bits `bits` (within `mask`) from now on.
    fn set_version_bits(&mut self, bits: Option<u32>, mask: u32) {
        if bits == self.version_bits {
            return;
        }
        self.version_bits = bits;
        self.version = match bits {
            Some(bits) => work::rolled_version(self.job.version, mask, bits),
            None => self.job.version,
        };
        self.header[0..4].copy_from_slice(&self.version.to_le_bytes());
        self.midstate = Midstate::new(&self.header);
    }

    /// Moves to the next extranonce2 (wrapping); the work is exhausted when it is back at its first value.
    fn next_extranonce2(&mut self) {
        let size = self.extranonce2.len();
        let next = match extranonce2_space(size) {
            Some(space) => (self.e2_value + 1) % space,
            None => self.e2_value.wrapping_add(1),
        };
        if next == self.e2_first {
            self.exhausted = true;
            return;
        }
        self.e2_value = next;
        self.extranonce2 = extranonce2_bytes(next, size);
        self.nonce = 0;
        self.rebuild_header();
    }

    /// Hashes up to `count` nonces; returns how many were hashed and the shares found.
    fn hash_batch(&mut self, count: u64) -> (u64, Vec<FoundShare>) {
        if self.exhausted {
            return (0, Vec::new());
        }
        let start = self.nonce;
        let end = (start + count).min(NONCE_SPACE);
        let mut found = Vec::new();
        for nonce in start..end {
            let nonce = nonce as u32;
            let hash = self.midstate.sha256d_with_nonce(nonce);
            if work::hash_meets_target(&hash, &self.target) {
                found.push(FoundShare {
                    job_id: self.job.job_id.clone(),
                    extranonce2: self.extranonce2.clone(),
                    ntime: self.job.ntime,
                    nonce,
                    version_bits: self.version_bits,
                });
            }
        }
        self.nonce = end;
        if end == NONCE_SPACE {
            self.next_extranonce2();
        }
        (end - start, found)
    }
}

/// The first nonce of `nonces` with which `header` (its last four bytes replaced by the nonce) hashes to meet
/// `target`: a nonce search for tests that build their shares themselves. The state after the header's first
/// 64 bytes is kept, and each nonce costs two calls of the sha2 crate's compression function (optimized even
/// in debug builds), so thousands of shares a second at a small difficulty stay cheap.
pub fn search_nonce(
    header: &[u8; 80],
    target: &[u8; 32],
    nonces: std::ops::Range<u32>,
) -> Option<u32> {
    let mut mid = IV;
    let mut first = [0u8; 64];
    first.copy_from_slice(&header[..64]);
    compress(&mut mid, &first);
    // The header's last 16 bytes, padded (80 bytes = 640 bits); then the 32-byte first hash, padded.
    let mut tail = [0u8; 64];
    tail[..12].copy_from_slice(&header[64..76]);
    tail[16] = 0x80;
    tail[62..].copy_from_slice(&640u16.to_be_bytes());
    let mut second = [0u8; 64];
    second[32] = 0x80;
    second[62..].copy_from_slice(&256u16.to_be_bytes());
    // The hash is a little-endian number: its top 32 bits are the last state word, bytes swapped. Most nonces
    // are decided by that word alone (this runs in unoptimized test builds: keep the per-nonce work small).
    let target_top = u32::from_be_bytes([target[0], target[1], target[2], target[3]]);
    for n in nonces {
        tail[12..16].copy_from_slice(&n.to_le_bytes());
        let mut state = mid;
        compress(&mut state, &tail);
        // An index loop: about three times faster than chunks/zip without optimizations.
        #[allow(clippy::needless_range_loop)]
        for i in 0..8 {
            second[4 * i..4 * i + 4].copy_from_slice(&state[i].to_be_bytes());
        }
        let mut state = IV;
        compress(&mut state, &second);
        let top = state[7].swap_bytes();
        if top < target_top {
            return Some(n);
        }
        if top == target_top {
            let mut hash = [0u8; 32];
            for (out, word) in hash.chunks_exact_mut(4).zip(state) {
                out.copy_from_slice(&word.to_be_bytes());
            }
            if work::hash_meets_target(&hash, target) {
                return Some(n);
            }
        }
    }
    None
}

/// sha256d of an 80-byte header for many nonces: the SHA-256 state after the first 64 bytes is kept, and
/// the block-level API is used directly (noticeably faster than `Digest` in unoptimized builds).
#[derive(Clone)]
struct Midstate {
    core: Sha256VarCore,
    /// Header bytes 64..76 (end of the merkle root, ntime, nbits).
    tail: [u8; 12],
}

impl Midstate {
    fn new(header: &[u8; 80]) -> Midstate {
        let mut core = new_sha256_core();
        core.update_blocks(std::slice::from_ref(Block::<Sha256VarCore>::from_slice(
            &header[..64],
        )));
        let mut tail = [0u8; 12];
        tail.copy_from_slice(&header[64..76]);
        Midstate { core, tail }
    }

    fn sha256d_with_nonce(&self, nonce: u32) -> [u8; 32] {
        let mut last = [0u8; 16];
        last[..12].copy_from_slice(&self.tail);
        last[12..].copy_from_slice(&nonce.to_le_bytes());
        let mut first = Output::<Sha256VarCore>::default();
        self.core
            .clone()
            .finalize_variable_core(&mut Buffer::<Sha256VarCore>::new(&last), &mut first);
        let mut second = Output::<Sha256VarCore>::default();
        new_sha256_core()
            .finalize_variable_core(&mut Buffer::<Sha256VarCore>::new(&first), &mut second);
        second.into()
    }
}

fn new_sha256_core() -> Sha256VarCore {
    // 32 bytes is SHA-256's own output size, always accepted.
    Sha256VarCore::new(32).unwrap_or_else(|_| unreachable!("SHA-256 supports 32-byte output"))
}

/// How many extranonce2 values `size` bytes hold (`None`: at least 2^64).
fn extranonce2_space(size: usize) -> Option<u64> {
    (size < 8).then(|| 1u64 << (8 * size))
}

/// `value` as `size` big-endian bytes (high bytes dropped or zero-filled).
fn extranonce2_bytes(value: u64, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    let n = size.min(8);
    out[size - n..].copy_from_slice(&value.to_be_bytes()[8 - n..]);
    out
}

/// Deposits the low bits of `value` into the set bits of `mask`, lowest first.
fn spread_bits(mut value: u32, mask: u32) -> u32 {
    let mut out = 0;
    let mut rest = mask;
    while rest != 0 {
        let lowest = rest & rest.wrapping_neg();
        if value & 1 != 0 {
            out |= lowest;
        }
        value >>= 1;
        rest &= rest - 1;
    }
    out
}

/// Up to 8 hex digits as a mask.
fn parse_mask(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The mask granted by a `mining.configure` result, if version rolling was accepted.
fn granted_mask(result: &Value) -> Option<u32> {
    if result.get("version-rolling").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    result
        .get("version-rolling.mask")
        .and_then(Value::as_str)
        .and_then(parse_mask)
}

/// `(extranonce1, extranonce2_size)` from a subscribe result.
fn parse_subscribe_result(result: &Value) -> Option<(Vec<u8>, usize)> {
    let e1 = result.get(1)?.as_str().and_then(hex::decode)?;
    let size = usize::try_from(result.get(2)?.as_u64()?).ok()?;
    Some((e1, size))
}

/// Code and message of an error as pools send it: `[code, msg, ..]`, `{code, message}`, a string, or
/// nothing (a plain `false` result: code 0).
fn describe_error(error: &Value) -> (i64, String) {
    match error {
        Value::Array(a) => (
            a.first().and_then(Value::as_i64).unwrap_or(-1),
            a.get(1).and_then(Value::as_str).unwrap_or("").to_string(),
        ),
        Value::Object(o) => (
            o.get("code").and_then(Value::as_i64).unwrap_or(-1),
            o.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        Value::String(s) => (-1, s.clone()),
        Value::Null => (0, "false".into()),
        other => (-1, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{SimPool, SimPoolConfig};

    fn miner(pool: &SimPool, worker: &str) -> SimMinerConfig {
        SimMinerConfig {
            addr: pool.addr(),
            worker: worker.into(),
            max_shares: Some(5),
            duration: Duration::from_secs(60),
            ..SimMinerConfig::default()
        }
    }

    fn join(handle: JoinHandle<MinerReport>) -> MinerReport {
        handle.join().expect("miner thread")
    }

    fn assert_clean(r: &MinerReport, accepted: u64) {
        assert!(r.subscribed && r.authorized, "{r:?}");
        assert_eq!(
            (r.submitted, r.accepted, r.rejected),
            (accepted, accepted, 0),
            "{r:?}"
        );
        assert_eq!(
            (r.unanswered, r.duplicate_or_unknown_replies),
            (0, 0),
            "{r:?}"
        );
        assert_eq!(r.error, None);
    }

    #[test]
    fn search_nonce_finds_the_first_nonce_the_reference_hash_accepts() {
        let mut header = [0u8; 80];
        for (i, b) in header.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37);
        }
        let target = work::target_from_difficulty(1.0 / 65536.0);
        let mut meets = |n: u32| {
            header[76..].copy_from_slice(&n.to_le_bytes());
            work::hash_meets_target(&work::sha256d(&header), &target)
        };
        let expected = (0..1_000_000).find(|&n| meets(n));
        assert!(expected.is_some());
        assert_eq!(search_nonce(&header, &target, 0..1_000_000), expected);
        let first = expected.unwrap_or(0);
        assert_eq!(search_nonce(&header, &target, 0..first), None);
    }

    #[test]
    fn miners_direct_to_pool_and_a_tamperer() {
        let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let plain = spawn_miner(miner(&pool, "plain"), Arc::clone(&stop));
        let rolling = spawn_miner(
            SimMinerConfig {
                version_rolling: true,
                ..miner(&pool, "rolling")
            },
            Arc::clone(&stop),
        );
        let xsub = spawn_miner(
            SimMinerConfig {
                extranonce_subscribe: true,
                ..miner(&pool, "xsub")
            },
            Arc::clone(&stop),
        );
        let tamper = spawn_miner(
            SimMinerConfig {
                tamper_extranonce1: true,
                ..miner(&pool, "tamper")
            },
            Arc::clone(&stop),
        );
        let reports = [join(plain), join(rolling), join(xsub)];
        let tampered = join(tamper);
        for r in &reports {
            assert_clean(r, 5);
            assert_eq!(r.extranonce2_size, 8);
            assert!(r.jobs_received >= 1 && r.hashes > 0);
        }
        assert_eq!(reports[1].version_mask, Some(0x1fff_e000));
        assert_eq!(reports[0].version_mask, None);

        assert_eq!(
            (tampered.submitted, tampered.accepted, tampered.rejected),
            (5, 0, 5)
        );
        assert_eq!(tampered.reject_codes.get(&23), Some(&5));
        assert_eq!(tampered.reject_messages[0], "Low difficulty share");
        assert_eq!(tampered.unanswered, 0);

        let stats = pool.stats();
        assert_eq!((stats.submits, stats.accepted, stats.rejected), (20, 15, 5));
        assert_eq!(stats.rejected_by_code.get(&23), Some(&5));
        assert_eq!(stats.extranonce_subscribes, 1);
        assert_eq!(stats.configure_requests, 1);
        for (worker, report) in ["plain", "rolling", "xsub"].iter().zip(&reports) {
            let shares: Vec<_> = stats
                .accepted_shares
                .iter()
                .filter(|s| s.worker == *worker)
                .collect();
            assert_eq!(shares.len(), 5, "{worker}");
            assert!(shares.iter().all(|s| s.extranonce1 == report.extranonce1));
            assert_eq!(
                shares.iter().all(|s| s.version_bits.is_some()),
                *worker == "rolling"
            );
        }
        let rolled = stats.accepted_shares.iter().filter_map(|s| s.version_bits);
        assert!(rolled.clone().all(|b| b & !0x1fff_e000 == 0));
        assert!(rolled.clone().any(|b| b != 0));
        assert!(stats.accepted_shares.iter().all(|s| s.worker != "tamper"));
    }

    #[test]
    fn miner_follows_set_extranonce_and_difficulty() {
        let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = SimMinerConfig {
            extranonce_subscribe: true,
            max_shares: Some(8),
            ..miner(&pool, "x")
        };
        let handle = spawn_miner(cfg, Arc::clone(&stop));
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.stats().accepted < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        pool.set_extranonce_all();
        pool.set_difficulty(1.0 / 131_072.0);
        let r = join(handle);
        assert_eq!(r.set_extranonce_received, 1);
        assert_eq!(r.difficulty, 1.0 / 131_072.0);
        assert_eq!(
            (r.submitted, r.accepted + r.rejected, r.unanswered),
            (8, 8, 0)
        );
        // Shares in flight across the clean job may be stale (21); nothing else may fail.
        assert!(r.reject_codes.keys().all(|&c| c == 21), "{r:?}");
        let stats = pool.stats();
        let e1s: HashSet<&Vec<u8>> = stats
            .accepted_shares
            .iter()
            .map(|s| &s.extranonce1)
            .collect();
        assert_eq!(e1s.len(), 2, "shares under both extranonce1 values");
        assert!(stats
            .accepted_shares
            .iter()
            .any(|s| s.extranonce1 == r.extranonce1));
    }

    #[test]
    fn handshake_variants_and_endings() {
        // mining.configure refused: the miner mines without rolling.
        let pool = SimPool::start(SimPoolConfig {
            version_rolling_mask: None,
            user: Some("alice".into()),
            difficulty: 1.0 / 1_048_576.0,
            ..SimPoolConfig::default()
        })
        .expect("pool");
        let stop = AtomicBool::new(false);
        let cfg = SimMinerConfig {
            version_rolling: true,
            max_shares: Some(2),
            ..miner(&pool, "alice")
        };
        let r = run_miner(&cfg, &stop);
        assert_clean(&r, 2);
        assert_eq!(r.version_mask, None);

        // Wrong user: authorize rejected, the miner stops.
        let r = run_miner(&miner(&pool, "bob"), &stop);
        assert!(r.subscribed && !r.authorized);
        assert!(r.error.is_some_and(|e| e.contains("authorize")));

        // The pool drops the connection: the miner notices and returns.
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = SimMinerConfig {
            max_shares: None,
            submit_interval: Some(Duration::from_secs(60)),
            ..miner(&pool, "alice")
        };
        let handle = spawn_miner(cfg, Arc::clone(&stop));
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.stats().authorized_users.len() < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        pool.disconnect_all();
        let r = join(handle);
        assert!(r.disconnected_by_peer, "{r:?}");

        // Nobody listening.
        pool.stop();
        let r = run_miner(
            &cfg_for(SocketAddr::from(([127, 0, 0, 1], 1))),
            &AtomicBool::new(false),
        );
        assert!(r.error.is_some() && !r.subscribed);
    }

    fn cfg_for(addr: SocketAddr) -> SimMinerConfig {
        SimMinerConfig {
            addr,
            duration: Duration::from_secs(5),
            ..SimMinerConfig::default()
        }
    }

    #[test]
    fn unanswered_submits_and_stop_flag() {
        let pool = SimPool::start(SimPoolConfig {
            answer_submits: false,
            difficulty: 1.0 / 1_048_576.0,
            ..SimPoolConfig::default()
        })
        .expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = spawn_miner(
            SimMinerConfig {
                max_shares: Some(2),
                ..miner(&pool, "w")
            },
            Arc::clone(&stop),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.stats().submits < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let r = join(handle);
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!((r.submitted, r.accepted, r.unanswered), (2, 0, 2));
    }

    #[test]
    fn midstate_hash_matches_sha256d() {
        let mut header = [0u8; 80];
        for (i, b) in header.iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        let midstate = Midstate::new(&header);
        for nonce in [0u32, 1, 0xdead_beef, u32::MAX] {
            header[76..].copy_from_slice(&nonce.to_le_bytes());
            assert_eq!(midstate.sha256d_with_nonce(nonce), work::sha256d(&header));
        }
    }

    #[test]
    fn extranonce2_counting() {
        assert_eq!(extranonce2_bytes(0x0102, 4), vec![0, 0, 1, 2]);
        assert_eq!(extranonce2_bytes(0x0102, 1), vec![2]);
        assert_eq!(extranonce2_bytes(1, 10), vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(extranonce2_space(2), Some(65536));
        assert_eq!(extranonce2_space(8), None);
        let job = Job::from_notify_params(&json!([
            "j",
            "00".repeat(32),
            "01",
            "02",
            [],
            "20000000",
            "1d00ffff",
            "00000000",
            true
        ]))
        .expect("job");
        // One byte of extranonce2 starting at 255: wraps to 0 and ends back at 255.
        let mut w = Work::new(job, vec![], 1, 255, [0; 32]);
        assert_eq!(w.extranonce2, vec![255]);
        w.nonce = NONCE_SPACE;
        w.next_extranonce2();
        assert_eq!(
            (w.extranonce2.clone(), w.nonce, w.exhausted),
            (vec![0], 0, false)
        );
        for _ in 0..254 {
            w.next_extranonce2();
        }
        assert_eq!((w.extranonce2.clone(), w.exhausted), (vec![254], false));
        w.next_extranonce2();
        assert!(w.exhausted);
        assert_eq!(w.hash_batch(10).0, 0);
    }

    #[test]
    fn bit_spreading_and_error_shapes() {
        assert_eq!(spread_bits(1, 0x1fff_e000), 0x0000_2000);
        assert_eq!(spread_bits(3, 0x0001_0100), 0x0001_0100);
        assert_eq!(spread_bits(2, 0x0001_0100), 0x0001_0000);
        assert_eq!(spread_bits(u32::MAX, 0), 0);
        assert_eq!(
            describe_error(&json!([23, "Low", null])),
            (23, "Low".into())
        );
        assert_eq!(
            describe_error(&json!({"code": 21, "message": "stale"})),
            (21, "stale".into())
        );
        assert_eq!(describe_error(&json!("nope")), (-1, "nope".into()));
        assert_eq!(describe_error(&Value::Null).0, 0);
        assert_eq!(
            parse_subscribe_result(&json!([null, "0a0b", 4])),
            Some((vec![10, 11], 4))
        );
        assert_eq!(parse_subscribe_result(&json!([[], "0a0", 4])), None);
        assert_eq!(
            granted_mask(&json!({"version-rolling": true, "version-rolling.mask": "1fffe000"})),
            Some(0x1fff_e000)
        );
        assert_eq!(granted_mask(&json!({"version-rolling": false})), None);
    }
}
