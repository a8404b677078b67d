//! Metrics from real traffic: miners under distinct worker names send real shares through the proxy to checking
//! pools (accepted, rejected for every reason, timed out, refused locally); /metrics and /status hold exact counts.

mod common;
#[path = "common/prom.rs"]
mod prom;

use common::*;
use fastproxy::proxy::RunningProxy;
use fastproxy::stats::{ProxyStats, Reject};
use fastproxy::work::{self, Job};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use prom::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The pools' share difficulty: 2^-20, about 4096 hashes a share (a random share meets it once in 4096).
const DIFF: f64 = 1.0 / 1_048_576.0;
const REPLY: Duration = Duration::from_secs(5);

/// A raw miner under its own worker name, building real shares for the job it was sent.
struct Rig {
    c: Client,
    worker: String,
    e1: Vec<u8>,
    n: usize,
    job: Job,
    next_en2: u64,
}

impl Rig {
    fn new(addr: SocketAddr, worker: &str) -> Rig {
        let mut c = Client::connect(addr);
        let s = c.request("mining.subscribe", json!(["traffic/1"]));
        let (r, mut notes) = c.reply(s, REPLY);
        let e1 = fastproxy::hex::decode(r["result"][1].as_str().expect("extranonce1")).unwrap();
        let n = r["result"][2].as_u64().expect("extranonce2_size") as usize;
        let a = c.request("mining.authorize", json!([worker, "x"]));
        let (r, more) = c.reply(a, REPLY);
        assert_eq!(r["result"], json!(true), "authorize {worker}: {r}");
        notes.extend(more);
        while !notes.iter().any(|v| v["method"] == json!("mining.notify")) {
            notes.push(c.read(REPLY).expect("a mining.notify"));
        }
        let notify = notes
            .iter()
            .rev()
            .find(|v| v["method"] == json!("mining.notify"))
            .unwrap();
        Rig {
            job: Job::from_notify_params(&notify["params"]).expect("a valid notify"),
            c,
            worker: worker.to_string(),
            e1,
            n,
            next_en2: 0,
        }
    }

    /// Takes the latest `mining.notify` among `notes` as the current job; false when there is none.
    fn absorb(&mut self, notes: &[Value]) -> bool {
        let Some(v) = notes
            .iter()
            .rev()
            .find(|v| v["method"] == json!("mining.notify"))
        else {
            return false;
        };
        self.job = Job::from_notify_params(&v["params"]).expect("a valid notify");
        true
    }

    /// Reads until the next `mining.notify` and takes its job.
    fn await_job(&mut self) {
        for _ in 0..20 {
            let v = self.c.read(REPLY).expect("a mining.notify");
            if self.absorb(std::slice::from_ref(&v)) {
                return;
            }
        }
        panic!("{}: no mining.notify", self.worker);
    }

    /// A share of the current job with a fresh extranonce2 that meets (`valid`) or misses the difficulty.
    fn share(&mut self, valid: bool) -> Value {
        self.next_en2 += 1;
        let en2 = self.next_en2.to_be_bytes()[8 - self.n..].to_vec();
        let (job, t) = (&self.job, self.job.ntime);
        let target = work::target_from_difficulty(DIFF);
        let nonce = (0u32..)
            .find(|&x| {
                let h = job.share_hash(&self.e1, &en2, t, x, job.version);
                work::hash_meets_target(&h, &target) == valid
            })
            .unwrap();
        json!([
            self.worker,
            job.job_id,
            fastproxy::hex::encode(&en2),
            format!("{t:08x}"),
            format!("{nonce:08x}")
        ])
    }

    fn send(&mut self, params: Value) -> u64 {
        self.c.request("mining.submit", params)
    }

    /// The reply to submit `id` (notifications before it update the job).
    fn answer(&mut self, id: u64) -> Value {
        let (r, notes) = self.c.reply(id, REPLY);
        self.absorb(&notes);
        r
    }

