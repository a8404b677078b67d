//! The soak's miner (tests/soak.rs): one blocking session that really hashes its jobs at the difficulty it was
//! given, one share in flight at a time, and logs every share by identity with the reply it got.
//!
//! A share's identity is (job id, full extranonce, ntime, nonce, header version). The full extranonce is
//! extranonce1 || extranonce2: the miner's (the proxy's extranonce1, which ends with the miner's prefix, and its
//! own extranonce2) is the same byte string as the pool's (the pool's extranonce1, and the prefix followed by
//! the miner's extranonce2), so one key names a share on both sides of the proxy.

use fastproxy::hex;
use fastproxy::work::{self, Job};
use fastproxy_sim::miner::search_nonce;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// (job id, extranonce1 || extranonce2, ntime, nonce, header version).
pub type ShareKey = (String, Vec<u8>, u32, u32, u32);

/// After a refused share the miner waits this long before the next (as a real miner would, finding its next
/// share): without it, a miner that is refused at once during an outage would submit as fast as it can hash.
const PAUSE_AFTER_REFUSAL: Duration = Duration::from_millis(250);
/// A session that cannot hash yet when its time is up (its handshake is unanswered, e.g. it waits in a paused
/// listen backlog) keeps waiting this much longer for it, submitting nothing, so that a late answer counts.
pub const HANDSHAKE_GRACE: Duration = Duration::from_secs(10);
/// How long a submit may wait for its reply before the session gives up on it (a generous bound: the proxy's
/// `share_timeout` is far shorter).
const REPLY_LIMIT: Duration = Duration::from_secs(40);
const READ_POLL: Duration = Duration::from_millis(250);
/// Nonces tried per extranonce2 before moving to the next (a share takes about 2^32 × difficulty).
const NONCE_RANGE: u32 = 1 << 26;

/// What became of one submitted share, as its miner saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// An error reply (code, message); a plain `false` is code 0.
    Refused(i64, String),
    /// The connection closed (or the reply did not come within [`REPLY_LIMIT`]) first.
    Unanswered,
}

/// One submitted share and its fate.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub key: ShareKey,
    pub outcome: Outcome,
    /// When it was submitted, from the soak's start.
    pub at: Duration,
    /// How long the reply took.
    pub rtt: Duration,
    /// Every full extranonce1 the proxy gave with `mining.set_extranonce` while this share was in flight, in
    /// order: the proxy applies the one current when the share reached it (there may be several, e.g. a
    /// reconnect and a move to another route), and the share then no longer matches what was hashed.
    pub replaced_extranonce1: Vec<Vec<u8>>,
    /// The length of the share's extranonce2 (the end of `key.1`).
    pub extranonce2_len: usize,
}

impl Submitted {
    /// The full extranonces under which the share may reach the pool when its extranonce1 was replaced in
    /// flight (each new extranonce1 followed by the share's own extranonce2).
    pub fn as_rewritten(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        let e2 = &self.key.1[self.key.1.len().saturating_sub(self.extranonce2_len)..];
        self.replaced_extranonce1
            .iter()
            .map(move |e1| [&e1[..], e2].concat())
    }
}

/// One session's times, from the soak's start: when it connected, when it left, and when it first had all it
/// needs to hash (extranonce, target, job, authorized), if it did; and whether it ended early (the proxy
/// closed it, or a write failed).
#[derive(Clone, Debug)]
pub struct SessionTimes {
    pub connected: Duration,
    pub left: Duration,
    pub ready: Option<Duration>,
    pub ended_early: bool,
}

/// Totals over all sessions.
#[derive(Default)]
pub struct Counts {
    pub sessions: AtomicU64,
    pub rolling_sessions: AtomicU64,
    pub submitted: AtomicU64,
    pub replies: AtomicU64,
    pub duplicate_replies: AtomicU64,
    pub unanswered: AtomicU64,
    pub hashes: AtomicU64,
    /// Every session that connected.
    pub session_times: Mutex<Vec<SessionTimes>>,
}

/// One session's parameters.
pub struct Plan {
    pub addr: SocketAddr,
    /// Submit no new share after this (the last one's reply is still awaited).
    pub until: Instant,
    /// Negotiate version rolling (`mining.configure`) and roll version bits.
    pub version_rolling: bool,
    /// The soak's start, for [`Submitted::at`].
    pub started: Instant,
}

/// Handshake request ids; submits use ids above them.
const CONFIGURE: u64 = 1;
const SUBSCRIBE: u64 = 3;
const AUTHORIZE: u64 = 4;

/// What the session knows from the proxy.
#[derive(Default)]
struct Known {
    extranonce1: Option<Vec<u8>>,
    extranonce2_size: usize,
    target: Option<[u8; 32]>,
    job: Option<Job>,
    mask: Option<u32>,
    configured: bool,
    authorized: bool,
}

