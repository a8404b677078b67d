//! The `sv2_client` target's invariants: a pool's bytes into `protocol::sv2::Sv2Client`, before the Noise
//! handshake, after it as raw bytes, or after it as frames a real responder encrypts (so decoding is reached).
//!
//! Input: a mode byte (0: bytes as the responder's handshake message; 1: handshake, then raw bytes; else:
//! handshake, then frames), a chunk size byte (0: all at once), then the bytes, or the frames as
//! `ext_type U16 LE ‖ msg_type U8 ‖ length U16 LE ‖ payload` (length cut to what is left). The responder is
//! the reference crates' with a fixed authority key (secret 1, public key the generator's x).

use codec_sv2::{Handshake, NoiseEncoder, TransportEncryptState};
use fastproxy::protocol::sv2::messages::{new_extended_job_payload, REQUIRES_VERSION_ROLLING};
use fastproxy::protocol::sv2::{AuthorityKey, Event, Phase, SetupParams, Sv2Client, Sv2Error};
use framing_sv2::framing::SerializedFrame;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The fixed test authority key: secret 1, so the x-only public key is the generator's x coordinate.
const AUTHORITY_SECRET: [u8; 32] = {
    let mut s = [0u8; 32];
    s[31] = 1;
    s
};
pub(crate) const AUTHORITY_PUBLIC: [u8; 32] = [
    0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07,
    0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
];

/// The most bytes the client may want to send in reply to a pool: the handshake's 64 and SetupConnection.
const MAX_OUTPUT: usize = 64 + 2048;

pub(crate) fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

fn client() -> Sv2Client {
    let key = AuthorityKey::from_x_only(AUTHORITY_PUBLIC).expect("the generator's x is a key");
    let setup = SetupParams {
        flags: REQUIRES_VERSION_ROLLING,
        endpoint_host: "127.0.0.1".into(),
        endpoint_port: 34254,
        vendor: "fastproxy-fuzz".into(),
        hardware_version: String::new(),
        firmware: String::new(),
        device_id: String::new(),
    };
    Sv2Client::new(&key, setup).expect("a client")
}

/// A client past the handshake with a reference responder, and the responder's encrypting half.
fn handshaken() -> (Sv2Client, TransportEncryptState) {
    let mut c = client();
    let encrypt = handshake(&mut c);
    (c, encrypt)
}

/// Completes `c`'s handshake (nothing sent yet) with a reference responder: the responder's encrypting half.
pub(crate) fn handshake(c: &mut Sv2Client) -> TransportEncryptState {
    let first = c.take_output();
    let mut e = [0u8; 64];
    e.copy_from_slice(&first[..64]);
    let responder = noise_sv2::Responder::from_authority_kp(
        &AUTHORITY_PUBLIC,
        &AUTHORITY_SECRET,
        Duration::from_secs(3600),
    )
    .expect("responder");
    let (reply, transport) = Handshake::responder(responder)
        .step_1(e)
        .expect("responder step");
    c.feed(reply.payload());
    assert_eq!(
        c.next_event(now()),
        Ok(None),
        "nothing but the handshake was fed"
    );
    assert_eq!(c.phase(), Phase::Setup);
    transport.split().0
}

/// One frame as the fuzzer asked for it.
pub(crate) struct Frame {
    pub ext: u16,
    pub ty: u8,
    pub payload: Vec<u8>,
}

fn frames(mut d: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while d.len() >= 5 {
        let ext = u16::from_le_bytes([d[0], d[1]]);
        let ty = d[2];
        let len = usize::from(u16::from_le_bytes([d[3], d[4]])).min(d.len() - 5);
        out.push(Frame {
            ext,
            ty,
            payload: d[5..5 + len].to_vec(),
        });
        d = &d[5 + len..];
    }
    out
}

pub(crate) fn encrypt(f: &Frame, enc: &mut TransportEncryptState) -> Vec<u8> {
    let mut bytes = vec![f.ext as u8, (f.ext >> 8) as u8, f.ty];
    bytes.extend_from_slice(&(f.payload.len() as u32).to_le_bytes()[..3]);
    bytes.extend_from_slice(&f.payload);
    let frame = SerializedFrame::from_bytes(bytes).expect("a consistent frame");
    let out = NoiseEncoder::new()
        .encode_transport(frame, enc)
        .expect("encrypt");
    <[u8]>::to_vec(out.as_ref())
}

/// The message type an event comes from.
fn event_type(ev: &Event) -> u8 {
    match ev {
        Event::SetupSuccess { .. } => 0x01,
        Event::Reconnect { .. } => 0x04,
        Event::ChannelOpened { .. } => 0x14,
        Event::ChannelRefused { .. } => 0x12,
        Event::NewJob(_) => 0x1f,
        Event::PrevHash(_) => 0x20,
        Event::SetTarget { .. } => 0x21,
        Event::SetExtranoncePrefix { .. } => 0x19,
        Event::SharesAccepted { .. } => 0x1c,
        Event::ShareRejected { .. } => 0x1d,
        Event::ChannelClosed { .. } => 0x18,
        Event::ChannelUpdateRefused { .. } => 0x17,
    }
}