    fn submit(&mut self, params: Value) -> Value {
        let id = self.send(params);
        self.answer(id)
    }

    /// Submits and checks the reply is `true`.
    fn accepted(&mut self, params: Value) {
        let r = self.submit(params.clone());
        assert_eq!(r["result"], json!(true), "{}: {params} -> {r}", self.worker);
    }

    /// Submits and checks the reply is error `code`; returns the message.
    fn refused(&mut self, params: Value, code: i64) -> String {
        let r = self.submit(params.clone());
        assert_eq!(
            r["error"][0],
            json!(code),
            "{}: {params} -> {r}",
            self.worker
        );
        assert_ne!(r["result"], json!(true));
        r["error"][1].as_str().unwrap_or_default().to_string()
    }
}

/// A checking pool at `DIFF`.
fn checking_pool() -> SimPool {
    pool(SimPoolConfig {
        difficulty: DIFF,
        ..SimPoolConfig::default()
    })
}

/// A proxy entry named `name` in front of `pools` (the first in use, the others backups), answering a share
/// with an error when its pool has not within two seconds (long enough for a loaded machine).
fn start(name: &str, pools: &[SocketAddr], extra: &str) -> RunningProxy {
    let yaml = proxy_yaml(pools, &format!("share_timeout: 2\n{extra}"))
        .replace("name: test", &format!("name: {name}"));
    start_proxy(&yaml)
}

/// Waits until the proxy's byte counters for its pool 1 equal what `pool` read and wrote, and returns them.
fn settled_bytes(stats: &ProxyStats, pool: &SimPool) -> (u64, u64) {
    let p = stats.pool(0);
    let mut last = (0, 0, 0, 0);
    let settled = (0..500).any(|_| {
        let (received, sent) = pool.byte_counts();
        let (out, inn) = (p.bytes_out.load(Relaxed), p.bytes_in.load(Relaxed));
        last = (out, received, inn, sent);
        let same = out == received && inn == sent;
        if !same {
            std::thread::sleep(Duration::from_millis(10));
        }
        same
    });
    assert!(
        settled,
        "the proxy's pool byte counters never matched the pool's: sent {} vs pool received {}, \
         received {} vs pool sent {}",
        last.0, last.1, last.2, last.3
    );
    (last.0, last.2)
}

/// Expected counts by reason label (absent: zero).
fn by_reason(counts: &[(Reject, u64)], r: Reject) -> u64 {
    counts.iter().find(|(x, _)| *x == r).map_or(0, |(_, n)| *n)
}

/// What one proxy entry must show after the traffic.
struct Expect<'a> {
    proxy: &'a str,
    submitted: u64,
    forwarded: u64,
    accepted: u64,
    rejected: u64,
    errored: u64,
    /// The proxy's own error answers, by reason.
    errors: &'a [(Reject, u64)],
    /// The pool's rejections (of pool 1), by reason.
    pool_rejects: &'a [(Reject, u64)],
    /// Validation verdicts (`fastproxy_validated_shares_total`).
    verdicts: &'a [(&'a str, u64)],
    /// Worker name, accepted, rejected.
    workers: &'a [(&'a str, u64, u64)],
    /// The proxy's bytes to and from pool 1, as the pool counted them.
    bytes_out: u64,
    bytes_in: u64,
}

