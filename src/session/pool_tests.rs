//! Pool session and failover unit tests without sockets: scripted pool lines and time in, the exact bytes out
//! (to the pool and relayed to miners) and the events and phases that follow.

use super::failover::{backoff, Conns, Due, Failover, Phase, Policy};
use super::pool::{
    BadLine, Granted, HandshakeError, Ignored, PoolEvent, PoolPhase, PoolSession,
    MAX_POOL_BAD_LINES,
};
use crate::config::PoolUrl;
use crate::pending::Pending;
use crate::protocol::json::{IdBuf, Parser};
use crate::protocol::pool_msg::{self, HandshakeReq};
use crate::protocol::stratum::{self, AGENT};
use crate::protocol::{Dialect, Share};
use std::time::{Duration, Instant};

const V1_NOTIFY: &str = r#"["j1","00000000000000000000000000000000000000000000000000000000000000aa","01","02",[],"20000000","1d00ffff","5f000000",true]"#;
const EQ_NOTIFY: &str = r#"["e1","04000000","0000000000000000000000000000000000000000000000000000000000000001","0000000000000000000000000000000000000000000000000000000000000002","0000000000000000000000000000000000000000000000000000000000000000","5f000000","1d00ffff",true]"#;

fn url() -> PoolUrl {
    PoolUrl {
        host: "pool.example".into(),
        port: 3333,
        tls: false,
    }
}

/// An owned summary of a [`PoolEvent`], for `assert_eq!`.
#[derive(Debug, PartialEq)]
enum Ev {
    Nothing,
    Ready,
    Job(String),
    Target(String, Option<f64>),
    VersionMask(u32),
    Extranonce(Vec<u8>, usize),
    Reconnect(Option<String>, Option<u16>, Duration),
    ShowMessage(String),
    Ignored(String),
}

fn ev(e: PoolEvent<'_>) -> Ev {
    let text = |l: Vec<u8>| String::from_utf8(l).expect("utf-8 line");
    match e {
        PoolEvent::Nothing => Ev::Nothing,
        PoolEvent::Ready => Ev::Ready,
        PoolEvent::Job { line, .. } => Ev::Job(text(line)),
        PoolEvent::Target { line, difficulty } => Ev::Target(text(line), difficulty),
        PoolEvent::VersionMask(m) => Ev::VersionMask(m),
        PoolEvent::Extranonce { e1, n } => Ev::Extranonce(e1, n),
        PoolEvent::Reconnect { host, port, wait } => {
            Ev::Reconnect(host.map(str::to_string), port, wait)
        }
        PoolEvent::ShowMessage(t) => Ev::ShowMessage(t.to_string()),
        PoolEvent::Ignored(why) => Ev::Ignored(match why {
            Ignored::Unknown(m) => format!("unknown {m}"),
            other => format!("{other:?}"),
        }),
    }
}

/// A pool session driven by scripted lines, as the runtime drives it: handshake ids from a counter.
struct Script {
    s: PoolSession,
    ids: Vec<(u64, HandshakeReq)>,
    parser: Parser,
    validates: bool,
}

impl Script {
    /// Connected: returns the script and the handshake bytes it wrote.
    fn start(dialect: Dialect) -> (Script, String) {
        let now = Instant::now();
        let mut s = PoolSession::new(dialect, 0, url(), "acct.w".into(), "x".into(), now);
        assert_eq!(s.phase, PoolPhase::Connecting);
        let mut ids = Vec::new();
        let mut out = Vec::new();
        s.start_handshake(&mut out, |r| {
            ids.push((ids.len() as u64 + 1, r));
            ids.len() as u64
        });
        let script = Script {
            s,
            ids,
            parser: Parser::default(),
            validates: true,
        };
        (script, String::from_utf8(out).unwrap())
    }

    fn id_of(&self, req: HandshakeReq) -> u64 {
        self.ids.iter().find(|(_, r)| *r == req).expect("sent").0
    }

    /// The pool's reply line to handshake request `req`.
    fn reply(&mut self, req: HandshakeReq, rest: &str) -> Result<Ev, HandshakeError> {
        let mut line = format!("{{\"id\":{},{rest}}}", self.id_of(req)).into_bytes();
        let s = &mut self.s;
        self.parser.parse_keeping_params(&mut line, |m| {
            let m = m.expect("reply parses");
            s.on_handshake_reply(req, &m).map(ev)
        })
    }

