//! One connection of the simulated SV2 pool: the Noise NX responder handshake, encrypted frames both ways,
//! SetupConnection, the one extended channel, and the jobs, targets and commands the test side sends it.

use super::state::{lock, make_job, next_prefix, other, Cmd, Shared, SimJob, Tip};
use binary_sv2::{GetSize, Seq0255, Serialize, Str0255, Sv2Option, B032, B064K, U256};
use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder, TransportEncryptState};
use common_messages_sv2 as common;
use fastproxy_work::work;
use framing_sv2::framing::MessageFrame;
use mining_sv2 as mining;
use noise_sv2::{Responder, ELLSWIFT_ENCODING_SIZE};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

const READ_POLL: Duration = Duration::from_millis(20);

/// The one extended channel of a connection.
pub(super) struct Channel {
    pub(super) id: u32,
    pub(super) prefix: Vec<u8>,
    pub(super) extranonce_size: usize,
    pub(super) target_be: [u8; 32],
    /// Jobs sent on this channel, with the extranonce prefix in effect when each was sent.
    pub(super) sent: HashMap<u32, (Arc<SimJob>, Vec<u8>)>,
    pub(super) seen: HashSet<(u32, Vec<u8>, u32, u32, u32)>,
    /// Jobs sent with `version_rolling_allowed = false`.
    pub(super) fixed: HashSet<u32>,
    pub(super) unacked: u32,
    pub(super) unacked_sum: u64,
}

/// One connection after the handshake.
pub(super) struct Conn<'a> {
    pub(super) shared: &'a Shared,
    pub(super) stream: TcpStream,
    pub(super) encrypt: TransportEncryptState,
    pub(super) encoder: NoiseEncoder,
    pub(super) channel: Option<Channel>,
}