/// Checks /metrics and /status of `e`/`st` against `x`, exactly.
fn check(e: &Exposition, st: &Value, x: &Expect<'_>) {
    let p = x.proxy;
    let pl = [("proxy", p)];
    let js = st["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == p)
        .unwrap_or_else(|| panic!("no proxy {p} in /status"));
    for (metric, key, want) in [
        (
            "fastproxy_shares_submitted_total",
            "shares_submitted",
            x.submitted,
        ),
        (
            "fastproxy_shares_forwarded_total",
            "shares_forwarded",
            x.forwarded,
        ),
        (
            "fastproxy_shares_accepted_total",
            "shares_accepted",
            x.accepted,
        ),
        (
            "fastproxy_shares_rejected_total",
            "shares_rejected",
            x.rejected,
        ),
        (
            "fastproxy_shares_errored_total",
            "shares_errored",
            x.errored,
        ),
        ("fastproxy_unknown_replies_total", "unknown_replies", 0),
    ] {
        assert_eq!(e.get(metric, &pl), want as f64, "{p}: {metric}");
        assert_eq!(js[key], json!(want), "{p}: /status {key}");
    }
    // Every share was answered once: by the pool, by a timeout, or by the proxy itself.
    assert_eq!(x.submitted, x.accepted + x.rejected + x.errored);
    for r in Reject::ALL {
        let l = r.label();
        let want = by_reason(x.errors, r);
        let got = e.get(
            "fastproxy_share_errors_total",
            &[("proxy", p), ("reason", l)],
        );
        assert_eq!(got, want as f64, "{p}: proxy errors for {l}");
        assert_eq!(
            js["errors_by_reason"][l],
            json!(want),
            "{p}: /status errors {l}"
        );
        let want = by_reason(x.pool_rejects, r);
        let labels = [("proxy", p), ("pool", "1"), ("reason", l)];
        let got = e.get("fastproxy_pool_shares_rejected_total", &labels);
        assert_eq!(got, want as f64, "{p}: pool 1 rejects for {l}");
        assert_eq!(
            js["pools"][0]["rejected_by_reason"][l],
            json!(want),
            "{p}: /status pool 1 rejects {l}"
        );
    }
    for (verdict, want) in x.verdicts {
        let labels = [("proxy", p), ("verdict", *verdict)];
        let got = e.get("fastproxy_validated_shares_total", &labels);
        assert_eq!(got, *want as f64, "{p}: verdict {verdict}");
    }

    // Pool 1 took every share; its histogram holds one observation per verdict it gave, timeouts none.
    let p1 = [("proxy", p), ("pool", "1")];
    let pool_rejected: u64 = x.pool_rejects.iter().map(|(_, n)| n).sum();
    assert_eq!(pool_rejected, x.rejected);
    let answered = x.accepted + x.rejected;
    let lat = "fastproxy_pool_reply_latency_seconds";
    assert_eq!(
        e.get(&format!("{lat}_count"), &p1),
        answered as f64,
        "{p}: latency observations"
    );
    assert!(e.get(&format!("{lat}_sum"), &p1) > 0.0);
    let j1 = &js["pools"][0];
    assert_eq!(j1["latency_ms"]["count"], json!(answered), "{p}: /status");
    assert!(j1["latency_ms"]["p50"].as_f64().is_some_and(|v| v > 0.0));
    assert_eq!(
        e.get("fastproxy_pool_shares_accepted_total", &p1),
        x.accepted as f64
    );
    assert_eq!(j1["shares_accepted"], json!(x.accepted));
    assert_eq!(j1["shares_rejected"], json!(x.rejected));
    assert_eq!(
        e.get("fastproxy_pool_accepted_difficulty_total", &p1),
        x.accepted as f64 * DIFF
    );
    assert_eq!(e.get("fastproxy_pool_difficulty", &p1), DIFF);
    assert_eq!(
        e.get("fastproxy_pool_sent_bytes_total", &p1),
        x.bytes_out as f64
    );
    assert_eq!(
        e.get("fastproxy_pool_received_bytes_total", &p1),
        x.bytes_in as f64
    );
    assert_eq!(j1["bytes_out"], json!(x.bytes_out));
    assert_eq!(j1["bytes_in"], json!(x.bytes_in));

    // Per worker.
    let workers = js["workers"].as_array().unwrap();
    assert_eq!(js["workers_tracked"], json!(x.workers.len()));
    for &(name, acc, rej) in x.workers {
        let wl = [("proxy", p), ("worker", name)];
        let w = workers
            .iter()
            .find(|w| w["name"] == name)
            .unwrap_or_else(|| panic!("{p}: no worker {name} in /status"));
        assert_eq!(
            e.get("fastproxy_worker_shares_accepted_total", &wl),
            acc as f64,
            "{p}: {name} accepted"
        );
        assert_eq!(
            e.get("fastproxy_worker_shares_rejected_total", &wl),
            rej as f64,
            "{p}: {name} rejected"
        );
        assert_eq!(
            e.get("fastproxy_worker_accepted_difficulty_total", &wl),
            acc as f64 * DIFF,
            "{p}: {name} accepted difficulty"
        );
        assert_eq!(e.get("fastproxy_worker_miners", &wl), 1.0, "{name}");
        assert_eq!(w["shares_accepted"], json!(acc), "{p}: /status {name}");
        assert_eq!(w["shares_rejected"], json!(rej), "{p}: /status {name}");
        assert!(w["last_share"].as_f64().is_some(), "{name}");
    }
    let other = [
        ("proxy", p),
        ("worker", fastproxy::stats::WorkerRegistry::OTHER),
    ];
    assert_eq!(e.get("fastproxy_worker_shares_accepted_total", &other), 0.0);
    assert_eq!(e.get("fastproxy_worker_shares_rejected_total", &other), 0.0);
}

/// Without local validation: shares the pool accepts, rejects for each reason it gives, does not answer, and
/// submits the proxy refuses before forwarding, from four workers.
#[test]
fn pool_verdicts_timeouts_and_refusals_are_counted_exactly() {
    let pool_a = checking_pool();
    let backup = checking_pool();
    let proxy = start("main", &[pool_a.addr(), backup.addr()], "");
    let addr = proxy.local_addrs("main")[0];
    let stats = proxy.stats("main").unwrap();
    let m = prom::start(proxy.all_stats());

    let mut good = Rig::new(addr, "farm.good");
    let mut bad = Rig::new(addr, "farm.bad");
    let mut fmt = Rig::new(addr, "farm.fmt");
    let mut slow = Rig::new(addr, "farm.slow");
    let (out0, in0) = settled_bytes(&stats, &pool_a);
    let e0 = scrape(m.local_addr());
    let p1 = [("proxy", "main"), ("pool", "1")];
    assert_eq!(e0.get("fastproxy_pool_sent_bytes_total", &p1), out0 as f64);
    assert_eq!(
        e0.get("fastproxy_pool_received_bytes_total", &p1),
        in0 as f64
    );
    assert!(out0 > 0 && in0 > 0, "the handshakes moved bytes");

    // Accepted by the pool.
    for _ in 0..3 {
        let s = good.share(true);
        good.accepted(s);
    }
    // Rejected by the pool: duplicate, low difficulty, and the codes only a pool's own state can produce.
    let s = bad.share(true);
    bad.accepted(s.clone());
    bad.refused(s, 22);
    let s = bad.share(false);
    bad.refused(s, 23);
    for (code, why) in [
        (20, "Invalid share"),
        (24, "Unauthorized worker"),
        (25, "Not subscribed"),
    ] {
        pool_a.reject_next(code, why);
        let s = bad.share(true);
        assert_eq!(bad.refused(s, code), why);
    }
    // Refused by the proxy before forwarding: malformed submits, and a miner not subscribed / authorized yet.
    let mut malformed = Vec::new();
    let s = fmt.share(true);
    let mut short_nonce = s.clone();
    short_nonce[4] = json!("0000000");
    malformed.push(short_nonce);
    malformed.push(Value::Array(s.as_array().unwrap()[..4].to_vec()));
    let mut long_en2 = s.clone();
    long_en2[2] = json!("00".repeat(fmt.n + 1));
    malformed.push(long_en2);
    let mut rolled = s.clone();
    rolled.as_array_mut().unwrap().push(json!("00002000"));
    malformed.push(rolled);
    for bad_params in malformed {
        fmt.refused(bad_params, 20);
    }
    let mut raw = Client::connect(addr);
    let id = raw.request("mining.submit", s.clone());
    assert_eq!(raw.reply(id, REPLY).0["error"][0], json!(25));
    let id = raw.request("mining.subscribe", json!([]));
    raw.reply(id, REPLY);
    let id = raw.request("mining.submit", s);
    assert_eq!(raw.reply(id, REPLY).0["error"][0], json!(24));
    // Stale: the pool cleared its jobs.
    let old = bad.job.clone();
    pool_a.new_job(true);
    bad.await_job();
    slow.await_job();
    let fresh = std::mem::replace(&mut bad.job, old);
    let s = bad.share(true);
    bad.job = fresh;
    bad.refused(s, 21);
    // Not answered within share_timeout.
    pool_a.set_answer_submits(false);
    let ids: Vec<u64> = (0..2)
        .map(|_| {
            let s = slow.share(true);
            slow.send(s)
        })
        .collect();
    for id in ids {
        let r = slow.answer(id);
        assert_eq!(r["error"][0], json!(20), "{r}");
        let why = r["error"][1].as_str().unwrap_or_default();
        assert!(why.contains("did not answer"), "{r}");
    }

    let (bytes_out, bytes_in) = settled_bytes(&stats, &pool_a);
    assert!(
        bytes_out > out0 && bytes_in > in0,
        "bytes grow with traffic"
    );
    let e = scrape(m.local_addr());
    let st = status(m.local_addr());
    check(
        &e,
        &st,
        &Expect {
            proxy: "main",
            submitted: 3 + 7 + 4 + 2 + 2,
            forwarded: 3 + 7 + 2,
            accepted: 3 + 1,
            rejected: 6,
            errored: 4 + 2 + 2,
            errors: &[
                (Reject::Other, 4),
                (Reject::NotSubscribed, 1),
                (Reject::Unauthorized, 1),
                (Reject::Timeout, 2),
            ],
            pool_rejects: &[
                (Reject::Duplicate, 1),
                (Reject::LowDifficulty, 1),
                (Reject::Other, 1),
                (Reject::Unauthorized, 1),
                (Reject::NotSubscribed, 1),
                (Reject::Stale, 1),
            ],
            verdicts: &[
                ("accepted_locally", 0),
                ("forwarded", 0),
                ("stale", 0),
                ("invalid", 0),
                ("low_difficulty", 0),
                ("duplicate", 0),
            ],
            workers: &[
                ("farm.good", 3, 0),
                ("farm.bad", 1, 6),
                ("farm.fmt", 0, 4),
                ("farm.slow", 0, 2),
            ],
            bytes_out,
            bytes_in,
        },
    );
    // The pool saw exactly the forwarded shares (the unanswered two it accepted silently).
    let ps = pool_a.stats();
    assert_eq!(ps.submits, 12);
    assert_eq!(ps.accepted, 4 + 2);
    let codes: Vec<(i64, u64)> = ps.rejected_by_code.into_iter().collect();
    assert_eq!(
        codes,
        [(20, 1), (21, 1), (22, 1), (23, 1), (24, 1), (25, 1)]
    );
    // The backup was never used: nothing counted on pool 2.
    let p2 = [("proxy", "main"), ("pool", "2")];
    for metric in [
        "fastproxy_pool_connects_total",
        "fastproxy_pool_shares_accepted_total",
        "fastproxy_pool_reply_latency_seconds_count",
        "fastproxy_pool_sent_bytes_total",
        "fastproxy_pool_received_bytes_total",
    ] {
        assert_eq!(e.get(metric, &p2), 0.0, "pool 2: {metric}");
    }
    assert_eq!(st["proxies"][0]["pools"][1]["shares_rejected"], json!(0));
    assert_eq!(backup.byte_counts(), (0, 0));
    assert_eq!(
        e.get("fastproxy_miners_accepted_total", &[("proxy", "main")]),
        5.0
    );
    m.stop();
    drop(proxy);
}

/// With local validation: each verdict counted once, refused shares never forwarded, and a share the pool
/// refuses or leaves unanswered after the proxy found it valid is not counted as accepted.
#[test]
fn validated_shares_are_counted_once_by_verdict() {
    let pool_c = checking_pool();
    let proxy = start("checked", &[pool_c.addr()], "validate_shares: true");
    let addr = proxy.local_addrs("checked")[0];
    let stats = proxy.stats("checked").unwrap();
    let m = prom::start(proxy.all_stats());
    let mut val = Rig::new(addr, "farm.val");

    let first = val.share(true);
    val.accepted(first.clone());
    let s = val.share(true);
    val.accepted(s);
    val.refused(first.clone(), 22);
    let s = val.share(false);
    val.refused(s, 23);
    let mut far = val.share(true);
    far[3] = json!(format!("{:08x}", val.job.ntime + 7201));
    val.refused(far, 20);
    let old = val.job.clone();
    pool_c.new_job(true);
    val.await_job();
    let fresh = std::mem::replace(&mut val.job, old);
    let s = val.share(true);
    val.job = fresh;
    val.refused(s, 21);
    // Valid here, refused by the pool.
    pool_c.reject_next(23, "Low difficulty share");
    let s = val.share(true);
    val.refused(s, 23);
    // Valid here, never answered by the pool.
    pool_c.set_answer_submits(false);
    let s = val.share(true);
    val.refused(s, 20);

    let (bytes_out, bytes_in) = settled_bytes(&stats, &pool_c);
    let e = scrape(m.local_addr());
    let st = status(m.local_addr());
    check(
        &e,
        &st,
        &Expect {
            proxy: "checked",
            submitted: 8,
            forwarded: 4,
            accepted: 2,
            rejected: 1,
            errored: 5,
            errors: &[
                (Reject::Duplicate, 1),
                (Reject::LowDifficulty, 1),
                (Reject::Other, 1),
                (Reject::Stale, 1),
                (Reject::Timeout, 1),
            ],
            pool_rejects: &[(Reject::LowDifficulty, 1)],
            verdicts: &[
                ("accepted_locally", 0),
                ("forwarded", 4),
                ("stale", 1),
                ("invalid", 1),
                ("low_difficulty", 1),
                ("duplicate", 1),
            ],
            workers: &[("farm.val", 2, 6)],
            bytes_out,
            bytes_in,
        },
    );
    let ps = pool_c.stats();
    assert_eq!(ps.submits, 4, "only valid shares reach the pool");
    assert_eq!(ps.accepted, 3);
    m.stop();
    drop(proxy);
}

/// A share the proxy cannot forward because its only pool is gone is refused by the proxy itself and counted
/// under `pool_unavailable` (not `other`, the label of its error code 20).
#[test]
fn a_share_with_no_pool_to_forward_to_counts_as_pool_unavailable() {
    let pool_a = checking_pool();
    let proxy = start("lone", &[pool_a.addr()], "");
    let addr = proxy.local_addrs("lone")[0];
    let stats = proxy.stats("lone").unwrap();
    let m = prom::start(proxy.all_stats());
    let mut rig = Rig::new(addr, "farm.lone");
    let s = rig.share(true);
    rig.accepted(s);
    pool_a.stop();
    wait_until(REPLY, "the proxy saw its pool go", || {
        stats.pool(0).ready.load(Relaxed) == 0
    });
    let s = rig.share(true);
    let why = rig.refused(s, 20);
    assert_eq!(why, "pool unavailable, share not forwarded");
    let e = scrape(m.local_addr());
    let js = &status(m.local_addr())["proxies"][0];
    for (label, want) in [("pool_unavailable", 1), ("other", 0)] {
        let got = e.get(
            "fastproxy_share_errors_total",
            &[("proxy", "lone"), ("reason", label)],
        );
        assert_eq!(got, want as f64, "proxy errors for {label}");
        assert_eq!(
            js["errors_by_reason"][label],
            json!(want),
            "/status {label}"
        );
    }
}
