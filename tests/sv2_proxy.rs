//! V1 miners through fastproxy to a Stratum V2 pool (issue 14), over 127.0.0.1: the checking `Sv2SimPool`
//! (the reference crates' Noise responder and codec) rebuilds and hashes every share it gets.

mod common;

use common::sv2::*;
use common::*;
use fastproxy::stats::ProxyStats;
use fastproxy_sim::miner::{spawn_miner, MinerReport};
use fastproxy_sim::pool::SimPoolConfig;
use fastproxy_sim::sv2_pool::Sv2PoolConfig;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn many_v1_miners_share_one_sv2_channel_with_distinct_prefixes_and_every_share_is_valid() {
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], ""));
    let addr = proxy.first_addr().unwrap();
    let n = 24;
    let mut cfgs: Vec<_> = (0..n).map(|i| miner(addr, i, 5)).collect();
    for c in cfgs.iter_mut().step_by(2) {
        c.version_rolling = true;
    }
    let reports = run_all(cfgs);
    let mut e1s = BTreeSet::new();
    for (i, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "miner {i}: {r:?}");
        assert_eq!(r.accepted, 5, "miner {i}: {r:?}");
        assert_eq!(r.rejected, 0, "miner {i}: {r:?}");
        assert_eq!(r.duplicate_or_unknown_replies, 0, "miner {i}: {r:?}");
        if i % 2 == 0 {
            assert!(r.version_mask.is_some_and(|m| m != 0), "miner {i}: {r:?}");
        }
        e1s.insert(r.extranonce1.clone());
    }
    assert_eq!(e1s.len(), n, "every miner has its own prefix");
    let st = pool.stats();
    assert_eq!(st.accepted, 5 * n as u64, "{st:?}");
    assert!(st.rejected_by_code.is_empty(), "{:?}", st.rejected_by_code);
    assert_eq!(st.connections_total, 1, "one channel for all the miners");
    assert_eq!(st.user_identities, vec!["acct.sv2".to_string()]);
    // Version-rolled shares reached the pool with rolled bits (the pool checked them in the header hash).
    let rolled = st
        .accepted_shares
        .iter()
        .filter(|s| s.version & 0x1fff_e000 != 0)
        .count();
    assert!(rolled > 0, "no version-rolled share reached the pool");
    // The pool rebuilt each share's coinbase from its extranonce: the miner's prefix then its extranonce2.
    let prefixes: BTreeSet<_> = st
        .accepted_shares
        .iter()
        .map(|s| s.extranonce[..2].to_vec())
        .collect();
    assert_eq!(
        prefixes.len(),
        n,
        "each miner's shares carry its own prefix"
    );
    assert!(st.accepted_shares.iter().all(|s| s.extranonce.len() == 8));
}

/// Sums of what the miners heard.
fn totals(reports: &[MinerReport]) -> (u64, u64) {
    let accepted = reports.iter().map(|r| r.accepted).sum();
    let rejected = reports.iter().map(|r| r.rejected).sum();
    (accepted, rejected)
}

#[test]
fn shares_the_pool_rejects_are_answered_false_with_its_code_and_the_others_true() {
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    for code in ["stale-share", "difficulty-too-low", "duplicate-share"] {
        pool.reject_next(code);
    }
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], ""));
    let addr = proxy.first_addr().unwrap();
    let reports = run_all((0..6).map(|i| miner(addr, i, 6)).collect());
    for (i, r) in reports.iter().enumerate() {
        assert!(r.error.is_none(), "miner {i}: {r:?}");
        assert_eq!(r.accepted + r.rejected, 6, "miner {i}: {r:?}");
        assert_eq!(r.duplicate_or_unknown_replies, 0, "miner {i}: {r:?}");
    }
    let st = pool.stats();
    let (accepted, rejected) = totals(&reports);
    // Exactly the pool's verdicts: never true for a share it refused.
    assert_eq!(rejected, 3, "{reports:?}");
    assert_eq!(accepted, st.accepted, "{st:?}");
    assert_eq!(st.rejected_by_code.values().sum::<u64>(), 3);
    let messages: Vec<&String> = reports.iter().flat_map(|r| &r.reject_messages).collect();
    for code in ["stale-share", "difficulty-too-low", "duplicate-share"] {
        assert!(
            messages.iter().any(|m| m.contains(code)),
            "{code} not passed on: {messages:?}"
        );
    }
    let codes: u64 = reports
        .iter()
        .map(|r| r.reject_codes.get(&21).copied().unwrap_or(0))
        .sum();
    assert_eq!(codes, 1, "stale-share is V1 error 21");
}