impl Known {
    fn ready(&self, rolling: bool) -> bool {
        self.extranonce1.is_some()
            && self.extranonce2_size > 0
            && self.target.is_some()
            && self.job.is_some()
            && self.authorized
            && (self.configured || !rolling)
    }
}

/// The share waiting for its reply.
struct InFlight {
    id: u64,
    key: ShareKey,
    sent: Instant,
    replaced_extranonce1: Vec<Vec<u8>>,
    extranonce2_len: usize,
}

impl InFlight {
    fn done(self, outcome: Outcome, plan: &Plan) -> Submitted {
        Submitted {
            key: self.key,
            outcome,
            at: self.sent.saturating_duration_since(plan.started),
            rtt: self.sent.elapsed(),
            replaced_extranonce1: self.replaced_extranonce1,
            extranonce2_len: self.extranonce2_len,
        }
    }
}

/// Runs one session until `plan.until` (then waits for the last reply, or up to [`HANDSHAKE_GRACE`] more for a
/// handshake still unanswered) or until the proxy closes it; appends every share it submitted to `log`.
/// Returns false if the session ended early (connect failed or closed).
pub fn session(plan: &Plan, c: &Counts, log: &mut Vec<Submitted>) -> bool {
    let Ok(s) = TcpStream::connect(plan.addr) else {
        return false;
    };
    let connected = plan.started.elapsed();
    let mut ready = None;
    let ended_well = run_session(plan, c, log, s, &mut ready);
    c.session_times.lock().unwrap().push(SessionTimes {
        connected,
        left: plan.started.elapsed(),
        ready,
        ended_early: !ended_well,
    });
    ended_well
}