impl Conn<'_> {
    pub(super) fn send<T: Serialize + GetSize>(
        &mut self,
        msg: T,
        ty: u8,
        channel: bool,
    ) -> io::Result<()> {
        let frame = MessageFrame::from_message(msg, ty, 0, channel).map_err(other)?;
        let bytes = self
            .encoder
            .encode_transport(frame, &mut self.encrypt)
            .map_err(other)?;
        self.stream.write_all(&bytes)
    }

    fn send_job(&mut self, job: &Arc<SimJob>, tip: Option<Tip>) -> io::Result<()> {
        let Some(ch) = self.channel.as_mut() else {
            return Ok(());
        };
        let id = ch.id;
        ch.sent
            .insert(job.job_id, (Arc::clone(job), ch.prefix.clone()));
        let rolling = self.shared.rolling_allowed.load(Ordering::SeqCst);
        if rolling {
            ch.fixed.remove(&job.job_id);
        } else {
            ch.fixed.insert(job.job_id);
        }
        let path: Vec<U256<'_>> = job.merkle_path.iter().map(U256::from).collect();
        let msg = mining::NewExtendedMiningJob {
            channel_id: id,
            job_id: job.job_id,
            // A job with a new tip is a future job; one on the current tip can start now.
            min_ntime: Sv2Option::new(
                tip.is_none()
                    .then(|| lock(&self.shared.state).tip.min_ntime),
            ),
            version: job.version,
            version_rolling_allowed: rolling,
            merkle_path: Seq0255::new(path).map_err(other)?,
            coinbase_tx_prefix: B064K::try_from(&job.prefix[..]).map_err(other)?,
            coinbase_tx_suffix: B064K::try_from(&job.suffix[..]).map_err(other)?,
        };
        self.send(msg, mining::MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, true)?;
        if let Some(tip) = tip {
            let msg = mining::SetNewPrevHash {
                channel_id: id,
                job_id: job.job_id,
                prev_hash: U256::from(&tip.prev_hash),
                min_ntime: tip.min_ntime,
                nbits: tip.nbits,
            };
            self.send(msg, mining::MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH, true)?;
        }
        Ok(())
    }

    fn set_target(&mut self, difficulty: f64) -> io::Result<()> {
        let Some(ch) = self.channel.as_mut() else {
            return Ok(());
        };
        ch.target_be = work::target_from_difficulty(difficulty);
        let mut le = ch.target_be;
        le.reverse();
        let msg = mining::SetTarget {
            channel_id: ch.id,
            maximum_target: U256::from(&le),
        };
        self.send(msg, mining::MESSAGE_TYPE_SET_TARGET, true)
    }

    fn command(&mut self, cmd: Cmd) -> io::Result<bool> {
        match cmd {
            Cmd::Job(job, tip) => self.send_job(&job, tip)?,
            Cmd::Target(d) => self.set_target(d)?,
            Cmd::Reconnect(host, port) => {
                let msg = common::Reconnect {
                    new_host: Str0255::try_from(host.as_str()).map_err(other)?,
                    new_port: port,
                };
                self.send(msg, common::MESSAGE_TYPE_RECONNECT, false)?;
            }
            Cmd::NewPrefix => {
                let prefix = next_prefix(self.shared);
                let Some(ch) = self.channel.as_mut() else {
                    return Ok(true);
                };
                ch.prefix = prefix.clone();
                let msg = mining::SetExtranoncePrefix {
                    channel_id: ch.id,
                    extranonce_prefix: B032::try_from(&prefix[..]).map_err(other)?,
                };
                self.send(msg, mining::MESSAGE_TYPE_SET_EXTRANONCE_PREFIX, true)?;
                let (job, tip) = {
                    let mut st = lock(&self.shared.state);
                    let job = make_job(&self.shared.cfg, self.shared.instance, &mut st);
                    (job, st.tip)
                };
                self.send_job(&job, Some(tip))?;
            }
            Cmd::Disconnect => return Ok(false),
        }
        Ok(true)
    }

    /// Handles one frame from the client.
    fn on_frame(&mut self, ty: u8, payload: &mut [u8]) -> io::Result<()> {
        match ty {
            common::MESSAGE_TYPE_SETUP_CONNECTION => {
                let m: common::SetupConnection = binary_sv2::from_bytes(payload).map_err(other)?;
                lock(&self.shared.state).stats.setup_flags.push(m.flags);
                const REQUIRES_VERSION_ROLLING: u32 = 1 << 2;
                if self.shared.cfg.refuse_version_rolling && m.flags & REQUIRES_VERSION_ROLLING != 0
                {
                    let msg = common::SetupConnectionError {
                        flags: REQUIRES_VERSION_ROLLING,
                        error_code: Str0255::try_from("unsupported-feature-flags")
                            .map_err(other)?,
                    };
                    return self.send(msg, common::MESSAGE_TYPE_SETUP_CONNECTION_ERROR, false);
                }
                if m.protocol != common::Protocol::MiningProtocol || m.min_version > 2 {
                    let msg = common::SetupConnectionError {
                        flags: 0,
                        error_code: Str0255::try_from("unsupported-protocol").map_err(other)?,
                    };
                    return self.send(msg, common::MESSAGE_TYPE_SETUP_CONNECTION_ERROR, false);
                }
                let msg = common::SetupConnectionSuccess {
                    used_version: 2,
                    flags: 0,
                };
                self.send(msg, common::MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS, false)
            }
            mining::MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL => {
                let m: mining::OpenExtendedMiningChannel =
                    binary_sv2::from_bytes(payload).map_err(other)?;
                self.open_channel(m)
            }
            mining::MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED => {
                let m: mining::SubmitSharesExtended =
                    binary_sv2::from_bytes(payload).map_err(other)?;
                self.submit(m)
            }
            mining::MESSAGE_TYPE_UPDATE_CHANNEL => {
                let m: mining::UpdateChannel = binary_sv2::from_bytes(payload).map_err(other)?;
                let update = (
                    m.channel_id,
                    m.nominal_hash_rate,
                    m.maximum_target.to_array(),
                );
                lock(&self.shared.state).stats.channel_updates.push(update);
                Ok(())
            }
            _ => Ok(()), // the rest: ignored
        }
    }

    fn open_channel(&mut self, m: mining::OpenExtendedMiningChannel<'_>) -> io::Result<()> {
        let cfg = &self.shared.cfg;
        let size = cfg.extranonce_size.max(m.min_extranonce_size);
        if self.channel.is_some() || cfg.extranonce_prefix_size + usize::from(size) > 32 {
            let msg = mining::OpenMiningChannelError {
                request_id: m.request_id,
                error_code: Str0255::try_from("min-extranonce-size-too-large").map_err(other)?,
            };
            return self.send(msg, mining::MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR, false);
        }
        {
            let mut st = lock(&self.shared.state);
            st.stats
                .user_identities
                .push(m.user_identity.as_utf8_or_hex());
            st.stats.open_hash_rates.push(m.nominal_hash_rate);
        }
        let prefix = next_prefix(self.shared);
        let target_be = work::target_from_difficulty(cfg.difficulty);
        let mut target_le = target_be;
        target_le.reverse();
        let msg = mining::OpenExtendedMiningChannelSuccess {
            request_id: m.request_id,
            channel_id: 2,
            target: U256::from(&target_le),
            extranonce_size: size,
            extranonce_prefix: B032::try_from(&prefix[..]).map_err(other)?,
            group_channel_id: 1,
        };
        self.send(
            msg,
            mining::MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
            false,
        )?;
        self.channel = Some(Channel {
            id: 2,
            prefix,
            extranonce_size: usize::from(size),
            target_be,
            sent: HashMap::new(),
            seen: HashSet::new(),
            fixed: HashSet::new(),
            unacked: 0,
            unacked_sum: 0,
        });
        let (job, tip) = {
            let st = lock(&self.shared.state);
            let last = st.jobs.values().next_back().cloned();
            (last, st.tip)
        };
        if let Some(job) = job {
            self.send_job(&job, Some(tip))?;
        }
        self.set_target(cfg.difficulty)
    }
}