#[test]
fn batched_successes_answer_each_covered_share_once_and_the_unacknowledged_rest_times_out() {
    let pool = sv2_pool(Sv2PoolConfig {
        batch_size: 4,
        ..Sv2PoolConfig::default()
    });
    let key = pool.authority_public_key();
    // A timeout generous enough that a miner starting late on a loaded machine does not leave the earlier
    // shares waiting for its batch past it (the test waits that long for the 3 unacknowledged ones).
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], "sv2_share_timeout: 8"));
    let addr = proxy.first_addr().unwrap();
    // 3 x 5 = 15 shares: three Successes of 4, and 3 the pool never acknowledges.
    let reports = run_all((0..3).map(|i| miner(addr, i, 5)).collect());
    let st = pool.stats();
    assert_eq!(st.accepted, 15, "{st:?}");
    assert_eq!(st.successes_sent, 3, "{st:?}");
    let (accepted, rejected) = totals(&reports);
    assert_eq!((accepted, rejected), (12, 3), "{reports:?}");
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.duplicate_or_unknown_replies, 0, "miner {i}: {r:?}");
        assert_eq!(r.unanswered, 0, "miner {i}: {r:?}");
        for m in &r.reject_messages {
            assert!(m.contains("did not answer"), "miner {i}: {m}");
        }
    }
}

#[test]
fn pool_loss_with_shares_pending_answers_each_exactly_once_with_an_error() {
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    pool.set_answer_submits(false);
    let proxy = start_proxy(&yaml(
        &[P::Sv2(pool.addr(), &key)],
        "retry_initial: 0.1\nretry_max: 0.5",
    ));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    // Its answer comes with the handshake's (among its notes).
    c.request("mining.extranonce.subscribe", serde_json::json!([]));
    let (_, size, notes) = c.handshake();
    let job = c.job_id(&notes);
    let ids: Vec<u64> = (0..5).map(|i| c.submit_numbered(&job, size, i)).collect();
    wait_until(Duration::from_secs(10), "the pool got the shares", || {
        pool.stats().submits == 5
    });
    pool.disconnect_all();
    let mut answers = std::collections::BTreeMap::new();
    let mut notes = Vec::new();
    let start = std::time::Instant::now();
    while answers.len() < ids.len() && start.elapsed() < Duration::from_secs(10) {
        if let Some(v) = c.read(Duration::from_millis(200)) {
            if v["id"].is_null() {
                notes.push(v.clone());
            }
            if let Some(id) = v["id"].as_u64() {
                *answers.entry(id).or_insert(0) += 1;
                assert!(v["result"] != serde_json::json!(true), "{v}");
                assert!(v["error"].to_string().contains("connection lost"), "{v}");
            }
        }
    }
    // No second reply comes for any of them.
    while let Some(v) = c.read(Duration::from_millis(500)) {
        match v["id"].as_u64() {
            Some(id) => *answers.entry(id).or_insert(0) += 1,
            None => notes.push(v),
        }
    }
    let want: std::collections::BTreeMap<u64, i32> = ids.iter().map(|&id| (id, 1)).collect();
    assert_eq!(answers, want);
    // The upstream comes back on a new channel and shares are answered again.
    wait_until(Duration::from_secs(10), "reconnected", || {
        pool.stats().connections_total == 2
    });
    pool.set_answer_submits(true);
    let (work, difficulty) = current_work(&mut c, &mut notes);
    let set = notes
        .iter()
        .rev()
        .find(|v| v["method"] == serde_json::json!("mining.set_extranonce"))
        .expect("the new channel's extranonce reached the miner");
    let e1 = fastproxy::hex::decode(set["params"][0].as_str().unwrap()).unwrap();
    let e2 = vec![7u8; size as usize];
    let id = c.submit_share(&work, &e2, nonce_for(&work, &e1, &e2, difficulty, true));
    let (r, _) = c.reply(id, Duration::from_secs(10));
    assert_eq!(r["result"], serde_json::json!(true), "{r}");
}

