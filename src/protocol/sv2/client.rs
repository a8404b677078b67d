//! The client side of one SV2 connection as a state machine without IO: bytes from the pool go in with
//! [`Sv2Client::feed`], [`Event`]s come out of [`Sv2Client::next_event`], messages to send go in typed and
//! come out as encrypted bytes from [`Sv2Client::output`].
//!
//! Phases: the Noise NX handshake (the initiator's 64-byte `e` is queued at construction; the responder's 234
//! bytes complete it, the certificate checked against the authority key and the caller's clock), then
//! SetupConnection (queued as soon as the handshake completes), then Ready. A fatal error moves the client to
//! `Failed` for good; a consumed frame it could not use (unknown type, malformed payload) leaves it usable.

use codec_sv2::{ENCRYPTED_SV2_FRAME_HEADER_SIZE, SV2_FRAME_PLAINTEXT_CHUNK_SIZE};
use framing_sv2::framing::EncodableFrame;
use framing_sv2::header::Header;
use framing_sv2::{SV2_FRAME_CHUNK_SIZE, SV2_FRAME_HEADER_SIZE};
use noise_sv2::{
    Initiator, NoiseDecryptor, NoiseEncryptor, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE,
};

use super::common::{AuthorityKey, Phase, Sv2Error, MAX_PAYLOAD};
use super::messages::{self, ChannelUpdate, Event, OpenChannel, SetupParams, ShareSubmit};

/// The noise certificate window's leeway in the reference verifier (seconds).
const CERT_LEEWAY: u32 = 10;

/// The most encrypted bytes one frame may take: its header, the payload limit and one MAC per chunk.
const MAX_ENCRYPTED_FRAME: usize =
    codec_sv2::ENCRYPTED_SV2_FRAME_HEADER_SIZE + MAX_PAYLOAD + 16 * (MAX_PAYLOAD / 65_519 + 1);

/// One SV2 client connection (see the module docs).
///
/// Frames are sealed and opened here with `noise_sv2`'s cipher states, as `codec_sv2`'s encoder and decoder
/// do (the header, then the payload in chunks, each with its MAC), but in buffers kept for the
/// connection's life: `codec_sv2`'s allocate per frame, and a share must cost no allocation (tests/
/// zero_alloc.rs). The `with_buffer_pool` feature was measured: still 12 allocations per share, and its
/// pool spins forever when dropped while a frame it returned is alive.
pub struct Sv2Client {
    phase: Phase,
    setup: SetupParams,
    handshake: Option<Box<Initiator>>,
    encrypt: Option<NoiseEncryptor>,
    decrypt: Option<NoiseDecryptor>,
    /// The header of the frame whose payload is awaited.
    header: Option<Header>,
    /// A frame in plain text (being sealed, or opened), and one chunk being sealed or opened in place.
    plain: Vec<u8>,
    chunk: Vec<u8>,
    /// Bytes from the pool not yet handed to the handshake or the decoder, from `in_pos`.
    input: Vec<u8>,
    in_pos: usize,
    /// Encrypted bytes of the frame in progress already consumed (its header).
    frame_bytes: usize,
    /// Bytes to send to the pool, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
}

impl std::fmt::Debug for Sv2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sv2Client")
            .field("phase", &self.phase)
            .field("buffered_in", &(self.input.len() - self.in_pos))
            .field("buffered_out", &(self.out.len() - self.out_pos))
            .finish()
    }
}

impl Sv2Client {
    /// A connection that will accept only a pool whose certificate `authority` signed, and send `setup`
    /// once encrypted. The handshake's first message is queued in [`Sv2Client::output`].
    pub fn new(authority: &AuthorityKey, setup: SetupParams) -> Result<Sv2Client, Sv2Error> {
        let mut initiator = Initiator::from_raw_k(authority.x_only())
            .map_err(|e| Sv2Error::BadAuthorityKey(format!("{e:?}")))?;
        let first = initiator
            .step_0()
            .map_err(|e| Sv2Error::Handshake(format!("{e:?}")))?;
        Ok(Sv2Client {
            phase: Phase::Handshake,
            setup,
            handshake: Some(initiator),
            encrypt: None,
            decrypt: None,
            header: None,
            plain: Vec::new(),
            chunk: Vec::with_capacity(SV2_FRAME_CHUNK_SIZE),
            input: Vec::new(),
            in_pos: 0,
            frame_bytes: 0,
            out: first.to_vec(),
            out_pos: 0,
        })
    }

