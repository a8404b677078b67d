//! One connection of the simulated Stratum V1 pool: what was negotiated with it, the jobs sent to it, and
//! the share check (job, extranonce2, ntime, nonce, version bits, duplicates, hash against the target).

use super::config::AcceptedShare;
use crate::lines::{notification, Reject};
use crate::server::{HasWriter, Writer};
use fastproxy_work::hex;
use fastproxy_work::work::{self, Job};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

/// One miner-side connection to the pool.
pub(super) struct Conn {
    pub(super) id: u64,
    out: Writer,
    pub(super) subscribed: bool,
    pub(super) extranonce1: Vec<u8>,
    pub(super) extranonce_subscribed: bool,
    /// Negotiated version-rolling mask (after a successful `mining.configure`).
    pub(super) version_mask: Option<u32>,
    pub(super) workers: BTreeSet<String>,
    jobs: VecDeque<SentJob>,
    seen: HashSet<ShareKey>,
}

/// A job as sent to one connection, with what the share check needs from that moment.
struct SentJob {
    job: Arc<Job>,
    extranonce1: Vec<u8>,
    target: [u8; 32],
}

/// Identity of a share for duplicate detection: job, extranonce2, ntime, nonce, header version.
type ShareKey = (String, Vec<u8>, u32, u32, u32);

impl HasWriter for Conn {
    fn writer(&self) -> &Writer {
        &self.out
    }
}

impl Conn {
    pub(super) fn new(out: Writer) -> Conn {
        Conn {
            id: out.id,
            out,
            subscribed: false,
            extranonce1: Vec::new(),
            extranonce_subscribed: false,
            version_mask: None,
            workers: BTreeSet::new(),
            jobs: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Writes one JSON line (see [`Writer::send`]).
    pub(super) fn send(&mut self, msg: &Value) {
        self.out.send(msg);
    }

    /// Records and sends a job; `clean` forgets the earlier ones.
    pub(super) fn send_job(&mut self, job: &Arc<Job>, clean: bool, target: [u8; 32], kept: usize) {
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
    pub(super) fn check_share(
        &mut self,
        params: &Value,
        e2_size: usize,
    ) -> Result<AcceptedShare, Reject> {
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