#[test]
fn set_extranonce_prefix_reaches_subscribed_miners_and_reconnects_the_others() {
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], ""));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut follower = miner(addr, 0, u64::MAX);
    follower.extranonce_subscribe = true;
    follower.max_shares = None;
    follower.submit_interval = Some(Duration::from_millis(20));
    let mut plain = follower.clone();
    plain.worker = "farm.plain".into();
    plain.extranonce_subscribe = false;
    let h1 = spawn_miner(follower, stop.clone());
    let h2 = spawn_miner(plain, stop.clone());
    wait_until(Duration::from_secs(10), "shares before", || {
        pool.stats().accepted >= 10
    });
    let before = pool
        .stats()
        .accepted_shares
        .last()
        .unwrap()
        .extranonce_prefix
        .clone();
    pool.new_extranonce_prefix_all();
    wait_until(
        Duration::from_secs(10),
        "shares under the new prefix",
        || {
            pool.stats()
                .accepted_shares
                .iter()
                .filter(|s| s.extranonce_prefix != before)
                .count()
                >= 10
        },
    );
    stop.store(true, Ordering::Relaxed);
    let follower = h1.join().unwrap();
    let plain = h2.join().unwrap();
    assert!(follower.set_extranonce_received >= 1, "{follower:?}");
    assert!(!follower.disconnected_by_peer, "{follower:?}");
    assert!(
        follower.extranonce1.starts_with(
            &pool
                .stats()
                .accepted_shares
                .last()
                .unwrap()
                .extranonce_prefix
        ),
        "{follower:?}"
    );
    assert!(plain.disconnected_by_peer, "{plain:?}");
    assert_eq!(pool.stats().connections_total, 1);
}

#[test]
fn reconnect_from_the_pool_opens_a_new_channel_and_miners_stay() {
    let pool = sv2_pool(Sv2PoolConfig::default());
    let key = pool.authority_public_key();
    let proxy = start_proxy(&yaml(&[P::Sv2(pool.addr(), &key)], ""));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut cfg = miner(addr, 0, u64::MAX);
    cfg.max_shares = None;
    cfg.extranonce_subscribe = true;
    cfg.submit_interval = Some(Duration::from_millis(20));
    let h = spawn_miner(cfg, stop.clone());
    wait_until(Duration::from_secs(10), "first shares", || {
        pool.stats().accepted >= 5
    });
    pool.send_reconnect_all("", 0);
    wait_until(Duration::from_secs(10), "a second connection", || {
        pool.stats().connections_total == 2
    });
    let n = pool.stats().accepted;
    wait_until(Duration::from_secs(10), "shares on the new channel", || {
        pool.stats().accepted >= n + 5
    });
    stop.store(true, Ordering::Relaxed);
    let r = h.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
    assert_eq!(pool.stats().user_identities.len(), 2);
}

#[test]
fn failover_from_sv2_to_v1_and_back_keeps_miners_connected() {
    let keypair = fastproxy_sim::sv2_pool::authority_keypair();
    let cfg = Sv2PoolConfig {
        authority: Some(keypair),
        ..Sv2PoolConfig::default()
    };
    let first = sv2_pool(cfg.clone());
    let sv2_addr = first.addr();
    let key = first.authority_public_key();
    let v1 = pool(SimPoolConfig::default());
    let proxy = start_proxy(&yaml(
        &[P::Sv2(sv2_addr, &key), P::V1(v1.addr())],
        "retry_initial: 0.1\nretry_max: 0.5\nfailback_interval: 1\nfailover_after: 2",
    ));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut mc = miner(addr, 0, u64::MAX);
    mc.max_shares = None;
    mc.extranonce_subscribe = true;
    mc.version_rolling = true;
    mc.submit_interval = Some(Duration::from_millis(20));
    let h = spawn_miner(mc, stop.clone());
    wait_until(Duration::from_secs(10), "shares on the SV2 pool", || {
        first.stats().accepted >= 5
    });
    first.stop();
    wait_until(Duration::from_secs(20), "shares on the V1 pool", || {
        v1.stats().accepted >= 5
    });
    let again = sv2_pool(Sv2PoolConfig {
        listen: sv2_addr,
        ..cfg
    });
    wait_until(
        Duration::from_secs(20),
        "shares on the SV2 pool again",
        || again.stats().accepted >= 5,
    );
    stop.store(true, Ordering::Relaxed);
    let r = h.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert!(r.set_extranonce_received >= 2, "{r:?}");
    assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
    assert_eq!(r.unanswered, 0, "{r:?}");
    assert!(
        again.stats().rejected_by_code.is_empty(),
        "{:?}",
        again.stats()
    );
}

