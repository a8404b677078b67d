//! Unit tests of the simulated Stratum V1 pool over real sockets: every submit verdict, the handshake
//! variants, the control API, and the bounded line reader.

use super::*;
use crate::lines::{read_line_bounded, LineRead};
use crate::test_client::{code, Client, WAIT};
use fastproxy_work::work::Job;
use serde_json::Value;
use std::io::BufReader;
use std::thread;
use std::time::{Duration, Instant};

/// The login of a Stratum V1 test client.
trait Login {
    /// Subscribes and authorizes; returns (extranonce1, extranonce2 size, first job).
    fn login(&mut self, worker: &str) -> (Vec<u8>, usize, Job);
}

impl Login for Client {
    fn login(&mut self, worker: &str) -> (Vec<u8>, usize, Job) {
        let sub = self.call(json!("sub-1"), "mining.subscribe", json!(["test/1"]));
        assert_eq!(sub["id"], json!("sub-1"), "string id echoed");
        let e1 = hex::decode(sub["result"][1].as_str().expect("e1")).expect("e1 hex");
        let n2 = sub["result"][2].as_u64().expect("n2") as usize;
        let auth = self.call(json!(7), "mining.authorize", json!([worker, "x"]));
        assert_eq!(auth, json!({"id": 7, "result": true, "error": null}));
        let job = Job::from_notify_params(&self.notification("mining.notify")).expect("job");
        (e1, n2, job)
    }
}

/// The first nonce from `from` whose share meets (or, with `valid` false, misses) `target`.
fn find_nonce(
    job: &Job,
    e1: &[u8],
    e2: &[u8],
    version: u32,
    target: &[u8; 32],
    from: u32,
    valid: bool,
) -> u32 {
    let merkle = job.merkle_root(&job.coinbase(e1, e2));
    let mut header = job.header_with_merkle_root(&merkle, job.ntime, 0, version);
    (from..from + 5_000_000)
        .find(|&n| {
            header[76..].copy_from_slice(&n.to_le_bytes());
            work::hash_meets_target(&work::sha256d(&header), target) == valid
        })
        .expect("a nonce within 5M tries")
}

fn share(worker: &str, job: &Job, e2: &[u8], nonce: u32) -> Value {
    json!([
        worker,
        job.job_id,
        hex::encode(e2),
        work::u32_to_hex(job.ntime),
        work::u32_to_hex(nonce)
    ])
}

#[test]
fn submit_validation_codes() {
    let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
    let mut c = Client::connect(pool.addr());
    let (e1, n2, job) = c.login("w1");
    assert_eq!((e1.len(), n2), (4, 8));
    let target = work::target_from_difficulty(1.0 / 65536.0);
    let e2 = vec![0u8; 8];
    let good = find_nonce(&job, &e1, &e2, job.version, &target, 0, true);

    assert_eq!(code(&c.submit(share("nobody", &job, &e2, good))), 24);
    let ok = c.submit(share("w1", &job, &e2, good));
    assert_eq!(ok, json!({"id": 100, "result": true, "error": null}));
    assert_eq!(code(&c.submit(share("w1", &job, &e2, good))), 22);
    let mut unknown = job.clone();
    unknown.job_id = "nope".into();
    assert_eq!(code(&c.submit(share("w1", &unknown, &e2, good))), 21);
    assert_eq!(code(&c.submit(share("w1", &job, &e2[..7], good))), 20);
    let mut bad_ntime = share("w1", &job, &e2, good);
    bad_ntime[3] = json!("xyz");
    assert_eq!(code(&c.submit(bad_ntime)), 20);
    let mut with_bits = share("w1", &job, &e2, good);
    with_bits
        .as_array_mut()
        .expect("array")
        .push(json!("00002000"));
    assert_eq!(
        code(&c.submit(with_bits)),
        20,
        "version bits without configure"
    );
    let low = find_nonce(&job, &e1, &e2, job.version, &target, 0, false);
    let low_reply = c.submit(share("w1", &job, &e2, low));
    assert_eq!(
        low_reply["error"],
        json!([23, "Low difficulty share", null])
    );

    // A clean job makes the old one stale.
    pool.new_job(true);
    let next = Job::from_notify_params(&c.notification("mining.notify")).expect("job");
    assert!(next.clean_jobs);
    assert_ne!(next.job_id, job.job_id);
    let old_good = find_nonce(&job, &e1, &e2, job.version, &target, good + 1, true);
    assert_eq!(code(&c.submit(share("w1", &job, &e2, old_good))), 21);
    let new_good = find_nonce(&next, &e1, &e2, next.version, &target, 0, true);
    assert_eq!(
        c.submit(share("w1", &next, &e2, new_good))["result"],
        json!(true)
    );

    // Garbage is ignored, unknown methods get 20, the connection keeps working.
    c.send_raw("this is not json\n{\"id\": 5}\n\n");
    let unknown_method = c.call(json!(9), "mining.frobnicate", json!([]));
    assert_eq!(code(&unknown_method), 20);

    let stats = pool.stats();
    assert_eq!((stats.submits, stats.accepted, stats.rejected), (10, 2, 8));
    let codes: Vec<(i64, u64)> = stats.rejected_by_code.into_iter().collect();
    assert_eq!(codes, vec![(20, 3), (21, 2), (22, 1), (23, 1), (24, 1)]);
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.accepted_shares[0].extranonce1, e1);
    assert_eq!(stats.accepted_shares[0].nonce, good);
    assert_eq!(stats.accepted_shares[0].ntime, job.ntime);
    assert_eq!(stats.accepted_shares[0].version, job.version);
    assert_eq!(
        stats.accepted_shares[0].full_extranonce(),
        [&e1[..], &e2[..]].concat()
    );
    let refused: Vec<i64> = stats.rejected_shares.iter().map(|r| r.code).collect();
    assert_eq!(refused, vec![24, 22, 21, 20, 20, 20, 23, 21]);
    let low_share = &stats.rejected_shares[6];
    assert_eq!(
        (low_share.reason, &low_share.extranonce1),
        ("Low difficulty share", &e1)
    );
    assert_eq!(low_share.params[4], work::u32_to_hex(low));
    assert_eq!(stats.authorized_users, vec!["w1".to_string()]);
}

