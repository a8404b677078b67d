//! A miner the proxy closes on purpose (a kick) while it is still sending: it reads every reply the proxy sent
//! before the kick, then a clean end of stream, never a reset; and a kicked socket is closed after the deadline.

mod common;

use common::{pool, proxy_yaml, start_proxy};
use fastproxy::stats::ProxyStats;
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Submits written after the kick was counted, while the miner still reads nothing.
const AFTER_KICK: u64 = 20;

#[test]
fn a_miner_kicked_while_submitting_reads_every_reply_and_a_clean_close() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "idle_timeout: 1"));
    let stats = proxy.stats("test").unwrap();
    let mut s = TcpStream::connect(proxy.first_addr().unwrap()).unwrap();
    // It never subscribes: each submit is answered "not subscribed" and the idle timeout kicks it. It writes
    // without reading until after the kick, so replies wait unread in its socket as the kick happens.
    let submit = |id: u64| {
        json!({"id": id, "method": "mining.submit",
            "params": ["w", "1", "00000000", "00000000", "00000000"]})
        .to_string()
            + "\n"
    };
    let start = Instant::now();
    let (mut sent, mut write_failed) = (0u64, None);
    while ProxyStats::get(&stats.miners_kicked) == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "no idle kick");
        sent += 1;
        if let Err(e) = s.write_all(submit(sent).as_bytes()) {
            write_failed = Some(format!("submit {sent}, before the kick: {e}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // More once the kick was counted, in one write: they reach the lingering socket well within its deadline
    // however slowly this thread runs.
    if write_failed.is_none() {
        let after: String = (sent + 1..=sent + AFTER_KICK).map(submit).collect();
        sent += AFTER_KICK;
        if let Err(e) = s.write_all(after.as_bytes()) {
            write_failed = Some(format!("the {AFTER_KICK} submits after the kick: {e}"));
        }
    }
    let replies = replies_after_kick(&mut s, write_failed);
    let parsed = ProxyStats::get(&stats.shares_submitted);
    assert!(parsed > 0, "the proxy read some submits before the kick");
    assert!(
        parsed < sent,
        "submits were still arriving at the kick ({parsed} parsed of {sent} sent)"
    );
    assert_eq!(
        replies.len() as u64,
        parsed,
        "one reply per submit the proxy read: {replies:?}"
    );
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r["id"], json!(i + 1), "replies in order: {r}");
        assert_eq!(r["error"][0], json!(25), "not subscribed: {r}");
    }
    assert_eq!(ProxyStats::get(&stats.miners_kicked), 1);
    assert_eq!(
        ProxyStats::get(&stats.miners_connected),
        0,
        "gone at the kick"
    );
    drained_after_the_end(&mut s);
}

#[test]
fn a_miner_kicked_with_requests_unread_reads_its_replies_and_no_reset() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let stats = proxy.stats("test").unwrap();
    let mut s = TcpStream::connect(proxy.first_addr().unwrap()).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    // Nine bad lines (the ninth is one too many: a kick), then submits in the same burst: the proxy reads at most
    // 64 KiB at a time, so it kicks the miner with bytes it never read (fewer than the 256 KiB it drains).
    let mut burst = b"garbage\n".repeat(9);
    let submit = b"{\"id\":7,\"method\":\"mining.submit\",\"params\":[\"w\",\"1\",\"00\",\"00000000\",\"00000000\"]}\n";
    while burst.len() < 160 * 1024 {
        burst.extend_from_slice(submit);
    }
    let written = s.write_all(&burst);
    let replies = replies_after_kick(&mut s, None);
    assert!(written.is_ok(), "the burst was not drained: {written:?}");
    assert_eq!(replies.len(), 9, "one error per bad line: {replies:?}");
    assert!(
        replies.iter().all(|r| r["error"][0] == json!(20)),
        "{replies:?}"
    );
    assert_eq!(ProxyStats::get(&stats.miners_kicked), 1);
    assert_eq!(
        ProxyStats::get(&stats.shares_submitted),
        0,
        "nothing after the kick is parsed"
    );
    // A flood after the kick is not drained for long: past 256 KiB the socket is closed (a reset answers). An
    // unbounded drain would take these 8 MB well within the 2 s deadline.
    let mut flood_cut = false;
    for _ in 0..64 {
        if s.write_all(&[b'x'; 128 * 1024]).is_err() {
            flood_cut = true;
            break;
        }
    }
    assert!(flood_cut, "8 MB sent after the kick were all drained");
}

