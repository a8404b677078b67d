//! The simulated Stratum V1 miner's session: the handshake (configure, subscribe, authorize), the pool's
//! notifications followed, and the hashing loop that submits each share found, paced and bounded.

use super::config::{MinerReport, SimMinerConfig};
use super::hashing::{spread_bits, FoundShare, Work};
use crate::client::{self, check_authorized, reply_result, Client, Incoming, Request, Verdicts};
use fastproxy_work::hex;
use fastproxy_work::work::{self, Job};
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Nonces hashed between two looks at the socket.
const BATCH: u64 = 2_000;
pub(super) const READ_TIMEOUT: Duration = Duration::from_millis(20);
/// How long to wait for a `mining.configure` reply before subscribing anyway.
const CONFIGURE_TIMEOUT: Duration = Duration::from_secs(3);

/// One connection's protocol state and the work being hashed.
pub(super) struct Session<'a> {
    cfg: &'a SimMinerConfig,
    conn: Client,
    report: MinerReport,
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
}

impl client::Session for Session<'_> {
    fn conn(&mut self) -> &mut Client {
        &mut self.conn
    }

    fn on_incoming(&mut self, msg: Incoming) {
        match msg {
            Incoming::Call(method, id, params) => self.on_server_message(&method, &id, &params),
            Incoming::SubmitReply(msg) => self.on_submit_reply(&msg),
            Incoming::Reply(kind, msg) => self.on_request_reply(kind, &msg),
        }
    }
}

impl<'a> Session<'a> {
    pub(super) fn new(cfg: &'a SimMinerConfig, conn: Client) -> Session<'a> {
        Session {
            cfg,
            conn,
            report: MinerReport {
                difficulty: 1.0,
                ..MinerReport::default()
            },
            target: work::target_from_difficulty(1.0),
            mask: None,
            roll_counter: 0,
            latest_job: None,
            job_changed: false,
            work: None,
            last_submit: None,
            hash_started: None,
        }
    }

    pub(super) fn run(&mut self, stop: &AtomicBool) {
        use client::Session as _;
        let deadline = Instant::now() + self.cfg.duration;
        if self.cfg.version_rolling {
            let params = json!([["version-rolling"], {
                "version-rolling.mask": "ffffffff",
                "version-rolling.min-bit-count": 2
            }]);
            self.conn
                .request(Request::Configure, "mining.configure", params);
        } else {
            self.send_subscribe();
        }
        while !self.conn.should_stop(self.cfg.max_shares, stop, deadline) {
            self.check_configure_timeout();
            self.maybe_start_work();
            let hashing = self.can_hash();
            self.conn.set_nonblocking(hashing);
            self.read_available();
            if hashing && !self.conn.closed {
                self.hash_batch();
            }
        }
        self.drain_replies();
    }

    pub(super) fn finish(mut self) -> MinerReport {
        let conn = &mut self.conn;
        self.report.unanswered = conn.finish();
        self.report.replies = conn.replies;
        self.report.duplicate_or_unknown_replies = conn.unknown_replies;
        self.report.disconnected_by_peer |= conn.by_peer;
        if let Some(error) = conn.error.take() {
            self.report.error = Some(error);
        }
        self.report
    }

    // ---- sending ----

    fn send_subscribe(&mut self) {
        let params = json!([self.cfg.agent]);
        self.conn
            .request(Request::Subscribe, "mining.subscribe", params);
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
        self.report.submitted += 1;
        self.last_submit = Some(Instant::now());
        self.conn.submit(Value::Array(params));
    }

    /// Subscribes anyway when a `mining.configure` stays unanswered.
    fn check_configure_timeout(&mut self) {
        for _ in 0..self.conn.drop_stale(Request::Configure, CONFIGURE_TIMEOUT) {
            self.send_subscribe();
        }
    }

    // ---- reading ----

    fn on_submit_reply(&mut self, msg: &Value) {
        let r = &mut self.report;
        let accepted = Verdicts {
            accepted: &mut r.accepted,
            rejected: &mut r.rejected,
            reject_codes: &mut r.reject_codes,
            reject_messages: &mut r.reject_messages,
        }
        .count(msg);
        if let Some(live) = &self.cfg.live {
            let c = if accepted {
                &live.accepted
            } else {
                &live.rejected
            };
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn on_request_reply(&mut self, kind: Request, msg: &Value) {
        let (result, failed) = reply_result(msg);
        match kind {
            Request::Configure => {
                self.mask = granted_mask(result).filter(|_| !failed);
                self.report.version_mask = self.mask;
                self.send_subscribe();
            }
            Request::Subscribe => self.on_subscribed(result, failed),
            Request::ExtranonceSubscribe => {}
            Request::Authorize => match check_authorized(msg) {
                Ok(()) => self.report.authorized = true,
                Err(error) => {
                    self.report.error = Some(error);
                    self.conn.failed = true;
                }
            },
        }
    }

    fn on_subscribed(&mut self, result: &Value, failed: bool) {
        let parsed = (!failed).then(|| parse_subscribe_result(result)).flatten();
        let Some((extranonce1, extranonce2_size)) = parsed else {
            self.report.error = Some(format!("subscribe failed: {result}"));
            self.conn.failed = true;
            return;
        };
        self.report.subscribed = true;
        self.report.extranonce1 = extranonce1;
        self.report.extranonce2_size = extranonce2_size;
        let cfg = self.cfg;
        self.conn
            .authorize(cfg.extranonce_subscribe, &cfg.worker, &cfg.password);
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
            _ => self.conn.answer_call(method, id, params, &self.cfg.agent),
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

/// Up to 8 hex digits as a mask.
pub(super) fn parse_mask(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The mask granted by a `mining.configure` result, if version rolling was accepted.
pub(super) fn granted_mask(result: &Value) -> Option<u32> {
    if result.get("version-rolling").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    result
        .get("version-rolling.mask")
        .and_then(Value::as_str)
        .and_then(parse_mask)
}

/// `(extranonce1, extranonce2_size)` from a subscribe result.
pub(super) fn parse_subscribe_result(result: &Value) -> Option<(Vec<u8>, usize)> {
    let e1 = result.get(1)?.as_str().and_then(hex::decode)?;
    let size = usize::try_from(result.get(2)?.as_u64()?).ok()?;
    Some((e1, size))
}
