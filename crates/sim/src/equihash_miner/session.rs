//! The simulated Equihash miner's session: the handshake (subscribe, authorize), the pool's target, jobs
//! and NONCE_1 followed, and a share prepared and submitted for the current job every `share_interval`.

use super::config::{EquihashMinerConfig, EquihashMinerReport};
use super::grind::Grind;
use crate::client::{self, check_authorized, reply_result, Client, Incoming, Request, Verdicts};
use crate::prng::Prng;
use fastproxy_work::equihash::{self, EquihashJob, NONCE_LEN};
use fastproxy_work::hex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Solution variants hashed between two looks at the socket.
const BATCH: u64 = 2_000;
pub(super) const READ_TIMEOUT: Duration = Duration::from_millis(10);

/// A job with the NONCE_1 and target in force when it arrived.
struct CurrentJob {
    job: EquihashJob,
    nonce1: Vec<u8>,
    target: [u8; 32],
}

/// One connection's protocol state and the share being prepared.
pub(super) struct Session<'a> {
    cfg: &'a EquihashMinerConfig,
    conn: Client,
    report: EquihashMinerReport,
    /// Target for the next job (from the latest set_target; everything before any).
    target: [u8; 32],
    job: Option<CurrentJob>,
    grind: Option<Grind>,
    /// NONCE_2 counter, never reset: no two shares share a nonce.
    nonce2_counter: u64,
    rng: Prng,
    last_submit: Option<Instant>,
}

impl client::Session for Session<'_> {
    fn conn(&mut self) -> &mut Client {
        &mut self.conn
    }

    fn on_incoming(&mut self, msg: Incoming) {
        match msg {
            Incoming::Call(method, id, params) => self.on_server_message(&method, &id, &params),
            Incoming::SubmitReply(msg) => {
                let r = &mut self.report;
                Verdicts {
                    accepted: &mut r.accepted,
                    rejected: &mut r.rejected,
                    reject_codes: &mut r.reject_codes,
                    reject_messages: &mut r.reject_messages,
                }
                .count(&msg);
            }
            Incoming::Reply(kind, msg) => self.on_request_reply(kind, &msg),
        }
    }
}

impl<'a> Session<'a> {
    pub(super) fn new(cfg: &'a EquihashMinerConfig, conn: Client) -> Session<'a> {
        // Distinct pseudo-random solutions per worker name.
        let digest = Sha256::digest(cfg.worker.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Session {
            cfg,
            conn,
            report: EquihashMinerReport::default(),
            target: [0xff; 32],
            job: None,
            grind: None,
            nonce2_counter: 0,
            rng: Prng::new(u64::from_le_bytes(seed), 0),
            last_submit: None,
        }
    }

    pub(super) fn run(&mut self, stop: &AtomicBool) {
        use client::Session as _;
        let deadline = Instant::now() + self.cfg.duration;
        self.send_subscribe();
        while !self.conn.should_stop(self.cfg.max_shares, stop, deadline) {
            self.maybe_start_share();
            let grinding = self.grind.is_some();
            self.conn.set_nonblocking(grinding);
            self.read_available();
            if grinding && !self.conn.closed {
                self.grind_batch();
            }
        }
        self.drain_replies();
    }

    pub(super) fn finish(mut self) -> EquihashMinerReport {
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
        let addr = self.cfg.addr;
        let params = json!([
            self.cfg.agent,
            self.cfg.session_id,
            addr.ip().to_string(),
            addr.port()
        ]);
        self.conn
            .request(Request::Subscribe, "mining.subscribe", params);
    }

    fn submit(&mut self, grind: Grind) {
        let params = json!([
            self.cfg.worker,
            grind.job_id,
            hex::encode(&grind.time),
            hex::encode(&grind.nonce2),
            hex::encode(&grind.solution)
        ]);
        self.report.submitted += 1;
        self.report.submitted_nonces.push(grind.nonce);
        self.last_submit = Some(Instant::now());
        self.conn.submit(params);
    }

    // ---- reading ----

    fn on_request_reply(&mut self, kind: Request, msg: &Value) {
        let (result, failed) = reply_result(msg);
        match kind {
            Request::Subscribe => self.on_subscribed(result, failed),
            Request::Configure | Request::ExtranonceSubscribe => {}
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
        let Some((session_id, nonce1)) = parsed else {
            self.report.error = Some(format!("subscribe failed: {result}"));
            self.conn.failed = true;
            return;
        };
        self.report.subscribed = true;
        self.report.session_id = session_id;
        self.report.nonce1 = nonce1;
        let cfg = self.cfg;
        self.conn
            .authorize(cfg.extranonce_subscribe, &cfg.worker, &cfg.password);
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
            "mining.set_difficulty" => {
                log::debug!("eqminer {}: ignoring {method} {params}", self.cfg.worker);
            }
            _ => self.conn.answer_call(method, id, params, &self.cfg.agent),
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
        let (tried, found) = grind.try_batch(BATCH);
        self.report.hashes = self.report.hashes.saturating_add(tried);
        if found {
            if let Some(grind) = self.grind.take() {
                self.submit(grind);
            }
        }
    }
}

/// `(session id, NONCE_1)` from a subscribe result `[SESSION_ID, NONCE_1_HEX]` (NONCE_1 below 32 bytes).
pub(super) fn parse_subscribe_result(result: &Value) -> Option<(Option<String>, Vec<u8>)> {
    let session = match result.get(0)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let nonce1 = result.get(1)?.as_str().and_then(hex::decode)?;
    (nonce1.len() < NONCE_LEN).then_some((session, nonce1))
}