#[test]
fn a_wrong_authority_key_is_refused_with_a_log_line_and_the_next_pool_serves() {
    let sv2 = sv2_pool(Sv2PoolConfig::default());
    let other_key = sv2_pool(Sv2PoolConfig::default()).authority_public_key();
    let v1 = pool(SimPoolConfig::default());
    let config = yaml(&[P::Sv2(sv2.addr(), &other_key), P::V1(v1.addr())], "");
    let (child, addr) = spawn_proxy_binary(&config, "wrong-key");
    let reports = run_all(vec![miner(addr, 0, 3)]);
    let (status, log) = child.terminate(Duration::from_secs(10));
    assert!(status.success(), "{log}");
    assert_eq!(reports[0].accepted, 3, "{:?}\n{log}", reports[0]);
    assert_eq!(v1.stats().accepted, 3);
    assert_eq!(
        sv2.stats().setup_flags.len(),
        0,
        "nothing sent past the handshake"
    );
    // Refused once, then the next pool at once: retrying a pool with the wrong key cannot help.
    assert_eq!(sv2.stats().connections_total, 1, "{log}");
    assert!(
        log.contains("pool certificate is not signed by the configured authority key"),
        "{log}"
    );
}

/// A pool written here with the reference crates (Noise responder, codec, message types): one connection,
/// driven step by step by the test, to send what a pool should not.
struct RawPool {
    s: std::net::TcpStream,
    enc: codec_sv2::TransportEncryptState,
    dec: Option<codec_sv2::TransportDecryptState>,
    decoder: codec_sv2::NoiseDecoder,
}

impl RawPool {
    /// A listener and the authority key (base58-check) of the pool that will accept on it.
    fn listen() -> (std::net::TcpListener, ([u8; 32], [u8; 32]), String) {
        let keypair = fastproxy_sim::sv2_pool::authority_keypair();
        let key = fastproxy::protocol::sv2::AuthorityKey::from_x_only(keypair.0)
            .unwrap()
            .to_base58();
        (
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            keypair,
            key,
        )
    }

    /// Accepts one connection and answers its handshake.
    fn accept(listener: &std::net::TcpListener, keys: ([u8; 32], [u8; 32])) -> RawPool {
        let (s, enc, dec) = accept_noise(listener, keys, Duration::from_secs(60));
        RawPool {
            s,
            enc,
            dec: Some(dec),
            decoder: codec_sv2::NoiseDecoder::new(),
        }
    }

    /// The type of the next message from the proxy.
    fn next(&mut self) -> u8 {
        use std::io::Read;
        loop {
            self.s.read_exact(self.decoder.writable()).unwrap();
            let state = self.dec.take().unwrap();
            match self.decoder.next_transport_frame(state).unwrap() {
                codec_sv2::Decrypted::Incomplete(_, st) => self.dec = Some(st),
                codec_sv2::Decrypted::Frame(frame, st) => {
                    self.dec = Some(st);
                    return frame.header().msg_type();
                }
            }
        }
    }

    fn send<T: binary_sv2::Serialize + binary_sv2::GetSize>(
        &mut self,
        msg: T,
        ty: u8,
        channel: bool,
    ) {
        use std::io::Write;
        let frame = framing_sv2::framing::MessageFrame::from_message(msg, ty, 0, channel).unwrap();
        let out = codec_sv2::NoiseEncoder::new()
            .encode_transport(frame, &mut self.enc)
            .unwrap();
        self.s.write_all(&out).unwrap();
    }

