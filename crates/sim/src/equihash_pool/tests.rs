//! Unit tests of the simulated Equihash pool over real sockets: every submit verdict, a verified real share
//! (the genesis block), the extranonce subscription, periodic jobs and refused configurations.

use super::*;
use crate::equihash_miner::grind_solution;
use crate::test_client::{code, Client, WAIT};
use fastproxy_work::equihash::test_vectors::genesis;
use fastproxy_work::equihash::Params;
use serde_json::Value;
use std::thread;
use std::time::{Duration, Instant};

/// What a login returns: session id, NONCE_1, the target and the first job.
struct Login {
    session: String,
    nonce1: Vec<u8>,
    target: [u8; 32],
    job: EquihashJob,
}

/// What an Equihash test client does beyond the raw client.
trait EquihashClient {
    /// The next `mining.notify` as a job.
    fn job(&mut self) -> EquihashJob;
    /// Subscribes (asking to resume session "old") and authorizes `worker`.
    fn login(&mut self, worker: &str) -> Login;
}

impl EquihashClient for Client {
    fn job(&mut self) -> EquihashJob {
        EquihashJob::from_notify_params(&self.notification("mining.notify")).expect("job")
    }

    fn login(&mut self, worker: &str) -> Login {
        let port = self.reader.get_ref().peer_addr().map_or(0, |a| a.port());
        let params = json!(["test/1", "old", "127.0.0.1", port]);
        let sub = self.call(json!("sub-1"), "mining.subscribe", params);
        assert_eq!(sub["id"], json!("sub-1"), "string id echoed");
        assert_eq!(sub["error"], Value::Null);
        let result = sub["result"].as_array().cloned().unwrap_or_default();
        assert_eq!(result.len(), 2, "{sub}");
        let session = result[0].as_str().expect("session id").to_string();
        assert_ne!(session, "old", "resuming is not supported");
        let nonce1 = hex::decode(result[1].as_str().expect("nonce1")).expect("hex");
        // set_target comes first, then the clean job.
        let first = self.recv().expect("set_target");
        assert_eq!(first["method"], json!("mining.set_target"), "{first}");
        let target = equihash::target_from_hex(first["params"][0].as_str().unwrap_or(""))
            .expect("target hex");
        let notify = self.recv().expect("notify");
        assert_eq!(notify["method"], json!("mining.notify"), "{notify}");
        assert_eq!(notify["id"], Value::Null);
        assert_eq!(notify["params"].as_array().map(Vec::len), Some(8));
        let job = EquihashJob::from_notify_params(&notify["params"]).expect("job");
        assert!(job.clean_jobs);
        let auth = self.call(json!(7), "mining.authorize", json!([worker, "x"]));
        assert_eq!(auth, json!({"id": 7, "result": true, "error": null}));
        Login {
            session,
            nonce1,
            target,
            job,
        }
    }
}

/// A well-formed solution for `job` and `nonce` whose block hash meets (`valid`) or misses `target`.
fn solution(job: &EquihashJob, nonce: &[u8; 32], target: &[u8; 32], valid: bool) -> Vec<u8> {
    let mut sol = Params::ZCASH.solution_prefix();
    sol.resize(Params::ZCASH.solution_with_prefix_len(), 0x5a);
    let header = job.header(nonce);
    if valid {
        grind_solution(&header, &mut sol, target, 0, 1_000_000).expect("a solution");
    } else {
        let tail = sol.len() - 8;
        let miss = (0u64..1_000)
            .find(|i| {
                sol[tail..].copy_from_slice(&i.to_le_bytes());
                !equihash::hash_meets_target(&equihash::block_hash(&header, &sol), target)
            })
            .expect("a miss");
        sol[tail..].copy_from_slice(&miss.to_le_bytes());
    }
    sol
}

fn share(worker: &str, job: &EquihashJob, nonce2: &[u8], solution: &[u8]) -> Value {
    json!([
        worker,
        job.job_id,
        hex::encode(&job.time),
        hex::encode(nonce2),
        hex::encode(solution)
    ])
}

