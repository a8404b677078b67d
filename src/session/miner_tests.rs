//! The miner session without sockets: scripted miner lines and time in, the exact bytes written and the
//! actions returned out, for each phase and transition (PROXY header, greeting, waiting, working, half-closed).

use super::miner::{
    MinerAction, MinerEnv, MinerPhase, MinerSession, PoolOffer, Served, UpstreamView,
};
use crate::auth::{AuthConfig, AuthMode, Authenticator, MatchBy, UserEntry, UsersConfig};
use crate::close::Close;
use crate::config::VardiffConfig;
use crate::nonce::PrefixAllocator;
use crate::protocol::equihash::SolutionShape;
use crate::protocol::json::Parser;
use crate::protocol::miner_msg::MinerRequest;
use crate::protocol::{Dialect, Share};
use crate::proxy_protocol::Mode;
use std::time::{Duration, Instant};

/// The pool's extranonce1 in these tests, and the extranonce2 size miners get.
const E1: [u8; 4] = [0xaa, 0xbb, 0xcc, 0xdd];
const E2_SIZE: usize = 4;
/// The subscription id (connection generation) of the miner under test.
const SUB: u64 = 0x2a;

/// One miner session and what the runtime would give it.
struct Rig {
    s: MinerSession,
    parser: Parser,
    auth: AuthConfig,
    authenticator: Authenticator,
    t0: Instant,
    now: Instant,
    draining: bool,
    /// None: not attached; Some(false): attached to a gone upstream; Some(true): attached.
    upstream: Option<bool>,
    solution: SolutionShape,
    prefixes: PrefixAllocator,
}

/// What one line did: the bytes written and the action, as text (`Share` shows its job and prefix).
#[derive(Debug, PartialEq)]
struct Step {
    out: String,
    action: String,
}

fn describe(a: &MinerAction<'_>) -> String {
    match a {
        MinerAction::Continue => "Continue".into(),
        MinerAction::Attach => "Attach".into(),
        MinerAction::Admitted { first } => format!("Admitted first={first}"),
        MinerAction::Share {
            share: Share::Stratum(s),
            prefix,
        } => format!(
            "Share job={} en2={} ntime={} nonce={} bits={:?} prefix={prefix}",
            s.job_id, s.extranonce2, s.ntime, s.nonce, s.version_bits
        ),
        MinerAction::Share {
            share: Share::Equihash(s),
            prefix,
        } => format!(
            "Share job={} time={} nonce2={} solution={} prefix={prefix}",
            s.job_id, s.time, s.nonce2, s.solution
        ),
        MinerAction::Refused(r) => format!("Refused {r:?}"),
        MinerAction::AuthRefused => "AuthRefused".into(),
        MinerAction::Close(c) => format!("Close {c:?}"),
    }
}

impl Rig {
    fn new(dialect: Dialect) -> Rig {
        Rig::with(dialect, None, false)
    }

    fn with(dialect: Dialect, header: Option<Mode>, vardiff: bool) -> Rig {
        let t0 = Instant::now();
        Rig {
            s: MinerSession::new(dialect, SUB, t0, header, vardiff),
            parser: Parser::default(),
            auth: AuthConfig::Mode(AuthMode::None),
            authenticator: Authenticator::default(),
            t0,
            now: t0,
            draining: false,
            upstream: None,
            solution: SolutionShape {
                prefix_hex: "02".into(),
                hex_len: 6,
            },
            prefixes: PrefixAllocator::new(1),
        }
    }

