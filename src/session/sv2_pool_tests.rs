//! Tests of the SV2 pool session (`sv2_pool.rs`) without sockets: the reference crates' Noise responder answers
//! its handshake and encrypts the pool's messages; shares go in as V1 submits; verdicts come out as steps.

use super::sv2_pool::{Sv2Pool, Sv2Step, UNCONFIRMED};
use crate::protocol::stratum::Submit;
use crate::protocol::sv2::AuthorityKey;
use binary_sv2::{GetSize, Seq0255, Serialize, Sv2Option, B032, B064K, U256};
use codec_sv2::{Handshake, NoiseEncoder, TransportEncryptState};
use mining_sv2 as mining;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fixed authority key: secret 1, so the x-only public key is the generator's x coordinate.
const SECRET: [u8; 32] = {
    let mut s = [0u8; 32];
    s[31] = 1;
    s
};
const PUBLIC: [u8; 32] = [
    0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07,
    0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
];
const CHANNEL: u32 = 2;

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// A session with its channel open and job 5 active, and the pool's encrypting half.
struct Pool {
    session: Sv2Pool,
    enc: TransportEncryptState,
}

impl Pool {
    fn open() -> Pool {
        let key = AuthorityKey::from_x_only(PUBLIC).unwrap();
        let mut session = Sv2Pool::new(&key, "acct", "127.0.0.1", 34254, 4).unwrap();
        let first = session.client.take_output();
        let responder =
            noise_sv2::Responder::from_authority_kp(&PUBLIC, &SECRET, Duration::from_secs(3600))
                .unwrap();
        let (reply, transport) = Handshake::responder(responder)
            .step_1(first[..64].try_into().unwrap())
            .unwrap();
        session.client.feed(reply.payload());
        let mut p = Pool {
            session,
            enc: transport.split().0,
        };
        assert!(p.steps().is_empty(), "the handshake alone gives no step");
        let ok = common_messages_sv2::SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        };
        p.send(ok, 0x01, false);
        let open = mining::OpenExtendedMiningChannelSuccess {
            request_id: 1,
            channel_id: CHANNEL,
            target: U256::from(&[0xffu8; 32]),
            extranonce_size: 6,
            extranonce_prefix: B032::try_from(&[1u8, 2, 3, 4][..]).unwrap(),
            group_channel_id: 1,
        };
        p.send(open, 0x14, false);
        let job = mining::NewExtendedMiningJob {
            channel_id: 1,
            job_id: 5,
            min_ntime: Sv2Option::new(None),
            version: 0x2000_0000,
            version_rolling_allowed: true,
            merkle_path: Seq0255::new(vec![]).unwrap(),
            coinbase_tx_prefix: B064K::try_from(&[1u8; 42][..]).unwrap(),
            coinbase_tx_suffix: B064K::try_from(&[2u8; 30][..]).unwrap(),
        };
        p.send(job, 0x1f, true);
        let prev = mining::SetNewPrevHash {
            channel_id: 1,
            job_id: 5,
            prev_hash: U256::from(&[3u8; 32]),
            min_ntime: 1_700_000_000,
            nbits: 0x1d00_ffff,
        };
        p.send(prev, 0x20, true);
        let steps = p.steps();
        assert!(
            matches!(
                steps[..],
                [
                    Sv2Step::Nothing,
                    Sv2Step::Ready { .. },
                    Sv2Step::Nothing,
                    Sv2Step::Job { .. }
                ]
            ),
            "{steps:?}"
        );
        p
    }

    /// Feeds one encrypted message to the session.
    fn send<T: Serialize + GetSize>(&mut self, msg: T, ty: u8, channel: bool) {
        let frame = framing_sv2::framing::MessageFrame::from_message(msg, ty, 0, channel).unwrap();
        let bytes = NoiseEncoder::new()
            .encode_transport(frame, &mut self.enc)
            .unwrap();
        let bytes: &[u8] = bytes.as_ref();
        self.session.client.feed(bytes);
    }

    /// Every step of what was fed so far.
    fn steps(&mut self) -> Vec<Sv2Step> {
        let mut steps = Vec::new();
        while let Some(step) = self.session.next_step(now()) {
            steps.push(step);
        }
        self.session.client.take_output();
        steps
    }

    /// Sends shares with pending ids `pids` (their sequence numbers follow each other).
    fn submit(&mut self, pids: std::ops::Range<u64>) {
        for pid in pids {
            let e2 = format!("{pid:08x}");
            let share = Submit {
                job_id: "5",
                extranonce2: &e2,
                ntime: "6553f100",
                nonce: "0000abcd",
                version_bits: None,
            };
            self.session
                .submit(pid, &share, &[0xab, 0xcd], 0x1fff_e000)
                .unwrap();
        }
    }

    /// The verdicts (and ignored messages) a SubmitShares.Success up to `last` counting `count` gives.
    fn success(&mut self, last: u32, count: u32) -> Vec<String> {
        let ok = mining::SubmitSharesSuccess {
            channel_id: CHANNEL,
            last_sequence_number: last,
            new_submits_accepted_count: count,
            new_shares_sum: u64::from(count),
        };
        self.send(ok, mining::MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS, true);
        self.verdicts()
    }

    /// The verdicts a SubmitShares.Error for `seq` gives.
    fn error(&mut self, seq: u32, code: &str) -> Vec<String> {
        let err = mining::SubmitSharesError {
            channel_id: CHANNEL,
            sequence_number: seq,
            error_code: code.as_bytes().try_into().unwrap(),
        };
        self.send(err, mining::MESSAGE_TYPE_SUBMIT_SHARES_ERROR, true);
        self.verdicts()
    }

    fn verdicts(&mut self) -> Vec<String> {
        self.steps()
            .into_iter()
            .map(|s| match s {
                Sv2Step::Accepted(pid) => format!("true {pid}"),
                Sv2Step::Rejected { pid, code } => format!("false {pid} {code}"),
                // Past three ignored messages in a row, the session stops naming them (Nothing).
                Sv2Step::Ignored(_) | Sv2Step::Nothing => "ignored".to_string(),
                other => panic!("not a verdict: {other:?}"),
            })
            .collect()
    }
}

