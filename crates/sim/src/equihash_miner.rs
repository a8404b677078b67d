//! A simulated Equihash stratum (ZIP 301) miner for tests: it subscribes (optionally also to
//! `mining.extranonce.subscribe`), authorizes, follows `mining.set_target`, `mining.notify` and
//! `mining.set_extranonce`, and submits a share for the current job every `share_interval`, checking that
//! each submit is answered exactly once. Blocking std::net, one thread per miner.
//!
//! It cannot solve Equihash (200, 9) in test time (the `equihash` crate's optional solver only does (200, 9)
//! and takes seconds per run even optimized), so each share carries a well-formed but fake solution: the
//! compactSize prefix and pseudo-random bytes, whose last bytes are varied until the block hash
//! sha256d(header || solution) meets the target. Each share uses a fresh NONCE_2 (a counter); the 32-byte
//! nonce it hashed (NONCE_1 || NONCE_2) is kept in the report, for comparison with what the pool rebuilt.

use super::equihash_pool::Prng;
use super::pool::{is_timeout, read_line_bounded, LineRead, MAX_LINE};
use fastproxy_work::equihash::{self, EquihashJob, Params, HEADER_LEN, NONCE_LEN};
use fastproxy_work::hex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Solution variants hashed between two looks at the socket.
const BATCH: u64 = 2_000;
const READ_TIMEOUT: Duration = Duration::from_millis(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for replies to outstanding submits before closing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_LINES_PER_READ: usize = 1_000;
const MAX_REJECT_MESSAGES: usize = 8;

/// What a simulated Equihash miner does.
#[derive(Clone, Debug)]
pub struct EquihashMinerConfig {
    /// Pool (or proxy) to connect to.
    pub addr: SocketAddr,
    /// Worker name for `mining.authorize` and the submits.
    pub worker: String,
    /// Password for `mining.authorize`.
    pub password: String,
    /// Send `mining.extranonce.subscribe` after subscribing.
    pub extranonce_subscribe: bool,
    /// Stop after this many submits were answered (and never submit more than this).
    pub max_shares: Option<u64>,
    /// Hard stop.
    pub duration: Duration,
    /// Time between two submits (from one submit to the start of the next share).
    pub share_interval: Duration,
    /// Hash with a NONCE_1 whose last byte is flipped (byte 0 of the nonce when NONCE_1 is empty) while
    /// sending the true NONCE_2: a proxy that got the nonce split wrong. The pool rebuilds another header,
    /// so (with the pool's target check on) such shares are rejected with 23.
    pub tamper_nonce1: bool,
    /// Equihash parameters: the length of the solutions submitted.
    pub params: Params,
    /// Vary the solution until the block hash meets the target (default); false: submit the first variant.
    pub meet_target: bool,
    /// User agent for `mining.subscribe` and `client.get_version`.
    pub agent: String,
    /// SESSION_ID sent in `mining.subscribe` (`null` when `None`).
    pub session_id: Option<String>,
}

impl Default for EquihashMinerConfig {
    fn default() -> Self {
        EquihashMinerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 3333)),
            worker: "sim.worker".into(),
            password: "x".into(),
            extranonce_subscribe: false,
            max_shares: None,
            duration: Duration::from_secs(10),
            share_interval: Duration::from_millis(50),
            tamper_nonce1: false,
            params: Params::ZCASH,
            meet_target: true,
            agent: "fastproxy-eqminer/0.1".into(),
            session_id: None,
        }
    }
}