    /// Feeds one line; returns what was written and done.
    fn line(&mut self, text: &str) -> Step {
        let mut bytes = text.as_bytes().to_vec();
        let Rig {
            s,
            parser,
            auth,
            authenticator,
            now,
            draining,
            upstream,
            solution,
            ..
        } = self;
        let upstream = match upstream {
            None => UpstreamView::None,
            Some(false) => UpstreamView::Gone,
            Some(true) => UpstreamView::Ready {
                extranonce2_size: E2_SIZE,
                solution,
            },
        };
        let mut out = Vec::new();
        let action = parser.parse(&mut bytes, |msg| {
            let msg = msg.expect("test lines are JSON");
            let req = match s.dialect {
                Dialect::Stratum => MinerRequest::stratum(&msg),
                Dialect::Equihash => MinerRequest::equihash(&msg),
            };
            let env = MinerEnv {
                auth,
                authenticator,
                ip: "10.0.0.1".parse().unwrap(),
                now: *now,
                draining: *draining,
                upstream,
            };
            describe(&s.on_request(req, &msg.id, env, &mut out))
        });
        Step {
            out: String::from_utf8_lossy(&out).into_owned(),
            action,
        }
    }

    /// The upstream is attached and ready with pool mask `mask`: serves what waits.
    fn serve(&mut self, mask: Option<u32>) -> (String, Served) {
        self.upstream = Some(true);
        self.s.start_waiting(self.now);
        let mut out = Vec::new();
        let served = self.s.serve(
            PoolOffer {
                mask,
                e1: &E1,
                prefixes: &mut self.prefixes,
                extranonce2_size: E2_SIZE,
            },
            &mut out,
        );
        (String::from_utf8_lossy(&out).into_owned(), served)
    }

    /// Subscribed (prefix 0) and authorized.
    fn working(dialect: Dialect) -> Rig {
        let mut r = Rig::new(dialect);
        r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
        r.serve(None);
        r.line(r#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#);
        assert!(matches!(r.s.phase, MinerPhase::Working { prefix: Some(0) }));
        r
    }

    fn tick(&mut self, idle: Duration, wait: Duration) -> (String, Option<Close>) {
        let mut out = Vec::new();
        let close = self.s.tick(self.now, idle, wait, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), close)
    }
}

fn step(out: &str, action: &str) -> Step {
    Step {
        out: out.into(),
        action: action.into(),
    }
}

const V1_SUBSCRIBE_RESULT: &str = "{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"2a\"],[\"mining.notify\",\"2a\"]],\"aabbccdd00\",4],\"error\":null}\n";
const SUBMIT: &str =
    r#"{"id":5,"method":"mining.submit","params":["w","j1","01020304","5f5e1000","0000abcd"]}"#;