#[test]
fn a_success_covering_shares_on_both_sides_of_the_sequence_wrap_accepts_each_once() {
    let mut p = Pool::open();
    p.session.start_sequence_at(u32::MAX - 1);
    // Sequence numbers u32::MAX - 1, u32::MAX, 0, 1.
    p.submit(0..4);
    assert_eq!(p.success(u32::MAX, 2), ["true 0", "true 1"]);
    assert_eq!(p.success(1, 2), ["true 2", "true 3"]);
    assert_eq!(p.success(1, 2), ["ignored"], "answered already");
    // One Success over the wrap.
    let mut p = Pool::open();
    p.session.start_sequence_at(u32::MAX - 1);
    p.submit(0..4);
    assert_eq!(p.success(1, 4), ["true 0", "true 1", "true 2", "true 3"]);
}

#[test]
fn an_error_for_a_sequence_number_past_the_wrap_answers_its_own_share() {
    let mut p = Pool::open();
    p.session.start_sequence_at(u32::MAX - 3);
    // Sequence numbers u32::MAX - 3 ..= u32::MAX, then 0 and 1.
    p.submit(0..6);
    assert_eq!(p.error(0, "stale-share"), ["false 4 stale-share"]);
    assert_eq!(p.error(1, "duplicate-share"), ["false 5 duplicate-share"]);
    assert_eq!(
        p.error(u32::MAX - 1, "stale-share"),
        ["false 2 stale-share"]
    );
    assert_eq!(p.error(1, "stale-share"), ["ignored"], "answered already");
    assert_eq!(p.success(u32::MAX, 3), ["true 0", "true 1", "true 3"]);
}