/// [`session`] on its connected socket; `ready` is set when the session first can hash.
fn run_session(
    plan: &Plan,
    c: &Counts,
    log: &mut Vec<Submitted>,
    s: TcpStream,
    ready: &mut Option<Duration>,
) -> bool {
    c.sessions.fetch_add(1, Relaxed);
    s.set_read_timeout(Some(READ_POLL)).unwrap();
    let _ = s.set_nodelay(true);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut hello = String::new();
    if plan.version_rolling {
        c.rolling_sessions.fetch_add(1, Relaxed);
        let opts = json!({"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2});
        let msg = json!({"id": CONFIGURE, "method": "mining.configure", "params": [["version-rolling"], opts]});
        hello.push_str(&format!("{msg}\n"));
    }
    hello.push_str("{\"id\":2,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n");
    hello.push_str("{\"id\":3,\"method\":\"mining.subscribe\",\"params\":[\"soak/1\"]}\n");
    hello.push_str("{\"id\":4,\"method\":\"mining.authorize\",\"params\":[\"soak.rig\",\"x\"]}\n");
    if w.write_all(hello.as_bytes()).is_err() {
        return false;
    }
    let mut k = Known::default();
    let mut in_flight: Option<InFlight> = None;
    let mut seq = 0u64;
    let mut line = Vec::new();
    loop {
        if in_flight.is_none() {
            // Served is noted before the time check: a miner thread that ran late still counts an answer that
            // came in time.
            let can_hash = k.ready(plan.version_rolling);
            if can_hash {
                ready.get_or_insert_with(|| plan.started.elapsed());
            }
            let now = Instant::now();
            if now >= plan.until && (can_hash || now >= plan.until + HANDSHAKE_GRACE) {
                return true;
            }
            if can_hash && now < plan.until {
                seq += 1;
                let (params, key) = find_share(&k, seq, c);
                let id = AUTHORIZE + seq;
                let msg = json!({"id": id, "method": "mining.submit", "params": params});
                if w.write_all(format!("{msg}\n").as_bytes()).is_err() {
                    return false;
                }
                c.submitted.fetch_add(1, Relaxed);
                let sent = Instant::now();
                in_flight = Some(InFlight {
                    id,
                    key,
                    sent,
                    replaced_extranonce1: Vec::new(),
                    extranonce2_len: k.extranonce2_size.min(8),
                });
            }
        }
        let read = r.read_until(b'\n', &mut line);
        let timed_out = matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        let waited_too_long = in_flight
            .as_ref()
            .is_some_and(|f| f.sent.elapsed() > REPLY_LIMIT);
        match read {
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(n) if n > 0 => continue,
            _ if timed_out && !waited_too_long => continue,
            _ => {
                // Closed, failed, or no reply in time: the share in flight stays unanswered.
                if let Some(f) = in_flight {
                    c.unanswered.fetch_add(1, Relaxed);
                    log.push(f.done(Outcome::Unanswered, plan));
                }
                return false;
            }
        }
        let v = serde_json::from_slice::<Value>(line.trim_ascii());
        line.clear();
        let Ok(v) = v else { continue };
        if let Some(method) = v["method"].as_str() {
            on_notification(&mut k, method, &v["params"]);
            if let (Some(f), "mining.set_extranonce") = (&mut in_flight, method) {
                f.replaced_extranonce1.extend(k.extranonce1.clone());
            }
            continue;
        }
        let Some(id) = v["id"].as_u64() else { continue };
        match id {
            CONFIGURE => {
                k.configured = true;
                k.mask = v["result"]["version-rolling.mask"]
                    .as_str()
                    .and_then(work::u32_from_hex)
                    .filter(|_| v["result"]["version-rolling"] == json!(true));
            }
            SUBSCRIBE => {
                k.extranonce1 = v["result"][1].as_str().and_then(hex::decode);
                k.extranonce2_size = v["result"][2].as_u64().unwrap_or(0) as usize;
            }
            AUTHORIZE => k.authorized = v["result"] == json!(true),
            _ if id < AUTHORIZE => {}
            _ => match in_flight.take() {
                Some(f) if f.id == id => {
                    c.replies.fetch_add(1, Relaxed);
                    let outcome = if v["result"] == json!(true) {
                        Outcome::Accepted
                    } else {
                        let e = &v["error"];
                        let code = e[0].as_i64().unwrap_or(0);
                        Outcome::Refused(code, e[1].as_str().unwrap_or("false").to_string())
                    };
                    if outcome != Outcome::Accepted {
                        std::thread::sleep(PAUSE_AFTER_REFUSAL);
                    }
                    log.push(f.done(outcome, plan));
                }
                other => {
                    in_flight = other;
                    c.duplicate_replies.fetch_add(1, Relaxed);
                }
            },
        }
    }
}

fn on_notification(k: &mut Known, method: &str, params: &Value) {
    match method {
        "mining.notify" => k.job = Job::from_notify_params(params).ok().or(k.job.take()),
        "mining.set_difficulty" => {
            if let Some(d) = params[0].as_f64() {
                k.target = Some(work::target_from_difficulty(d));
            }
        }
        "mining.set_extranonce" => {
            k.extranonce1 = params[0].as_str().and_then(hex::decode);
            k.extranonce2_size = params[1].as_u64().unwrap_or(0) as usize;
        }
        "mining.set_version_mask" if k.mask.is_some() => {
            k.mask = params[0].as_str().and_then(work::u32_from_hex);
        }
        _ => {}
    }
}

/// Hashes until a share meets the target: extranonce2 counts from the session's start (as real miners do, so
/// two sessions the proxy gave the same extranonce1 would hash the same shares), ntime rolled forward by 0-2 s,
/// version bits rolled within the mask when negotiated. Returns the submit params and the key.
fn find_share(k: &Known, seq: u64, c: &Counts) -> (Value, ShareKey) {
    let (Some(job), Some(e1), Some(target)) = (&k.job, &k.extranonce1, &k.target) else {
        unreachable!("only called when ready")
    };
    let size = k.extranonce2_size.min(8);
    let ntime = job.ntime + (seq % 3) as u32;
    let bits = k
        .mask
        .map(|mask| (seq as u32).wrapping_mul(0x9e37_79b9) & mask);
    let version = match (bits, k.mask) {
        (Some(bits), Some(mask)) => work::rolled_version(job.version, mask, bits),
        _ => job.version,
    };
    let mut e2_value = seq << 4;
    loop {
        let e2_full = e2_value.to_be_bytes();
        let e2 = &e2_full[8 - size..];
        let merkle = job.merkle_root(&job.coinbase(e1, e2));
        let header = job.header_with_merkle_root(&merkle, ntime, 0, version);
        if let Some(nonce) = search_nonce(&header, target, 0..NONCE_RANGE) {
            c.hashes.fetch_add(u64::from(nonce) + 1, Relaxed);
            let mut params = vec![
                json!("soak.rig"),
                json!(job.job_id),
                json!(hex::encode(e2)),
                json!(work::u32_to_hex(ntime)),
                json!(work::u32_to_hex(nonce)),
            ];
            if let Some(bits) = bits {
                params.push(json!(work::u32_to_hex(bits)));
            }
            let full = [&e1[..], e2].concat();
            // The pool's job id: a proxy entry with several routes puts its upstream's tag in front.
            let pool_job = job
                .job_id
                .split_once('.')
                .map_or(&job.job_id[..], |(_, j)| j);
            return (
                Value::from(params),
                (pool_job.to_string(), full, ntime, nonce, version),
            );
        }
        c.hashes.fetch_add(u64::from(NONCE_RANGE), Relaxed);
        e2_value += 1; // no share in this range (practically never): the next extranonce2
    }
}
