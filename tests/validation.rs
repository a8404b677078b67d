//! Local share validation and vardiff: the proxy rebuilds every share, refuses what the pool would refuse, and
//! sends upstream only shares that meet the pool's target, all of them valid.

mod common;

use common::*;
use fastproxy::proxy::RunningProxy;
use fastproxy::validate::ValidationStats;
use fastproxy::work::{self, Job};
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn get(v: &std::sync::atomic::AtomicU64) -> u64 {
    v.load(Ordering::Relaxed)
}

/// A raw miner with the job and extranonces it was given, able to build real shares.
struct Rig {
    c: Client,
    e1: Vec<u8>,
    n: usize,
    job: Job,
}

impl Rig {
    fn new(addr: std::net::SocketAddr) -> Rig {
        let mut c = Client::connect(addr);
        let (e1, n, mut notes) = c.handshake();
        while !notes.iter().any(|v| v["method"] == json!("mining.notify")) {
            notes.push(c.read(Duration::from_secs(5)).expect("a job"));
        }
        let notify = notes
            .iter()
            .rev()
            .find(|v| v["method"] == json!("mining.notify"))
            .unwrap();
        Rig {
            e1: fastproxy::hex::decode(&e1).unwrap(),
            n: n as usize,
            job: Job::from_notify_params(&notify["params"]).unwrap(),
            c,
        }
    }

    /// A nonce whose share meets (or, with `want` false, misses) the difficulty.
    fn nonce(&self, en2: &[u8], ntime: u32, difficulty: f64, want: bool) -> u32 {
        let target = work::target_from_difficulty(difficulty);
        (0u32..)
            .find(|&n| {
                let h = self
                    .job
                    .share_hash(&self.e1, en2, ntime, n, self.job.version);
                work::hash_meets_target(&h, &target) == want
            })
            .unwrap()
    }

    /// A submit line (newline included) with the given id, for raw writes.
    fn submit_line(&self, id: u64, en2: &[u8], ntime: u32, nonce: u32) -> String {
        let submit = json!({"id": id, "method": "mining.submit", "params": [
            "rig", self.job.job_id, fastproxy::hex::encode(en2), format!("{ntime:08x}"), format!("{nonce:08x}")
        ]});
        format!("{submit}\n")
    }

    fn submit(&mut self, en2: &[u8], ntime: u32, nonce: u32, vbits: Option<&str>) -> Value {
        let mut params = vec![
            json!("rig"),
            json!(self.job.job_id),
            json!(fastproxy::hex::encode(en2)),
            json!(format!("{ntime:08x}")),
            json!(format!("{nonce:08x}")),
        ];
        if let Some(v) = vbits {
            params.push(json!(v));
        }
        let id = self.c.request("mining.submit", Value::Array(params));
        self.c.reply(id, Duration::from_secs(5)).0
    }
}

/// A checking pool at `diff`, a proxy validating its shares (and its validation counters), and a rig on it.
fn validating(diff: f64) -> (SimPool, RunningProxy, Arc<ValidationStats>, Rig) {
    let pool = pool(SimPoolConfig {
        difficulty: diff,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "validate_shares: true"));
    let vs = proxy.validation_stats("test").unwrap();
    let rig = Rig::new(proxy.first_addr().unwrap());
    (pool, proxy, vs, rig)
}