/// Reads until `buf` holds at least `n` bytes; false when the pool stops or the peer closes first.
fn read_at_least(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    n: usize,
    stop: &AtomicBool,
) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < n {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

pub(super) fn serve(mut stream: TcpStream, shared: &Shared, rx: Receiver<Cmd>) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_POLL))?;
    stream.set_nodelay(true)?;
    let mut input = Vec::new();
    if !read_at_least(
        &mut stream,
        &mut input,
        ELLSWIFT_ENCODING_SIZE,
        &shared.stop,
    )? {
        return Ok(());
    }
    let mut e = [0u8; ELLSWIFT_ENCODING_SIZE];
    e.copy_from_slice(&input[..ELLSWIFT_ENCODING_SIZE]);
    input.drain(..ELLSWIFT_ENCODING_SIZE);
    let responder = Responder::from_authority_kp(
        &shared.authority_public,
        &shared.authority_secret,
        shared.cfg.cert_validity,
    )
    .map_err(other)?;
    let (reply, transport) = Handshake::responder(responder).step_1(e).map_err(other)?;
    stream.write_all(reply.payload())?;
    let (encrypt, decrypt) = transport.split();
    let mut decrypt = Some(decrypt);
    let mut decoder = NoiseDecoder::new();
    let mut conn = Conn {
        shared,
        stream: stream.try_clone()?,
        encrypt,
        encoder: NoiseEncoder::new(),
        channel: None,
    };
    let mut chunk = [0u8; 16 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        while let Ok(cmd) = rx.try_recv() {
            if !conn.command(cmd)? {
                return Ok(());
            }
        }
        // Hand the decoder exactly what it asks for, as long as enough bytes are buffered.
        loop {
            let want = decoder.writable_len();
            if input.len() < want {
                break;
            }
            decoder.writable().copy_from_slice(&input[..want]);
            input.drain(..want);
            let state = decrypt.take().ok_or_else(|| other("no decrypt state"))?;
            match decoder.next_transport_frame(state).map_err(other)? {
                Decrypted::Incomplete(_, state) => decrypt = Some(state),
                Decrypted::Frame(mut frame, state) => {
                    decrypt = Some(state);
                    let ty = frame.header().msg_type();
                    conn.on_frame(ty, frame.payload())?;
                }
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(k) => input.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
