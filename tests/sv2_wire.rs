//! The sans-IO SV2 client (`protocol::sv2::Sv2Client`) over real sockets on 127.0.0.1: against the simulated
//! SV2 pool (the reference crates' Noise responder and codec, checking every share) and against raw
//! responders written here with the reference crates that send what a pool should not.

use codec_sv2::{Handshake, NoiseEncoder, TransportEncryptState};
use fastproxy::protocol::sv2::messages::REQUIRES_VERSION_ROLLING;
use fastproxy::protocol::sv2::{
    share_extranonce, submit_version, target_to_be, v1_job, AuthorityKey, Event, ExtendedJob,
    OpenChannel, Phase, PrevHash, SetupParams, ShareSubmit, Sv2Client, Sv2Error,
};
use fastproxy::work::{hash_meets_target, Job};
use fastproxy_sim::sv2_pool::{authority_keypair, Sv2PoolConfig, Sv2SimPool};
use framing_sv2::framing::{MessageFrame, SerializedFrame};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEADLINE: Duration = Duration::from_secs(20);
const MASK: u32 = 0x1fff_e000;

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

fn setup() -> SetupParams {
    SetupParams {
        flags: REQUIRES_VERSION_ROLLING,
        endpoint_host: "127.0.0.1".into(),
        endpoint_port: 0,
        vendor: "fastproxy".into(),
        hardware_version: String::new(),
        firmware: "test".into(),
        device_id: String::new(),
    }
}

/// A client over a blocking socket; `feed_by` bytes at a time go into the client.
struct Driver {
    stream: TcpStream,
    client: Sv2Client,
    feed_by: usize,
    /// Bytes read from the socket, not yet fed.
    pending: Vec<u8>,
}

impl Driver {
    fn connect(addr: SocketAddr, key: &str) -> Driver {
        let key = AuthorityKey::parse(key).expect("pool key parses");
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let client = Sv2Client::new(&key, setup()).unwrap();
        let mut d = Driver {
            stream,
            client,
            feed_by: 64 * 1024,
            pending: Vec::new(),
        };
        d.flush();
        d
    }

    fn flush(&mut self) {
        let out = self.client.take_output();
        self.stream.write_all(&out).unwrap();
    }

    /// The next event, or the client's error; panics when nothing comes before the deadline.
    fn next(&mut self) -> Result<Event, Sv2Error> {
        self.next_at(now())
    }

