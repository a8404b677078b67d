//! Bad input from miners: each offender gets a JSON-RPC error or is disconnected, and a good miner beside it
//! keeps getting its shares accepted.

mod common;

use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, MinerReport, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

fn good_miner(addr: SocketAddr) -> JoinHandle<MinerReport> {
    let cfg = SimMinerConfig {
        addr,
        worker: "good.rig".into(),
        max_shares: Some(4),
        duration: Duration::from_secs(60),
        ..SimMinerConfig::default()
    };
    spawn_miner(cfg, Arc::new(AtomicBool::new(false)))
}

fn assert_good(h: JoinHandle<MinerReport>) {
    let r = h.join().unwrap();
    assert_eq!(r.accepted, 4, "the good miner was not affected: {r:?}");
    assert!(!r.disconnected_by_peer, "{r:?}");
}

fn setup(
    extra: &str,
) -> (
    fastproxy_sim::pool::SimPool,
    fastproxy::proxy::RunningProxy,
    SocketAddr,
) {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], extra));
    let addr = proxy.first_addr().unwrap();
    (pool, proxy, addr)
}

#[test]
fn an_over_long_line_disconnects_only_its_sender() {
    let (_pool, proxy, addr) = setup("max_line_length: 4096");
    let good = good_miner(addr);
    let mut c = Client::connect(addr);
    let _ = c.send_raw(&vec![b'{'; 5000]);
    assert!(c.closed_within(Duration::from_secs(5)));
    // Split across writes, with a newline at the end, it is refused just the same.
    let mut c = Client::connect(addr);
    let _ = c.send_raw(&vec![b' '; 3000]);
    std::thread::sleep(Duration::from_millis(50));
    let _ = c.send_raw(&vec![b' '; 3000]);
    let _ = c.send_raw(b"\n");
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_good(good);
    assert!(ProxyStats::get(&proxy.stats("test").unwrap().miners_connected) <= 1);
}

#[test]
fn invalid_json_gets_an_error_and_repeated_garbage_a_disconnect() {
    let (_pool, proxy, addr) = setup("");
    let good = good_miner(addr);
    let mut c = Client::connect(addr);
    c.send_raw(b"this is not json\n").unwrap();
    let r = c.read(Duration::from_secs(5)).expect("an error reply");
    assert_eq!(r["id"], json!(null));
    assert_eq!(r["error"][0], json!(20));
    assert_eq!(r["error"][1], json!("invalid JSON"));
    c.send_raw(b"[1,2,3]\n").unwrap();
    let r = c.read(Duration::from_secs(5)).unwrap();
    assert_eq!(r["error"][1], json!("request is not a JSON object"));
    // Invalid UTF-8 and deep nesting are just invalid requests.
    c.send_raw(b"{\"id\":1,\"method\":\"\xff\xfe\"}\n").unwrap();
    assert_eq!(
        c.read(Duration::from_secs(5)).unwrap()["error"][0],
        json!(20)
    );
    let deep = format!("{}{}\n", "[".repeat(2000), "]".repeat(2000));
    c.send_raw(deep.as_bytes()).unwrap();
    assert_eq!(
        c.read(Duration::from_secs(5)).unwrap()["error"][0],
        json!(20)
    );
    for _ in 0..10 {
        let _ = c.send_raw(b"garbage\n");
    }
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "disconnected after repeated garbage"
    );
    let st = proxy.stats("test").unwrap();
    assert_eq!(
        ProxyStats::get(&st.miners_kicked),
        1,
        "the garbage sender counts as kicked, once"
    );
    assert_good(good);
}