    /// A message line from the pool: the event and the bytes written back to the pool.
    fn msg(&mut self, line: &str) -> (Ev, String) {
        let mut line = line.as_bytes().to_vec();
        let (s, validates) = (&mut self.s, self.validates);
        let mut out = Vec::new();
        let e = self.parser.parse_keeping_params(&mut line, |m| {
            let m = m.expect("message parses");
            let parsed = pool_msg::parse(s.dialect, m.method.expect("a method"), &m);
            ev(s.on_message(parsed, &m.id, validates, &mut out))
        });
        (e, String::from_utf8(out).unwrap())
    }

    /// A V1 session through its handshake (mask granted when `rolling`).
    fn ready_v1(rolling: bool) -> Script {
        let (mut sc, _) = Script::start(Dialect::Stratum);
        let configure = if rolling {
            r#""result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null"#
        } else {
            r#""result":null,"error":[20,"unknown method",null]"#
        };
        assert_eq!(
            sc.reply(HandshakeReq::Configure, configure),
            Ok(Ev::Nothing)
        );
        let sub = r#""result":[[["mining.notify","s1"]],"0badf00d",8],"error":null"#;
        assert_eq!(sc.reply(HandshakeReq::Subscribe, sub), Ok(Ev::Nothing));
        let auth = r#""result":true,"error":null"#;
        assert_eq!(sc.reply(HandshakeReq::Authorize, auth), Ok(Ev::Ready));
        sc
    }

    fn ready_equihash() -> Script {
        let (mut sc, _) = Script::start(Dialect::Equihash);
        let sub = r#""result":["sid","00112233"],"error":null"#;
        assert_eq!(sc.reply(HandshakeReq::Subscribe, sub), Ok(Ev::Nothing));
        let auth = r#""result":true,"error":null"#;
        assert_eq!(sc.reply(HandshakeReq::Authorize, auth), Ok(Ev::Ready));
        sc
    }
}

fn notification(method: &str, params: &str) -> String {
    format!("{{\"id\":null,\"method\":\"{method}\",\"params\":{params}}}\n")
}

#[test]
fn v1_handshake_sends_configure_subscribe_extranonce_subscribe_authorize() {
    let (sc, out) = Script::start(Dialect::Stratum);
    let want = format!(
        "{{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{{\"version-rolling.mask\":\"ffffffff\",\"version-rolling.min-bit-count\":2}}]}}\n\
         {{\"id\":2,\"method\":\"mining.subscribe\",\"params\":[\"{AGENT}\"]}}\n\
         {{\"id\":3,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}}\n\
         {{\"id\":4,\"method\":\"mining.authorize\",\"params\":[\"acct.w\",\"x\"]}}\n"
    );
    assert_eq!(out, want);
    use HandshakeReq::*;
    assert_eq!(
        sc.ids,
        [
            (1, Configure),
            (2, Subscribe),
            (3, ExtranonceSubscribe),
            (4, Authorize)
        ]
    );
    assert_eq!(sc.s.phase, PoolPhase::Handshake(Default::default()));
}

#[test]
fn equihash_handshake_sends_subscribe_with_host_and_port_and_no_configure() {
    let (sc, out) = Script::start(Dialect::Equihash);
    let want = format!(
        "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"{AGENT}\",null,\"pool.example\",3333]}}\n\
         {{\"id\":2,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}}\n\
         {{\"id\":3,\"method\":\"mining.authorize\",\"params\":[\"acct.w\",\"x\"]}}\n"
    );
    assert_eq!(out, want);
    let PoolPhase::Handshake(hs) = &sc.s.phase else {
        panic!("{:?}", sc.s.phase)
    };
    assert_eq!(hs.configure, Some(None), "no version rolling in Equihash");
}

#[test]
fn v1_ready_with_version_rolling_grants_the_pools_mask() {
    let sc = Script::ready_v1(true);
    let want = Granted {
        e1: vec![0x0b, 0xad, 0xf0, 0x0d],
        n: 8,
        mask: Some(0x1fffe000),
    };
    assert_eq!(sc.s.phase, PoolPhase::Ready(want));
    assert!(sc.s.was_ready());
}

#[test]
fn v1_ready_without_version_rolling_when_configure_is_refused() {
    let sc = Script::ready_v1(false);
    assert_eq!(sc.s.granted().map(|g| g.mask), Some(None));
}

