//! A reload that shortens `share_timeout` applies to shares sent after it at once: their shorter deadline
//! does not wait behind an older share's longer one (a silent pool answers neither).

mod common;

use common::*;
use fastproxy::config::Config;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_shortened_share_timeout_expires_new_shares_before_older_longer_ones() {
    let pool = pool(SimPoolConfig {
        answer_submits: false,
        ..SimPoolConfig::default()
    });
    let mut proxy = start_proxy(&proxy_yaml(&[pool.addr()], "share_timeout: 30"));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);
    let old = c.submit_numbered(&job, n, 1);
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "old share forwarded", || {
        ProxyStats::get(&st.shares_forwarded) == 1
    });

    // What SIGHUP does with the re-read file.
    proxy
        .reload(Config::from_yaml(&proxy_yaml(&[pool.addr()], "share_timeout: 1")).unwrap())
        .expect("reload");
    // The reload reaches the reactor through its command queue: later shares carry the new timeout once a
    // share sent after it is timed out, so send one per second until one is (bounded).
    let mut new_ids = Vec::new();
    let reply = 'wait: {
        for i in 2..14 {
            new_ids.push(c.submit_numbered(&job, n, i));
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                let Some(v) = c.read(Duration::from_millis(100)) else {
                    continue;
                };
                assert_ne!(v["id"], json!(old), "the old share came first: {v}");
                if v.get("method").is_none() && new_ids.iter().any(|&id| v["id"] == json!(id)) {
                    break 'wait v;
                }
            }
        }
        panic!("no share sent after the reload was answered within 12 s (the old one's deadline is 30 s)");
    };
    assert_eq!(reply["result"], json!(null), "{reply}");
    assert_eq!(reply["error"][0], json!(20), "{reply}");
    let msg = reply["error"][1].as_str().unwrap_or_default();
    assert!(msg.contains("did not answer within 1s"), "{reply}");
}