#[test]
fn a_kicked_miner_that_never_closes_is_closed_after_the_deadline() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], "idle_timeout: 1"));
    let mut s = TcpStream::connect(proxy.first_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("the kick ends the stream");
    assert!(got.is_empty(), "an idle miner is owed nothing");
    // Its sending side stays open: what it sends is dropped until the proxy closes the socket for good, after
    // which a write is answered with a reset and the next one fails.
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the lingering socket was never closed"
        );
        if s.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
            .is_err()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_miner_kicked_through_the_control_state_while_submitting_reads_its_replies_and_a_clean_close() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let (control, stats) = (proxy.control(), proxy.stats("test").unwrap());
    let mut c = common::Client::connect(proxy.first_addr().unwrap());
    let (_, size, notes) = c.handshake();
    let job = c.job_id(&notes);
    common::wait_until(Duration::from_secs(10), "the worker is listed", || {
        control.workers().len() == 1
    });
    // Shares (ids from 3 on, after subscribe and authorize) written without reading; the kick comes in the middle.
    let mut s = c.stream();
    let mut write_failed = None;
    let share = |i: u64| {
        json!({"id": i + 2, "method": "mining.submit",
            "params": ["rig.1", job, format!("{:0w$x}", i, w = 2 * size as usize), "00000000", "00000000"]})
        .to_string()
            + "\n"
    };
    for i in 1..=40u64 {
        if let Err(e) = s.write_all(share(i).as_bytes()) {
            write_failed = Some(format!("share {i}: {e}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    control.kick(Some("test"), "rig.1").unwrap();
    common::wait_until(Duration::from_secs(10), "the kick", || {
        ProxyStats::get(&stats.miners_kicked) == 1
    });
    // The rest in one write: it reaches the lingering socket well within its deadline however slowly this runs.
    if write_failed.is_none() {
        let rest: String = (41..=60u64).map(share).collect();
        if let Err(e) = s.write_all(rest.as_bytes()) {
            write_failed = Some(format!("shares 41 to 60: {e}"));
        }
    }
    let ids: Vec<u64> = replies_after_kick(&mut s, write_failed)
        .into_iter()
        .filter(|v| v.get("method").is_none())
        .map(|v| v["id"].as_u64().expect("a share's id"))
        .collect();
    assert!(!ids.is_empty(), "replies to the shares before the kick");
    let expected: Vec<u64> = (3..3 + ids.len() as u64).collect();
    assert_eq!(ids, expected, "one reply per share, in order, none lost");
    assert!(
        *ids.last().unwrap() < 60 + 2,
        "the shares after the kick are not answered: {ids:?}"
    );
    drained_after_the_end(&mut s);
}

/// What a kicked miner sends after the proxy's end of stream is still drained, not answered with a reset (after
/// which the next write would fail).
fn drained_after_the_end(s: &mut TcpStream) {
    for i in 0..3 {
        let sent = s.write_all(b"{\"id\":0,\"method\":\"mining.ping\",\"params\":[]}\n");
        assert!(sent.is_ok(), "write {i} after the end of stream: {sent:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything the kicked miner reads until the proxy's end of stream, as JSON lines. Panics when reading fails
/// (the replies were lost to a reset) or when an earlier write failed (`write_failed`: the proxy reset the
/// connection while the miner was still sending).
fn replies_after_kick(s: &mut TcpStream, write_failed: Option<String>) -> Vec<Value> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    if let Err(e) = s.read_to_end(&mut got) {
        panic!(
            "reading the replies after the kick failed ({e}) after {} byte(s): they were lost",
            got.len()
        );
    }
    if let Some(e) = write_failed {
        panic!("the proxy reset the kicked miner's connection: writing {e}");
    }
    String::from_utf8(got)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