#[test]
fn the_proxy_refuses_what_the_pool_would_and_forwards_only_valid_shares() {
    let diff = 1.0 / 262_144.0;
    let pool = pool(SimPoolConfig {
        difficulty: diff,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "validate_shares: true"));
    let addr = proxy.first_addr().unwrap();
    let vs = proxy.validation_stats("test").unwrap();
    let mut rig = Rig::new(addr);
    let en2 = vec![0u8; rig.n];
    let t = rig.job.ntime;

    let good = rig.nonce(&en2, t, diff, true);
    assert_eq!(
        rig.submit(&en2, t, good, None)["result"],
        json!(true),
        "a valid share"
    );
    let dup = rig.submit(&en2, t, good, None);
    assert_eq!(dup["error"][0], json!(22), "duplicate: {dup}");
    let low = rig.nonce(&en2, t, diff, false);
    assert_eq!(
        rig.submit(&en2, t, low, None)["error"][0],
        json!(23),
        "above the target"
    );
    let r = rig.submit(&en2, t + 7201, good, None);
    assert_eq!(r["error"][0], json!(20), "ntime too far ahead: {r}");
    let r = rig.submit(&en2, t - 1, good, None);
    assert_eq!(r["error"][0], json!(20), "ntime before the job: {r}");
    // Stale after clean_jobs.
    pool.new_job(true);
    wait_until(Duration::from_secs(5), "new job", || {
        rig.c
            .read(Duration::from_millis(100))
            .is_some_and(|v| v["method"] == json!("mining.notify"))
    });
    let r = rig.submit(&[1u8; 6][..rig.n], t, good, None);
    assert_eq!(r["error"][0], json!(21), "stale: {r}");

    assert_eq!(
        pool.stats().submits,
        1,
        "only the one valid share reached the pool"
    );
    assert_eq!(pool.stats().accepted, 1);
    assert_eq!(
        (
            get(&vs.forwarded),
            get(&vs.duplicate),
            get(&vs.low_difficulty)
        ),
        (1, 1, 1)
    );
    assert_eq!((get(&vs.invalid), get(&vs.stale)), (2, 1));
}

#[test]
fn shares_that_arrive_together_are_hashed_side_by_side_and_judged_each_on_its_own() {
    // Five submits in one write are read in one round and hashed in pairs (and one alone): a share's verdict
    // must be its own, whatever lane it was hashed in.
    let diff = 1.0 / 65_536.0;
    let (pool, _proxy, vs, mut rig) = validating(diff);
    let t = rig.job.ntime;
    let want = [true, false, true, false, true];
    let mut lines = Vec::new();
    for (i, &good) in want.iter().enumerate() {
        let mut en2 = vec![0u8; rig.n];
        en2[rig.n - 1] = i as u8 + 1;
        let nonce = rig.nonce(&en2, t, diff, good);
        lines.extend_from_slice(rig.submit_line(100 + i as u64, &en2, t, nonce).as_bytes());
    }
    rig.c.send_raw(&lines).unwrap();
    // Refusals are answered at once, forwarded shares when the pool answers: replies come in any order.
    let mut replies = std::collections::HashMap::new();
    while replies.len() < want.len() {
        let r = rig
            .c
            .read(Duration::from_secs(5))
            .expect("a reply to every share");
        if let Some(id) = r["id"].as_u64() {
            assert!(replies.insert(id, r).is_none(), "one reply per share");
        }
    }
    for (i, &good) in want.iter().enumerate() {
        let r = &replies[&(100 + i as u64)];
        if good {
            assert_eq!(r["result"], json!(true), "share {i}: {r}");
        } else {
            assert_eq!(r["error"][0], json!(23), "share {i}: {r}");
        }
    }
    assert_eq!((pool.stats().submits, pool.stats().accepted), (3, 3));
    assert_eq!((get(&vs.forwarded), get(&vs.low_difficulty)), (3, 2));
}

#[test]
fn a_share_sent_just_before_the_miner_hangs_up_still_reaches_the_pool() {
    let diff = 1.0 / 65_536.0;
    let (pool, _proxy, vs, mut rig) = validating(diff);
    let (t, en2) = (rig.job.ntime, vec![3u8; rig.n]);
    let nonce = rig.nonce(&en2, t, diff, true);
    // The submit and the end of stream arrive together: the proxy reads both in one round.
    let line = rig.submit_line(9, &en2, t, nonce);
    rig.c.send_raw(line.as_bytes()).unwrap();
    rig.c.shutdown_write();
    wait_until(Duration::from_secs(5), "the share at the pool", || {
        pool.stats().accepted == 1
    });
    assert_eq!(get(&vs.forwarded), 1);
}

#[test]
fn version_bits_outside_the_mask_are_refused_locally() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "validate_shares: true"));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let id = c.request(
        "mining.configure",
        json!([["version-rolling"], {"version-rolling.mask": "1fffe000"}]),
    );
    c.reply(id, Duration::from_secs(5));
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);
    let id = c.request(
        "mining.submit",
        json!([
            "w",
            job,
            "00".repeat(n as usize),
            "00000000",
            "00000000",
            "e0000000"
        ]),
    );
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["error"][0], json!(20), "{r}");
    assert_eq!(pool.stats().submits, 0);
}