/// What happened during an Equihash miner's session.
#[derive(Clone, Debug, Default)]
pub struct EquihashMinerReport {
    /// The subscribe succeeded.
    pub subscribed: bool,
    /// The authorize succeeded.
    pub authorized: bool,
    /// The SESSION_ID of the subscribe result (`None` when the pool sent `null`).
    pub session_id: Option<String>,
    /// The latest NONCE_1 received (subscribe or set_extranonce).
    pub nonce1: Vec<u8>,
    /// The latest target received.
    pub target: Option<[u8; 32]>,
    /// Submits sent.
    pub submitted: u64,
    /// Submits answered `true`.
    pub accepted: u64,
    /// Submits answered with an error or `false` (code 0 when there was no error code).
    pub rejected: u64,
    /// Rejected submits per error code.
    pub reject_codes: BTreeMap<i64, u64>,
    /// The first few reject messages.
    pub reject_messages: Vec<String>,
    /// Every response received (handshake and submits).
    pub replies: u64,
    /// Responses whose id was not an outstanding request (unknown, or answered twice).
    pub duplicate_or_unknown_replies: u64,
    /// Submits still unanswered at the end.
    pub unanswered: u64,
    /// `mining.notify` messages received.
    pub jobs_received: u64,
    /// `mining.set_target` messages received.
    pub set_target_received: u64,
    /// `mining.set_extranonce` messages received.
    pub set_extranonce_received: u64,
    /// The connection was closed by the other side (or a write failed).
    pub disconnected_by_peer: bool,
    /// Why the session failed, if it did (connect, subscribe, authorize, protocol).
    pub error: Option<String>,
    /// The 32-byte header nonce of each submit, in order: NONCE_1 || NONCE_2 as hashed (tampered when so
    /// configured).
    pub submitted_nonces: Vec<[u8; NONCE_LEN]>,
    /// Solution variants hashed.
    pub hashes: u64,
}

/// Runs one miner session until `max_shares` submits were answered, `duration` passed, `stop` was set,
/// the peer closed the connection, or the handshake failed. Then waits up to 2 s for outstanding replies.
pub fn run_equihash_miner(cfg: &EquihashMinerConfig, stop: &AtomicBool) -> EquihashMinerReport {
    let stream = match connect(cfg.addr) {
        Ok(s) => s,
        Err(e) => {
            return EquihashMinerReport {
                error: Some(format!("connect to {}: {e}", cfg.addr)),
                ..EquihashMinerReport::default()
            }
        }
    };
    let mut session = Session::new(cfg, stream);
    session.run(stop);
    session.finish()
}

/// [`run_equihash_miner`] on its own thread.
pub fn spawn_equihash_miner(
    cfg: EquihashMinerConfig,
    stop: Arc<AtomicBool>,
) -> JoinHandle<EquihashMinerReport> {
    thread::spawn(move || run_equihash_miner(&cfg, &stop))
}

/// Varies the last (up to 8) bytes of `solution_with_prefix`, as a little-endian counter from `start`,
/// until sha256d(`header` || solution) meets `target`, trying at most `max_tries` values. On success the
/// solution holds the winning bytes and `(winning counter, block hash)` is returned; otherwise it holds the
/// last value tried. The SHA-256 state of the unchanging leading blocks is computed once.
pub fn grind_solution(
    header: &[u8; HEADER_LEN],
    solution_with_prefix: &mut [u8],
    target: &[u8; 32],
    start: u64,
    max_tries: u64,
) -> Option<(u64, [u8; 32])> {
    let vary = solution_with_prefix.len().min(8);
    let total = HEADER_LEN + solution_with_prefix.len();
    let fixed = (total - vary) / 64 * 64;
    let mut base = Sha256::new();
    let mut tail = Vec::with_capacity(total - fixed);
    if fixed <= HEADER_LEN {
        base.update(&header[..fixed]);
        tail.extend_from_slice(&header[fixed..]);
        tail.extend_from_slice(solution_with_prefix);
    } else {
        base.update(header);
        base.update(&solution_with_prefix[..fixed - HEADER_LEN]);
        tail.extend_from_slice(&solution_with_prefix[fixed - HEADER_LEN..]);
    }
    let at = tail.len() - vary;
    let sol_at = solution_with_prefix.len() - vary;
    let mut found = None;
    for i in 0..max_tries {
        let counter = start.wrapping_add(i);
        tail[at..].copy_from_slice(&counter.to_le_bytes()[..vary]);
        let first = base.clone().chain_update(&tail).finalize();
        let hash: [u8; 32] = Sha256::digest(first).into();
        if equihash::hash_meets_target(&hash, target) {
            found = Some((counter, hash));
            break;
        }
    }
    solution_with_prefix[sol_at..].copy_from_slice(&tail[at..]);
    found
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
    Subscribe,
    ExtranonceSubscribe,
    Authorize,
}