#[test]
fn submit_validation_codes() {
    let pool = EquihashPool::start(EquihashPoolConfig::default()).expect("pool");
    let mut c = Client::connect(pool.addr());
    let not_yet = json!(["w1", "j", "00000000", "00".repeat(28), "00"]);
    assert_eq!(code(&c.submit(not_yet)), 25);
    let login = c.login("w1");
    assert_eq!(login.nonce1.len(), 4);
    assert_eq!(
        Some(login.target),
        equihash::target_from_hex(EASY_TARGET_HEX)
    );
    let job = login.job;
    let nonce2 = [3u8; 28];
    let nonce = equihash::nonce_from_parts(&login.nonce1, &nonce2).expect("nonce");
    let good = solution(&job, &nonce, &login.target, true);

    assert_eq!(code(&c.submit(share("nobody", &job, &nonce2, &good))), 24);
    let ok = c.submit(share("w1", &job, &nonce2, &good));
    assert_eq!(ok, json!({"id": 100, "result": true, "error": null}));
    assert_eq!(code(&c.submit(share("w1", &job, &nonce2, &good))), 22);
    let mut unknown = job.clone();
    unknown.job_id = "nope".into();
    assert_eq!(code(&c.submit(share("w1", &unknown, &nonce2, &good))), 21);
    for bad_nonce2 in [&nonce2[..27], &[3u8; 29][..], &[][..]] {
        let reply = c.submit(share("w1", &job, bad_nonce2, &good));
        assert_eq!(reply["error"], json!([20, "Invalid nonce_2 size", null]));
    }
    let mut odd = share("w1", &job, &nonce2, &good);
    odd[3] = json!(format!("{}0", hex::encode(&nonce2)));
    assert_eq!(code(&c.submit(odd)), 20);
    for bad_time in ["xyz", "000000", "0000000000", "0000000g"] {
        let mut p = share("w1", &job, &nonce2, &good);
        p[2] = json!(bad_time);
        assert_eq!(c.submit(p)["error"], json!([20, "Invalid time", null]));
    }
    for bad in [
        &good[..good.len() - 1],
        &good[3..],
        &[&good[..], &[0][..]].concat(),
    ] {
        let reply = c.submit(share("w1", &job, &nonce2, bad));
        assert_eq!(reply["error"], json!([20, "Invalid solution size", null]));
    }
    let mut wrong_prefix = good.clone();
    wrong_prefix[1] = 0x41;
    assert_eq!(
        code(&c.submit(share("w1", &job, &nonce2, &wrong_prefix))),
        20
    );
    let mut short = share("w1", &job, &nonce2, &good);
    short.as_array_mut().map(Vec::pop);
    assert_eq!(code(&c.submit(short)), 20);
    let other2 = [9u8; 28];
    let nonce_low = equihash::nonce_from_parts(&login.nonce1, &other2).expect("nonce");
    let low = solution(&job, &nonce_low, &login.target, false);
    let low_reply = c.submit(share("w1", &job, &other2, &low));
    assert_eq!(
        low_reply["error"],
        json!([23, "Low difficulty share", null])
    );

    // A clean job makes the old one stale.
    pool.new_job(true);
    let next = c.job();
    assert!(next.clean_jobs);
    assert_ne!(next.job_id, job.job_id);
    assert_eq!(next.version, [4, 0, 0, 0]);
    let fresh2 = [4u8; 28];
    let fresh = equihash::nonce_from_parts(&login.nonce1, &fresh2).expect("nonce");
    let old_good = solution(&job, &fresh, &login.target, true);
    assert_eq!(code(&c.submit(share("w1", &job, &fresh2, &old_good))), 21);
    let new_good = solution(&next, &fresh, &login.target, true);
    let accepted = c.submit(share("w1", &next, &fresh2, &new_good));
    assert_eq!(accepted["result"], json!(true));

    // Garbage is ignored, unknown methods get 20, the connection keeps working.
    c.send_raw("this is not json\n{\"id\": 5}\n\n");
    assert_eq!(code(&c.call(json!(9), "mining.frobnicate", json!([]))), 20);
    let suggest = c.call(json!(10), "mining.suggest_target", json!([EASY_TARGET_HEX]));
    assert_eq!(suggest["result"], json!(true));

    let stats = pool.stats();
    assert_eq!(stats.accepted, 2);
    let codes: Vec<(i64, u64)> = stats.rejected_by_code.clone().into_iter().collect();
    let twenties = stats.rejected_by_code.get(&20).copied().unwrap_or(0);
    assert_eq!(twenties, 13, "{codes:?}");
    assert_eq!(stats.rejected_by_code.get(&21), Some(&2));
    assert_eq!(stats.rejected_by_code.get(&22), Some(&1));
    assert_eq!(stats.rejected_by_code.get(&24), Some(&1));
    assert_eq!(stats.rejected_by_code.get(&25), Some(&1));
    assert_eq!(stats.rejected_by_code.get(&23), Some(&1));
    assert_eq!(stats.duplicates, 1);
    assert_eq!(stats.submits, stats.accepted + stats.rejected);
    let first = &stats.accepted_shares[0];
    assert_eq!(first.nonce1, login.nonce1);
    assert_eq!(first.nonce2, nonce2.to_vec());
    assert_eq!(first.nonce, nonce);
    assert_eq!(
        (first.worker.as_str(), first.job_id.as_str()),
        ("w1", job.job_id.as_str())
    );
    assert_eq!(first.time, job.time);
    assert_eq!(
        first.block_hash,
        equihash::block_hash(&job.header(&nonce), &good)
    );
    assert_eq!(stats.authorized_users, vec!["w1".to_string()]);
    assert_eq!(stats.subscribe_params[0][0], json!("test/1"));
    assert!(!login.session.is_empty());
}