#[test]
fn not_subscribed_and_unauthorized() {
    let cfg = SimPoolConfig {
        user: Some("alice".into()),
        ..SimPoolConfig::default()
    };
    let pool = SimPool::start(cfg).expect("pool");
    let mut c = Client::connect(pool.addr());
    let auth = c.call(json!(1), "mining.authorize", json!(["alice", "x"]));
    assert_eq!(auth["result"], json!(true));
    let params = json!(["alice", "j", "0000000000000000", "00000000", "00000000"]);
    assert_eq!(code(&c.submit(params)), 25);
    let bob = c.call(json!(2), "mining.authorize", json!(["bob", "x"]));
    assert_eq!(bob["result"], json!(false));
    assert_eq!(pool.stats().authorized_users, vec!["alice".to_string()]);
}

#[test]
fn version_rolling_negotiation_and_check() {
    let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
    let mut c = Client::connect(pool.addr());
    let opts = json!({"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2});
    let conf = c.call(
        json!(1),
        "mining.configure",
        json!([["version-rolling", "minimum-difficulty"], opts]),
    );
    assert_eq!(
        conf["result"],
        json!({"version-rolling": true, "version-rolling.mask": "1fffe000", "minimum-difficulty": false})
    );
    let (e1, _, job) = c.login("w");
    let target = work::target_from_difficulty(1.0 / 65536.0);
    let e2 = [1u8; 8];
    let bits = 0x0004_6000;
    let version = work::rolled_version(job.version, 0x1fff_e000, bits);
    let nonce = find_nonce(&job, &e1, &e2, version, &target, 0, true);
    let mut params = share("w", &job, &e2, nonce);
    params
        .as_array_mut()
        .expect("array")
        .push(json!(work::u32_to_hex(bits)));
    assert_eq!(c.submit(params.clone())["result"], json!(true));
    params[5] = json!("00001000");
    assert_eq!(code(&c.submit(params)), 20, "bits outside the mask");
    let stats = pool.stats();
    assert_eq!(stats.accepted_shares[0].version_bits, Some(bits));
    assert_eq!(stats.accepted_shares[0].version, version);
    assert_eq!(stats.configure_requests, 1);

    // A pool without version rolling does not know mining.configure.
    let plain = SimPool::start(SimPoolConfig {
        version_rolling_mask: None,
        ..SimPoolConfig::default()
    })
    .expect("pool");
    let mut c = Client::connect(plain.addr());
    let conf = c.call(
        json!(1),
        "mining.configure",
        json!([["version-rolling"], {}]),
    );
    assert_eq!(code(&conf), 20);
}

#[test]
fn extranonce_reconnect_and_disconnect() {
    let pool = SimPool::start(SimPoolConfig::default()).expect("pool");
    let mut subscribed = Client::connect(pool.addr());
    let (e1, _, _) = subscribed.login("a");
    let ack = subscribed.call(json!(3), "mining.extranonce.subscribe", json!([]));
    assert_eq!(ack["result"], json!(true));
    let mut plain = Client::connect(pool.addr());
    let (plain_e1, _, _) = plain.login("b");
    assert_ne!(e1, plain_e1);

    pool.set_extranonce_all();
    let set = subscribed.notification("mining.set_extranonce");
    let new_e1 = hex::decode(set[0].as_str().expect("e1")).expect("hex");
    assert_eq!((new_e1.len(), set[1].clone()), (4, json!(8)));
    assert_ne!(new_e1, e1);
    let job = Job::from_notify_params(&subscribed.notification("mining.notify")).expect("job");
    assert!(job.clean_jobs);
    let target = work::target_from_difficulty(1.0 / 65536.0);
    let e2 = [0u8; 8];
    let nonce = find_nonce(&job, &new_e1, &e2, job.version, &target, 0, true);
    assert_eq!(
        subscribed.submit(share("a", &job, &e2, nonce))["result"],
        json!(true)
    );
    assert_eq!(pool.stats().accepted_shares[0].extranonce1, new_e1);

    // The other connection got nothing: the next thing it reads is its own reply.
    plain.queued.clear(); // its login's set_difficulty
    let pong = plain.call(json!(4), "mining.suggest_difficulty", json!([1]));
    assert_eq!(pong["result"], json!(true));
    assert!(plain.queued.is_empty(), "unexpected {:?}", plain.queued);

    pool.send_reconnect_all(Some("127.0.0.1"), Some(1), 0);
    assert_eq!(
        plain.notification("client.reconnect"),
        json!(["127.0.0.1", 1, 0])
    );
    pool.disconnect_all();
    assert_eq!(pool.stats().connections_open, 0);
    assert_eq!(pool.stats().connections_total, 2);
    let drained = (0..10).take_while(|_| plain.recv().is_some()).count();
    assert!(drained < 10, "connection closed");
}

#[test]
fn periodic_jobs_unanswered_submits_and_restart() {
    let cfg = SimPoolConfig {
        job_interval: Some(Duration::from_millis(50)),
        answer_submits: false,
        ..SimPoolConfig::default()
    };
    let pool = SimPool::start(cfg).expect("pool");
    let addr = pool.addr();
    let mut c = Client::connect(addr);
    let (_, _, first) = c.login("w");
    let second = Job::from_notify_params(&c.notification("mining.notify")).expect("job");
    assert_ne!(first.job_id, second.job_id);
    assert!(!second.clean_jobs);

    c.send_raw(&format!(
        "{}\n",
        json!({"id": 50, "method": "mining.submit", "params": share("w", &first, &[0; 8], 1)})
    ));
    let deadline = Instant::now() + WAIT;
    while pool.stats().submits == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.stats().submits, 1);
    // Only notifications arrive, never a reply.
    for _ in 0..3 {
        let msg = c.recv().expect("message");
        assert_eq!(msg["method"], json!("mining.notify"));
    }

    pool.stop();
    let again = SimPool::start(SimPoolConfig {
        listen: addr,
        ..SimPoolConfig::default()
    })
    .expect("same address is free after stop");
    assert_eq!(again.addr(), addr);
}

#[test]
fn bounded_line_reader() {
    let data = b"short\nlonger line\nno newline".to_vec();
    let mut r = BufReader::new(&data[..]);
    let mut buf = Vec::new();
    assert_eq!(
        read_line_bounded(&mut r, &mut buf, 8).ok(),
        Some(LineRead::Line)
    );
    assert_eq!(buf, b"short\n");
    buf.clear();
    assert_eq!(
        read_line_bounded(&mut r, &mut buf, 8).ok(),
        Some(LineRead::TooLong)
    );
    assert_eq!(buf.len(), 9);
    let mut r = BufReader::new(&b"tail"[..]);
    buf.clear();
    assert_eq!(
        read_line_bounded(&mut r, &mut buf, 8).ok(),
        Some(LineRead::Eof)
    );
}
