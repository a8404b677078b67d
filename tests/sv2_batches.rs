//! Batched acknowledgements from an SV2 pool, over 127.0.0.1 against the checking `Sv2SimPool`: shares sent to
//! an SV2 pool wait for its batch for up to `sv2_share_timeout`, not V1's `share_timeout` (the reference pool's
//! examples acknowledge every 10 shares at 6 a minute), and then each gets the pool's own verdict.

mod common;

use common::sv2::*;
use common::*;
use fastproxy_sim::sv2_pool::Sv2PoolConfig;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn shares_wait_for_the_pools_batch_past_the_v1_share_timeout_and_then_each_is_answered() {
    let pool = sv2_pool(Sv2PoolConfig {
        batch_size: 4,
        ..Sv2PoolConfig::default()
    });
    let key = pool.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], "share_timeout: 1"));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (e1, size, mut notes) = c.handshake();
    let (job, difficulty) = current_work(&mut c, &mut notes);
    let e1 = fastproxy::hex::decode(&e1).unwrap();
    let submit = |c: &mut Client, i: u8| {
        let e2 = vec![i; size as usize];
        c.submit_share(&job, &e2, nonce_for(&job, &e1, &e2, difficulty, true))
    };
    let ids: Vec<u64> = (1..=3).map(|i| submit(&mut c, i)).collect();
    wait_until(Duration::from_secs(10), "three shares at the pool", || {
        pool.stats().submits == 3
    });
    // Three times V1's share_timeout: no reply yet (the pool has not acknowledged, and it has refused nothing).
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(3) {
        if let Some(v) = c.read(Duration::from_millis(200)) {
            assert!(v["id"].is_null(), "a reply before the pool's batch: {v}");
        }
    }
    let last = submit(&mut c, 4);
    for id in ids.into_iter().chain([last]) {
        let (r, _) = c.reply(id, Duration::from_secs(10));
        assert_eq!(r["result"], json!(true), "{r}");
    }
    let st = pool.stats();
    assert_eq!((st.accepted, st.successes_sent), (4, 1), "{st:?}");
}