    fn next_at(&mut self, at: u32) -> Result<Event, Sv2Error> {
        let start = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let ev = self.client.next_event(at);
            self.flush();
            if let Some(ev) = ev.transpose() {
                return ev;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no SV2 event within {DEADLINE:?}"
            );
            if !self.pending.is_empty() {
                let n = self.feed_by.min(self.pending.len());
                self.client.feed(&self.pending[..n]);
                self.pending.drain(..n);
                continue;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.client.at_eof()?;
                    panic!("pool closed the connection between frames");
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    fn expect(&mut self) -> Event {
        self.next().expect("an event, not an error")
    }
}

/// Up to the first active job: Ready, channel opened, job, prev hash, target.
struct Channel {
    channel_id: u32,
    prefix: Vec<u8>,
    extranonce_size: usize,
    job: ExtendedJob,
    prev: PrevHash,
    target_le: [u8; 32],
}

fn open(d: &mut Driver, min_extranonce_size: u16) -> Channel {
    assert!(matches!(
        d.expect(),
        Event::SetupSuccess {
            used_version: 2,
            ..
        }
    ));
    assert_eq!(d.client.phase(), Phase::Ready);
    d.client
        .open_extended_channel(&OpenChannel {
            request_id: 7,
            user_identity: "alice.rig1".into(),
            nominal_hash_rate: 1e12,
            max_target: [0xff; 32],
            min_extranonce_size,
        })
        .unwrap();
    d.flush();
    let Event::ChannelOpened {
        request_id: 7,
        channel_id,
        extranonce_size,
        extranonce_prefix,
        ..
    } = d.expect()
    else {
        panic!("expected ChannelOpened")
    };
    let (mut job, mut prev, mut target) = (None, None, None);
    while job.is_none() || prev.is_none() || target.is_none() {
        match d.expect() {
            Event::NewJob(j) => job = Some(j),
            Event::PrevHash(p) => prev = Some(p),
            Event::SetTarget { maximum_target, .. } => target = Some(maximum_target),
            other => panic!("unexpected {other:?}"),
        }
    }
    Channel {
        channel_id,
        prefix: extranonce_prefix,
        extranonce_size: usize::from(extranonce_size),
        job: job.unwrap(),
        prev: prev.unwrap(),
        target_le: target.unwrap(),
    }
}

const MINER_PREFIX: [u8; 2] = [0xab, 0xcd];

/// Grinds nonces on the V1 form of the channel's job until the hash meets (or, `meet` false, misses) the
/// channel's target; the share's extranonce2 is `e2`.
fn grind(ch: &Channel, v1: &Job, e2: &[u8], meet: bool) -> (ShareSubmit, [u8; 32]) {
    let extranonce1 = [&ch.prefix[..], &MINER_PREFIX].concat();
    let version = submit_version(&ch.job, MASK, 0x0000_6000);
    let target = target_to_be(&ch.target_le);
    for nonce in 0..1_000_000u32 {
        let hash = v1.share_hash(&extranonce1, e2, v1.ntime, nonce, version);
        if hash_meets_target(&hash, &target) == meet {
            let share = ShareSubmit {
                channel_id: ch.channel_id,
                sequence_number: 0,
                job_id: ch.job.job_id,
                nonce,
                ntime: v1.ntime,
                version,
                extranonce: share_extranonce(&MINER_PREFIX, e2, ch.extranonce_size).unwrap(),
            };
            return (share, hash);
        }
    }
    panic!("no nonce found");
}

fn submit(d: &mut Driver, share: &ShareSubmit, seq: u32) -> Event {
    let mut s = share.clone();
    s.sequence_number = seq;
    d.client.submit_shares_extended(&s).unwrap();
    d.flush();
    d.expect()
}

#[test]
fn handshake_channel_job_and_a_ground_share_accepted_by_the_checking_pool() {
    let pool = Sv2SimPool::start(Sv2PoolConfig::default()).unwrap();
    let mut d = Driver::connect(pool.addr(), &pool.authority_public_key());
    let ch = open(&mut d, 8);
    assert_eq!(ch.extranonce_size, 8);
    assert_eq!(
        ch.job.job_id, ch.prev.job_id,
        "the prev hash activates the job"
    );
    let v1 = v1_job(&ch.job, &ch.prev, true);
    let e2 = [0u8, 0, 0, 0, 0, 1];
    let (share, hash) = grind(&ch, &v1, &e2, true);
    assert_eq!(
        submit(&mut d, &share, 1),
        Event::SharesAccepted {
            channel_id: ch.channel_id,
            last_sequence_number: 1,
            new_submits_accepted_count: 1,
            new_shares_sum: 1,
        }
    );
    let stats = pool.stats();
    assert_eq!(stats.setup_flags, vec![REQUIRES_VERSION_ROLLING]);
    assert_eq!(stats.user_identities, vec!["alice.rig1".to_string()]);
    assert_eq!(stats.accepted, 1);
    let accepted = &stats.accepted_shares[0];
    // The pool rebuilt the same header from the SV2 fields as we did from the V1 ones.
    assert_eq!(accepted.hash, hash);
    assert_eq!(accepted.version & !MASK, 0x2000_0000);
    assert_eq!(
        accepted.version & MASK,
        0x0000_6000,
        "rolled bits reach the pool"
    );
    assert_eq!(accepted.extranonce, [&MINER_PREFIX[..], &e2].concat());
}

#[test]
fn bad_shares_get_the_pools_error_codes_and_the_connection_goes_on() {
    let pool = Sv2SimPool::start(Sv2PoolConfig::default()).unwrap();
    let mut d = Driver::connect(pool.addr(), &pool.authority_public_key());
    let ch = open(&mut d, 8);
    let v1 = v1_job(&ch.job, &ch.prev, true);
    let rejected = |ev: Event, seq: u32, code: &str| {
        assert_eq!(
            ev,
            Event::ShareRejected {
                channel_id: ch.channel_id,
                sequence_number: seq,
                code: code.into()
            }
        )
    };
    let (low, _) = grind(&ch, &v1, &[0, 0, 0, 0, 0, 2], false);
    rejected(submit(&mut d, &low, 1), 1, "difficulty-too-low");
    let (good, _) = grind(&ch, &v1, &[0, 0, 0, 0, 0, 3], true);
    assert!(matches!(
        submit(&mut d, &good, 2),
        Event::SharesAccepted {
            last_sequence_number: 2,
            ..
        }
    ));
    rejected(submit(&mut d, &good, 3), 3, "duplicate-share");
    let mut short = good.clone();
    short.extranonce.pop();
    rejected(submit(&mut d, &short, 4), 4, "bad-extranonce-size");
    let mut unknown = good.clone();
    unknown.job_id += 1000;
    rejected(submit(&mut d, &unknown, 5), 5, "invalid-job-id");
    pool.reject_next("invalid-share");
    let (other, _) = grind(&ch, &v1, &[0, 0, 0, 0, 0, 4], true);
    rejected(submit(&mut d, &other, 6), 6, "invalid-share");
    // A new prev hash makes the old job stale.
    pool.new_job(true);
    let (mut job, mut prev) = (None, None);
    while job.is_none() || prev.is_none() {
        match d.expect() {
            Event::NewJob(j) => {
                assert_eq!(
                    j.min_ntime, None,
                    "a job for a new prev hash is a future job"
                );
                job = Some(j)
            }
            Event::PrevHash(p) => prev = Some(p),
            e => panic!("unexpected {e:?}"),
        }
    }
    let (old, _) = grind(&ch, &v1, &[0, 0, 0, 0, 0, 5], true);
    rejected(submit(&mut d, &old, 7), 7, "stale-share");
    let stats = pool.stats();
    assert_eq!((stats.submits, stats.accepted), (7, 1));
}

#[test]
fn wrong_authority_key_is_refused_before_anything_is_sent() {
    let pool = Sv2SimPool::start(Sv2PoolConfig::default()).unwrap();
    let other = Sv2SimPool::start(Sv2PoolConfig::default()).unwrap();
    let mut d = Driver::connect(pool.addr(), &other.authority_public_key());
    assert_eq!(d.next(), Err(Sv2Error::WrongAuthority));
    assert_eq!(d.client.phase(), Phase::Failed);
    assert!(
        d.client.output().is_empty(),
        "no SetupConnection to an unauthenticated pool"
    );
    assert_eq!(
        d.client.next_event(now()),
        Err(Sv2Error::NotReady(Phase::Failed))
    );
    thread::sleep(Duration::from_millis(100));
    assert!(pool.stats().setup_flags.is_empty());
}

#[test]
fn an_expired_certificate_is_refused() {
    let pool = Sv2SimPool::start(Sv2PoolConfig::default()).unwrap();
    let mut d = Driver::connect(pool.addr(), &pool.authority_public_key());
    let later = now() + 2 * 3600;
    assert!(
        matches!(d.next_at(later), Err(Sv2Error::CertificateExpired { now, .. }) if now == later)
    );
}

#[test]
fn frames_fed_one_byte_at_a_time_decode_the_same() {
    let pool = Sv2SimPool::start(Sv2PoolConfig::default()).unwrap();
    let mut d = Driver::connect(pool.addr(), &pool.authority_public_key());
    d.feed_by = 1;
    let ch = open(&mut d, 8);
    assert_eq!(ch.job.merkle_path.len(), 2);
}

// --- A raw responder: the reference crates' Noise responder and encoder, driven by the test. ---

/// Accepts one client, completes the handshake with a fresh authority key and hands the encrypting half to
/// `script`, which writes what it likes. Returns the address and the key (base58-check).
fn raw_pool(
    script: impl FnOnce(&mut TcpStream, &mut TransportEncryptState) + Send + 'static,
) -> (SocketAddr, String) {
    let (public, secret) = authority_keypair();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut e = [0u8; 64];
        s.read_exact(&mut e).unwrap();
        let responder =
            noise_sv2::Responder::from_authority_kp(&public, &secret, Duration::from_secs(60))
                .unwrap();
        let (reply, transport) = Handshake::responder(responder).step_1(e).unwrap();
        s.write_all(reply.payload()).unwrap();
        let (mut enc, _dec) = transport.split();
        script(&mut s, &mut enc);
        thread::sleep(Duration::from_millis(300));
    });
    (addr, AuthorityKey::from_x_only(public).unwrap().to_base58())
}