    /// A frame given as header and payload bytes.
    fn send_raw(&mut self, bytes: Vec<u8>) {
        use std::io::Write;
        let frame = framing_sv2::framing::SerializedFrame::from_bytes(bytes).unwrap();
        let out = codec_sv2::NoiseEncoder::new()
            .encode_transport(frame, &mut self.enc)
            .unwrap();
        self.s.write_all(&out).unwrap();
    }

    /// Answers SetupConnection and OpenExtendedMiningChannel (channel 2 in group 1, prefix 01020304, 8 bytes,
    /// any hash a share), then sends job 5 to the group and activates it.
    fn open_channel_with_job(&mut self) {
        assert_eq!(self.next(), 0x00, "SetupConnection");
        let ok = common_messages_sv2::SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        };
        self.send(ok, 0x01, false);
        assert_eq!(self.next(), 0x13, "OpenExtendedMiningChannel");
        self.send(sv2_msgs::channel_opened(), 0x14, false);
        self.send(sv2_msgs::job(5, None, true), 0x1f, true);
        self.send(sv2_msgs::prev_hash(5), 0x20, true);
    }

    /// Whether the proxy closed the connection within `limit`.
    fn closed_within(&mut self, limit: Duration) -> bool {
        use std::io::Read;
        let start = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        self.s
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while start.elapsed() < limit {
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
                Ok(_) => {}
            }
        }
        false
    }
}

