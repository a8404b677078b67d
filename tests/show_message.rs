//! `client.show_message` from a pool reaches every miner of that upstream that gets jobs, once, with its text
//! intact (quote, backslash, newline and non-ASCII JSON-escaped correctly), in both dialects.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::equihash_pool::{EquihashPool, EquihashPoolConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A text that breaks naive encoding: a quote, a backslash, a newline and characters outside ASCII.
const TEXT: &str = "Maintenance \"tonight\" at 02:00 C:\\pool\nWartung für Käufer — 矿池 ✓";

/// The `client.show_message` lines `c` receives within `limit`: the first `first` of them, or all of them.
fn show_messages(c: &mut Client, limit: Duration, first: Option<usize>) -> Vec<Value> {
    let end = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if first.is_some_and(|n| seen.len() >= n) {
            break;
        }
        match c.read(left) {
            Some(v) if v["method"] == json!("client.show_message") => seen.push(v),
            Some(_) => {}
            None => break,
        }
    }
    seen
}

/// Reads until a `mining.notify` (the proxy now counts the miner among those that get jobs).
fn wait_for_job(c: &mut Client, seen: &[Value]) {
    if seen.iter().any(|v| v["method"] == json!("mining.notify")) {
        return;
    }
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if c.read(Duration::from_secs(1))
            .is_some_and(|v| v["method"] == json!("mining.notify"))
        {
            return;
        }
    }
    panic!("no mining.notify");
}

/// Two working miners each get the pool's message exactly once; a miner that subscribed but is not authorized
/// (it gets no jobs) gets none.
fn check_two_miners_and_a_bystander(
    addr: std::net::SocketAddr,
    subscribe: Value,
    send: impl FnOnce(),
) {
    let mut miners: Vec<Client> = (0..2).map(|_| Client::connect(addr)).collect();
    for c in &mut miners {
        let s = c.request("mining.subscribe", subscribe.clone());
        c.reply(s, Duration::from_secs(5));
        let a = c.request("mining.authorize", json!(["rig.1", "x"]));
        let (r, seen) = c.reply(a, Duration::from_secs(5));
        assert_eq!(r["result"], json!(true), "{r}");
        wait_for_job(c, &seen);
    }
    let mut bystander = Client::connect(addr);
    let s = bystander.request("mining.subscribe", subscribe);
    bystander.reply(s, Duration::from_secs(5));

    send();
    let want = json!({"id": null, "method": "client.show_message", "params": [TEXT]});
    for (i, c) in miners.iter_mut().enumerate() {
        // Wait for the first, then a little longer for a duplicate.
        let mut got = show_messages(c, Duration::from_secs(10), Some(1));
        assert!(!got.is_empty(), "miner {i} got no client.show_message");
        got.extend(show_messages(c, Duration::from_millis(300), None));
        assert_eq!(got, vec![want.clone()], "miner {i}");
    }
    assert_eq!(
        show_messages(&mut bystander, Duration::from_millis(500), None),
        Vec::<Value>::new(),
        "a miner that gets no jobs gets no pool message"
    );
}

#[test]
fn a_pool_message_reaches_every_working_miner_once_with_its_text_intact() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    check_two_miners_and_a_bystander(proxy.first_addr().unwrap(), json!(["test/1"]), || {
        pool.show_message_all(TEXT)
    });
}

#[test]
fn an_equihash_pool_message_reaches_every_working_miner_once_with_its_text_intact() {
    let pool = EquihashPool::start(EquihashPoolConfig::default()).unwrap();
    let yaml = proxy_yaml(&[pool.addr()], "").replace("protocol: stratum", "protocol: equihash");
    let proxy = start_proxy(&yaml);
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "ready", || {
        ProxyStats::get(&st.pool_ready) == 1
    });
    check_two_miners_and_a_bystander(
        proxy.first_addr().unwrap(),
        json!(["test/1", null, "127.0.0.1", 1]),
        || pool.show_message_all(TEXT),
    );
}
