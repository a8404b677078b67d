//! Version rolling towards an SV2 pool, over 127.0.0.1 against the checking `Sv2SimPool`: a pool that refuses
//! SetupConnection's REQUIRES_VERSION_ROLLING is asked again at once without it, and jobs that fix the version
//! (`version_rolling_allowed = false`) give rolling miners mask 0 first; rolled shares for them stay local.

mod common;

use common::sv2::*;
use common::*;
use fastproxy::work::{self, Job};
use fastproxy_sim::miner::spawn_miner;
use fastproxy_sim::pool::SimPoolConfig;
use fastproxy_sim::sv2_pool::Sv2PoolConfig;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// SetupConnection's REQUIRES_VERSION_ROLLING (bit 2), as the pool saw it.
const REQUIRES_VERSION_ROLLING: u32 = 4;
const MASK: u32 = 0x1fff_e000;

fn refusing(fixed_version_jobs: bool) -> Sv2PoolConfig {
    Sv2PoolConfig {
        refuse_version_rolling: true,
        fixed_version_jobs,
        ..Sv2PoolConfig::default()
    }
}

#[test]
fn a_pool_refusing_required_version_rolling_is_asked_again_at_once_without_it_and_remembered() {
    let sv2 = sv2_pool(refusing(false));
    let key = sv2.authority_public_key();
    let v1 = pool(SimPoolConfig::default());
    // A back-off would take 30 s, a failover would move to the V1 pool after this one failure.
    let config = yaml(
        &[P::Sv2(sv2.addr(), &key), P::V1(v1.addr())],
        "retry_initial: 30\nretry_max: 30\nfailover_after: 1",
    );
    let (child, addr) = spawn_proxy_binary(&config, "refuses-version-rolling");
    let mut cfgs: Vec<_> = (0..4).map(|i| miner(addr, i, 5)).collect();
    cfgs[0].version_rolling = true;
    cfgs[0].duration = Duration::from_secs(20);
    let reports = run_all(cfgs);
    for (i, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "miner {i}: {r:?}");
        assert_eq!((r.accepted, r.rejected), (5, 0), "miner {i}: {r:?}");
    }
    let st = sv2.stats();
    assert_eq!(st.setup_flags, vec![REQUIRES_VERSION_ROLLING, 0], "{st:?}");
    assert_eq!(st.connections_total, 2, "{st:?}");
    assert_eq!(st.accepted, 20, "{st:?}");
    assert!(st.rejected_by_code.is_empty(), "{st:?}");
    assert_eq!(v1.stats().accepted, 0, "not a failover to the next pool");
    // Remembered for that pool: a Reconnect asks without the flag straight away.
    sv2.send_reconnect_all("", 0);
    wait_until(Duration::from_secs(10), "the pool's Reconnect", || {
        sv2.stats().setup_flags.len() == 3
    });
    assert_eq!(
        sv2.stats().setup_flags,
        vec![REQUIRES_VERSION_ROLLING, 0, 0]
    );
    assert_eq!(sv2.stats().connections_total, 3);
    let (status, log) = child.terminate(Duration::from_secs(10));
    assert!(status.success(), "{log}");
    let said = log.lines().find(|l| l.contains("refused SetupConnection"));
    assert!(
        said.is_some_and(|l| l.contains("does not support requiring version rolling")
            && l.contains("reconnecting at once without requiring it")),
        "{log}"
    );
}

#[test]
fn rolling_miners_get_mask_zero_for_jobs_that_fix_the_version_and_their_shares_are_valid() {
    let sv2 = sv2_pool(refusing(true));
    let key = sv2.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(sv2.addr(), &key)], ""));
    let addr = proxy.first_addr().unwrap();
    let mut cfgs: Vec<_> = (0..6).map(|i| miner(addr, i, 5)).collect();
    for c in cfgs.iter_mut().step_by(2) {
        c.version_rolling = true;
    }
    let reports = run_all(cfgs);
    for (i, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "miner {i}: {r:?}");
        assert_eq!((r.accepted, r.rejected), (5, 0), "miner {i}: {r:?}");
        let want = (i % 2 == 0).then_some(0);
        assert_eq!(r.version_mask, want, "miner {i}: {r:?}");
    }
    let st = sv2.stats();
    assert_eq!(st.accepted, 30, "{st:?}");
    assert!(st.rejected_by_code.is_empty(), "{st:?}");
    assert!(st.accepted_shares.iter().all(|s| s.version == 0x2000_0000));
}