#[test]
fn proxy_header_phase_comes_first_and_names_the_client() {
    let mut r = Rig::with(Dialect::Stratum, Some(Mode::V1), false);
    assert_eq!(r.s.proxy_header(), Some(Mode::V1));
    let header = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n{\"id\":1}";
    assert_eq!(r.s.on_proxy_bytes(&header[..20]).unwrap(), None);
    assert!(matches!(r.s.phase, MinerPhase::AwaitingProxyHeader(_)));
    let (len, source) = r.s.on_proxy_bytes(header).unwrap().unwrap();
    assert_eq!(len, header.len() - 8);
    assert_eq!(source, Some("192.168.0.1:56324".parse().unwrap()));
    assert!(matches!(
        r.s.phase,
        MinerPhase::Greeting { authorized: false }
    ));
    assert_eq!(r.s.proxy_header(), None);
}

#[test]
fn proxy_header_optional_may_be_absent_and_a_required_one_is_not_skipped() {
    let mut r = Rig::with(Dialect::Stratum, Some(Mode::Optional), false);
    let line = br#"{"id":1,"method":"mining.subscribe","params":[]}"#;
    assert_eq!(r.s.on_proxy_bytes(line).unwrap(), Some((0, None)));
    assert!(matches!(r.s.phase, MinerPhase::Greeting { .. }));
    let mut r = Rig::with(Dialect::Stratum, Some(Mode::V1), false);
    assert!(r.s.on_proxy_bytes(line).is_err());
    assert!(matches!(r.s.phase, MinerPhase::AwaitingProxyHeader(_)));
}

#[test]
fn subscribe_waits_for_a_pool_then_authorize_makes_it_work() {
    let mut r = Rig::new(Dialect::Stratum);
    let s = r.line(r#"{"id":1,"method":"mining.subscribe","params":["cgminer"]}"#);
    assert_eq!(s, step("", "Attach"));
    assert!(r.s.waits_for_subscribe() && !r.s.subscribed());
    assert!(r.s.start_waiting(r.now), "counted as waiting once");
    assert!(!r.s.start_waiting(r.now));
    let (out, served) = r.serve(None);
    assert_eq!(out, V1_SUBSCRIBE_RESULT);
    assert!(served.subscribed && !served.full);
    assert!(matches!(
        r.s.phase,
        MinerPhase::Subscribed { prefix: Some(0) }
    ));
    assert!(!r.s.gets_jobs());
    let s = r.line(r#"{"id":2,"method":"mining.authorize","params":["w.1","x"]}"#);
    assert_eq!(
        s,
        step(
            "{\"id\":2,\"result\":true,\"error\":null}\n",
            "Admitted first=true"
        )
    );
    assert!(r.s.gets_jobs());
    assert_eq!(&*r.s.worker, "w.1");
    let s = r.line(r#"{"id":3,"method":"mining.authorize","params":["w.2","x"]}"#);
    assert_eq!(
        s,
        step(
            "{\"id\":3,\"result\":true,\"error\":null}\n",
            "Admitted first=false"
        )
    );
    assert_eq!(&*r.s.worker, "w.2");
}

#[test]
fn authorize_before_subscribe_works_once_subscribed() {
    let mut r = Rig::new(Dialect::Stratum);
    let s = r.line(r#"{"id":"a","method":"mining.authorize","params":["w","x"]}"#);
    assert_eq!(
        s,
        step(
            "{\"id\":\"a\",\"result\":true,\"error\":null}\n",
            "Admitted first=true"
        )
    );
    assert!(r.s.authorized() && !r.s.gets_jobs());
    assert_eq!(
        r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#),
        step("", "Attach")
    );
    let (out, _) = r.serve(None);
    assert_eq!(out, V1_SUBSCRIBE_RESULT);
    assert!(matches!(r.s.phase, MinerPhase::Working { prefix: Some(0) }));
}

#[test]
fn configure_subscribe_authorize_with_version_rolling() {
    let mut r = Rig::new(Dialect::Stratum);
    let s = r.line(r#"{"id":7,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"ffffffff"}]}"#);
    assert_eq!(s, step("", "Attach"));
    assert!(r.s.waits() && !r.s.waits_for_subscribe());
    r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
    let (out, _) = r.serve(Some(0x1fffe000));
    assert_eq!(
        out,
        "{\"id\":7,\"result\":{\"version-rolling\":true,\"version-rolling.mask\":\"1fffe000\",\"minimum-difficulty\":false},\"error\":null}\n"
            .to_string()
            + V1_SUBSCRIBE_RESULT
    );
    assert_eq!(r.s.version.agreed, Some(0x1fffe000));
    assert_eq!(r.s.version.requested, Some(0xffffffff));
    r.line(r#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#);
    // Bits inside the mask are fine; outside it the share is refused before judging.
    let s = r.line(r#"{"id":5,"method":"mining.submit","params":["w","j1","01020304","5f5e1000","0000abcd","00002000"]}"#);
    assert_eq!(
        s.action,
        "Share job=j1 en2=01020304 ntime=5f5e1000 nonce=0000abcd bits=Some(\"00002000\") prefix=0"
    );
    let s = r.line(r#"{"id":6,"method":"mining.submit","params":["w","j1","01020304","5f5e1000","0000abcd","00000001"]}"#);
    assert_eq!(
        s,
        step(
            "{\"id\":6,\"result\":null,\"error\":[20,\"version bits outside the negotiated mask\",null]}\n",
            "Refused Other"
        )
    );
}

#[test]
fn configure_against_a_pool_without_version_rolling_refuses_it() {
    let mut r = Rig::new(Dialect::Stratum);
    r.line(r#"{"id":7,"method":"mining.configure","params":[["version-rolling"],{}]}"#);
    let (out, served) = r.serve(None);
    assert_eq!(
        out,
        "{\"id\":7,\"result\":{\"version-rolling\":false},\"error\":null}\n"
    );
    assert_eq!(served, Served::default());
    assert_eq!(r.s.version.agreed, None);
    let mut out = Vec::new();
    assert!(!r.s.on_pool_mask(0xffff_ffff, &mut out), "never negotiated");
    assert!(out.is_empty());
}

#[test]
fn a_bad_configure_is_a_bad_line() {
    let mut r = Rig::new(Dialect::Stratum);
    let s = r.line(r#"{"id":7,"method":"mining.configure","params":[{}]}"#);
    assert_eq!(
        s,
        step(
            "{\"id\":7,\"result\":null,\"error\":[20,\"configure params must start with a list of extensions\",null]}\n",
            "Continue"
        )
    );
    assert_eq!(r.s.bad_lines, 1);
}

#[test]
fn a_pools_new_mask_is_cut_to_what_the_miner_asked() {
    let mut r = Rig::new(Dialect::Stratum);
    r.line(r#"{"id":7,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"00fff000"}]}"#);
    r.serve(Some(0x1fffe000));
    assert_eq!(r.s.version.agreed, Some(0x00ffe000));
    let mut out = Vec::new();
    assert!(r.s.on_pool_mask(0x0000_ffff, &mut out));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":null,\"method\":\"mining.set_version_mask\",\"params\":[\"0000f000\"]}\n"
    );
    assert_eq!(r.s.version.agreed, Some(0x0000f000));
}

#[test]
fn a_late_miner_waits_then_is_told_no_pool_came() {
    let mut r = Rig::new(Dialect::Stratum);
    r.line(r#"{"id":7,"method":"mining.configure","params":[["version-rolling"],{}]}"#);
    r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
    let (idle, wait) = (Duration::from_secs(5), Duration::from_secs(30));
    assert!(r.s.start_waiting(r.now));
    r.now += Duration::from_secs(29);
    assert!(
        matches!(r.tick(idle, wait), (o, None) if o.is_empty()),
        "waiting is not idle"
    );
    r.now += Duration::from_secs(1);
    let (out, close) = r.tick(idle, wait);
    assert_eq!(
        out,
        "{\"id\":7,\"result\":null,\"error\":[20,\"no pool connection available\",null]}\n\
         {\"id\":1,\"result\":null,\"error\":[20,\"no pool connection available\",null]}\n"
    );
    assert!(matches!(close, Some(Close::NoPoolInTime)));
    assert!(
        r.s.waiting_since().is_some(),
        "still counted until it is detached"
    );
}

#[test]
fn a_miner_that_never_gets_to_work_is_idle() {
    let mut r = Rig::new(Dialect::Stratum);
    r.line(r#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#);
    let (idle, wait) = (Duration::from_secs(5), Duration::from_secs(30));
    r.now += Duration::from_secs(4);
    assert!(r.tick(idle, wait).1.is_none());
    r.now += Duration::from_secs(1);
    assert!(matches!(r.tick(idle, wait), (o, Some(Close::Idle)) if o.is_empty()));
    let mut w = Rig::working(Dialect::Stratum);
    w.now += Duration::from_secs(3600);
    assert!(
        w.tick(idle, wait).1.is_none(),
        "a working miner is never idle"
    );
}

#[test]
fn a_second_subscribe_is_refused_waiting_or_subscribed() {
    let mut r = Rig::new(Dialect::Stratum);
    r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
    let again = r#"{"id":3,"method":"mining.subscribe","params":[]}"#;
    let refused = step(
        "{\"id\":3,\"result\":null,\"error\":[20,\"already subscribed\",null]}\n",
        "Continue",
    );
    assert_eq!(r.line(again), refused);
    r.serve(None);
    assert_eq!(r.line(again), refused);
    assert_eq!(r.s.bad_lines, 0, "not a bad line");
}

#[test]
fn submits_before_work_are_refused_by_phase() {
    let mut r = Rig::new(Dialect::Stratum);
    assert_eq!(
        r.line(SUBMIT),
        step(
            "{\"id\":5,\"result\":null,\"error\":[25,\"not subscribed\",null]}\n",
            "Refused NotSubscribed"
        )
    );
    r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
    assert_eq!(r.line(SUBMIT).action, "Refused NotSubscribed", "waiting");
    r.serve(None);
    assert_eq!(
        r.line(SUBMIT),
        step(
            "{\"id\":5,\"result\":null,\"error\":[24,\"unauthorized worker\",null]}\n",
            "Refused Unauthorized"
        )
    );
}

#[test]
fn submits_while_draining_or_without_a_pool_are_refused() {
    let mut r = Rig::working(Dialect::Stratum);
    r.draining = true;
    assert_eq!(
        r.line(SUBMIT),
        step(
            "{\"id\":5,\"result\":null,\"error\":[20,\"proxy is shutting down, share not forwarded\",null]}\n",
            "Refused Other"
        )
    );
    r.draining = false;
    r.upstream = Some(false);
    assert_eq!(
        r.line(SUBMIT),
        step(
            "{\"id\":5,\"result\":null,\"error\":[20,\"pool unavailable\",null]}\n",
            "Refused PoolUnavailable"
        )
    );
    r.upstream = None;
    assert_eq!(r.line(SUBMIT).action, "Refused NotSubscribed");
    r.upstream = Some(true);
    r.s.set_prefix(None);
    assert_eq!(
        r.line(SUBMIT).action,
        "Refused NotSubscribed",
        "prefix lost in a relayout"
    );
}

#[test]
fn malformed_submits_get_their_exact_errors() {
    let mut r = Rig::working(Dialect::Stratum);
    let cases = [
        (
            r#"{"id":5,"method":"mining.submit","params":["w","j1"]}"#,
            "{\"id\":5,\"result\":null,\"error\":[20,\"submit takes 5 or 6 params, got 2\",null]}\n",
        ),
        (
            r#"{"id":5,"method":"mining.submit","params":["w","j1","0102","5f5e1000","0000abcd"]}"#,
            "{\"id\":5,\"result\":null,\"error\":[20,\"extranonce2 must be 4 bytes of hex\",null]}\n",
        ),
        (
            r#"{"id":5,"method":"mining.submit","params":["w","j1","01020304","5f5e10","0000abcd"]}"#,
            "{\"id\":5,\"result\":null,\"error\":[20,\"ntime must be 8 hex digits\",null]}\n",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(r.line(line), step(want, "Refused Other"), "{line}");
    }
    assert_eq!(r.s.bad_lines, 0, "refused shares are not bad lines");
}

#[test]
fn a_good_submit_is_a_share_to_forward_with_the_miners_prefix() {
    let mut r = Rig::new(Dialect::Stratum);
    r.prefixes.alloc();
    r.prefixes.alloc();
    r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
    let (out, _) = r.serve(None);
    assert!(out.contains("\"aabbccdd02\""), "{out}");
    r.line(r#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#);
    assert_eq!(
        r.line(SUBMIT),
        step(
            "",
            "Share job=j1 en2=01020304 ntime=5f5e1000 nonce=0000abcd bits=None prefix=2"
        )
    );
}

#[test]
fn forwarded_share_replies_and_half_close() {
    let mut r = Rig::working(Dialect::Stratum);
    assert!(!r.s.on_peer_closed(), "nothing pending: closed at once");
    r.s.share_forwarded();
    r.s.share_forwarded();
    assert!(r.s.on_peer_closed());
    assert!(r.s.read_closed() && r.s.gets_jobs() && r.s.authorized());
    assert!(matches!(
        r.s.phase,
        MinerPhase::HalfClosed { prefix: Some(0) }
    ));
    assert!(!r.s.share_answered(), "one reply still owed");
    assert!(r.s.share_answered(), "last reply: close it");
    assert!(r.s.done());
    assert!(
        r.s.share_answered() && r.s.pending_shares == 0,
        "never below zero"
    );
}

#[test]
fn a_working_miner_keeps_answering_replies_while_open() {
    let mut r = Rig::working(Dialect::Stratum);
    r.s.share_forwarded();
    assert!(
        !r.s.share_answered(),
        "open miners are not closed by replies"
    );
    assert!(!r.s.done());
}

#[test]
fn extranonce_subscribe_suggestions_ping_and_unsupported_methods() {
    let mut r = Rig::new(Dialect::Stratum);
    assert_eq!(
        r.line(r#"{"id":4,"method":"mining.extranonce.subscribe","params":[]}"#),
        step("{\"id\":4,\"result\":true,\"error\":null}\n", "Continue")
    );
    assert!(r.s.extranonce_subscribed);
    assert_eq!(
        r.line(r#"{"id":5,"method":"mining.suggest_target","params":["00ff"]}"#),
        step("{\"id\":5,\"result\":true,\"error\":null}\n", "Continue")
    );
    assert_eq!(
        r.line(r#"{"id":6,"method":"mining.ping","params":[]}"#),
        step(
            "{\"id\":6,\"result\":\"pong\",\"error\":null}\n",
            "Continue"
        )
    );
    assert_eq!(
        r.line(r#"{"id":8,"method":"mining.get_transactions","params":["j"]}"#),
        step(
            "{\"id\":8,\"result\":null,\"error\":[20,\"not supported by this proxy\",null]}\n",
            "Continue"
        )
    );
    assert_eq!(
        r.line(r#"{"id":null,"result":"cgminer/4","error":null}"#),
        step("", "Continue"),
        "a miner's reply waits for nothing"
    );
    assert_eq!(r.s.bad_lines, 0);
}

#[test]
fn bad_lines_are_answered_and_too_many_close_the_miner() {
    let mut r = Rig::new(Dialect::Stratum);
    assert_eq!(
        r.line(r#"{"id":1,"method":"mining.frobnicate","params":[]}"#),
        step(
            "{\"id\":1,\"result\":null,\"error\":[20,\"unknown method\",null]}\n",
            "Continue"
        )
    );
    assert_eq!(
        r.line(r#"{"id":2,"params":[]}"#),
        step(
            "{\"id\":2,\"result\":null,\"error\":[20,\"request has no method\",null]}\n",
            "Continue"
        )
    );
    assert_eq!(
        r.line(r#"{"id":3,"method":"mining.authorize","params":[1]}"#),
        step(
            "{\"id\":3,\"result\":null,\"error\":[20,\"authorize needs a worker name\",null]}\n",
            "Continue"
        )
    );
    for i in 4..=8 {
        assert_eq!(
            r.line(r#"{"id":1,"method":"x","params":[]}"#).action,
            "Continue",
            "{i}"
        );
    }
    assert_eq!(
        r.line(r#"{"id":9,"method":"x","params":[]}"#),
        step(
            "{\"id\":9,\"result\":null,\"error\":[20,\"unknown method\",null]}\n",
            "Close BadRequests { why: \"unknown method\" }"
        )
    );
}

#[test]
fn long_worker_names_are_cut_to_128_characters() {
    let mut r = Rig::new(Dialect::Stratum);
    let name = "é".repeat(200);
    r.line(&format!(
        r#"{{"id":2,"method":"mining.authorize","params":["{name}","x"]}}"#
    ));
    assert_eq!(r.s.worker.chars().count(), 128);
}

#[test]
fn passthrough_authorize_waits_for_the_pool() {
    let mut r = Rig::new(Dialect::Stratum);
    r.auth = AuthConfig::Mode(AuthMode::Passthrough);
    let s = r.line(r#"{"id":2,"method":"mining.authorize","params":["acct.rig","pw"]}"#);
    assert_eq!(s, step("", "Attach"));
    assert!(!r.s.authorized());
    assert_eq!(
        r.s.pool_account.as_ref().map(|(w, p)| (&**w, &**p)),
        Some(("acct.rig", "pw"))
    );
    let id = r.s.deferred_authorize.take().expect("waits for the pool");
    let mut out = Vec::new();
    let a = r.s.admit(&id, b"true", &mut out);
    assert_eq!(describe(&a), "Admitted first=true");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":2,\"result\":true,\"error\":null}\n"
    );
    assert!(r.s.authorized());
}

#[test]
fn user_list_refusals_and_the_failure_limit() {
    let mut r = Rig::new(Dialect::Stratum);
    r.auth = AuthConfig::Users(UsersConfig {
        users: vec![UserEntry {
            name: "farm".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
        }],
        match_by: MatchBy::Account,
        max_failures: 1,
        ban_seconds: 60.0,
    });
    assert_eq!(
        r.line(r#"{"id":2,"method":"mining.authorize","params":["stranger","x"]}"#),
        step(
            "{\"id\":2,\"result\":null,\"error\":[24,\"unauthorized worker\",null]}\n",
            "AuthRefused"
        )
    );
    assert_eq!(
        r.line(r#"{"id":3,"method":"mining.authorize","params":["stranger","y"]}"#),
        step(
            "{\"id\":3,\"result\":null,\"error\":[24,\"too many failed authorizations from this address, try later\",null]}\n",
            "Close AuthFailures"
        )
    );
    assert!(!r.s.authorized());
}

fn vardiff_cfg() -> VardiffConfig {
    VardiffConfig {
        shares_per_minute: 20.0,
        retarget_interval: 60.0,
        start_difficulty: Some(8.0),
        min_difficulty: 1.0,
    }
}

#[test]
fn vardiff_starts_at_the_suggestion_within_the_pools_difficulty() {
    let mut r = Rig::with(Dialect::Stratum, None, true);
    let s = r.line(r#"{"id":4,"method":"mining.suggest_difficulty","params":[2.5]}"#);
    assert_eq!(
        s,
        step("{\"id\":4,\"result\":true,\"error\":null}\n", "Continue")
    );
    let mut out = Vec::new();
    assert!(r
        .s
        .start_vardiff(Some(&vardiff_cfg()), 64.0, r.now, &mut out));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[2.5]}\n"
    );
    // A suggestion above the pool's difficulty is cut to it.
    let mut r = Rig::with(Dialect::Stratum, None, true);
    r.line(r#"{"id":4,"method":"mining.suggest_difficulty","params":[1000]}"#);
    out.clear();
    assert!(r
        .s
        .start_vardiff(Some(&vardiff_cfg()), 64.0, r.now, &mut out));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[64]}\n"
    );
    // Without vardiff nothing is written (the pool's difficulty line goes instead).
    let mut r = Rig::new(Dialect::Stratum);
    out.clear();
    assert!(!r
        .s
        .start_vardiff(Some(&vardiff_cfg()), 64.0, r.now, &mut out));
    assert!(out.is_empty());
}

#[test]
fn vardiff_retargets_after_its_window_with_the_exact_line() {
    let mut r = Rig::with(Dialect::Stratum, None, true);
    let cfg = vardiff_cfg();
    let mut out = Vec::new();
    r.s.start_vardiff(Some(&cfg), 64.0, r.now, &mut out);
    out.clear();
    r.s.vardiff.as_mut().unwrap().shares = 80;
    r.now += Duration::from_secs(59);
    assert_eq!(
        r.s.retarget(&cfg, 64.0, r.now, &mut out),
        None,
        "window not over"
    );
    r.now += Duration::from_secs(1);
    assert_eq!(r.s.retarget(&cfg, 64.0, r.now, &mut out), Some(32.0));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[32]}\n"
    );
    // The pool comes down to 16: the miner follows.
    assert!(r.s.cap_difficulty(16.0, r.now));
    assert_eq!(r.s.vardiff.as_ref().unwrap().difficulty, 16.0);
    assert!(!r.s.cap_difficulty(16.0, r.now), "not above it any more");
    assert_eq!(r.t0 + Duration::from_secs(60), r.now);
}

#[test]
fn prefix_exhaustion_leaves_the_subscribe_waiting() {
    let mut r = Rig::new(Dialect::Stratum);
    while r.prefixes.alloc().is_some() {}
    r.line(r#"{"id":1,"method":"mining.subscribe","params":[]}"#);
    let (out, served) = r.serve(None);
    assert_eq!(out, "");
    assert_eq!(
        served,
        Served {
            subscribed: false,
            full: true
        }
    );
    assert!(r.s.waits_for_subscribe());
    assert!(r.s.stop_waiting(), "was counted on the full upstream");
    assert!(!r.s.stop_waiting());
}

#[test]
fn equihash_subscribe_submit_and_methods() {
    let mut r = Rig::new(Dialect::Equihash);
    r.line(r#"{"id":1,"method":"mining.subscribe","params":["nheqminer"]}"#);
    let (out, _) = r.serve(None);
    assert_eq!(
        out,
        "{\"id\":1,\"result\":[\"2a\",\"aabbccdd00\"],\"error\":null}\n"
    );
    r.line(r#"{"id":2,"method":"mining.authorize","params":["w","x"]}"#);
    assert_eq!(
        r.line(r#"{"id":5,"method":"mining.submit","params":["w","j9","5f5e1000","0a0b0c0d","02abcd"]}"#),
        step(
            "",
            "Share job=j9 time=5f5e1000 nonce2=0a0b0c0d solution=02abcd prefix=0"
        )
    );
    assert_eq!(
        r.line(r#"{"id":6,"method":"mining.submit","params":["w","j9","5f5e1000","0a0b0c0d","03abcd"]}"#),
        step(
            "{\"id\":6,\"result\":null,\"error\":[20,\"solution must be 6 hex digits starting with 02\",null]}\n",
            "Refused Other"
        )
    );
    // No mining.configure in this dialect.
    assert_eq!(
        r.line(r#"{"id":7,"method":"mining.configure","params":[["version-rolling"],{}]}"#),
        step(
            "{\"id\":7,\"result\":null,\"error\":[20,\"unknown method\",null]}\n",
            "Continue"
        )
    );
    assert_eq!(
        r.line(r#"{"id":8,"method":"mining.get_transactions","params":[]}"#)
            .out,
        "{\"id\":8,\"result\":null,\"error\":[20,\"unknown method\",null]}\n"
    );
}

#[test]
fn equihash_difficulty_suggestions_are_only_acknowledged() {
    let mut r = Rig::with(Dialect::Equihash, None, true);
    assert_eq!(
        r.line(r#"{"id":4,"method":"mining.suggest_difficulty","params":[2.5]}"#),
        step("{\"id\":4,\"result\":true,\"error\":null}\n", "Continue")
    );
    assert_eq!(r.s.vardiff.as_ref().unwrap().suggested, None);
    let mut v1 = Rig::with(Dialect::Stratum, None, true);
    v1.line(r#"{"id":4,"method":"mining.suggest_difficulty","params":[2.5]}"#);
    assert_eq!(v1.s.vardiff.as_ref().unwrap().suggested, Some(2.5));
}
