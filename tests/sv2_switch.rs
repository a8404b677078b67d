//! An upstream moving from one SV2 connection to another (here a pool's redirect), over 127.0.0.1 against two
//! checking `Sv2SimPool`s that both number their jobs from 1: the V1 job ids of the two connections differ,
//! so a share still naming the first connection's job is refused as stale rather than sent as the other's; in an
//! entry with routes every SV2 job also carries the route's tag.

mod common;

use common::sv2::*;
use common::*;
use fastproxy_sim::sv2_pool::Sv2PoolConfig;
use serde_json::{json, Value};
use std::time::Duration;

/// Reads until a `mining.set_extranonce` and then a `mining.notify` have come: the new extranonce1 and job.
fn switched_work(c: &mut Client) -> (Vec<u8>, fastproxy::work::Job) {
    let mut e1 = None;
    loop {
        let v = c.read(Duration::from_secs(10)).expect("the switch");
        if v["method"] == json!("mining.set_extranonce") {
            e1 = Some(fastproxy::hex::decode(v["params"][0].as_str().unwrap()).unwrap());
        } else if v["method"] == json!("mining.notify") {
            if let Some(e1) = e1.take() {
                return (
                    e1,
                    fastproxy::work::Job::from_notify_params(&v["params"]).unwrap(),
                );
            }
        }
    }
}

#[test]
fn a_share_naming_the_previous_connections_job_is_stale_not_the_new_pools_job_of_the_same_number() {
    previous_connections_job(false);
}

#[test]
fn with_validation_such_a_share_is_counted_stale_too() {
    previous_connections_job(true);
}

fn previous_connections_job(validate: bool) {
    let keypair = fastproxy_sim::sv2_pool::authority_keypair();
    let cfg = Sv2PoolConfig {
        authority: Some(keypair),
        ..Sv2PoolConfig::default()
    };
    let (first, second) = (sv2_pool(cfg.clone()), sv2_pool(cfg));
    let key = first.authority_public_key();
    let extra = format!("allow_reconnect_redirect: true\nvalidate_shares: {validate}");
    let proxy = start_proxy(&yaml(&[P::Sv2(first.addr(), &key)], &extra));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (e1, size, mut notes) = c.handshake();
    let sub = c.request("mining.extranonce.subscribe", json!([]));
    let (r, more) = c.reply(sub, Duration::from_secs(10));
    assert_eq!(r["result"], json!(true), "{r}");
    notes.extend(more);
    let (old, difficulty) = current_work(&mut c, &mut notes);
    let e1 = fastproxy::hex::decode(&e1).unwrap();
    let e2 = vec![1u8; size as usize];
    let id = c.submit_share(&old, &e2, nonce_for(&old, &e1, &e2, difficulty, true));
    assert_eq!(
        c.reply(id, Duration::from_secs(10)).0["result"],
        json!(true)
    );

    first.send_reconnect_all("127.0.0.1", second.addr().port());
    let (e1, new) = switched_work(&mut c);
    assert_ne!(
        new.job_id, old.job_id,
        "the same job id for both connections"
    );
    // Work for the old job, even under the new extranonce1: the proxy no longer knows that job.
    let e2 = vec![2u8; size as usize];
    let id = c.submit_share(&old, &e2, nonce_for(&old, &e1, &e2, difficulty, true));
    let (r, _): (Value, _) = c.reply(id, Duration::from_secs(10));
    assert_eq!(r["error"][0], json!(21), "{r}");
    assert!(
        r["error"][1].as_str().unwrap().contains("Job not found"),
        "{r}"
    );
    assert_eq!(second.stats().submits, 0, "sent to the second pool");
    if validate {
        let vs = proxy.validation_stats("test").unwrap();
        assert_eq!(vs.stale.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
    // The new job's shares go up as usual.
    let id = c.submit_share(&new, &e2, nonce_for(&new, &e1, &e2, difficulty, true));
    assert_eq!(
        c.reply(id, Duration::from_secs(10)).0["result"],
        json!(true)
    );
    let st = second.stats();
    assert_eq!((st.submits, st.accepted), (1, 1), "{st:?}");
}

#[test]
fn in_an_entry_with_routes_every_sv2_job_carries_the_route_tag_and_its_shares_go_up() {
    // Two routes (one alone is no routing); the SV2 one weighs so much more that the one miner stays on it.
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    let v1 = common::pool(fastproxy_sim::pool::SimPoolConfig::default());
    let yaml = format!(
        "threads: 1\nproxies:\n  - name: test\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    routes:\n      - name: a\n        weight: 1000\n        pools:\n          - url: stratum2+tcp://{}\n            user: acct.sv2\n            authority_public_key: {key}\n      - name: b\n        weight: 1\n        pools:\n          - url: stratum+tcp://{}\n            user: acct.v1\n            password: x\n",
        pool.addr(),
        v1.addr()
    );
    let proxy = start_proxy(&yaml);
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (e1, size, mut notes) = c.handshake();
    let (first, difficulty) = current_work(&mut c, &mut notes);
    let e1 = fastproxy::hex::decode(&e1).unwrap();
    // Jobs after the first one (the first comes with the connection being ready) are tagged too.
    for i in 1..=3u8 {
        pool.new_job(false);
        let job = loop {
            let v = c.read(Duration::from_secs(10)).expect("the next job");
            if v["method"] == json!("mining.notify") {
                break fastproxy::work::Job::from_notify_params(&v["params"]).unwrap();
            }
        };
        assert_ne!(job.job_id, first.job_id);
        let e2 = vec![i; size as usize];
        let id = c.submit_share(&job, &e2, nonce_for(&job, &e1, &e2, difficulty, true));
        let (r, _): (Value, _) = c.reply(id, Duration::from_secs(10));
        assert_eq!(r["result"], json!(true), "job {}: {r}", job.job_id);
    }
    let st = pool.stats();
    assert_eq!((st.accepted, st.submits), (3, 3), "{st:?}");
}