/// The first nonce whose share of `job` with `version` meets `difficulty`.
fn nonce_with_version(job: &Job, e1: &[u8], e2: &[u8], version: u32, difficulty: f64) -> u32 {
    let target = work::target_from_difficulty(difficulty);
    let merkle = job.merkle_root(&job.coinbase(e1, e2));
    let mut header = job.header_with_merkle_root(&merkle, job.ntime, 0, version);
    (0u32..50_000_000)
        .find(|&n| {
            header[76..].copy_from_slice(&n.to_le_bytes());
            work::hash_meets_target(&work::sha256d(&header), &target)
        })
        .expect("a nonce within 50M tries")
}

/// A V1 miner that negotiated version rolling, on a raw socket.
struct Roller {
    c: Client,
    e1: Vec<u8>,
    size: usize,
    difficulty: f64,
    notes: Vec<Value>,
    n: u8,
}

impl Roller {
    /// Connects to the proxy at `addr`, negotiates version rolling (mask 1fffe000), subscribes and authorizes:
    /// the miner, and the first job.
    fn connect(addr: std::net::SocketAddr) -> (Roller, Job) {
        let mut c = Client::connect(addr);
        let cfg = c.request(
            "mining.configure",
            json!([["version-rolling"], {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}]),
        );
        let (r, _) = c.reply(cfg, Duration::from_secs(10));
        assert_eq!(
            r["result"]["version-rolling.mask"],
            json!("1fffe000"),
            "{r}"
        );
        let (e1, size, mut notes) = c.handshake();
        let (first, difficulty) = current_work(&mut c, &mut notes);
        let m = Roller {
            c,
            e1: fastproxy::hex::decode(&e1).unwrap(),
            size: size as usize,
            difficulty,
            notes,
            n: 0,
        };
        (m, first)
    }

    /// Submits a valid share of `job` rolling `bits` (None: the job's version, no sixth param); the reply.
    fn submit(&mut self, job: &Job, bits: Option<u32>) -> Value {
        self.n += 1;
        let e2 = vec![self.n; self.size];
        let version = bits.map_or(job.version, |b| work::rolled_version(job.version, MASK, b));
        let nonce = nonce_with_version(job, &self.e1, &e2, version, self.difficulty);
        let mut params = vec![
            json!("w"),
            json!(job.job_id),
            json!(fastproxy::hex::encode(&e2)),
            json!(work::u32_to_hex(job.ntime)),
            json!(work::u32_to_hex(nonce)),
        ];
        if let Some(b) = bits {
            params.push(json!(work::u32_to_hex(b & MASK)));
        }
        let id = self.c.request("mining.submit", Value::Array(params));
        let (r, notes) = self.c.reply(id, Duration::from_secs(10));
        self.notes.extend(notes);
        r
    }

    /// Reads until the next mining.notify; the notifications before it (in order) and its job.
    fn next_job(&mut self) -> (Vec<Value>, Job) {
        let mut before = Vec::new();
        loop {
            let v = self.c.read(Duration::from_secs(10)).expect("a job");
            if v["method"] == json!("mining.notify") {
                return (before, Job::from_notify_params(&v["params"]).unwrap());
            }
            before.push(v);
        }
    }
}

fn masks(notes: &[Value]) -> Vec<String> {
    notes
        .iter()
        .filter(|v| v["method"] == json!("mining.set_version_mask"))
        .map(|v| v["params"][0].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn a_rolled_share_for_a_job_that_fixes_the_version_is_refused_locally_and_the_mask_comes_back() {
    let sv2 = sv2_pool(refusing(false));
    let key = sv2.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(sv2.addr(), &key)], ""));
    let (mut m, first) = Roller::connect(proxy.first_addr().unwrap());
    assert_eq!(m.submit(&first, Some(0x0000_6000))["result"], json!(true));

    // A new block whose job fixes the version: mask 0 comes before its notify.
    sv2.set_version_rolling_allowed(false);
    sv2.new_job(true);
    let (before, fixed) = m.next_job();
    assert_eq!(masks(&before), vec!["00000000"], "{before:?}");
    let r = m.submit(&fixed, None);
    assert_eq!(r["result"], json!(true), "{r}");
    // Rolled bits now are outside the miner's mask.
    let r = m.submit(&fixed, Some(0x0000_2000));
    assert_ne!(r["result"], json!(true), "{r}");
    assert!(r["error"].to_string().contains("mask"), "{r}");

    // A job on the same block that allows rolling again: the granted mask comes back before its notify.
    sv2.set_version_rolling_allowed(true);
    sv2.new_job(false);
    let (before, rolling) = m.next_job();
    assert_eq!(masks(&before), vec!["1fffe000"], "{before:?}");
    let submits = sv2.stats().submits;
    // Rolled bits for the job that fixes the version: refused here, never sent to the pool.
    let r = m.submit(&fixed, Some(0x0000_2000));
    assert_ne!(r["result"], json!(true), "{r}");
    assert!(
        r["error"]
            .to_string()
            .contains("version rolling not allowed"),
        "{r}"
    );
    assert_eq!(sv2.stats().submits, submits, "sent upstream");
    let r = m.submit(&rolling, Some(0x0000_4000));
    assert_eq!(r["result"], json!(true), "{r}");
    let r = m.submit(&fixed, None);
    assert_eq!(r["result"], json!(true), "{r}");
    let st = sv2.stats();
    assert!(st.rejected_by_code.is_empty(), "{st:?}");
    assert_eq!(st.accepted, 4, "{st:?}");
}