#[test]
fn a_success_for_sequence_numbers_never_sent_is_ignored_across_the_wrap_too() {
    let mut p = Pool::open();
    assert_eq!(p.success(0, 1), ["ignored"], "nothing sent yet");
    p.session.start_sequence_at(u32::MAX - 1);
    p.submit(0..4);
    // Sent: u32::MAX - 1 ..= 1; the next would be 2.
    for last in [2, 5, 1 << 20, u32::MAX - 2, u32::MAX - 100] {
        assert_eq!(p.success(last, 4), ["ignored"], "up to {last}");
    }
    assert_eq!(p.success(1, 4), ["true 0", "true 1", "true 2", "true 3"]);
    assert_eq!(
        p.success(2, 1),
        ["ignored"],
        "the next number is not sent yet"
    );
}

#[test]
fn an_update_channel_error_is_logged_and_ignored_and_the_channel_goes_on() {
    let mut p = Pool::open();
    p.submit(0..1);
    for (channel_id, code, said) in [
        (
            CHANNEL,
            "max-target-out-of-range",
            "the pool refused UpdateChannel (max-target-out-of-range)",
        ),
        (
            9,
            "invalid-channel-id",
            "UpdateChannel.Error for unknown channel 9",
        ),
    ] {
        let error = mining::UpdateChannelError {
            channel_id,
            error_code: binary_sv2::Str0255::try_from(code).unwrap(),
        };
        p.send(error, mining::MESSAGE_TYPE_UPDATE_CHANNEL_ERROR, true);
        let steps = p.steps();
        assert!(
            matches!(&steps[..], [Sv2Step::Ignored(why)] if why == said),
            "{steps:?}"
        );
    }
    assert_eq!(
        p.success(0, 1),
        ["true 0"],
        "the share sent before still gets its verdict"
    );
}

#[test]
fn job_ids_carry_the_connections_tag_and_only_its_own_are_known() {
    let mut p = Pool::open();
    assert_eq!(
        p.session.job_allows_rolling("5"),
        Some(true),
        "tag 0: plain"
    );
    p.session.set_job_tag(0x1c);
    for other in [
        "5", "5.1b", "5.1c.0", "5.", ".1c", "+5.1c", "5.+1c", "6.1c", "5.1c0", "5.1c ", "",
    ] {
        assert_eq!(p.session.job_allows_rolling(other), None, "{other:?}");
    }
    assert_eq!(p.session.job_allows_rolling("5.1c"), Some(true));
    let prev = mining::SetNewPrevHash {
        channel_id: 1,
        job_id: 5,
        prev_hash: U256::from(&[4u8; 32]),
        min_ntime: 1_700_000_001,
        nbits: 0x1d00_ffff,
    };
    p.send(prev, 0x20, true);
    match &p.steps()[..] {
        [Sv2Step::Job { line, .. }] => {
            let line = String::from_utf8_lossy(line);
            assert!(line.contains(r#""params":["5.1c","#), "{line}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_success_counting_fewer_than_it_covers_answers_them_unconfirmed_and_the_next_counts_afresh() {
    let mut p = Pool::open();
    p.submit(0..3);
    // The pool never answers one of the three: its Success up to 2 counts 2. Which two is unknown.
    let unconfirmed = format!("false {{}} {UNCONFIRMED}");
    let want: Vec<String> = std::iter::once("ignored".to_string())
        .chain((0..3).map(|pid| unconfirmed.replace("{}", &pid.to_string())))
        .collect();
    assert_eq!(p.success(2, 2), want);
    // The queue starts afresh: the next Success is exact again (before, the unanswered share stayed in front
    // and made every later Success ambiguous too).
    p.submit(3..5);
    assert_eq!(p.success(4, 2), ["true 3", "true 4"]);
    // An Error still to come for an unconfirmed share finds nothing waiting.
    assert_eq!(p.error(1, "stale-share"), ["ignored"]);
}
