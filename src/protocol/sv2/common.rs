//! What every part of the SV2 client shares: its errors, its phases, the frame size limit and the pool's
//! authority public key (base58-check as SRI publishes it).

use std::fmt;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the responder's handshake message.
    Handshake,
    /// Encrypted; SetupConnection sent, waiting for its answer.
    Setup,
    /// SetupConnection.Success received: channels can be opened and shares sent.
    Ready,
    /// A fatal error happened; the connection must be closed.
    Failed,
}

/// The largest frame payload the client accepts. The largest mining message a pool sends is
/// NewExtendedMiningJob: 255 merkle path entries and two coinbase parts of up to 64 KiB, about 136 KiB.
pub const MAX_PAYLOAD: usize = 1 << 18;

/// Why an SV2 connection step failed. [`Sv2Error::is_fatal`] says whether the connection can go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sv2Error {
    /// An authority public key that is not base58-check of `[0x01, 0x00] ‖ x-only key`.
    BadAuthorityKey(String),
    /// The pool's certificate is within its validity window but not signed by the configured authority key.
    WrongAuthority,
    /// The pool's certificate is outside its validity window (checked with the caller's clock, ±10 s).
    CertificateExpired {
        valid_from: u32,
        not_valid_after: u32,
        now: u32,
    },
    /// Any other handshake failure (a tampered or garbled responder message).
    Handshake(String),
    /// A transport frame failed authentication (wrong key, corrupted or reordered bytes).
    Decrypt,
    /// A frame whose payload is longer than [`MAX_PAYLOAD`].
    FrameTooLong { at_least: usize },
    /// A frame the codec could not take apart.
    Frame(String),
    /// The connection ended in the middle of a frame.
    Truncated { buffered: usize },
    /// A known message whose payload does not parse (too short, bad lengths). The frame is consumed.
    Malformed { msg_type: u8, reason: String },
    /// A message type this client does not handle. The frame is consumed.
    UnknownMessage { ext_type: u16, msg_type: u8 },
    /// A known message that is not valid in the connection's current phase. The frame is consumed.
    Unexpected { msg_type: u8, phase: Phase },
    /// The pool answered SetupConnection with an error.
    SetupRefused { flags: u32, code: String },
    /// A message to send that does not fit its encoding (e.g. a user identity over 255 bytes).
    Encode(String),
    /// Sending before SetupConnection.Success, or after a fatal error.
    NotReady(Phase),
}

impl Sv2Error {
    /// Whether the connection must be closed: everything except a consumed frame the client could not use.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Sv2Error::Malformed { .. }
                | Sv2Error::UnknownMessage { .. }
                | Sv2Error::Unexpected { .. }
                | Sv2Error::Encode(_)
        )
    }
}

impl fmt::Display for Sv2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sv2Error::BadAuthorityKey(why) => write!(f, "bad authority public key: {why}"),
            Sv2Error::WrongAuthority => {
                f.write_str("pool certificate is not signed by the configured authority key")
            }
            Sv2Error::CertificateExpired {
                valid_from,
                not_valid_after,
                now,
            } => write!(
                f,
                "pool certificate valid {valid_from}..{not_valid_after}, now is {now}"
            ),
            Sv2Error::Handshake(why) => write!(f, "noise handshake failed: {why}"),
            Sv2Error::Decrypt => f.write_str("frame failed decryption"),
            Sv2Error::FrameTooLong { at_least } => {
                write!(f, "frame of at least {at_least} bytes, limit {MAX_PAYLOAD}")
            }
            Sv2Error::Frame(why) => write!(f, "bad frame: {why}"),
            Sv2Error::Truncated { buffered } => {
                write!(
                    f,
                    "connection closed inside a frame ({buffered} bytes buffered)"
                )
            }
            Sv2Error::Malformed { msg_type, reason } => {
                write!(f, "malformed message 0x{msg_type:02x}: {reason}")
            }
            Sv2Error::UnknownMessage { ext_type, msg_type } => {
                write!(f, "unknown message 0x{msg_type:02x} (extension {ext_type})")
            }
            Sv2Error::Unexpected { msg_type, phase } => {
                write!(
                    f,
                    "message 0x{msg_type:02x} not expected in phase {phase:?}"
                )
            }
            Sv2Error::SetupRefused { flags, code } => {
                write!(f, "SetupConnection refused: {code} (flags 0x{flags:08x})")
            }
            Sv2Error::Encode(why) => write!(f, "cannot encode message: {why}"),
            Sv2Error::NotReady(phase) => write!(f, "connection not ready to send ({phase:?})"),
        }
    }
}

impl std::error::Error for Sv2Error {}

/// A pool's authority public key: the 32-byte x-only (BIP340) key that signs its Noise certificates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthorityKey([u8; 32]);

impl fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityKey({})", self.to_base58())
    }
}

impl AuthorityKey {
    /// Parses the form SRI and pools publish: base58-check of `[0x01, 0x00] ‖ 32-byte x-only key` (§4.7).
    pub fn parse(s: &str) -> Result<AuthorityKey, Sv2Error> {
        let bytes = bs58::decode(s.trim())
            .with_check(None)
            .into_vec()
            .map_err(|e| Sv2Error::BadAuthorityKey(e.to_string()))?;
        if bytes.len() != 34 {
            return Err(Sv2Error::BadAuthorityKey(format!(
                "{} bytes after decoding, expected 34",
                bytes.len()
            )));
        }
        let version = u16::from_le_bytes([bytes[0], bytes[1]]);
        if version != 1 {
            return Err(Sv2Error::BadAuthorityKey(format!(
                "key version {version}, expected 1"
            )));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[2..]);
        AuthorityKey::from_x_only(key)
    }

    /// A key from its 32 raw x-only bytes; refused when they are not a point on the curve.
    pub fn from_x_only(key: [u8; 32]) -> Result<AuthorityKey, Sv2Error> {
        noise_sv2::Initiator::from_raw_k(key)
            .map_err(|_| Sv2Error::BadAuthorityKey("not a valid x-only public key".into()))?;
        Ok(AuthorityKey(key))
    }

    /// The 32 raw x-only bytes.
    pub fn x_only(&self) -> [u8; 32] {
        self.0
    }

    /// The published form (inverse of [`AuthorityKey::parse`]).
    pub fn to_base58(&self) -> String {
        let mut raw = [0u8; 34];
        raw[0] = 1;
        raw[2..].copy_from_slice(&self.0);
        bs58::encode(raw).with_check().into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sri_example_key_and_round_trips() {
        let s = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
        let key = AuthorityKey::parse(s).expect("SRI example key");
        assert_eq!(key.to_base58(), s);
    }

    #[test]
    fn refuses_bad_keys() {
        // One character changed: the checksum fails.
        let bad = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH73";
        assert!(matches!(
            AuthorityKey::parse(bad),
            Err(Sv2Error::BadAuthorityKey(_))
        ));
        assert!(matches!(
            AuthorityKey::parse("not base58 0OIl"),
            Err(Sv2Error::BadAuthorityKey(_))
        ));
        // Right checksum, wrong version.
        let mut raw = [0u8; 34];
        raw[0] = 2;
        let v2 = bs58::encode(raw).with_check().into_string();
        assert!(matches!(
            AuthorityKey::parse(&v2),
            Err(Sv2Error::BadAuthorityKey(m)) if m.contains("version")
        ));
    }
}