#[test]
fn a_pool_that_ignores_configure_is_ready_after_authorize_without_rolling() {
    let (mut sc, _) = Script::start(Dialect::Stratum);
    let sub = r#""result":[null,"aa",4],"error":null"#;
    assert_eq!(sc.reply(HandshakeReq::Subscribe, sub), Ok(Ev::Nothing));
    assert_eq!(
        sc.reply(HandshakeReq::ExtranonceSubscribe, r#""result":true"#),
        Ok(Ev::Nothing)
    );
    assert!(matches!(sc.s.phase, PoolPhase::Handshake(_)));
    assert_eq!(
        sc.reply(HandshakeReq::Authorize, r#""result":true"#),
        Ok(Ev::Ready)
    );
    let want = Granted {
        e1: vec![0xaa],
        n: 4,
        mask: None,
    };
    assert_eq!(sc.s.granted(), Some(&want));
}

#[test]
fn authorize_before_subscribe_answer_waits_for_the_subscribe() {
    let (mut sc, _) = Script::start(Dialect::Stratum);
    assert_eq!(
        sc.reply(HandshakeReq::Authorize, r#""result":true"#),
        Ok(Ev::Nothing)
    );
    let sub = r#""result":[null,"aa",4],"error":null"#;
    assert_eq!(sc.reply(HandshakeReq::Subscribe, sub), Ok(Ev::Ready));
}

#[test]
fn equihash_ready_leaves_the_rest_of_the_32_byte_nonce() {
    let sc = Script::ready_equihash();
    let want = Granted {
        e1: vec![0x00, 0x11, 0x22, 0x33],
        n: 28,
        mask: None,
    };
    assert_eq!(sc.s.granted(), Some(&want));
}

#[test]
fn a_refused_subscribe_fails_the_handshake_without_skipping_the_pool() {
    let (mut sc, _) = Script::start(Dialect::Stratum);
    let err = sc
        .reply(
            HandshakeReq::Subscribe,
            r#""result":null,"error":[20,"no",null]"#,
        )
        .unwrap_err();
    assert_eq!(
        err,
        HandshakeError::SubscribeRefused(r#"[20,"no",null]"#.into())
    );
    assert_eq!(
        err.to_string(),
        r#"pool refused mining.subscribe: [20,"no",null]"#
    );
    assert!(!err.skips_pool());
}

#[test]
fn an_equihash_pool_leaving_too_little_nonce_is_unusable_and_skipped() {
    let (mut sc, _) = Script::start(Dialect::Equihash);
    // NONCE_1 of 25 bytes leaves 7 of NONCE_2: after the 2-byte prefix miners would get 5 (< 8).
    let n1 = "ab".repeat(25);
    let err = sc
        .reply(
            HandshakeReq::Subscribe,
            &format!(r#""result":["sid","{n1}"],"error":null"#),
        )
        .unwrap_err();
    assert!(matches!(err, HandshakeError::Unusable(_)), "{err:?}");
    assert!(err.skips_pool());
    assert!(err.to_string().contains("pool not usable"), "{err}");
}

#[test]
fn a_refused_authorize_fails_the_handshake_with_the_pools_answer() {
    let (mut sc, _) = Script::start(Dialect::Stratum);
    let err = sc
        .reply(HandshakeReq::Authorize, r#""result":false,"error":null"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "pool refused mining.authorize for the configured user: false"
    );
    assert!(!err.skips_pool());
}

#[test]
fn notify_is_relayed_as_received_and_kept_for_late_miners() {
    let mut sc = Script::ready_v1(true);
    let line = format!(r#"{{"id":null,"method":"mining.notify","params":{V1_NOTIFY}}}"#);
    let (e, out) = sc.msg(&line);
    let want = notification("mining.notify", V1_NOTIFY);
    assert_eq!(e, Ev::Job(want.clone()));
    assert_eq!(out, "");
    assert_eq!(String::from_utf8_lossy(&sc.s.notify_line), want);
    assert!(sc.s.last_job.is_some(), "kept parsed when validating");
    let mut eq = Script::ready_equihash();
    eq.validates = false;
    let line = format!(r#"{{"id":null,"method":"mining.notify","params":{EQ_NOTIFY}}}"#);
    let (e, _) = eq.msg(&line);
    assert_eq!(e, Ev::Job(notification("mining.notify", EQ_NOTIFY)));
    assert!(eq.s.last_job.is_none(), "not kept without validation");
}

#[test]
fn a_malformed_notify_is_ignored_and_the_last_job_stays() {
    let mut sc = Script::ready_v1(false);
    let good = format!(r#"{{"id":null,"method":"mining.notify","params":{V1_NOTIFY}}}"#);
    sc.msg(&good);
    let (e, _) = sc.msg(r#"{"id":null,"method":"mining.notify","params":["j2","zz"]}"#);
    assert!(
        matches!(e, Ev::Ignored(ref w) if w.starts_with("BadJob")),
        "{e:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&sc.s.notify_line),
        notification("mining.notify", V1_NOTIFY)
    );
}

#[test]
fn set_difficulty_is_relayed_with_the_pools_number_and_sets_the_target() {
    let mut sc = Script::ready_v1(false);
    let (e, _) = sc.msg(r#"{"id":null,"method":"mining.set_difficulty","params":[1024]}"#);
    let want = notification("mining.set_difficulty", "[1024]");
    assert_eq!(e, Ev::Target(want.clone(), Some(1024.0)));
    assert_eq!(String::from_utf8_lossy(&sc.s.difficulty_line), want);
    assert_eq!(sc.s.pool_difficulty, 1024.0);
    assert_eq!(sc.s.pool_target, crate::validate::stratum_target(1024.0));
    let (e, _) = sc.msg(r#"{"id":null,"method":"mining.set_difficulty","params":[0.5]}"#);
    assert_eq!(
        e,
        Ev::Target(notification("mining.set_difficulty", "[0.5]"), Some(0.5))
    );
}

#[test]
fn an_invalid_difficulty_is_ignored() {
    let mut sc = Script::ready_v1(false);
    for p in ["[0]", "[-3]", "[\"8\"]", "[]"] {
        let (e, _) = sc.msg(&format!(
            r#"{{"id":null,"method":"mining.set_difficulty","params":{p}}}"#
        ));
        assert_eq!(e, Ev::Ignored("BadDifficulty".into()), "{p}");
    }
    assert_eq!(sc.s.pool_difficulty, 1.0);
    assert!(sc.s.difficulty_line.is_empty());
}

#[test]
fn set_target_is_an_equihash_message_and_unknown_in_v1() {
    let target = format!("0000{}", "f".repeat(60));
    let line = format!(r#"{{"id":null,"method":"mining.set_target","params":["{target}"]}}"#);
    let mut eq = Script::ready_equihash();
    let (e, _) = eq.msg(&line);
    let want = notification("mining.set_target", &format!("[\"{target}\"]"));
    assert_eq!(e, Ev::Target(want, None));
    assert_eq!(eq.s.pool_target[..3], [0, 0, 0xff]);
    let (e, _) = eq.msg(r#"{"id":null,"method":"mining.set_target","params":["00ff"]}"#);
    assert_eq!(e, Ev::Ignored("BadTarget".into()));

    let mut v1 = Script::ready_v1(false);
    let (e, _) = v1.msg(&line);
    assert_eq!(e, Ev::Ignored("unknown mining.set_target".into()));
    assert!(v1.s.difficulty_line.is_empty());
}

#[test]
fn set_extranonce_updates_what_the_pool_granted_in_both_dialects() {
    let mut v1 = Script::ready_v1(true);
    let (e, _) = v1.msg(r#"{"id":null,"method":"mining.set_extranonce","params":["cafe",6]}"#);
    assert_eq!(e, Ev::Extranonce(vec![0xca, 0xfe], 6));
    let g = v1.s.granted().unwrap();
    assert_eq!(
        (g.e1.as_slice(), g.n, g.mask),
        (&[0xca, 0xfe][..], 6, Some(0x1fffe000))
    );

    let mut eq = Script::ready_equihash();
    let (e, _) = eq.msg(r#"{"id":null,"method":"mining.set_extranonce","params":["aabb"]}"#);
    assert_eq!(e, Ev::Extranonce(vec![0xaa, 0xbb], 30));
    // Unusable (leaves too little NONCE_2) or unreadable: ignored, nothing changes.
    let n1 = "ab".repeat(25);
    let (e, _) = eq.msg(&format!(
        r#"{{"id":null,"method":"mining.set_extranonce","params":["{n1}"]}}"#
    ));
    assert!(
        matches!(e, Ev::Ignored(ref w) if w.starts_with("BadExtranonce")),
        "{e:?}"
    );
    let (e, _) = v1.msg(r#"{"id":null,"method":"mining.set_extranonce","params":["xy",4]}"#);
    assert!(
        matches!(e, Ev::Ignored(ref w) if w.starts_with("BadExtranonce")),
        "{e:?}"
    );
    assert_eq!(eq.s.granted().unwrap().n, 30);
}

#[test]
fn set_version_mask_changes_the_granted_mask() {
    let mut sc = Script::ready_v1(true);
    let (e, _) = sc.msg(r#"{"id":null,"method":"mining.set_version_mask","params":["00ffe000"]}"#);
    assert_eq!(e, Ev::VersionMask(0x00ffe000));
    assert_eq!(sc.s.granted().unwrap().mask, Some(0x00ffe000));
    let (e, _) = sc.msg(r#"{"id":null,"method":"mining.set_version_mask","params":["nothex"]}"#);
    assert_eq!(e, Ev::Ignored("BadVersionMask".into()));
}

#[test]
fn client_reconnect_reads_host_port_and_a_clamped_wait() {
    let mut sc = Script::ready_v1(false);
    let (e, _) = sc.msg(r#"{"id":null,"method":"client.reconnect","params":["other",4444,5]}"#);
    assert_eq!(
        e,
        Ev::Reconnect(Some("other".into()), Some(4444), Duration::from_secs(5))
    );
    let (e, _) = sc.msg(r#"{"id":null,"method":"client.reconnect","params":["","3334",9999]}"#);
    assert_eq!(e, Ev::Reconnect(None, Some(3334), Duration::from_secs(600)));
    let (e, _) = sc.msg(r#"{"id":null,"method":"client.reconnect","params":[]}"#);
    assert_eq!(e, Ev::Reconnect(None, None, Duration::ZERO));
}

#[test]
fn ping_and_get_version_are_answered_to_the_pool_only_with_an_id() {
    let mut sc = Script::ready_v1(false);
    let (e, out) = sc.msg(r#"{"id":7,"method":"mining.ping","params":[]}"#);
    assert_eq!(
        (e, out.as_str()),
        (
            Ev::Nothing,
            "{\"id\":7,\"result\":\"pong\",\"error\":null}\n"
        )
    );
    let (_, out) = sc.msg(r#"{"id":"v","method":"client.get_version","params":[]}"#);
    assert_eq!(
        out,
        format!("{{\"id\":\"v\",\"result\":\"{AGENT}\",\"error\":null}}\n")
    );
    let (_, out) = sc.msg(r#"{"id":null,"method":"mining.ping","params":[]}"#);
    assert_eq!(out, "");
    let (e, out) =
        sc.msg(r#"{"id":null,"method":"client.show_message","params":["hi \"there\""]}"#);
    assert_eq!(
        (e, out.as_str()),
        (Ev::ShowMessage("hi \"there\"".into()), "")
    );
    let mut line = Vec::new();
    pool_msg::write_show_message(&mut line, "hi \"there\"");
    assert_eq!(
        String::from_utf8_lossy(&line),
        notification("client.show_message", r#"["hi \"there\""]"#)
    );
}

#[test]
fn bad_lines_are_logged_three_times_then_quiet_and_too_many_close() {
    let mut sc = Script::ready_v1(false);
    let got: Vec<BadLine> = (0..5).map(|_| sc.s.bad_line()).collect();
    use BadLine::*;
    assert_eq!(got, [Warn, Warn, Warn, Quiet, Quiet]);
    sc.s.line_ok();
    assert_eq!(sc.s.bad_line(), Warn, "a good line resets the count");
    for n in 2..=MAX_POOL_BAD_LINES {
        let got = sc.s.bad_line();
        assert!(
            !matches!(got, Close { .. }),
            "bad line {n} in a row: {got:?}"
        );
    }
    assert_eq!(
        sc.s.bad_line(),
        Close {
            count: MAX_POOL_BAD_LINES + 1
        }
    );
    let (e, _) = sc.msg(r#"{"id":null,"method":"mining.whatever","params":[]}"#);
    assert_eq!(e, Ev::Ignored("unknown mining.whatever".into()));
}

#[test]
fn share_verdicts_are_passed_to_the_miner_as_the_pool_gave_them() {
    let id = IdBuf::from_scalar(&crate::protocol::json::Scalar::Int(42)).unwrap();
    let mut parser = Parser::default();
    let cases = [
        (
            r#"{"id":5,"result":true,"error":null}"#,
            true,
            "{\"id\":42,\"result\":true,\"error\":null}\n",
        ),
        (
            r#"{"id":5,"result":false,"error":null}"#,
            false,
            "{\"id\":42,\"result\":false,\"error\":null}\n",
        ),
        (
            r#"{"id":5,"result":null,"error":[23,"low difficulty share",null]}"#,
            false,
            "{\"id\":42,\"result\":null,\"error\":[23,\"low difficulty share\",null]}\n",
        ),
    ];
    for (line, accepted, want) in cases {
        let mut line = line.as_bytes().to_vec();
        let mut out = Vec::new();
        let got = parser.parse_keeping_params(&mut line, |m| {
            let m = m.unwrap();
            pool_msg::write_share_reply(&mut out, id.as_bytes(), &m);
            pool_msg::accepted(&m)
        });
        assert_eq!(
            (got, String::from_utf8_lossy(&out).as_ref()),
            (accepted, want)
        );
    }
}

#[test]
fn a_share_goes_to_the_pool_under_the_account_with_the_miners_prefix() {
    let share = Share::Stratum(stratum::Submit {
        job_id: "j1",
        extranonce2: "0000abcd",
        ntime: "5f000000",
        nonce: "12345678",
        version_bits: Some("00002000"),
    });
    let mut out = Vec::new();
    pool_msg::write_submit(&mut out, 9, "acct.w", &share, [0x01u8, 0x02].into_iter());
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":9,\"method\":\"mining.submit\",\"params\":[\"acct.w\",\"j1\",\"01020000abcd\",\"5f000000\",\"12345678\",\"00002000\"]}\n"
    );
    out.clear();
    pool_msg::write_authorize(&mut out, 10, "miner\"1", "p");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":10,\"method\":\"mining.authorize\",\"params\":[\"miner\\\"1\",\"p\"]}\n"
    );
}

#[test]
fn shares_pending_on_a_lost_connection_fail_once_each_and_timeouts_fail_the_rest() {
    let now = Instant::now();
    let mut pending: Pending<u64> = Pending::default();
    let timeout = Some(now + Duration::from_secs(10));
    let on_a: Vec<u64> = (0..3).map(|i| pending.insert(i, 1, now, timeout)).collect();
    pending.insert(100, 2, now, timeout);
    let mut lost = Vec::new();
    pending.drain_conn(1, &mut lost);
    let mut out = Vec::new();
    for e in &lost {
        let id = format!("{}", e.value);
        pool_msg::write_failure(&mut out, id.as_bytes(), "pool connection lost");
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        (0..3)
            .map(|i| format!(
                "{{\"id\":{i},\"result\":null,\"error\":[20,\"pool connection lost\",null]}}\n"
            ))
            .collect::<String>()
    );
    assert!(
        on_a.iter().all(|&id| pending.take(id).is_none()),
        "each failed once"
    );
    let mut expired = Vec::new();
    pending.expire(now + Duration::from_secs(9), &mut expired);
    assert!(expired.is_empty());
    pending.expire(now + Duration::from_secs(10), &mut expired);
    assert_eq!(expired.iter().map(|e| e.value).collect::<Vec<_>>(), [100]);
    assert!(pending.is_empty());
}

#[test]
fn draining_keeps_the_grant_and_the_handshake_timeout_covers_only_connect_and_handshake() {
    let limit = Duration::from_secs(10);
    let t0 = Instant::now();
    let s = PoolSession::new(Dialect::Stratum, 0, url(), "u".into(), "p".into(), t0);
    assert_eq!(
        s.handshake_overdue(t0 + Duration::from_secs(9), limit),
        None
    );
    assert_eq!(s.handshake_overdue(t0 + limit, limit), Some(true));
    let (mut sc, _) = Script::start(Dialect::Stratum);
    let started = sc.s.started;
    assert_eq!(sc.s.handshake_overdue(started + limit, limit), Some(false));
    sc = Script::ready_v1(true);
    assert_eq!(sc.s.handshake_overdue(started + limit * 100, limit), None);
    let granted = sc.s.granted().cloned().unwrap();
    sc.s.drain();
    assert_eq!(sc.s.phase, PoolPhase::Draining(granted));
    assert!(sc.s.was_ready());
}

fn policy(pools: usize, failback: bool) -> Policy {
    Policy {
        pools,
        failover_after: 3,
        failback: failback.then_some(Duration::from_secs(60)),
        failback_interval: Duration::from_secs(60),
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(30),
    }
}

const DOWN: Conns = Conns {
    active: false,
    ready: false,
    probe: false,
    lookup: false,
};
const SERVING: Conns = Conns {
    active: true,
    ready: true,
    probe: false,
    lookup: false,
};

#[test]
fn failed_attempts_back_off_doubling_up_to_the_maximum_then_retry() {
    let (p, t0) = (policy(1, true), Instant::now());
    let mut f = Failover::default();
    let mut idx = 0;
    let mut waits = Vec::new();
    for _ in 0..7 {
        assert!(
            !f.active_failed(t0, &p, &mut idx, false),
            "one pool: never moves"
        );
        let Phase::BackingOff { until } = f.phase else {
            panic!("{:?}", f.phase)
        };
        waits.push((until - t0).as_secs());
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(idx, 0);
    assert_eq!(
        f.due(t0 + Duration::from_secs(29), DOWN, idx, &p),
        Due::Nothing
    );
    assert_eq!(
        f.due(t0 + Duration::from_secs(30), DOWN, idx, &p),
        Due::Retry
    );
    assert_eq!(f.phase, Phase::Connecting);
    assert_eq!(
        f.due(t0 + Duration::from_secs(99), DOWN, idx, &p),
        Due::Nothing
    );
    assert_eq!(
        backoff(Duration::from_secs(1), Duration::from_secs(30), 0),
        Duration::from_secs(1)
    );
}

#[test]
fn repeated_failures_fail_over_down_the_list_and_wrap_and_an_unusable_pool_at_once() {
    let (p, t0) = (policy(2, true), Instant::now());
    let mut f = Failover::default();
    let mut idx = 0;
    assert!(!f.active_failed(t0, &p, &mut idx, false));
    assert!(!f.active_failed(t0, &p, &mut idx, false));
    assert!(
        f.active_failed(t0, &p, &mut idx, false),
        "third failure moves"
    );
    assert_eq!((idx, f.failures_here, f.attempts), (1, 0, 3));
    f.skip_pool = true;
    assert!(
        f.active_failed(t0, &p, &mut idx, false),
        "unusable: moves at once"
    );
    assert_eq!((idx, f.skip_pool), (0, false), "wraps to pool 1");
    // A probe or lookup under way takes over: no back-off.
    f.active_failed(t0, &p, &mut idx, true);
    assert_eq!(f.phase, Phase::Connecting);
    f.ready(t0, idx, &p);
    assert_eq!((f.attempts, f.failures_here), (0, 0));
    assert_eq!(
        f.phase,
        Phase::Active { failback_at: None },
        "pool 1: no failback"
    );
}

#[test]
fn a_failure_to_retry_at_once_counts_nothing_backs_off_nothing_and_stays_on_the_pool() {
    // An SV2 pool refused to require version rolling: the same pool again, without the flag, now.
    let (p, t0) = (policy(2, true), Instant::now());
    let mut f = Failover::default();
    let mut idx = 0;
    assert!(!f.active_failed(t0, &p, &mut idx, false));
    f.retry_now = true;
    assert!(!f.active_failed(t0, &p, &mut idx, false), "no failover");
    assert_eq!((idx, f.attempts, f.failures_here), (0, 1, 1));
    assert_eq!(f.phase, Phase::BackingOff { until: t0 });
    assert_eq!(f.due(t0, DOWN, idx, &p), Due::Retry);
    assert!(!f.retry_now, "once");
    // A probe refused so is checked again at once rather than after the failback interval.
    f.retry_now = true;
    f.probe_failed(t0, &p);
    assert_eq!(
        f.phase,
        Phase::Active {
            failback_at: Some(t0)
        }
    );
}

#[test]
fn failback_checks_pool_one_on_its_interval_and_a_failed_probe_waits_again() {
    let (p, t0) = (policy(2, true), Instant::now());
    let mut f = Failover::default();
    f.ready(t0, 1, &p);
    let at = t0 + Duration::from_secs(60);
    assert_eq!(
        f.phase,
        Phase::Active {
            failback_at: Some(at)
        }
    );
    assert_eq!(
        f.due(at - Duration::from_secs(1), SERVING, 1, &p),
        Due::Nothing
    );
    let not_ready = Conns {
        ready: false,
        ..SERVING
    };
    assert_eq!(f.due(at, not_ready, 1, &p), Due::Nothing);
    let probing = Conns {
        probe: true,
        ..SERVING
    };
    assert_eq!(f.due(at, probing, 1, &p), Due::Nothing);
    assert_eq!(f.due(at, SERVING, 1, &p), Due::Failback);
    assert_eq!(f.phase, Phase::Probing);
    assert_eq!(
        f.due(at, SERVING, 1, &p),
        Due::Nothing,
        "one probe at a time"
    );
    f.probe_failed(at, &p);
    assert_eq!(
        f.phase,
        Phase::Active {
            failback_at: Some(at + Duration::from_secs(60))
        }
    );
    // Failback off: never.
    let off = policy(2, false);
    let mut g = Failover::default();
    g.ready(t0, 1, &off);
    assert_eq!(
        g.due(t0 + Duration::from_secs(3600), SERVING, 1, &off),
        Due::Nothing
    );
}

#[test]
fn a_redirect_probe_refused_for_an_option_follows_the_redirect_again_at_once_and_only_then() {
    let (p, t0) = (policy(2, true), Instant::now());
    let other = PoolUrl {
        host: "other".into(),
        port: 4444,
        tls: false,
    };
    let mut f = Failover::default();
    f.ready(t0, 0, &p);
    f.reconnect_requested(t0, Duration::ZERO, other.clone());
    assert_eq!(f.due(t0, SERVING, 0, &p), Due::Reconnect(other.clone()));
    // Refused over the version-rolling flag: the same redirect again, now (pool 1 has no failback to fall to).
    f.retry_now = true;
    f.probe_failed(t0, &p);
    assert!(!f.retry_now, "once");
    assert_eq!(f.due(t0, SERVING, 0, &p), Due::Reconnect(other.clone()));
    // A redirect that came while the refused probe was under way is the one followed.
    let newer = PoolUrl {
        host: "newer".into(),
        ..other.clone()
    };
    f.reconnect_requested(t0, Duration::ZERO, newer.clone());
    f.retry_now = true;
    f.probe_failed(t0, &p);
    assert_eq!(f.due(t0, SERVING, 0, &p), Due::Reconnect(newer));
    // Any other failure gives the redirect up, as before.
    f.probe_failed(t0, &p);
    assert_eq!(f.reconnect, None);
    // A failback's probe refused so is a failback again at once, never a redirect (even after one).
    f.ready(t0, 1, &p);
    f.phase = Phase::Active {
        failback_at: Some(t0),
    };
    assert_eq!(f.due(t0, SERVING, 1, &p), Due::Failback);
    f.retry_now = true;
    f.probe_failed(t0, &p);
    assert_eq!(f.reconnect, None);
    assert_eq!(f.due(t0, SERVING, 1, &p), Due::Failback);
    f.probe_failed(t0, &p);
    assert_eq!(
        f.due(t0, SERVING, 1, &p),
        Due::Nothing,
        "after the interval"
    );
}

#[test]
fn client_reconnect_in_the_failover_state_opens_a_probe_after_its_wait_before_failback() {
    let (p, t0) = (policy(2, true), Instant::now());
    let mut f = Failover::default();
    f.ready(t0, 1, &p);
    let other = PoolUrl {
        host: "other".into(),
        port: 4444,
        tls: false,
    };
    f.reconnect_requested(t0, Duration::from_secs(120), other.clone());
    // Failback is due first.
    assert_eq!(
        f.due(t0 + Duration::from_secs(60), SERVING, 1, &p),
        Due::Failback
    );
    f.probe_failed(t0 + Duration::from_secs(60), &p);
    // Both due at 120s: the reconnect goes first, once.
    let t = t0 + Duration::from_secs(120);
    assert_eq!(f.due(t, SERVING, 1, &p), Due::Reconnect(other));
    assert_eq!(f.reconnect, None);
    assert_eq!(f.due(t, SERVING, 1, &p), Due::Nothing);
    // While down, a reconnect waits for a ready connection.
    f.reconnect_requested(t, Duration::ZERO, url());
    let mut idx = 1;
    f.active_failed(t, &p, &mut idx, false);
    assert_eq!(
        f.due(
            t,
            Conns {
                lookup: true,
                ..DOWN
            },
            idx,
            &p
        ),
        Due::Nothing
    );
    assert_eq!(f.due(t + Duration::from_secs(1), DOWN, idx, &p), Due::Retry);
    f.ready(t, idx, &p);
    assert_eq!(f.due(t, SERVING, idx, &p), Due::Reconnect(url()));
}

#[test]
fn a_reload_applies_failback_at_once_or_moves_to_the_new_first_pool() {
    let (p, t0) = (policy(3, true), Instant::now());
    let mut f = Failover::default();
    f.ready(t0, 2, &p);
    f.failures_here = 2;
    f.reload_kept(t0, 1);
    assert_eq!(f.failures_here, 0);
    assert_eq!(f.due(t0, SERVING, 1, &p), Due::Failback);
    let mut g = Failover::default();
    g.ready(t0, 0, &p);
    g.reload_moved(t0, url());
    assert_eq!(g.due(t0, SERVING, 0, &p), Due::Reconnect(url()));
}
