//! The simulated Equihash pool's state and its answers: the connections, counters, target and current job
//! behind one lock, the jobs it makes, and the handlers of each request (subscribe, authorize, submit, ...).

use super::config::{EquihashPoolConfig, EquihashPoolStats};
use super::judge::Conn;
use crate::lines::{error_reply, notification, ok_reply, parse_line, request_parts};
use crate::prng::{unique_bytes, unix_time, Prng};
use crate::server::{self, lock, Service, Threads, Writer};
use fastproxy_work::equihash::EquihashJob;
use fastproxy_work::hex;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the pool's threads share.
pub(super) struct Shared {
    pub(super) cfg: EquihashPoolConfig,
    /// Distinguishes pools in one process (job ids, NONCE_1 values, session ids, job contents).
    pub(super) instance: u64,
    pub(super) threads: Threads,
    pub(super) state: Mutex<State>,
}

/// Mutable pool state, behind one lock (connection count is small).
pub(super) struct State {
    pub(super) conns: BTreeMap<u64, Conn>,
    pub(super) stats: EquihashPoolStats,
    pub(super) target: [u8; 32],
    current_job: Option<Arc<EquihashJob>>,
    job_counter: u64,
    nonce1_counter: u64,
    next_conn_id: u64,
}

impl Shared {
    pub(super) fn new(cfg: EquihashPoolConfig, instance: u64, target: [u8; 32]) -> Shared {
        let state = State {
            conns: BTreeMap::new(),
            stats: EquihashPoolStats::default(),
            target,
            current_job: None,
            job_counter: 0,
            nonce1_counter: 0,
            next_conn_id: 1,
        };
        Shared {
            cfg,
            instance,
            threads: Threads::default(),
            state: Mutex::new(state),
        }
    }
}

impl Service for Shared {
    const NAME: &'static str = "eqpool";

    fn threads(&self) -> &Threads {
        &self.threads
    }

    fn job_interval(&self) -> Option<Duration> {
        self.cfg.job_interval
    }

    fn periodic_job(&self) {
        let mut guard = lock(&self.state);
        let job = guard.make_job(self, false);
        guard.broadcast(self, job);
    }

    fn add_conn(&self, writer: impl FnOnce(u64) -> Writer) -> u64 {
        let mut st = lock(&self.state);
        let id = st.next_conn_id;
        st.next_conn_id += 1;
        st.conns.insert(id, Conn::new(writer(id)));
        st.stats.connections_total += 1;
        st.stats.connections_open += 1;
        id
    }

    /// Parses and answers one line from connection `id`. Garbage and replies are ignored.
    fn handle_line(&self, id: u64, line: &[u8]) {
        let Some(msg) = parse_line(line, format_args!("eqpool: conn {id}")) else {
            return;
        };
        let Some((method, req_id, params)) = request_parts(&msg) else {
            return; // a reply or something unknown: nothing to answer
        };
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

    fn remove_conn(&self, id: u64) {
        let st = &mut *lock(&self.state);
        server::remove_conn(&mut st.conns, &mut st.stats.connections_open, id);
    }

    fn close_all(&self) {
        let st = &mut *lock(&self.state);
        server::close_all(&mut st.conns, &mut st.stats.connections_open);
    }
}

impl State {
    fn reply(&mut self, id: u64, msg: Value) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.send(&msg);
        }
    }

    /// Sends `msg` to every connection.
    pub(super) fn send_all(&mut self, msg: &Value) {
        for conn in self.conns.values_mut() {
            conn.send(msg);
        }
    }

    /// Makes `job` current and sends it (with its own clean flag) to every subscribed connection.
    pub(super) fn broadcast(&mut self, shared: &Shared, job: Arc<EquihashJob>) {
        self.current_job = Some(Arc::clone(&job));
        let target = self.target;
        for conn in self.conns.values_mut().filter(|c| c.subscribed) {
            conn.send_job(&job, job.clean_jobs, target, shared.cfg.jobs_kept);
        }
    }

    /// A fresh NONCE_1, unique within this pool, of the configured size.
    pub(super) fn next_nonce1(&mut self, shared: &Shared) -> Vec<u8> {
        self.nonce1_counter += 1;
        let size = shared
            .cfg
            .fixed_nonce1
            .as_ref()
            .map_or(shared.cfg.nonce1_size, Vec::len);
        unique_bytes(shared.instance, self.nonce1_counter, size)
    }

    /// A new job with deterministic pseudo-random contents and a pool-unique id.
    pub(super) fn make_job(&mut self, shared: &Shared, clean: bool) -> Arc<EquihashJob> {
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