/// `verify_solutions`: the Zcash mainnet genesis block (height 0, hash 00040fe8ec84...ce08) submitted
/// on a job built from its header, with the pool's NONCE_1 fixed to the first 4 bytes of its nonce.
#[test]
fn verified_genesis_share() {
    let g = genesis();
    let cfg = EquihashPoolConfig {
        fixed_nonce1: Some(g.nonce[..4].to_vec()),
        target_hex: hex::encode(&g.pow_limit),
        verify_solutions: true,
        ..EquihashPoolConfig::default()
    };
    let pool = EquihashPool::start(cfg).expect("pool");
    let mut c = Client::connect(pool.addr());
    let login = c.login("w");
    assert_eq!(login.nonce1, g.nonce[..4].to_vec());
    pool.push_job(g.job.clone());
    let pushed = c.job();
    assert_eq!(pushed, g.job);
    let nonce2 = &g.nonce[4..];
    let genesis_share = share("w", &g.job, nonce2, &g.solution_with_prefix);
    assert_eq!(genesis_share[2], json!("90041358"));
    assert_eq!(c.submit(genesis_share.clone())["result"], json!(true));
    assert_eq!(code(&c.submit(genesis_share.clone())), 22);

    // One byte of NONCE_2 changed, or a fake solution: the solution does not verify.
    let mut other2 = nonce2.to_vec();
    other2[27] ^= 1;
    let reply = c.submit(share("w", &g.job, &other2, &g.solution_with_prefix));
    assert_eq!(reply["error"], json!([20, "Invalid solution", null]));
    let nonce = equihash::nonce_from_parts(&login.nonce1, nonce2).expect("nonce");
    let fake = solution(&g.job, &nonce, &g.pow_limit, true);
    assert_eq!(code(&c.submit(share("w", &g.job, nonce2, &fake))), 20);
    // Another time in the submit changes the header: invalid too.
    let mut later = genesis_share.clone();
    later[2] = json!("91041358");
    assert_eq!(code(&c.submit(later)), 20);

    // A target below the genesis hash (0x00040fe8...): the valid solution is a low difficulty share.
    pool.set_target(&format!("0003{}", "f".repeat(60)))
        .expect("target");
    assert_eq!(
        c.notification("mining.set_target"),
        json!([format!("0003{}", "f".repeat(60))])
    );
    let carrier = c.job(); // set_target is followed by a job that carries it
    assert!(!carrier.clean_jobs);
    let mut again = g.job.clone();
    again.job_id = "genesis-again".into();
    pool.push_job(again.clone());
    assert_eq!(c.job().job_id, "genesis-again");
    let low = c.submit(share("w", &again, nonce2, &g.solution_with_prefix));
    assert_eq!(low["error"], json!([23, "Low difficulty share", null]));
    assert!(pool.set_target("nope").is_err());

    let stats = pool.stats();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.accepted_shares[0].nonce, g.nonce);
    assert_eq!(stats.accepted_shares[0].block_hash, g.hash);
    let codes: Vec<(i64, u64)> = stats.rejected_by_code.into_iter().collect();
    assert_eq!(codes, vec![(20, 3), (22, 1), (23, 1)]);
}

