//! The simulated Stratum V1 pool's state and its answers: the connections, counters, difficulty and current
//! job behind one lock, and the handlers of each request (configure, subscribe, authorize, submit, ...).

use super::config::{PoolStats, RejectedShare, SimPoolConfig};
use super::jobs::make_job;
use super::judge::Conn;
use crate::lines::{error_reply, notification, ok_reply, parse_line, request_parts, Reject};
use crate::prng::unique_bytes;
use crate::server::{self, lock, Service, Threads, Writer};
use fastproxy_work::hex;
use fastproxy_work::work::{self, Job};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the pool's threads share.
pub(super) struct Shared {
    pub(super) cfg: SimPoolConfig,
    /// Distinguishes pools in one process (job ids, extranonce1 values, job contents).
    pub(super) instance: u64,
    pub(super) threads: Threads,
    pub(super) state: Mutex<State>,
    /// Set by `SimPool::set_answer_submits(false)`: submits are checked and counted but not answered.
    pub(super) muted: AtomicBool,
    /// Verdicts queued by `SimPool::reject_next`, used (oldest first) instead of checking the next submits.
    pub(super) forced: Mutex<VecDeque<Reject>>,
}

/// Mutable pool state, behind one lock (connection count is small).
pub(super) struct State {
    pub(super) conns: BTreeMap<u64, Conn>,
    pub(super) stats: PoolStats,
    pub(super) difficulty: f64,
    current_job: Option<Arc<Job>>,
    job_counter: u64,
    extranonce_counter: u64,
    next_conn_id: u64,
}

impl Shared {
    pub(super) fn new(cfg: SimPoolConfig, instance: u64) -> Shared {
        let state = State {
            conns: BTreeMap::new(),
            stats: PoolStats::default(),
            difficulty: cfg.difficulty,
            current_job: None,
            job_counter: 0,
            extranonce_counter: 0,
            next_conn_id: 1,
        };
        Shared {
            cfg,
            instance,
            threads: Threads::default(),
            state: Mutex::new(state),
            muted: AtomicBool::new(false),
            forced: Mutex::new(VecDeque::new()),
        }
    }

    /// Broadcasts a new job to every subscribed connection.
    pub(super) fn broadcast_job(&self, clean: bool) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let job = st.make_job(self, clean);
        st.current_job = Some(Arc::clone(&job));
        let target = work::target_from_difficulty(st.difficulty);
        for conn in st.conns.values_mut().filter(|c| c.subscribed) {
            conn.send_job(&job, clean, target, self.cfg.jobs_kept);
        }
    }
}

impl Service for Shared {
    const NAME: &'static str = "simpool";

    fn threads(&self) -> &Threads {
        &self.threads
    }

    fn job_interval(&self) -> Option<Duration> {
        self.cfg.job_interval
    }

    fn periodic_job(&self) {
        self.broadcast_job(false);
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
        let Some(msg) = parse_line(line, format_args!("simpool: conn {id}")) else {
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
            "mining.configure" => st.on_configure(self, id, &req_id, &params),
            "mining.subscribe" => st.on_subscribe(self, id, &req_id),
            "mining.authorize" => st.on_authorize(self, id, &req_id, &params),
            "mining.extranonce.subscribe" => st.on_extranonce_subscribe(id, &req_id),
            "mining.submit" => st.on_submit(self, id, &req_id, &params),
            "mining.suggest_difficulty" => st.reply(id, ok_reply(&req_id, json!(true))),
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

    /// A fresh extranonce1, unique within this pool.
    pub(super) fn next_extranonce1(&mut self, shared: &Shared) -> Vec<u8> {
        self.extranonce_counter += 1;
        unique_bytes(
            shared.instance,
            self.extranonce_counter,
            shared.cfg.extranonce1_size,
        )
    }

    /// A new job with deterministic pseudo-random contents and a pool-unique id.
    pub(super) fn make_job(&mut self, shared: &Shared, clean: bool) -> Arc<Job> {
        self.job_counter += 1;
        Arc::new(make_job(
            shared.instance,
            self.job_counter,
            &shared.cfg,
            clean,
        ))
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
