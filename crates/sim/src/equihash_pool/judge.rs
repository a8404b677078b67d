//! One connection of the simulated Equihash pool: its NONCE_1, the jobs sent to it, and the share check
//! (job, TIME, NONCE_2, solution size, duplicates, optionally the solution, block hash against the target).

use super::config::{EquihashPoolConfig, EquihashShare};
use crate::lines::{notification, Reject};
use crate::server::{HasWriter, Writer};
use fastproxy_work::equihash::{self, EquihashJob, ShareError, NONCE_LEN};
use fastproxy_work::hex;
use fastproxy_work::work;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

/// One miner-side connection to the pool.
pub(super) struct Conn {
    pub(super) id: u64,
    out: Writer,
    pub(super) subscribed: bool,
    pub(super) nonce1: Vec<u8>,
    pub(super) extranonce_subscribed: bool,
    pub(super) workers: BTreeSet<String>,
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
            nonce1: Vec::new(),
            extranonce_subscribed: false,
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
    pub(super) fn send_job(
        &mut self,
        job: &Arc<EquihashJob>,
        clean: bool,
        target: [u8; 32],
        kept: usize,
    ) {
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
    pub(super) fn check_share(
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