    /// The connection's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Buffers bytes read from the pool; [`Sv2Client::next_event`] processes them.
    pub fn feed(&mut self, data: &[u8]) {
        if self.in_pos > 0 && self.in_pos == self.input.len() {
            self.input.clear();
            self.in_pos = 0;
        } else if self.in_pos > 64 * 1024 {
            self.input.drain(..self.in_pos);
            self.in_pos = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// Bytes waiting to be written to the pool.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes of [`Sv2Client::output`] as written.
    pub fn advance_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Takes every byte waiting to be written.
    pub fn take_output(&mut self) -> Vec<u8> {
        let rest = self.out.split_off(self.out_pos);
        self.out.clear();
        self.out_pos = 0;
        rest
    }

    /// The next event from the bytes fed so far, or None until more bytes come. `now_unix` (seconds) checks
    /// the pool certificate's validity while the handshake completes. After a fatal error every call
    /// returns [`Sv2Error::NotReady`].
    pub fn next_event(&mut self, now_unix: u32) -> Result<Option<Event>, Sv2Error> {
        if self.phase == Phase::Failed {
            return Err(Sv2Error::NotReady(Phase::Failed));
        }
        if self.phase == Phase::Handshake
            && !self
                .finish_handshake(now_unix)
                .inspect_err(|_| self.phase = Phase::Failed)?
        {
            return Ok(None);
        }
        let result = self.next_frame_event();
        if let Err(e) = &result {
            if e.is_fatal() {
                self.phase = Phase::Failed;
            }
        }
        result
    }

    /// Whether the bytes fed so far end between frames; call at end of stream: a connection closed inside a
    /// frame is [`Sv2Error::Truncated`].
    pub fn at_eof(&self) -> Result<(), Sv2Error> {
        let buffered = self.input.len() - self.in_pos + self.frame_bytes;
        if buffered > 0 {
            return Err(Sv2Error::Truncated { buffered });
        }
        Ok(())
    }

    /// Queues an OpenExtendedMiningChannel.
    pub fn open_extended_channel(&mut self, open: &OpenChannel) -> Result<(), Sv2Error> {
        self.ready()?;
        let frame = messages::open_extended_channel(open)?;
        self.send(frame)
    }

    /// Queues a SubmitSharesExtended.
    pub fn submit_shares_extended(&mut self, share: &ShareSubmit) -> Result<(), Sv2Error> {
        self.ready()?;
        let frame = messages::submit_shares_extended(share)?;
        self.send(frame)
    }

    /// Queues an UpdateChannel.
    pub fn update_channel(&mut self, update: &ChannelUpdate) -> Result<(), Sv2Error> {
        self.ready()?;
        let frame = messages::update_channel(update)?;
        self.send(frame)
    }

    fn ready(&self) -> Result<(), Sv2Error> {
        match self.phase {
            Phase::Ready => Ok(()),
            phase => Err(Sv2Error::NotReady(phase)),
        }
    }

    /// Encrypts one frame into the output: its header, then its payload in chunks, each sealed with its MAC.
    fn send<F: EncodableFrame>(&mut self, frame: F) -> Result<(), Sv2Error> {
        let Some(state) = self.encrypt.as_mut() else {
            return Err(Sv2Error::NotReady(self.phase));
        };
        let len = frame.encoded_length();
        if len < SV2_FRAME_HEADER_SIZE {
            return Err(Sv2Error::Encode(format!("a {len}-byte frame")));
        }
        self.plain.clear();
        self.plain.resize(len, 0);
        frame
            .encode_into(&mut self.plain)
            .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?;
        let (header, payload) = self.plain.split_at(SV2_FRAME_HEADER_SIZE);
        let pieces = std::iter::once(header).chain(payload.chunks(SV2_FRAME_PLAINTEXT_CHUNK_SIZE));
        for piece in pieces {
            self.chunk.clear();
            self.chunk.extend_from_slice(piece);
            if state.encrypt(&mut self.chunk).is_err() {
                // The cipher state may have moved on: nothing more can be sent on this connection.
                self.phase = Phase::Failed;
                return Err(Sv2Error::Encode("encryption failed".into()));
            }
            self.out.extend_from_slice(&self.chunk);
        }
        Ok(())
    }

    /// Completes the handshake when the responder's message is there; false while it is not.
    fn finish_handshake(&mut self, now: u32) -> Result<bool, Sv2Error> {
        const N: usize = INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE;
        if self.input.len() - self.in_pos < N {
            return Ok(false);
        }
        let mut msg = [0u8; N];
        msg.copy_from_slice(&self.input[self.in_pos..self.in_pos + N]);
        self.in_pos += N;
        let mut handshake = self
            .handshake
            .take()
            .ok_or(Sv2Error::NotReady(self.phase))?;
        let engine = handshake
            .step_2_with_now(msg, now)
            .map_err(|e| handshake_error(e, now))?;
        let (encrypt, decrypt) = engine.into_split();
        self.encrypt = Some(encrypt);
        self.decrypt = Some(decrypt);
        self.phase = Phase::Setup;
        let setup = self.setup.clone();
        let frame = messages::setup_connection(&setup)?;
        self.send(frame)?;
        Ok(true)
    }

    /// Opens the next frame once its bytes are there (the header first, then the payload it announces), then
    /// decodes it.
    fn next_frame_event(&mut self) -> Result<Option<Event>, Sv2Error> {
        let Some(state) = self.decrypt.as_mut() else {
            return Err(Sv2Error::NotReady(self.phase));
        };
        let header = match self.header {
            Some(header) => header,
            None => {
                const N: usize = ENCRYPTED_SV2_FRAME_HEADER_SIZE;
                if self.input.len() - self.in_pos < N {
                    return Ok(None);
                }
                self.chunk.clear();
                self.chunk
                    .extend_from_slice(&self.input[self.in_pos..self.in_pos + N]);
                self.in_pos += N;
                self.frame_bytes = N;
                state
                    .decrypt(&mut self.chunk)
                    .map_err(|_| Sv2Error::Decrypt)?;
                let header = Header::from_bytes(&self.chunk)
                    .map_err(|e| Sv2Error::Frame(format!("{e:?}")))?;
                let total = N + codec_sv2::encrypted_payload_length(&header);
                if total > MAX_ENCRYPTED_FRAME {
                    return Err(Sv2Error::FrameTooLong { at_least: total });
                }
                self.header = Some(header);
                header
            }
        };
        let want = codec_sv2::encrypted_payload_length(&header);
        if self.input.len() - self.in_pos < want {
            return Ok(None);
        }
        let sealed = &self.input[self.in_pos..self.in_pos + want];
        self.in_pos += want;
        self.header = None;
        self.frame_bytes = 0;
        self.plain.clear();
        for piece in sealed.chunks(SV2_FRAME_CHUNK_SIZE) {
            self.chunk.clear();
            self.chunk.extend_from_slice(piece);
            state
                .decrypt(&mut self.chunk)
                .map_err(|_| Sv2Error::Decrypt)?;
            self.plain.extend_from_slice(&self.chunk);
        }
        let (ext, ty) = (header.ext_type_without_channel_msg(), header.msg_type());
        let event = messages::decode(ext, ty, &mut self.plain)?;
        self.in_phase(ty, event).map(Some)
    }

    /// Checks an event against the phase: the first message must be SetupConnection.Success, and only
    /// once.
    fn in_phase(&mut self, msg_type: u8, event: Event) -> Result<Event, Sv2Error> {
        match (self.phase, &event) {
            (Phase::Setup, Event::SetupSuccess { .. }) => {
                self.phase = Phase::Ready;
                Ok(event)
            }
            (Phase::Ready, Event::SetupSuccess { .. }) | (Phase::Setup, _) => {
                Err(Sv2Error::Unexpected {
                    msg_type,
                    phase: self.phase,
                })
            }
            _ => Ok(event),
        }
    }
}

/// Names a failed handshake: a certificate inside its window whose signature does not verify is the wrong
/// authority; one outside it is expired (or not yet valid).
fn handshake_error(e: noise_sv2::Error, now: u32) -> Sv2Error {
    match e {
        noise_sv2::Error::InvalidCertificate(cert) => {
            let in_window = cert.valid_from.saturating_sub(CERT_LEEWAY) <= now
                && now <= cert.not_valid_after.saturating_add(CERT_LEEWAY);
            if in_window {
                Sv2Error::WrongAuthority
            } else {
                Sv2Error::CertificateExpired {
                    valid_from: cert.valid_from,
                    not_valid_after: cert.not_valid_after,
                    now,
                }
            }
        }
        other => Sv2Error::Handshake(format!("{other:?}")),
    }
}