/// A job with the NONCE_1 and target in force when it arrived.
struct CurrentJob {
    job: EquihashJob,
    nonce1: Vec<u8>,
    target: [u8; 32],
}

/// The share being prepared: its solution is varied until the block hash meets the target.
struct Grind {
    job_id: String,
    time: [u8; 4],
    nonce2: Vec<u8>,
    /// The nonce hashed (tampered when so configured).
    nonce: [u8; NONCE_LEN],
    header: [u8; HEADER_LEN],
    solution: Vec<u8>,
    target: [u8; 32],
    /// Next counter value to try.
    next: u64,
}

/// One connection's protocol state and the share being prepared.
struct Session<'a> {
    cfg: &'a EquihashMinerConfig,
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
    nonblocking: bool,
    report: EquihashMinerReport,
    next_id: u64,
    requests: HashMap<u64, Request>,
    outstanding_submits: HashSet<u64>,
    answered: u64,
    /// Target for the next job (from the latest set_target; everything before any).
    target: [u8; 32],
    job: Option<CurrentJob>,
    grind: Option<Grind>,
    /// NONCE_2 counter, never reset: no two shares share a nonce.
    nonce2_counter: u64,
    rng: Prng,
    last_submit: Option<Instant>,
    /// The connection is gone (closed by the peer or after a write error).
    closed: bool,
    /// A fatal handshake error: stop now.
    failed: bool,
}