#[test]
fn extranonce_subscription_reconnect_and_disconnect() {
    let pool = EquihashPool::start(EquihashPoolConfig {
        nonce1_size: 8,
        ..EquihashPoolConfig::default()
    })
    .expect("pool");
    let mut subscribed = Client::connect(pool.addr());
    let first = subscribed.login("a");
    assert_eq!(first.nonce1.len(), 8);
    let ack = subscribed.call(json!(3), "mining.extranonce.subscribe", json!([]));
    assert_eq!(ack["result"], json!(true));
    let mut plain = Client::connect(pool.addr());
    let other = plain.login("b");
    assert_ne!(first.nonce1, other.nonce1);
    assert_ne!(first.session, other.session);

    pool.set_extranonce_all();
    let set = subscribed.notification("mining.set_extranonce");
    assert_eq!(set.as_array().map(Vec::len), Some(1));
    let new_nonce1 = hex::decode(set[0].as_str().expect("nonce1")).expect("hex");
    assert_eq!(new_nonce1.len(), 8);
    assert_ne!(new_nonce1, first.nonce1);
    let job = subscribed.job();
    assert!(job.clean_jobs);
    let nonce2 = [1u8; 24];
    let nonce = equihash::nonce_from_parts(&new_nonce1, &nonce2).expect("nonce");
    let sol = solution(&job, &nonce, &first.target, true);
    let reply = subscribed.submit(share("a", &job, &nonce2, &sol));
    assert_eq!(reply["result"], json!(true));
    assert_eq!(pool.stats().accepted_shares[0].nonce1, new_nonce1);
    assert_eq!(pool.stats().accepted_shares[0].nonce, nonce);

    // The other connection got nothing: the next thing it reads is its own reply.
    let pong = plain.call(json!(4), "mining.suggest_target", json!([EASY_TARGET_HEX]));
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
    let cfg = EquihashPoolConfig {
        job_interval: Some(Duration::from_millis(50)),
        answer_submits: false,
        ..EquihashPoolConfig::default()
    };
    let pool = EquihashPool::start(cfg).expect("pool");
    let addr = pool.addr();
    let mut c = Client::connect(addr);
    let login = c.login("w");
    let second = c.job();
    assert_ne!(login.job.job_id, second.job_id);
    assert!(!second.clean_jobs);

    let params = share("w", &login.job, &[0; 28], &[0; 1347]);
    c.send_raw(&format!(
        "{}\n",
        json!({"id": 50, "method": "mining.submit", "params": params})
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
    let again = EquihashPool::start(EquihashPoolConfig {
        listen: addr,
        ..EquihashPoolConfig::default()
    })
    .expect("same address is free after stop");
    assert_eq!(again.addr(), addr);
}

#[test]
fn bad_configs_are_refused() {
    let refused = |cfg: EquihashPoolConfig| {
        EquihashPool::start(cfg).err().map(|e| e.kind()) == Some(io::ErrorKind::InvalidInput)
    };
    let base = EquihashPoolConfig::default;
    assert!(refused(EquihashPoolConfig {
        nonce1_size: 32,
        ..base()
    }));
    assert!(refused(EquihashPoolConfig {
        fixed_nonce1: Some(vec![0; 32]),
        ..base()
    }));
    assert!(refused(EquihashPoolConfig {
        target_hex: "00ff".into(),
        ..base()
    }));
    assert!(refused(EquihashPoolConfig {
        params: Params { n: 201, k: 9 },
        ..base()
    }));
    // Other parameters change the expected solution length.
    let pool = EquihashPool::start(EquihashPoolConfig {
        params: Params { n: 144, k: 5 },
        nonce1_size: 0,
        ..base()
    })
    .expect("pool");
    let mut c = Client::connect(pool.addr());
    let login = c.login("w");
    assert!(login.nonce1.is_empty());
    let nonce2 = [7u8; 32];
    let mut sol = vec![100u8];
    sol.resize(101, 0);
    grind_solution(
        &login.job.header(&nonce2),
        &mut sol,
        &login.target,
        0,
        100_000,
    )
    .expect("a solution");
    assert_eq!(
        c.submit(share("w", &login.job, &nonce2, &sol))["result"],
        json!(true)
    );
    let zcash_sized = solution(&login.job, &nonce2, &login.target, true);
    assert_eq!(
        code(&c.submit(share("w", &login.job, &nonce2, &zcash_sized))),
        20
    );
}