/// The raw pool opens a channel, sends a job, waits for one share and then sends what a pool should not: the
/// proxy must ignore it, except a Success covering the share but accepting none (the share gets one error,
/// "unconfirmed"), then drop the connection at bytes that fail decryption.
#[test]
fn bad_input_from_the_pool_is_ignored_or_drops_the_connection_never_a_wrong_verdict() {
    use binary_sv2::Str0255;
    use mining_sv2 as mining;
    let (listener, keypair, key) = RawPool::listen();
    let pool_addr = listener.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let pool_done = done.clone();
    let pool = std::thread::spawn(move || {
        let mut p = RawPool::accept(&listener, keypair);
        p.open_channel_with_job();
        assert_eq!(p.next(), 0x1b, "SubmitSharesExtended");
        // A success for sequence numbers never sent, one for an unknown channel, one whose count is short, an
        // error for an unknown channel, an unknown message type.
        let success = |channel_id, last, count| mining::SubmitSharesSuccess {
            channel_id,
            last_sequence_number: last,
            new_submits_accepted_count: count,
            new_shares_sum: 1,
        };
        p.send(success(2, 50, 1), 0x1c, true);
        p.send(success(77, 0, 1), 0x1c, true);
        // One covering the share but accepting none of it: which ones were accepted is unknown.
        p.send(success(2, 0, 0), 0x1c, true);
        let error = mining::SubmitSharesError {
            channel_id: 77,
            sequence_number: 0,
            error_code: Str0255::try_from("stale-share").unwrap(),
        };
        p.send(error, 0x1d, true);
        p.send_raw(vec![0, 0, 0x7e, 3, 0, 0, 1, 2, 3]);
        // Then bytes that fail decryption.
        std::io::Write::write_all(&mut p.s, &[0x42; 64]).unwrap();
        while !pool_done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let proxy = start_proxy(&yaml(
        &[P::Sv2(pool_addr, &key)],
        "retry_initial: 5\nretry_max: 5",
    ));
    let mut c = Client::connect(proxy.first_addr().unwrap());
    let (_, size, notes) = c.handshake();
    let job = c.job_id(&notes);
    assert_eq!(job, serde_json::json!("5"));
    let id = c.submit_numbered(&job, size, 1);
    let (r, _) = c.reply(id, Duration::from_secs(10));
    assert!(r["result"] != serde_json::json!(true), "{r}");
    assert!(r["error"].to_string().contains("unconfirmed"), "{r}");
    assert!(c
        .read(Duration::from_millis(500))
        .is_none_or(|v| v["id"] != serde_json::json!(id)));
    done.store(true, Ordering::Relaxed);
    pool.join().unwrap();
    let st = proxy.stats("test").unwrap();
    assert_eq!(ProxyStats::get(&st.shares_accepted), 0);
}

#[test]
fn a_pool_sending_only_unusable_messages_is_dropped() {
    let (listener, keypair, key) = RawPool::listen();
    let pool_addr = listener.local_addr().unwrap();
    let proxy = start_proxy(&yaml(
        &[P::Sv2(pool_addr, &key)],
        "retry_initial: 5\nretry_max: 5",
    ));
    let mut p = RawPool::accept(&listener, keypair);
    p.open_channel_with_job();
    for _ in 0..100 {
        p.send_raw(vec![0, 0, 0x7e, 1, 0, 0, 9]);
    }
    assert!(p.closed_within(Duration::from_secs(10)), "still connected");
    drop(proxy);
}

#[test]
fn with_vardiff_shares_meeting_only_the_miners_target_stay_local_and_the_rest_reach_the_sv2_pool() {
    // About one share in five meets the channel's target (the miners' start difficulty is 1e-7).
    let pool_diff = 1.0 / 2_097_152.0;
    let pool = sv2_pool(Sv2PoolConfig {
        difficulty: pool_diff,
        ..Sv2PoolConfig::default()
    });
    let key = pool.authority_public_key();
    let proxy = start_proxy(&yaml(
        &[P::Sv2(pool.addr(), &key)],
        "vardiff: { shares_per_minute: 6000, retarget_interval: 100, start_difficulty: 0.0000001, min_difficulty: 0.0000001 }",
    ));
    let addr = proxy.first_addr().unwrap();
    let vs = proxy.validation_stats("test").unwrap();
    let reports = run_all((0..4).map(|i| miner(addr, i, 40)).collect());
    let get = ProxyStats::get;
    for (i, r) in reports.iter().enumerate() {
        assert_eq!((r.accepted, r.rejected), (40, 0), "miner {i}: {r:?}");
        assert!(
            r.difficulty <= pool_diff,
            "never above the channel's: {r:?}"
        );
    }
    let ps = pool.stats();
    assert!(ps.rejected_by_code.is_empty(), "{ps:?}");
    // Only shares meeting the channel's target went up, each acknowledged by the pool.
    assert!(ps.accepted > 0, "{ps:?}");
    assert!(get(&vs.accepted_locally) > 0);
    assert_eq!(ps.accepted, get(&vs.forwarded));
    let st = proxy.stats("test").unwrap();
    assert_eq!(get(&st.shares_accepted), ps.accepted);
    assert_eq!(get(&vs.accepted_locally) + ps.accepted, 160);
}

#[test]
fn a_reload_moves_miners_from_a_v1_pool_to_an_sv2_pool_without_dropping_them() {
    let v1 = pool(SimPoolConfig::default());
    let sv2 = sv2_pool(Sv2PoolConfig::default());
    let key = sv2.authority_public_key();
    let mut proxy = start_proxy(&yaml(&[P::V1(v1.addr())], ""));
    let addr = proxy.first_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut cfg = miner(addr, 0, u64::MAX);
    cfg.max_shares = None;
    cfg.extranonce_subscribe = true;
    cfg.submit_interval = Some(Duration::from_millis(20));
    let h = spawn_miner(cfg, stop.clone());
    wait_until(Duration::from_secs(10), "shares on the V1 pool", || {
        v1.stats().accepted >= 5
    });
    let new = fastproxy::config::Config::from_yaml(&yaml(&[P::Sv2(sv2.addr(), &key)], "")).unwrap();
    proxy.reload(new).expect("an SV2 pool list reloads");
    wait_until(Duration::from_secs(10), "shares on the SV2 pool", || {
        sv2.stats().accepted >= 5
    });
    stop.store(true, Ordering::Relaxed);
    let r = h.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert!(r.set_extranonce_received >= 1, "{r:?}");
    assert_eq!(r.duplicate_or_unknown_replies, 0, "{r:?}");
}