#[test]
fn requests_out_of_order_or_with_wrong_params_get_the_conventional_errors() {
    let (_pool, _proxy, addr) = setup("");
    let good = good_miner(addr);
    let mut c = Client::connect(addr);
    let id = c.request(
        "mining.submit",
        json!(["w", "j", "00", "00000000", "00000000"]),
    );
    assert_eq!(
        c.reply(id, Duration::from_secs(5)).0["error"][0],
        json!(25),
        "not subscribed"
    );
    let s = c.request("mining.subscribe", json!(["test/1"]));
    let (r, _) = c.reply(s, Duration::from_secs(5));
    let n = r["result"][2].as_u64().unwrap() as usize;
    let id = c.request(
        "mining.submit",
        json!(["w", "j", "00".repeat(n), "00000000", "00000000"]),
    );
    assert_eq!(
        c.reply(id, Duration::from_secs(5)).0["error"][0],
        json!(24),
        "not authorized"
    );
    let id = c.request("mining.authorize", json!([17, "x"]));
    assert_eq!(
        c.reply(id, Duration::from_secs(5)).0["error"][0],
        json!(20),
        "worker must be a string"
    );
    let id = c.request("mining.authorize", json!(["rig.1", "x"]));
    assert_eq!(c.reply(id, Duration::from_secs(5)).0["result"], json!(true));
    for (params, what) in [
        (
            json!(["w", "j", "00".repeat(n + 1), "00000000", "00000000"]),
            "extranonce2 size",
        ),
        (
            json!(["w", "j", "zz".repeat(n), "00000000", "00000000"]),
            "extranonce2 hex",
        ),
        (
            json!(["w", "j", "00".repeat(n), 5, "00000000"]),
            "ntime type",
        ),
        (json!(["w", "j", "00".repeat(n), "00000000"]), "param count"),
        (json!("not a list"), "params type"),
        (
            json!(["w", "j", "00".repeat(n), "00000000", "00000000", "ffffffff"]),
            "version bits without configure",
        ),
    ] {
        let id = c.request("mining.submit", params);
        let (r, _) = c.reply(id, Duration::from_secs(5));
        assert_eq!(r["error"][0], json!(20), "{what}: {r}");
    }
    let id = c.request("mining.no_such_method", json!([]));
    let (r, _) = c.reply(id, Duration::from_secs(5));
    assert_eq!(r["error"][1], json!("unknown method"));
    // String ids come back as the same string.
    c.send_raw(b"{\"id\":\"abc\",\"method\":\"mining.ping\",\"params\":[]}\n")
        .unwrap();
    let r = loop {
        let v = c.read(Duration::from_secs(5)).unwrap();
        if v.get("method").is_none() {
            break v;
        }
    };
    assert_eq!(r["id"], json!("abc"));
    assert_good(good);
}

#[test]
fn a_connection_that_never_subscribes_is_closed_after_the_idle_timeout() {
    let (_pool, proxy, addr) = setup("idle_timeout: 1");
    let mut silent = Client::connect(addr);
    let mut half = Client::connect(addr);
    let s = half.request("mining.subscribe", json!([]));
    half.reply(s, Duration::from_secs(5));
    let mut ok = Client::connect(addr);
    ok.handshake();
    assert!(silent.closed_within(Duration::from_secs(4)));
    assert!(
        half.closed_within(Duration::from_secs(4)),
        "subscribed but never authorized"
    );
    assert!(
        !ok.closed_within(Duration::from_millis(1500)),
        "an authorized miner stays"
    );
    assert_eq!(
        ProxyStats::get(&proxy.stats("test").unwrap().miners_connected),
        1
    );
}