#[test]
fn a_wrong_split_never_reaches_the_pool_with_validation_on() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "validate_shares: true"));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = |tamper| SimMinerConfig {
        addr,
        max_shares: Some(3),
        duration: Duration::from_secs(60),
        tamper_extranonce1: tamper,
        version_rolling: true,
        ..SimMinerConfig::default()
    };
    let good = spawn_miner(cfg(false), stop.clone());
    let bad = spawn_miner(cfg(true), stop);
    assert_eq!(good.join().unwrap().accepted, 3);
    let b = bad.join().unwrap();
    assert_eq!(b.reject_codes.get(&23), Some(&3), "{b:?}");
    let ps = pool.stats();
    assert_eq!((ps.submits, ps.accepted, ps.rejected), (3, 3, 0));
}

#[test]
fn vardiff_steers_miners_of_ten_times_different_speed_to_their_own_difficulty() {
    // The pool's difficulty is far above what these miners find often; vardiff gives each its own.
    let pool_diff = 1e-4;
    let pool = pool(SimPoolConfig {
        difficulty: pool_diff,
        ..SimPoolConfig::default()
    });
    // Windows of about 30 shares (600 a minute, 3 s): one window's estimate is within about 20 % (Poisson),
    // so the last difficulty of each miner says how well vardiff follows its rate. (With 8-share windows the
    // ratio of two last difficulties ranged 3.8x to 25x for a 10x hash-rate ratio: noise, not steering.)
    let per_minute = 600.0;
    let proxy = start_proxy(&proxy_yaml(
        &[pool.addr()],
        "vardiff: { shares_per_minute: 600, retarget_interval: 3, start_difficulty: 0.0000007 }",
    ));
    let addr = proxy.first_addr().unwrap();
    let vs = proxy.validation_stats("test").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let rig = |rate: f64, name: &str| {
        spawn_miner(
            SimMinerConfig {
                addr,
                worker: name.into(),
                hashrate: Some(rate),
                duration: Duration::from_secs(14),
                ..SimMinerConfig::default()
            },
            stop.clone(),
        )
    };
    let started = Instant::now();
    let slow = rig(10_000.0, "slow");
    let fast = rig(100_000.0, "fast");
    let (slow, fast) = (slow.join().unwrap(), fast.join().unwrap());
    let secs = started.elapsed().as_secs_f64();
    // The difficulty that gives `per_minute` shares at the rate each miner really hashed (averaged over the run;
    // one retarget step may move 4x, so the last one is held to that).
    let ideal = |hashes: u64| (hashes as f64 / secs) * 60.0 / per_minute / 4_294_967_296.0;
    for (r, name) in [(&slow, "slow"), (&fast, "fast")] {
        let want = ideal(r.hashes);
        assert!(
            r.difficulty > want / 4.0 && r.difficulty < want * 4.0,
            "{name}: difficulty {} vs ideal {want} ({} hashes in {secs:.1}s)",
            r.difficulty,
            r.hashes
        );
        assert!(r.difficulty <= pool_diff, "never above the pool's");
        assert_eq!(r.reject_codes.get(&23), None, "{name}: {r:?}");
    }
    // The difficulties follow the hash rates (10x apart as asked; less if this machine could not keep up).
    let hash_ratio = fast.hashes as f64 / slow.hashes as f64;
    assert!(
        hash_ratio > 3.0,
        "the test needs miners of clearly different speed ({hash_ratio:.1}x)"
    );
    let ratio = fast.difficulty / slow.difficulty;
    assert!(
        ratio > hash_ratio / 3.0 && ratio < hash_ratio * 3.0,
        "difficulty ratio {ratio:.1}x for a hash-rate ratio of {hash_ratio:.1}x (slow {}, fast {})",
        slow.difficulty,
        fast.difficulty
    );
    let retargets = get(&vs.retargets);
    assert!(retargets <= 2 * 14, "bounded retargets: {retargets}");
    // Everything forwarded met the pool's target: the pool accepted all of it.
    let ps = pool.stats();
    assert_eq!(ps.rejected, 0, "{ps:?}");
    assert_eq!(ps.accepted, get(&vs.forwarded));
    assert!(
        get(&vs.accepted_locally) > get(&vs.forwarded),
        "most shares stay local"
    );
}

