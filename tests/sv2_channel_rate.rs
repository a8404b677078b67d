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

/// The proxy's estimate (src/session/sv2_rate.rs): a sample of at least 5 s (one-second ticks, so up to about
/// 6 s, more on a loaded machine), folded in as 0.6 old + 0.4 new; an UpdateChannel once it moved more than
/// 20 % from the value last sent.
const SAMPLE: Duration = Duration::from_secs(5);
const LONGEST_SAMPLE: Duration = Duration::from_secs(7);
const KEEP: f64 = 0.6;
const THRESHOLD: f64 = 0.2;
/// The pool's count and the proxy's sample do not start on the same instant: this much either way.
const MARGIN: f64 = 0.03;
/// After the first UpdateChannel, how long the estimate gets to settle before the quiet window, and that window.
const SETTLE: Duration = Duration::from_secs(25);
const WINDOW: Duration = Duration::from_secs(10);

/// The pool's accepted count over time, polled until `until`.
fn observe(
    sv2: &fastproxy_sim::sv2_pool::Sv2SimPool,
    until: Instant,
    log: &mut Vec<(Instant, u64)>,
) {
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        log.push((Instant::now(), sv2.stats().accepted));
    }
}

/// The lowest and highest rate the pool saw over any stretch of `log` a proxy sample can span, in accepted
/// shares per second.
fn sample_rate_range(log: &[(Instant, u64)]) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for (i, &(t0, a0)) in log.iter().enumerate() {
        for &(t1, a1) in &log[i..] {
            let dt = t1.duration_since(t0);
            if (SAMPLE..=LONGEST_SAMPLE).contains(&dt) {
                let rate = (a1 - a0) as f64 / dt.as_secs_f64();
                (lo, hi) = (lo.min(rate), hi.max(rate));
            }
        }
    }
    (lo, hi)
}

#[test]
fn update_channel_carries_the_measured_hashrate_none_while_steady_and_a_new_channel_opens_with_it()
{
    let cfg = Sv2PoolConfig::default();
    let difficulty = cfg.difficulty;
    let hashes = |shares_per_second: f64| shares_per_second * difficulty * 4_294_967_296.0;
    let sv2 = sv2_pool(cfg);
    let key = sv2.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(sv2.addr(), &key)], "sv2_update_interval: 2"));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // Shares are trivial at the pool's difficulty: the rate is the submit interval's, which scheduling delays on
    // a loaded machine shift less at 200 ms than at a shorter one.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut c = miner(addr, i, u64::MAX);
            c.max_shares = None;
            c.extranonce_subscribe = true;
            c.submit_interval = Some(Duration::from_millis(200));
            spawn_miner(c, stop.clone())
        })
        .collect();
    wait_until(Duration::from_secs(30), "an UpdateChannel", || {
        !sv2.stats().channel_updates.is_empty()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let first_at = Instant::now();
    let st = sv2.stats();
    assert_eq!(
        st.open_hash_rates,
        vec![0.0],
        "no estimate before miners came"
    );
    let (channel, rate, max_target) = st.channel_updates[0];
    assert_eq!((channel, max_target), (2, [0xff; 32]), "{st:?}");
    // What the pool saw: its accepted difficulty per second, in hashes.
    let seen = hashes(st.accepted as f64 / elapsed);
    let first = f64::from(rate);
    assert!(
        first > seen / 2.0 && first < seen * 2.0,
        "UpdateChannel says {first:.0} h/s, the pool saw {seen:.0} h/s"
    );

    // Let the estimate settle (a first sample cut short by the miners' start can take it 20 % further in the
    // next samples), then watch a window. The rate is the CPU's, so a loaded machine moves it: what the proxy
    // may send in the window follows from what the pool saw. The estimate at a sample in the window mixes the
    // first one (weight at most KEEP^n, n >= SETTLE / LONGEST_SAMPLE samples since) with the samples since, each
    // within the range the pool saw over a sample's length.
    let mut log = vec![(first_at, st.accepted)];
    observe(&sv2, first_at + SETTLE, &mut log);
    let before = sv2.stats().channel_updates;
    let last_sent = f64::from(before.last().unwrap().1);
    observe(&sv2, first_at + SETTLE + WINDOW, &mut log);
    let after: Vec<f32> = sv2.stats().channel_updates.iter().map(|u| u.1).collect();
    // Whatever the rate did, each UpdateChannel moved more than 20 % from the value sent before it.
    for pair in after.windows(2) {
        let (from, to) = (f64::from(pair[0]), f64::from(pair[1]));
        assert!(
            (to / from - 1.0).abs() > THRESHOLD,
            "UpdateChannel from {from:.0} to {to:.0} h/s: {after:?}"
        );
    }
    let in_window: Vec<f64> = after[before.len()..]
        .iter()
        .map(|&u| f64::from(u))
        .collect();
    let (lo, hi) = sample_rate_range(&log);
    let (lo, hi) = (hashes(lo), hashes(hi));
    let w = KEEP.powi((SETTLE.as_secs_f64() / LONGEST_SAMPLE.as_secs_f64()).floor() as i32);
    let lowest = lo.min(w * first + (1.0 - w) * lo) * (1.0 - MARGIN);
    let highest = hi.max(w * first + (1.0 - w) * hi) * (1.0 + MARGIN);
    // None if no estimate in that range is 20 % from the value last sent; at most one if no two are 20 %
    // apart; at most one a sample otherwise. Each within the range.
    let allowed =
        if lowest >= last_sent * (1.0 - THRESHOLD) && highest <= last_sent * (1.0 + THRESHOLD) {
            0
        } else if highest <= lowest * (1.0 + THRESHOLD) {
            1
        } else {
            (WINDOW.as_secs_f64() / SAMPLE.as_secs_f64()) as usize + 1
        };
    let what = format!(
        "last sent {last_sent:.0} h/s, the estimate within {lowest:.0}..{highest:.0} h/s (first {first:.0}, \
         the pool's rate over a sample {lo:.0}..{hi:.0}): at most {allowed} UpdateChannel in the window, got \
         {in_window:.0?}"
    );
    eprintln!("{what}");
    assert!(in_window.len() <= allowed, "{what}");
    for rate in &in_window {
        assert!((lowest..=highest).contains(rate), "{what}");
    }

    // A Reconnect: the new channel is opened with the estimate.
    let rate = f64::from(sv2.stats().channel_updates.last().unwrap().1);
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