#[test]
fn shares_beyond_the_pending_limit_are_refused_at_once() {
    let pool = pool(SimPoolConfig {
        answer_submits: false,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(
        &[pool.addr()],
        "max_pending_shares: 2\nshare_timeout: 3",
    ));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (_, n, notes) = c.handshake();
    let job = c.job_id(&notes);
    let ids: Vec<u64> = (0..3).map(|i| c.submit_numbered(&job, n, i)).collect();
    let (r, _) = c.reply(ids[2], Duration::from_secs(2));
    assert_eq!(r["error"][0], json!(20));
    assert!(r["error"][1].as_str().unwrap().contains("too many"), "{r}");
    // The two forwarded ones are answered (with a timeout error) later: exactly one reply each.
    for id in &ids[..2] {
        let (r, _) = c.reply(*id, Duration::from_secs(6));
        assert_eq!(r["error"][0], json!(20));
    }
    assert!(c.read(Duration::from_millis(500)).is_none());
}

#[test]
fn a_miner_that_does_not_read_is_disconnected_before_its_queue_grows_without_bound() {
    let (_pool, _proxy, addr) = setup("max_write_buffer: 65536");
    let good = good_miner(addr);
    let mut c = Client::connect(addr);
    let ping = b"{\"id\":1,\"method\":\"mining.ping\",\"params\":[]}\n".repeat(1000);
    let mut refused = false;
    for _ in 0..400 {
        if c.send_raw(&ping).is_err() {
            refused = true;
            break;
        }
    }
    assert!(
        refused || c.closed_within(Duration::from_secs(5)),
        "a reader that never reads is cut off"
    );
    assert_good(good);
}

/// The half-close kept for certain: the pool holds its verdict, so the proxy reads the miner's end of stream
/// while the share is still pending, and the share's reply (the proxy's timeout error) must still reach it.
#[test]
fn a_half_closed_miner_gets_the_reply_to_a_share_still_pending_at_its_end_of_stream() {
    let (pool, proxy, addr) = setup("share_timeout: 2");
    pool.set_answer_submits(false);
    let mut c = Client::connect(addr);
    let (e1, n, mut notes) = c.handshake();
    let (job, difficulty) = current_work(&mut c, &mut notes);
    let e1 = fastproxy::hex::decode(&e1).unwrap();
    let e2 = vec![0u8; n as usize];
    let nonce = nonce_for(&job, &e1, &e2, difficulty, true);
    let id = c.submit_share(&job, &e2, nonce);
    c.shutdown_write();
    let (r, _) = c.reply(id, Duration::from_secs(10));
    assert_eq!(r["error"][0], json!(20), "{r}");
    let why = r["error"][1].as_str().unwrap_or_default();
    assert!(why.contains("did not answer"), "{r}");
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "then the proxy closes"
    );
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "slot freed", || {
        ProxyStats::get(&st.miners_connected) == 0
    });
    assert_eq!(pool.stats().submits, 1);
}

#[test]
fn a_half_closed_miner_still_gets_the_replies_to_its_shares() {
    let (pool, proxy, addr) = setup("");
    let mut c = Client::connect(addr);
    let (e1, n, mut notes) = c.handshake();
    let (job, difficulty) = current_work(&mut c, &mut notes);
    let e1 = fastproxy::hex::decode(&e1).unwrap();
    let e2 = vec![0u8; n as usize];
    // One share that meets the difficulty and one that misses it; then the miner half-closes.
    let ids: Vec<u64> = [true, false]
        .into_iter()
        .map(|want| {
            let nonce = nonce_for(&job, &e1, &e2, difficulty, want);
            c.submit_share(&job, &e2, nonce)
        })
        .collect();
    c.shutdown_write();
    let (r, _) = c.reply(ids[0], Duration::from_secs(5));
    assert_eq!(
        r["result"],
        json!(true),
        "the pool's acceptance arrives: {r}"
    );
    assert_eq!(r["error"], json!(null), "{r}");
    let (r, _) = c.reply(ids[1], Duration::from_secs(5));
    assert_eq!(
        r["error"][0],
        json!(23),
        "the pool's rejection arrives: {r}"
    );
    assert_ne!(r["result"], json!(true), "{r}");
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "then the proxy closes"
    );
    let st = proxy.stats("test").unwrap();
    wait_until(Duration::from_secs(5), "slot freed", || {
        ProxyStats::get(&st.miners_connected) == 0
    });
    let ps = pool.stats();
    assert_eq!((ps.submits, ps.accepted), (2, 1), "{ps:?}");
    assert_eq!(ps.rejected_by_code.get(&23), Some(&1), "{ps:?}");
}