/// The Zcash mainnet genesis block (height 0, hash 00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08)
/// as a pool job, its header nonce, and its solution hex (with the fd4005 prefix).
fn zcash_genesis() -> (fastproxy::equihash::EquihashJob, [u8; 32], String) {
    let v: Value = serde_json::from_str(include_str!("fixtures/zcash_genesis.json")).unwrap();
    let display = |k: &str| {
        let mut b = fastproxy::hex::decode(v[k].as_str().unwrap()).unwrap();
        b.reverse();
        fastproxy::hex::encode(&b)
    };
    let le = |x: u32| fastproxy::hex::encode(&x.to_le_bytes());
    let notify = json!([
        "genesis",
        le(v["version"].as_u64().unwrap() as u32),
        display("prev_hash"),
        display("merkle_root"),
        display("reserved"),
        le(v["time"].as_u64().unwrap() as u32),
        le(u32::from_str_radix(v["bits"].as_str().unwrap(), 16).unwrap()),
        true
    ]);
    let job = fastproxy::equihash::EquihashJob::from_notify_params(&notify).unwrap();
    let nonce: [u8; 32] = fastproxy::hex::decode(&display("nonce"))
        .unwrap()
        .try_into()
        .unwrap();
    (
        job,
        nonce,
        format!("fd4005{}", v["solution"].as_str().unwrap()),
    )
}

#[test]
fn equihash_validation_verifies_the_solution_of_the_zcash_genesis_block() {
    use fastproxy_sim::equihash_pool::{EquihashPool, EquihashPoolConfig};
    let (job, nonce, solution) = zcash_genesis();
    let pool = EquihashPool::start(EquihashPoolConfig {
        fixed_nonce1: Some(nonce[..4].to_vec()),
        verify_solutions: true,
        ..EquihashPoolConfig::default()
    })
    .unwrap();
    let yaml = proxy_yaml(&[pool.addr()], "validate_shares: true")
        .replace("protocol: stratum", "protocol: equihash");
    let proxy = start_proxy(&yaml);
    let vs = proxy.validation_stats("test").unwrap();
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let s = c.request("mining.subscribe", json!(["test", null, "127.0.0.1", 1]));
    let (r, _) = c.reply(s, Duration::from_secs(5));
    // The first miner's prefix is 0000: NONCE_1 || P is the genesis nonce's first 6 bytes.
    assert_eq!(r["result"][1], json!(fastproxy::hex::encode(&nonce[..6])));
    let a = c.request("mining.authorize", json!(["rig", "x"]));
    c.reply(a, Duration::from_secs(5));
    pool.push_job(job.clone());
    wait_until(Duration::from_secs(5), "the genesis job", || {
        c.read(Duration::from_millis(100)).is_some_and(|v| {
            v["method"] == json!("mining.notify") && v["params"][0] == json!("genesis")
        })
    });
    let time = fastproxy::hex::encode(&job.time);
    let nonce2 = fastproxy::hex::encode(&nonce[6..]);
    let mut corrupt = solution.clone().into_bytes();
    corrupt[100] = if corrupt[100] == b'0' { b'1' } else { b'0' };
    let corrupt = String::from_utf8(corrupt).unwrap();
    let id = c.request(
        "mining.submit",
        json!(["rig", "genesis", time, nonce2, corrupt]),
    );
    let (r, _) = c.reply(id, Duration::from_secs(10));
    assert_eq!(
        r["error"][0],
        json!(20),
        "an invalid solution is refused by the proxy: {r}"
    );
    assert_eq!(pool.stats().submits, 0, "and never reaches the pool");
    let id = c.request(
        "mining.submit",
        json!(["rig", "genesis", time, nonce2, solution]),
    );
    let (r, _) = c.reply(id, Duration::from_secs(10));
    assert_eq!(
        r["result"],
        json!(true),
        "the real solution passes both checks: {r}"
    );
    assert_eq!(pool.stats().accepted, 1);
    assert_eq!((get(&vs.forwarded), get(&vs.invalid)), (1, 1));
}