impl<'a> Session<'a> {
    fn new(cfg: &'a EquihashMinerConfig, stream: TcpStream) -> Session<'a> {
        // Distinct pseudo-random solutions per worker name.
        let digest = Sha256::digest(cfg.worker.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Session {
            cfg,
            reader: BufReader::new(stream),
            line: Vec::new(),
            nonblocking: false,
            report: EquihashMinerReport::default(),
            next_id: 1,
            requests: HashMap::new(),
            outstanding_submits: HashSet::new(),
            answered: 0,
            target: [0xff; 32],
            job: None,
            grind: None,
            nonce2_counter: 0,
            rng: Prng::new(u64::from_le_bytes(seed), 0),
            last_submit: None,
            closed: false,
            failed: false,
        }
    }

    fn run(&mut self, stop: &AtomicBool) {
        let deadline = Instant::now() + self.cfg.duration;
        self.send_subscribe();
        while !self.should_stop(stop, deadline) {
            self.maybe_start_share();
            let grinding = self.grind.is_some();
            self.set_nonblocking(grinding);
            self.read_available();
            if grinding && !self.closed {
                self.grind_batch();
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

    fn finish(mut self) -> EquihashMinerReport {
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
            log::debug!("eqminer {}: write failed: {e}", self.cfg.worker);
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
        self.requests.insert(id, kind);
        self.send(&json!({"id": id, "method": method, "params": params}));
    }

    fn send_subscribe(&mut self) {
        let addr = self.cfg.addr;
        let params = json!([
            self.cfg.agent,
            self.cfg.session_id,
            addr.ip().to_string(),
            addr.port()
        ]);
        self.request(Request::Subscribe, "mining.subscribe", params);
    }

    fn submit(&mut self, grind: Grind) {
        let params = json!([
            self.cfg.worker,
            grind.job_id,
            hex::encode(&grind.time),
            hex::encode(&grind.nonce2),
            hex::encode(&grind.solution)
        ]);
        let id = self.take_id();
        self.outstanding_submits.insert(id);
        self.report.submitted += 1;
        self.report.submitted_nonces.push(grind.nonce);
        self.last_submit = Some(Instant::now());
        self.send(&json!({"id": id, "method": "mining.submit", "params": params}));
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
        log::debug!("eqminer {}: {why}", self.cfg.worker);
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
                log::debug!("eqminer {}: ignoring invalid JSON: {e}", self.cfg.worker);
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
            log::trace!("eqminer {}: submit {id} answered", self.cfg.worker);
            return self.on_submit_reply(msg);
        }
        match id.and_then(|id| self.requests.remove(&id)) {
            Some(kind) => self.on_request_reply(kind, msg),
            None => self.report.duplicate_or_unknown_replies += 1,
        }
    }

    fn on_submit_reply(&mut self, msg: &Value) {
        self.answered += 1;
        if msg.get("result") == Some(&Value::Bool(true)) {
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
        let Some((session_id, nonce1)) = parsed else {
            self.report.error = Some(format!("subscribe failed: {result}"));
            self.failed = true;
            return;
        };
        self.report.subscribed = true;
        self.report.session_id = session_id;
        self.report.nonce1 = nonce1;
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
            "mining.notify" => match EquihashJob::from_notify_params(params) {
                Ok(job) => {
                    self.report.jobs_received += 1;
                    self.job = Some(CurrentJob {
                        job,
                        nonce1: self.report.nonce1.clone(),
                        target: self.target,
                    });
                    self.grind = None; // work on the newest job only
                }
                Err(e) => log::debug!("eqminer {}: bad notify: {e}", self.cfg.worker),
            },
            "mining.set_target" => {
                match first
                    .and_then(Value::as_str)
                    .and_then(equihash::target_from_hex)
                {
                    Some(target) => {
                        self.report.set_target_received += 1;
                        self.report.target = Some(target);
                        self.target = target;
                    }
                    None => log::debug!("eqminer {}: bad set_target {params}", self.cfg.worker),
                }
            }
            "mining.set_extranonce" => {
                let nonce1 = first.and_then(Value::as_str).and_then(hex::decode);
                match nonce1.filter(|n| n.len() < NONCE_LEN) {
                    Some(nonce1) => {
                        self.report.set_extranonce_received += 1;
                        self.report.nonce1 = nonce1;
                    }
                    None => log::debug!("eqminer {}: bad set_extranonce {params}", self.cfg.worker),
                }
            }
            "client.get_version" => {
                let agent = self.cfg.agent.clone();
                self.send(&json!({"id": id, "result": agent, "error": null}));
            }
            "mining.ping" => self.send(&json!({"id": id, "result": "pong", "error": null})),
            "client.reconnect" | "client.show_message" | "mining.set_difficulty" => {
                log::debug!("eqminer {}: ignoring {method} {params}", self.cfg.worker);
            }
            _ if !id.is_null() => {
                self.send(
                    &json!({"id": id, "result": null, "error": [20, "Unknown method", null]}),
                );
            }
            _ => {}
        }
    }

    // ---- shares ----

    fn can_submit(&self) -> bool {
        let below_max = self
            .cfg
            .max_shares
            .is_none_or(|max| self.report.submitted < max);
        let paced = self
            .last_submit
            .is_none_or(|last| last.elapsed() >= self.cfg.share_interval);
        below_max && paced && self.report.subscribed && self.report.authorized
    }

    /// Starts preparing the next share for the current job when it is time.
    fn maybe_start_share(&mut self) {
        if self.grind.is_some() || !self.can_submit() {
            return;
        }
        let Some(current) = &self.job else {
            return;
        };
        let nonce2_len = NONCE_LEN.saturating_sub(current.nonce1.len());
        let mut nonce2 = vec![0u8; nonce2_len];
        let counter = self.nonce2_counter.to_le_bytes();
        let n = nonce2_len.min(8);
        nonce2[..n].copy_from_slice(&counter[..n]);
        self.nonce2_counter = self.nonce2_counter.wrapping_add(1);
        let Some(mut nonce) = equihash::nonce_from_parts(&current.nonce1, &nonce2) else {
            return;
        };
        if self.cfg.tamper_nonce1 {
            nonce[current.nonce1.len().saturating_sub(1)] ^= 0xff;
        }
        let mut solution = self.cfg.params.solution_prefix();
        let prefix_len = solution.len();
        solution.resize(prefix_len + self.cfg.params.solution_len(), 0);
        self.rng.fill(&mut solution[prefix_len..]);
        let target = if self.cfg.meet_target {
            current.target
        } else {
            [0xff; 32]
        };
        self.grind = Some(Grind {
            job_id: current.job.job_id.clone(),
            time: current.job.time,
            nonce2,
            nonce,
            header: current.job.header(&nonce),
            solution,
            target,
            next: 0,
        });
    }

    /// Tries a batch of solution variants; submits the share once one meets the target.
    fn grind_batch(&mut self) {
        let Some(grind) = self.grind.as_mut() else {
            return;
        };
        let found = grind_solution(
            &grind.header,
            &mut grind.solution,
            &grind.target,
            grind.next,
            BATCH,
        );
        let tried = found.map_or(BATCH, |(counter, _)| {
            counter.wrapping_sub(grind.next).wrapping_add(1)
        });
        self.report.hashes = self.report.hashes.saturating_add(tried);
        grind.next = grind.next.wrapping_add(tried);
        if found.is_some() {
            if let Some(grind) = self.grind.take() {
                self.submit(grind);
            }
        }
    }
}

/// `(session id, NONCE_1)` from a subscribe result `[SESSION_ID, NONCE_1_HEX]` (NONCE_1 below 32 bytes).
fn parse_subscribe_result(result: &Value) -> Option<(Option<String>, Vec<u8>)> {
    let session = match result.get(0)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let nonce1 = result.get(1)?.as_str().and_then(hex::decode)?;
    (nonce1.len() < NONCE_LEN).then_some((session, nonce1))
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
    use crate::equihash_pool::{
        EquihashPool, EquihashPoolConfig, EquihashPoolStats, EASY_TARGET_HEX,
    };

    /// 0x0000ff..ff: one hash in 65,536 meets it.
    const HARDER_TARGET: &str = "0000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn miner(pool: &EquihashPool, worker: &str) -> EquihashMinerConfig {
        EquihashMinerConfig {
            addr: pool.addr(),
            worker: worker.into(),
            max_shares: Some(5),
            duration: Duration::from_secs(60),
            share_interval: Duration::from_millis(5),
            ..EquihashMinerConfig::default()
        }
    }

    fn join(handle: JoinHandle<EquihashMinerReport>) -> EquihashMinerReport {
        handle.join().expect("miner thread")
    }

    fn assert_clean(r: &EquihashMinerReport, accepted: u64) {
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
        assert_eq!(r.submitted_nonces.len() as u64, r.submitted);
    }

    /// The nonces the pool accepted from `worker`, in order.
    fn pool_nonces(stats: &EquihashPoolStats, worker: &str) -> Vec<[u8; NONCE_LEN]> {
        stats
            .accepted_shares
            .iter()
            .filter(|s| s.worker == worker)
            .map(|s| s.nonce)
            .collect()
    }

    #[test]
    fn miners_direct_to_pool() {
        let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let workers = ["m1", "m2", "xsub"];
        let handles: Vec<_> = workers
            .iter()
            .map(|w| {
                let cfg = EquihashMinerConfig {
                    extranonce_subscribe: *w == "xsub",
                    session_id: Some("resume-me".into()),
                    ..miner(&pool, w)
                };
                spawn_equihash_miner(cfg, Arc::clone(&stop))
            })
            .collect();
        let reports: Vec<EquihashMinerReport> = handles.into_iter().map(join).collect();
        let stats = pool.stats();
        assert_eq!((stats.submits, stats.accepted, stats.rejected), (15, 15, 0));
        assert_eq!(stats.extranonce_subscribes, 1);
        for (worker, r) in workers.iter().zip(&reports) {
            assert_clean(r, 5);
            // subscribe + authorize (+ extranonce.subscribe) + one reply per submit.
            let handshake = if *worker == "xsub" { 3 } else { 2 };
            assert_eq!(r.replies, handshake + 5, "{worker}");
            assert_eq!(r.nonce1.len(), 4);
            assert!(r.session_id.is_some());
            assert_ne!(r.session_id.as_deref(), Some("resume-me"));
            assert_eq!(r.target, equihash::target_from_hex(EASY_TARGET_HEX));
            assert!(r.jobs_received >= 1 && r.hashes >= 5);
            assert_eq!(pool_nonces(&stats, worker), r.submitted_nonces, "{worker}");
            assert!(r.submitted_nonces.iter().all(|n| n[..4] == r.nonce1[..]));
        }
        let mut all: Vec<_> = stats.accepted_shares.iter().map(|s| s.nonce).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 15, "nonces are unique");
        let sub = &stats.subscribe_params[0];
        assert_eq!(sub[0], json!("fastproxy-eqminer/0.1"));
        assert_eq!(sub[1], json!("resume-me"));
        assert_eq!(sub[2], json!("127.0.0.1"));
        assert_eq!(sub[3], json!(pool.addr().port()));
    }

    #[test]
    fn tampered_nonce1_is_rejected() {
        let pool = EquihashPool::start(EquihashPoolConfig {
            target_hex: HARDER_TARGET.into(),
            ..EquihashPoolConfig::default()
        })
        .expect("pool");
        let stop = AtomicBool::new(false);
        let cfg = EquihashMinerConfig {
            tamper_nonce1: true,
            ..miner(&pool, "tamper")
        };
        let r = run_equihash_miner(&cfg, &stop);
        assert_eq!((r.submitted, r.accepted, r.rejected), (5, 0, 5), "{r:?}");
        assert_eq!(r.reject_codes.get(&23), Some(&5));
        assert_eq!(r.reject_messages[0], "Low difficulty share");
        assert_eq!(r.unanswered, 0);
        for nonce in &r.submitted_nonces {
            assert_eq!(nonce[..3], r.nonce1[..3]);
            assert_eq!(nonce[3], r.nonce1[3] ^ 0xff);
        }
        let stats = pool.stats();
        assert_eq!(stats.rejected_by_code.get(&23), Some(&5));
        assert!(stats.accepted_shares.is_empty());
    }

    #[test]
    fn miner_follows_set_extranonce_and_target() {
        let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = EquihashMinerConfig {
            extranonce_subscribe: true,
            max_shares: Some(8),
            share_interval: Duration::from_millis(20),
            ..miner(&pool, "x")
        };
        let handle = spawn_equihash_miner(cfg, Arc::clone(&stop));
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.stats().accepted < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        pool.set_extranonce_all();
        pool.set_target(HARDER_TARGET).expect("target");
        let r = join(handle);
        assert_eq!(r.set_extranonce_received, 1);
        assert_eq!(r.set_target_received, 2);
        assert_eq!(r.target, equihash::target_from_hex(HARDER_TARGET));
        assert_eq!(
            (r.submitted, r.accepted + r.rejected, r.unanswered),
            (8, 8, 0)
        );
        // Shares in flight across the clean job may be stale (21); nothing else may fail.
        assert!(r.reject_codes.keys().all(|&c| c == 21), "{r:?}");
        let stats = pool.stats();
        let nonce1s: HashSet<&Vec<u8>> = stats.accepted_shares.iter().map(|s| &s.nonce1).collect();
        assert_eq!(nonce1s.len(), 2, "shares under both NONCE_1 values");
        assert!(stats.accepted_shares.iter().any(|s| s.nonce1 == r.nonce1));
        // Every accepted nonce is one the miner built, with the NONCE_1 the pool had sent it.
        for share in &stats.accepted_shares {
            assert!(r.submitted_nonces.contains(&share.nonce));
            assert_eq!(share.nonce[..4], share.nonce1[..]);
        }
        // The last shares were for the harder target.
        let harder = equihash::target_from_hex(HARDER_TARGET).expect("target");
        let last = stats.accepted_shares.last().expect("a share");
        assert!(equihash::hash_meets_target(&last.block_hash, &harder));
    }

    #[test]
    fn fake_solutions_and_unmet_targets_are_rejected() {
        // The pool verifies Equihash: the fake solutions fail with 20.
        let pool = EquihashPool::start(EquihashPoolConfig {
            verify_solutions: true,
            ..EquihashPoolConfig::default()
        })
        .expect("pool");
        let r = run_equihash_miner(
            &EquihashMinerConfig {
                max_shares: Some(2),
                ..miner(&pool, "fake")
            },
            &AtomicBool::new(false),
        );
        assert_eq!((r.submitted, r.rejected, r.unanswered), (2, 2, 0), "{r:?}");
        assert_eq!(r.reject_codes.get(&20), Some(&2));
        assert_eq!(r.reject_messages[0], "Invalid solution");

        // A target no hash meets, and a miner that does not try: 23.
        let pool = EquihashPool::start(EquihashPoolConfig {
            target_hex: "00".repeat(32),
            ..EquihashPoolConfig::default()
        })
        .expect("pool");
        let r = run_equihash_miner(
            &EquihashMinerConfig {
                max_shares: Some(3),
                meet_target: false,
                ..miner(&pool, "lazy")
            },
            &AtomicBool::new(false),
        );
        assert_eq!((r.submitted, r.rejected), (3, 3), "{r:?}");
        assert_eq!(r.reject_codes.get(&23), Some(&3));
        assert_eq!(r.hashes, 3);
    }

    #[test]
    fn endings_disconnect_and_nobody_listening() {
        let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = EquihashMinerConfig {
            max_shares: None,
            share_interval: Duration::from_secs(60),
            ..miner(&pool, "w")
        };
        let handle = spawn_equihash_miner(cfg, Arc::clone(&stop));
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.stats().accepted < 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        pool.disconnect_all();
        let r = join(handle);
        assert!(r.disconnected_by_peer, "{r:?}");
        assert_eq!((r.submitted, r.accepted), (1, 1));

        pool.stop();
        let cfg = EquihashMinerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            duration: Duration::from_secs(5),
            ..EquihashMinerConfig::default()
        };
        let r = run_equihash_miner(&cfg, &AtomicBool::new(false));
        assert!(r.error.is_some() && !r.subscribed);
    }

    #[test]
    fn unanswered_submits_and_stop_flag() {
        let pool = EquihashPool::start(EquihashPoolConfig {
            answer_submits: false,
            ..EquihashPoolConfig::default()
        })
        .expect("pool");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = spawn_equihash_miner(
            EquihashMinerConfig {
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
    fn grinding_meets_the_target() {
        let target = equihash::target_from_hex(&format!("0fff{}", "f".repeat(60))).expect("target");
        let mut header = [0u8; HEADER_LEN];
        for (i, b) in header.iter_mut().enumerate() {
            *b = (i * 13) as u8;
        }
        // (200, 9): the tail starts inside the solution; (48, 5): inside the header.
        for params in [Params::ZCASH, Params { n: 48, k: 5 }] {
            let mut sol = params.solution_prefix();
            sol.resize(params.solution_with_prefix_len(), 0x11);
            let (counter, hash) =
                grind_solution(&header, &mut sol, &target, 5, 10_000).expect("found");
            assert!(counter >= 5);
            assert_eq!(hash, equihash::block_hash(&header, &sol));
            assert!(equihash::hash_meets_target(&hash, &target));
            assert_eq!(sol[sol.len() - 8..], counter.to_le_bytes());
            assert!(equihash::parse_solution_hex(&hex::encode(&sol), &params).is_ok());
            // Nothing meets a zero target; the bytes then hold the last value tried.
            assert_eq!(grind_solution(&header, &mut sol, &[0; 32], 0, 10), None);
            assert_eq!(sol[sol.len() - 8..], 9u64.to_le_bytes());
        }
    }

    #[test]
    fn subscribe_results_and_error_shapes() {
        assert_eq!(
            parse_subscribe_result(&json!(["s1", "0a0b"])),
            Some((Some("s1".into()), vec![10, 11]))
        );
        assert_eq!(
            parse_subscribe_result(&json!([null, ""])),
            Some((None, vec![]))
        );
        assert_eq!(parse_subscribe_result(&json!(["s", "0a0"])), None);
        assert_eq!(parse_subscribe_result(&json!(["s", "00".repeat(32)])), None);
        assert_eq!(parse_subscribe_result(&json!(["s"])), None);
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
    }
}