fn send<T: binary_sv2::Serialize + binary_sv2::GetSize>(
    s: &mut TcpStream,
    enc: &mut TransportEncryptState,
    msg: T,
    ty: u8,
    channel: bool,
) {
    let frame = MessageFrame::from_message(msg, ty, 0, channel).unwrap();
    let bytes = NoiseEncoder::new().encode_transport(frame, enc).unwrap();
    s.write_all(&bytes).unwrap();
}

fn send_raw(s: &mut TcpStream, enc: &mut TransportEncryptState, ty: u8, ext: u16, payload: &[u8]) {
    let mut bytes = vec![ext as u8, (ext >> 8) as u8, ty];
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    bytes.extend_from_slice(payload);
    let frame = SerializedFrame::from_bytes(bytes).unwrap();
    let out = NoiseEncoder::new().encode_transport(frame, enc).unwrap();
    s.write_all(&out).unwrap();
}

fn setup_success(s: &mut TcpStream, enc: &mut TransportEncryptState) {
    let msg = common_messages_sv2::SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    };
    send(
        s,
        enc,
        msg,
        common_messages_sv2::MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS,
        false,
    );
}

#[test]
fn bad_input_from_a_reference_responder_gives_typed_errors_then_a_fatal_decrypt_error() {
    let big_prefix = vec![0x5a; 65_535];
    let job = ExtendedJob {
        channel_id: 2,
        job_id: 9,
        min_ntime: None,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: vec![[7; 32]; 3],
        coinbase_tx_prefix: big_prefix,
        coinbase_tx_suffix: vec![1, 2, 3],
    };
    let payload = fastproxy::protocol::sv2::messages::new_extended_job_payload(&job).unwrap();
    let (addr, key) = raw_pool(move |s, enc| {
        setup_success(s, enc);
        send_raw(s, enc, 0x7e, 0, &[1, 2, 3]); // unknown message type
        send_raw(s, enc, 0x1c, 5, &[0; 20]); // unknown extension
        send_raw(s, enc, 0x1f, 0x8000, &payload[..10]); // truncated payload
        send_raw(s, enc, 0x1f, 0x8000, &payload); // a job spanning two encrypted chunks
        let target = mining_sv2::SetTarget {
            channel_id: 2,
            maximum_target: binary_sv2::U256::from(&[0x11; 32]),
        };
        send(s, enc, target, mining_sv2::MESSAGE_TYPE_SET_TARGET, true);
        s.write_all(&[0u8; 22]).unwrap(); // a header that fails authentication
    });
    let mut d = Driver::connect(addr, &key);
    assert!(matches!(d.expect(), Event::SetupSuccess { .. }));
    assert_eq!(
        d.next(),
        Err(Sv2Error::UnknownMessage {
            ext_type: 0,
            msg_type: 0x7e
        })
    );
    assert_eq!(
        d.next(),
        Err(Sv2Error::UnknownMessage {
            ext_type: 5,
            msg_type: 0x1c
        })
    );
    assert!(matches!(
        d.next(),
        Err(Sv2Error::Malformed { msg_type: 0x1f, .. })
    ));
    assert_eq!(d.next(), Ok(Event::NewJob(job)));
    assert_eq!(
        d.next(),
        Ok(Event::SetTarget {
            channel_id: 2,
            maximum_target: [0x11; 32]
        })
    );
    assert_eq!(d.next(), Err(Sv2Error::Decrypt));
    assert_eq!(d.client.phase(), Phase::Failed);
}

