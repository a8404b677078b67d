//! The SV2 pool session (`Sv2Pool`, sans IO) against the reference crates' Noise responder, in memory: the
//! exact SetupConnection flags and OpenExtendedMiningChannel hashrate it sends, the step a refused
//! version-rolling flag gives, jobs that fix the version, and the UpdateChannel bytes.

#[path = "common/sv2_msgs.rs"]
mod sv2_msgs;

use binary_sv2::Str0255;
use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder};
use codec_sv2::{TransportDecryptState, TransportEncryptState};
use common_messages_sv2 as common;
use fastproxy::fuzzing::{Sv2Pool, Sv2Step};
use fastproxy::protocol::sv2::AuthorityKey;
use framing_sv2::framing::MessageFrame;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// The pool side: the reference responder's transport halves.
struct Pool {
    enc: TransportEncryptState,
    dec: Option<TransportDecryptState>,
    decoder: NoiseDecoder,
}

impl Pool {
    /// A session (`require_rolling` as given) past the handshake with a reference responder.
    fn connect(require_rolling: bool, nominal: f32) -> (Sv2Pool, Pool) {
        let (public, secret) = fastproxy_sim::sv2_pool::authority_keypair();
        let key = AuthorityKey::from_x_only(public).unwrap();
        let mut s = Sv2Pool::with_rolling(&key, "acct.sv2", "127.0.0.1", 34254, 4, require_rolling)
            .unwrap();
        s.set_nominal_hash_rate(nominal);
        let first = s.client.take_output();
        let mut e = [0u8; 64];
        e.copy_from_slice(&first[..64]);
        let responder =
            noise_sv2::Responder::from_authority_kp(&public, &secret, Duration::from_secs(60))
                .unwrap();
        let (reply, transport) = Handshake::responder(responder).step_1(e).unwrap();
        s.client.feed(reply.payload());
        assert!(s.next_step(now()).is_none(), "the handshake alone: no step");
        let (enc, dec) = transport.split();
        let pool = Pool {
            enc,
            dec: Some(dec),
            decoder: NoiseDecoder::new(),
        };
        (s, pool)
    }

    /// The frames the session queued: (msg_type, channel bit, payload).
    fn read(&mut self, s: &mut Sv2Pool) -> Vec<(u8, bool, Vec<u8>)> {
        let bytes = s.client.take_output();
        let (mut at, mut frames) = (0, Vec::new());
        while at < bytes.len() {
            let want = self.decoder.writable_len();
            self.decoder
                .writable()
                .copy_from_slice(&bytes[at..at + want]);
            at += want;
            match self.decoder.next_transport_frame(self.dec.take().unwrap()) {
                Ok(Decrypted::Incomplete(_, st)) => self.dec = Some(st),
                Ok(Decrypted::Frame(mut f, st)) => {
                    self.dec = Some(st);
                    let h = f.header();
                    frames.push((h.msg_type(), h.channel_msg(), f.payload().to_vec()));
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        frames
    }

    fn send<T: binary_sv2::Serialize + binary_sv2::GetSize>(
        &mut self,
        s: &mut Sv2Pool,
        msg: T,
        ty: u8,
        channel: bool,
    ) -> Option<Sv2Step> {
        let frame = MessageFrame::from_message(msg, ty, 0, channel).unwrap();
        let out = NoiseEncoder::new()
            .encode_transport(frame, &mut self.enc)
            .unwrap();
        s.client.feed(&out);
        s.next_step(now())
    }
}

fn setup_error(flags: u32) -> common::SetupConnectionError<'static> {
    common::SetupConnectionError {
        flags,
        error_code: Str0255::try_from("unsupported-feature-flags").unwrap(),
    }
}

/// SetupConnection's payload: protocol 0, versions 2..2, then the flags word (little-endian).
fn flags_of(setup: &[u8]) -> [u8; 4] {
    assert_eq!(&setup[..5], &[0, 2, 0, 2, 0], "{setup:?}");
    setup[5..9].try_into().unwrap()
}

#[test]
fn a_refused_version_rolling_flag_is_its_own_step_and_without_the_flag_a_refusal_is_fatal() {
    let (mut s, mut pool) = Pool::connect(true, 0.0);
    let frames = pool.read(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].0, frames[0].1), (0x00, false), "SetupConnection");
    assert_eq!(
        flags_of(&frames[0].2),
        [4, 0, 0, 0],
        "REQUIRES_VERSION_ROLLING"
    );
    let step = pool.send(&mut s, setup_error(4), 0x02, false);
    assert!(
        matches!(&step, Some(Sv2Step::RollingRefused { why }) if why.contains("version rolling")),
        "{step:?}"
    );

