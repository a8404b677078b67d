//! UpdateChannel towards an SV2 pool, over 127.0.0.1 against the checking `Sv2SimPool`: the channel learns the
//! hashrate the proxy measures (accepted difficulty per second) once it moved past ±20 %, at most once per
//! `sv2_update_interval`, and a channel opened again (Reconnect) starts from that estimate.

mod common;

use common::sv2::*;
use common::*;
use fastproxy_sim::miner::spawn_miner;
use fastproxy_sim::sv2_pool::Sv2PoolConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn update_channel_carries_the_measured_hashrate_none_while_steady_and_a_new_channel_opens_with_it()
{
    let cfg = Sv2PoolConfig::default();
    let difficulty = cfg.difficulty;
    let sv2 = sv2_pool(cfg);
    let key = sv2.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(sv2.addr(), &key)], "sv2_update_interval: 2"));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut c = miner(addr, i, u64::MAX);
            c.max_shares = None;
            c.extranonce_subscribe = true;
            c.submit_interval = Some(Duration::from_millis(50));
            spawn_miner(c, stop.clone())
        })
        .collect();
    wait_until(Duration::from_secs(30), "an UpdateChannel", || {
        !sv2.stats().channel_updates.is_empty()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let st = sv2.stats();
    assert_eq!(
        st.open_hash_rates,
        vec![0.0],
        "no estimate before miners came"
    );
    let (channel, rate, max_target) = st.channel_updates[0];
    assert_eq!((channel, max_target), (2, [0xff; 32]), "{st:?}");
    // What the pool saw: its accepted difficulty per second, in hashes.
    let seen = st.accepted as f64 * difficulty / elapsed * 4_294_967_296.0;
    let rate = f64::from(rate);
    assert!(
        rate > seen / 2.0 && rate < seen * 2.0,
        "UpdateChannel says {rate:.0} h/s, the pool saw {seen:.0} h/s"
    );
    // Steady miners: no second UpdateChannel over five intervals.
    std::thread::sleep(Duration::from_secs(10));
    let st = sv2.stats();
    assert_eq!(st.channel_updates.len(), 1, "{:?}", st.channel_updates);
    // A Reconnect: the new channel is opened with the estimate.
    sv2.send_reconnect_all("", 0);
    wait_until(Duration::from_secs(10), "a second channel", || {
        sv2.stats().open_hash_rates.len() == 2
    });
    let reopened = f64::from(sv2.stats().open_hash_rates[1]);
    assert!(
        reopened > rate / 2.0 && reopened < rate * 2.0,
        "opened with {reopened:.0} h/s after {rate:.0}"
    );
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
    }
}