#[test]
fn a_rolled_share_below_the_pools_target_for_a_fixed_version_job_is_refused_not_accepted_locally() {
    // Vardiff gives the miner a difficulty far below the pool's: its valid shares are answered here
    // (`BelowPool`) and never sent. One that rolls a job fixing the version is still refused.
    let sv2 = sv2_pool(Sv2PoolConfig {
        difficulty: 1.0,
        ..refusing(false)
    });
    let key = sv2.authority_public_key();
    let proxy = start_proxy(&yaml(
        &[P::Sv2(sv2.addr(), &key)],
        "vardiff: { shares_per_minute: 20, retarget_interval: 600, start_difficulty: 0.00001 }",
    ));
    let (mut m, first) = Roller::connect(proxy.first_addr().unwrap());
    assert_eq!(m.difficulty, 0.00001, "the miner's own difficulty");
    assert_eq!(m.submit(&first, Some(0x0000_6000))["result"], json!(true));

    sv2.set_version_rolling_allowed(false);
    sv2.new_job(true);
    let (before, fixed) = m.next_job();
    assert_eq!(masks(&before), vec!["00000000"], "{before:?}");
    sv2.set_version_rolling_allowed(true);
    sv2.new_job(false);
    let (before, rolling) = m.next_job();
    assert_eq!(masks(&before), vec!["1fffe000"], "{before:?}");

    let r = m.submit(&fixed, Some(0x0000_2000));
    assert_eq!(r["error"][0], json!(20), "{r}");
    assert!(
        r["error"]
            .to_string()
            .contains("version rolling not allowed"),
        "{r}"
    );
    assert_eq!(m.submit(&fixed, None)["result"], json!(true));
    assert_eq!(m.submit(&rolling, Some(0x0000_4000))["result"], json!(true));
    assert_eq!(sv2.stats().submits, 0, "all below the pool's target");
}

#[test]
fn a_redirect_to_a_pool_refusing_required_version_rolling_is_followed_without_the_flag() {
    // Both pools hold the entry's authority key; the first redirects to the second, which refuses the flag.
    let keypair = fastproxy_sim::sv2_pool::authority_keypair();
    let first = sv2_pool(Sv2PoolConfig {
        authority: Some(keypair),
        ..Sv2PoolConfig::default()
    });
    let second = sv2_pool(Sv2PoolConfig {
        authority: Some(keypair),
        ..refusing(false)
    });
    let key = first.authority_public_key();
    let proxy = start_proxy(&yaml(
        &[P::Sv2(first.addr(), &key)],
        "allow_reconnect_redirect: true",
    ));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut cfg = miner(addr, 0, u64::MAX);
    cfg.max_shares = None;
    cfg.extranonce_subscribe = true;
    cfg.version_rolling = true;
    cfg.submit_interval = Some(Duration::from_millis(20));
    let h = spawn_miner(cfg, stop.clone());
    wait_until(Duration::from_secs(10), "shares on the first pool", || {
        first.stats().accepted >= 5
    });
    first.send_reconnect_all("127.0.0.1", second.addr().port());
    wait_until(Duration::from_secs(10), "shares on the second pool", || {
        second.stats().accepted >= 5
    });
    stop.store(true, Ordering::Relaxed);
    let r = h.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
    let st = second.stats();
    assert_eq!(st.setup_flags, vec![REQUIRES_VERSION_ROLLING, 0], "{st:?}");
    assert_eq!(first.stats().connections_total, 1, "not back to the first");
    // A share in flight at the switch names the first pool's job, whose id the second pool's first job has
    // too: refused here as stale (the job ids differ by connection), never sent to the second pool.
    assert!(st.rejected_by_code.is_empty(), "{st:?}");
    assert_eq!(r.unanswered, 0, "{r:?}");
    assert_eq!(r.accepted, first.stats().accepted + st.accepted, "{r:?}");
}