#[test]
fn an_over_long_frame_is_refused_without_buffering_it() {
    let (addr, key) = raw_pool(|s, enc| {
        setup_success(s, enc);
        send_raw(s, enc, 0x1f, 0x8000, &vec![0u8; 1 << 20]);
    });
    let mut d = Driver::connect(addr, &key);
    assert!(matches!(d.expect(), Event::SetupSuccess { .. }));
    assert!(matches!(d.next(), Err(Sv2Error::FrameTooLong { .. })));
    assert_eq!(d.client.phase(), Phase::Failed);
}

#[test]
fn a_connection_closed_inside_a_frame_is_truncated() {
    let (addr, key) = raw_pool(|s, enc| {
        setup_success(s, enc);
        let frame = MessageFrame::from_message(
            mining_sv2::SetTarget {
                channel_id: 2,
                maximum_target: binary_sv2::U256::from(&[0x22; 32]),
            },
            mining_sv2::MESSAGE_TYPE_SET_TARGET,
            0,
            true,
        )
        .unwrap();
        let bytes = NoiseEncoder::new().encode_transport(frame, enc).unwrap();
        s.write_all(&bytes[..bytes.len() - 5]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut d = Driver::connect(addr, &key);
    assert!(matches!(d.expect(), Event::SetupSuccess { .. }));
    assert!(matches!(d.next(), Err(Sv2Error::Truncated { buffered }) if buffered > 0));
}