    // Another flag refused: not this step.
    let (mut s, mut pool) = Pool::connect(true, 0.0);
    pool.read(&mut s);
    let step = pool.send(&mut s, setup_error(1), 0x02, false);
    assert!(matches!(step, Some(Sv2Step::Fatal { .. })), "{step:?}");

    // Without the flag, a pool that still names it is refused for good (no loop of reconnects).
    let (mut s, mut pool) = Pool::connect(false, 0.0);
    let frames = pool.read(&mut s);
    assert_eq!(flags_of(&frames[0].2), [0, 0, 0, 0]);
    let step = pool.send(&mut s, setup_error(4), 0x02, false);
    assert!(matches!(step, Some(Sv2Step::Fatal { .. })), "{step:?}");
}

#[test]
fn the_channel_opens_with_the_estimate_jobs_say_whether_they_roll_and_update_channel_is_exact() {
    let (mut s, mut pool) = Pool::connect(false, 123_456.0);
    pool.read(&mut s);
    let ok = common::SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    };
    assert!(matches!(
        pool.send(&mut s, ok, 0x01, false),
        Some(Sv2Step::Nothing)
    ));
    let frames = pool.read(&mut s);
    assert_eq!(frames.len(), 1);
    let (ty, channel, open) = &frames[0];
    assert_eq!((*ty, *channel), (0x13, false), "OpenExtendedMiningChannel");
    // request_id 1, user identity "acct.sv2", nominal_hash_rate (F32), max_target, min_extranonce_size 6.
    let mut want = vec![1, 0, 0, 0, 8];
    want.extend_from_slice(b"acct.sv2");
    want.extend_from_slice(&123_456.0f32.to_le_bytes());
    want.extend_from_slice(&[0xff; 32]);
    want.extend_from_slice(&[6, 0]);
    assert_eq!(open, &want);

    let opened = sv2_msgs::channel_opened();
    let step = pool.send(&mut s, opened, 0x14, false);
    assert!(matches!(step, Some(Sv2Step::Ready { .. })), "{step:?}");
    let job = |id: u32, rolling: bool| sv2_msgs::job(id, Some(1_700_000_000), rolling);
    assert!(matches!(
        pool.send(&mut s, job(5, false), 0x1f, true),
        Some(Sv2Step::Nothing)
    ));
    let prev = sv2_msgs::prev_hash(5);
    let step = pool.send(&mut s, prev, 0x20, true);
    assert!(
        matches!(step, Some(Sv2Step::Job { rolling: false, .. })),
        "{step:?}"
    );
    let step = pool.send(&mut s, job(6, true), 0x1f, true);
    assert!(
        matches!(step, Some(Sv2Step::Job { rolling: true, .. })),
        "{step:?}"
    );
    assert_eq!(s.job_allows_rolling("5"), Some(false));
    assert_eq!(s.job_allows_rolling("6"), Some(true));
    assert_eq!(s.job_allows_rolling("7"), None);

    s.update_channel(2.5e9).unwrap();
    let frames = pool.read(&mut s);
    let mut want = vec![2, 0, 0, 0];
    want.extend_from_slice(&2.5e9f32.to_le_bytes());
    want.extend_from_slice(&[0xff; 32]);
    assert_eq!(frames, vec![(0x16, true, want)], "UpdateChannel");
    assert_eq!(s.nominal_hash_rate(), 2.5e9);
}