/// Feeds `bytes` in chunks of `chunk` (0: at once), draining every result after each; the results in order.
/// The client must stop by itself: at most one result per 6 bytes fed (no frame is shorter), plus one.
fn drive(c: &mut Sv2Client, bytes: &[u8], chunk: usize) -> Vec<Result<Event, Sv2Error>> {
    let chunk = if chunk == 0 {
        bytes.len().max(1)
    } else {
        chunk
    };
    let mut results = Vec::new();
    for piece in bytes.chunks(chunk).chain(std::iter::once(&[][..])) {
        c.feed(piece);
        loop {
            let r = c.next_event(now());
            assert!(
                c.output().len() <= MAX_OUTPUT,
                "output grows: {}",
                c.output().len()
            );
            c.take_output();
            match r {
                Ok(None) => break,
                Ok(Some(ev)) => results.push(Ok(ev)),
                Err(e) => {
                    let fatal = e.is_fatal();
                    results.push(Err(e));
                    if fatal {
                        assert_eq!(c.phase(), Phase::Failed, "a fatal error fails the client");
                        assert_eq!(c.next_event(now()), Err(Sv2Error::NotReady(Phase::Failed)));
                        return results;
                    }
                }
            }
            assert!(
                results.len() <= bytes.len() / 6 + 1,
                "more results than frames could be"
            );
        }
    }
    let _ = c.at_eof();
    results
}

pub fn sv2_client(data: &[u8]) {
    let (mode, chunk, rest) = match data {
        [m, c, rest @ ..] => (*m, usize::from(*c), rest),
        _ => return,
    };
    match mode {
        0 => {
            // Nobody can forge the pool's certificate: never an event, never past the handshake.
            let mut c = client();
            c.take_output();
            for r in drive(&mut c, rest, chunk) {
                assert!(r.is_err(), "an event from a forged handshake: {r:?}");
            }
            assert!(matches!(c.phase(), Phase::Handshake | Phase::Failed));
        }
        1 => {
            // Raw bytes never authenticate: never an event.
            let (mut c, _) = handshaken();
            for r in drive(&mut c, rest, chunk) {
                assert!(r.is_err(), "an event from unauthenticated bytes: {r:?}");
            }
        }
        _ => encrypted_frames(rest, chunk),
    }
}

/// Frames a real responder encrypted: one result per frame, in order, matching the frame's type and phase.
fn encrypted_frames(rest: &[u8], chunk: usize) {
    let (mut c, mut enc) = handshaken();
    let frames = frames(rest);
    let mut bytes = Vec::new();
    for f in &frames {
        bytes.extend_from_slice(&encrypt(f, &mut enc));
    }
    let results = drive(&mut c, &bytes, chunk);
    assert!(
        results.len() <= frames.len(),
        "{} results from {} frames",
        results.len(),
        frames.len()
    );
    if results.len() < frames.len() {
        assert!(
            results
                .last()
                .is_some_and(|r| r.as_ref().is_err_and(Sv2Error::is_fatal)),
            "frames left unread without a fatal error"
        );
    }
    let mut ready = false;
    for (f, r) in frames.iter().zip(&results) {
        let ext = f.ext & 0x7fff;
        match r {
            Ok(ev) => {
                assert_eq!(
                    (ext, f.ty),
                    (0, event_type(ev)),
                    "{ev:?} from another message"
                );
                let setup = matches!(ev, Event::SetupSuccess { .. });
                assert!(ready != setup, "{ev:?} while ready={ready}");
                ready = true;
                if let Event::NewJob(job) = ev {
                    job_round_trips(job, &f.payload);
                }
            }
            Err(Sv2Error::UnknownMessage { ext_type, msg_type }) => {
                assert_eq!((*ext_type, *msg_type), (ext, f.ty));
            }
            Err(Sv2Error::Malformed { msg_type, .. })
            | Err(Sv2Error::Unexpected { msg_type, .. }) => {
                assert_eq!(*msg_type, f.ty);
            }
            Err(Sv2Error::SetupRefused { .. }) => assert_eq!((ext, f.ty), (0, 0x02)),
            Err(e) => panic!("{e} from a well-formed encrypted frame"),
        }
    }
}

/// A decoded job encodes back to the start of its payload, but for the padding bits of its BOOL (§3.1: only
/// the least significant bit counts, senders may set the others).
fn job_round_trips(job: &fastproxy::protocol::sv2::ExtendedJob, payload: &[u8]) {
    let again = new_extended_job_payload(job).expect("a decoded job encodes");
    assert!(
        again.len() <= payload.len(),
        "a job encodes longer than it came"
    );
    let at = 4 + 4 + 1 + if job.min_ntime.is_some() { 4 } else { 0 } + 4;
    assert_eq!(again[..at], payload[..at], "a job does not round-trip");
    assert_eq!(
        again[at],
        payload[at] & 1,
        "version_rolling_allowed is its low bit"
    );
    assert_eq!(
        again[at + 1..],
        payload[at + 1..again.len()],
        "a job does not round-trip"
    );
}
