//! The SV2 mining messages a client exchanges with a pool, as owned Rust values: the pool's messages decoded
//! into [`Event`]s, the client's built into `mining_sv2` / `common_messages_sv2` frames.
//!
//! Wire encodings are the reference crates' (`binary_sv2` derive); this file only maps types and names the
//! message types and channel bits (§5.3). Targets are kept as on the wire: 32 bytes, little-endian.

use binary_sv2::{GetSize, Seq0255, Serialize, Str0255, Sv2Option, B064K, U256};
use common_messages_sv2 as common;
use framing_sv2::framing::MessageFrame;
use mining_sv2 as mining;

use super::common::Sv2Error;

/// SetupConnection flag for the mining protocol: the client requires version rolling (§5.3.1 bit 2).
pub const REQUIRES_VERSION_ROLLING: u32 = 1 << 2;
/// SetupConnection flag: the client requires standard jobs (bit 0; never set by a proxy with extended
/// channels).
pub const REQUIRES_STANDARD_JOBS: u32 = 1;

/// A NewExtendedMiningJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedJob {
    pub channel_id: u32,
    pub job_id: u32,
    /// None: a future job, activated by a later SetNewPrevHash naming it.
    pub min_ntime: Option<u32>,
    pub version: u32,
    pub version_rolling_allowed: bool,
    /// Merkle path entries as on the wire (header byte order), coinbase side first.
    pub merkle_path: Vec<[u8; 32]>,
    pub coinbase_tx_prefix: Vec<u8>,
    pub coinbase_tx_suffix: Vec<u8>,
}

/// A SetNewPrevHash (mining protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrevHash {
    pub channel_id: u32,
    pub job_id: u32,
    /// As on the wire: header byte order.
    pub prev_hash: [u8; 32],
    pub min_ntime: u32,
    pub nbits: u32,
}

/// What the pool told the client, one variant per message the client handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// SetupConnection.Success: the connection is ready for channels.
    SetupSuccess {
        used_version: u16,
        flags: u32,
    },
    /// OpenExtendedMiningChannel.Success.
    ChannelOpened {
        request_id: u32,
        channel_id: u32,
        /// Little-endian, as on the wire.
        target: [u8; 32],
        extranonce_size: u16,
        extranonce_prefix: Vec<u8>,
        group_channel_id: u32,
    },
    /// OpenMiningChannel.Error.
    ChannelRefused {
        request_id: u32,
        code: String,
    },
    NewJob(ExtendedJob),
    PrevHash(PrevHash),
    /// SetTarget: the channel's new maximum target, little-endian.
    SetTarget {
        channel_id: u32,
        maximum_target: [u8; 32],
    },
    /// SetExtranoncePrefix: applies to jobs sent after it.
    SetExtranoncePrefix {
        channel_id: u32,
        prefix: Vec<u8>,
    },
    /// SubmitShares.Success: every share up to `last_sequence_number` not named in an Error is accepted.
    SharesAccepted {
        channel_id: u32,
        last_sequence_number: u32,
        new_submits_accepted_count: u32,
        new_shares_sum: u64,
    },
    /// SubmitShares.Error for one sequence number.
    ShareRejected {
        channel_id: u32,
        sequence_number: u32,
        code: String,
    },
    /// Reconnect: empty host / port 0 mean the same as now; redo the handshake with the same authority key.
    Reconnect {
        host: String,
        port: u16,
    },
    /// CloseChannel from the pool.
    ChannelClosed {
        channel_id: u32,
        reason: String,
    },
    /// UpdateChannel.Error: the pool refused the channel's new nominal hashrate or maximum target.
    ChannelUpdateRefused {
        channel_id: u32,
        code: String,
    },
}

/// The pool's SetupConnection.Error, handled by the client as a fatal error.
pub(crate) const SETUP_ERROR: u8 = common::MESSAGE_TYPE_SETUP_CONNECTION_ERROR;

/// Decodes one frame's payload. `SetupConnection.Error` comes back as [`Sv2Error::SetupRefused`].
pub fn decode(ext_type: u16, msg_type: u8, payload: &mut [u8]) -> Result<Event, Sv2Error> {
    if ext_type != 0 {
        return Err(Sv2Error::UnknownMessage { ext_type, msg_type });
    }
    let bad = |e: binary_sv2::Error| Sv2Error::Malformed {
        msg_type,
        reason: format!("{e:?}"),
    };
    Ok(match msg_type {
        common::MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS => {
            let m: common::SetupConnectionSuccess = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::SetupSuccess {
                used_version: m.used_version,
                flags: m.flags,
            }
        }
        SETUP_ERROR => {
            let m: common::SetupConnectionError = binary_sv2::from_bytes(payload).map_err(bad)?;
            return Err(Sv2Error::SetupRefused {
                flags: m.flags,
                code: m.error_code.as_utf8_or_hex(),
            });
        }
        common::MESSAGE_TYPE_RECONNECT => {
            let m: common::Reconnect = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::Reconnect {
                host: m.new_host.as_utf8_or_hex(),
                port: m.new_port,
            }
        }
        mining::MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS => {
            let m: mining::OpenExtendedMiningChannelSuccess =
                binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::ChannelOpened {
                request_id: m.request_id,
                channel_id: m.channel_id,
                target: m.target.to_array(),
                extranonce_size: m.extranonce_size,
                extranonce_prefix: m.extranonce_prefix.as_bytes().to_vec(),
                group_channel_id: m.group_channel_id,
            }
        }
        mining::MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR => {
            let m: mining::OpenMiningChannelError = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::ChannelRefused {
                request_id: m.request_id,
                code: m.error_code.as_utf8_or_hex(),
            }
        }
        mining::MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB => {
            let m: mining::NewExtendedMiningJob = binary_sv2::from_bytes(payload).map_err(bad)?;
            let merkle_path = m
                .merkle_path
                .iter()
                .map(|h| {
                    let mut a = [0u8; 32];
                    a.copy_from_slice(h.as_bytes());
                    a
                })
                .collect();
            Event::NewJob(ExtendedJob {
                channel_id: m.channel_id,
                job_id: m.job_id,
                min_ntime: m.min_ntime.as_ref().copied(),
                version: m.version,
                version_rolling_allowed: m.version_rolling_allowed,
                merkle_path,
                coinbase_tx_prefix: m.coinbase_tx_prefix.as_bytes().to_vec(),
                coinbase_tx_suffix: m.coinbase_tx_suffix.as_bytes().to_vec(),
            })
        }
        mining::MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH => {
            let m: mining::SetNewPrevHash = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::PrevHash(PrevHash {
                channel_id: m.channel_id,
                job_id: m.job_id,
                prev_hash: m.prev_hash.to_array(),
                min_ntime: m.min_ntime,
                nbits: m.nbits,
            })
        }
        mining::MESSAGE_TYPE_SET_TARGET => {
            let m: mining::SetTarget = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::SetTarget {
                channel_id: m.channel_id,
                maximum_target: m.maximum_target.to_array(),
            }
        }
        mining::MESSAGE_TYPE_SET_EXTRANONCE_PREFIX => {
            let m: mining::SetExtranoncePrefix = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::SetExtranoncePrefix {
                channel_id: m.channel_id,
                prefix: m.extranonce_prefix.as_bytes().to_vec(),
            }
        }
        mining::MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS => {
            // By hand: `mining_sv2`'s derived decoder allocates per message, and this one comes for
            // every share (its layout is fixed: u32, u32, u32, u64; tested against the derived one).
            let Some(f) = payload.first_chunk::<20>() else {
                return Err(bad(binary_sv2::Error::OutOfBound));
            };
            let u32_at = |i: usize| u32::from_le_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
            let mut sum = [0u8; 8];
            sum.copy_from_slice(&f[12..20]);
            Event::SharesAccepted {
                channel_id: u32_at(0),
                last_sequence_number: u32_at(4),
                new_submits_accepted_count: u32_at(8),
                new_shares_sum: u64::from_le_bytes(sum),
            }
        }
        mining::MESSAGE_TYPE_SUBMIT_SHARES_ERROR => {
            let m: mining::SubmitSharesError = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::ShareRejected {
                channel_id: m.channel_id,
                sequence_number: m.sequence_number,
                code: m.error_code.as_utf8_or_hex(),
            }
        }
        mining::MESSAGE_TYPE_CLOSE_CHANNEL => {
            let m: mining::CloseChannel = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::ChannelClosed {
                channel_id: m.channel_id,
                reason: m.reason_code.as_utf8_or_hex(),
            }
        }
        mining::MESSAGE_TYPE_UPDATE_CHANNEL_ERROR => {
            let m: mining::UpdateChannelError = binary_sv2::from_bytes(payload).map_err(bad)?;
            Event::ChannelUpdateRefused {
                channel_id: m.channel_id,
                code: m.error_code.as_utf8_or_hex(),
            }
        }
        _ => return Err(Sv2Error::UnknownMessage { ext_type, msg_type }),
    })
}

/// The SetupConnection fields a client chooses (protocol, versions and the flag word are set by the
/// client: mining protocol, version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupParams {
    /// Mining-protocol flags, e.g. [`REQUIRES_VERSION_ROLLING`].
    pub flags: u32,
    /// The pool's host and port as the client dialled them.
    pub endpoint_host: String,
    pub endpoint_port: u16,
    pub vendor: String,
    pub hardware_version: String,
    pub firmware: String,
    pub device_id: String,
}

/// An OpenExtendedMiningChannel.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenChannel {
    pub request_id: u32,
    pub user_identity: String,
    pub nominal_hash_rate: f32,
    /// Little-endian.
    pub max_target: [u8; 32],
    pub min_extranonce_size: u16,
}

/// An UpdateChannel: the channel's nominal hashrate now (h/s) and the largest target it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelUpdate {
    pub channel_id: u32,
    pub nominal_hash_rate: f32,
    /// Little-endian.
    pub maximum_target: [u8; 32],
}

/// A SubmitSharesExtended extranonce (at most 32 bytes, a `B032`) held inline: a share's costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Extranonce {
    len: u8,
    bytes: [u8; 32],
}

impl Extranonce {
    /// `bytes` as an extranonce; None when longer than 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Extranonce> {
        let mut e = Extranonce {
            len: u8::try_from(bytes.len()).ok().filter(|&n| n <= 32)?,
            bytes: [0; 32],
        };
        e.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(e)
    }

    /// `a` then `b`; None when longer than 32 bytes.
    pub fn concat(a: &[u8], b: &[u8]) -> Option<Extranonce> {
        let mut e = Extranonce::from_slice(a)?;
        let n = a.len() + b.len();
        e.bytes.get_mut(a.len()..n)?.copy_from_slice(b);
        e.len = n as u8;
        Some(e)
    }

    /// Removes the last byte (tests send short extranonces with it).
    pub fn pop(&mut self) -> Option<u8> {
        self.len = self.len.checked_sub(1)?;
        Some(self.bytes[usize::from(self.len)])
    }
}

impl std::ops::Deref for Extranonce {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Extranonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extranonce({})", crate::hex::encode(self))
    }
}

/// A SubmitSharesExtended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSubmit {
    pub channel_id: u32,
    pub sequence_number: u32,
    pub job_id: u32,
    pub nonce: u32,
    pub ntime: u32,
    /// The full nVersion of the share's header.
    pub version: u32,
    /// Everything of the coinbase's extranonce after the channel's prefix: exactly `extranonce_size` bytes.
    pub extranonce: Extranonce,
}

fn str0255(s: &str) -> Result<Str0255<'_>, Sv2Error> {
    Str0255::try_from(s).map_err(|e| Sv2Error::Encode(format!("{s:?}: {e:?}")))
}

fn frame<T: Serialize + GetSize>(
    msg: T,
    msg_type: u8,
    channel: bool,
) -> Result<MessageFrame<T>, Sv2Error> {
    MessageFrame::from_message(msg, msg_type, 0, channel)
        .map_err(|e| Sv2Error::Encode(format!("{e:?}")))
}

/// A SetupConnection frame for the mining protocol, version 2.
pub fn setup_connection(
    p: &SetupParams,
) -> Result<MessageFrame<common::SetupConnection<'_>>, Sv2Error> {
    let msg = common::SetupConnection {
        protocol: common::Protocol::MiningProtocol,
        min_version: 2,
        max_version: 2,
        flags: p.flags,
        endpoint_host: str0255(&p.endpoint_host)?,
        endpoint_port: p.endpoint_port,
        vendor: str0255(&p.vendor)?,
        hardware_version: str0255(&p.hardware_version)?,
        firmware: str0255(&p.firmware)?,
        device_id: str0255(&p.device_id)?,
    };
    frame(
        msg,
        common::MESSAGE_TYPE_SETUP_CONNECTION,
        common::CHANNEL_BIT_SETUP_CONNECTION,
    )
}

/// An OpenExtendedMiningChannel frame.
pub fn open_extended_channel(
    o: &OpenChannel,
) -> Result<MessageFrame<mining::OpenExtendedMiningChannel<'_>>, Sv2Error> {
    let msg = mining::OpenExtendedMiningChannel {
        request_id: o.request_id,
        user_identity: str0255(&o.user_identity)?,
        nominal_hash_rate: o.nominal_hash_rate,
        max_target: U256::from(&o.max_target),
        min_extranonce_size: o.min_extranonce_size,
    };
    frame(
        msg,
        mining::MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL,
        mining::CHANNEL_BIT_OPEN_EXTENDED_MINING_CHANNEL,
    )
}

/// An UpdateChannel frame (a channel message).
pub fn update_channel(
    u: &ChannelUpdate,
) -> Result<MessageFrame<mining::UpdateChannel<'_>>, Sv2Error> {
    let msg = mining::UpdateChannel {
        channel_id: u.channel_id,
        nominal_hash_rate: u.nominal_hash_rate,
        maximum_target: U256::from(&u.maximum_target),
    };
    frame(
        msg,
        mining::MESSAGE_TYPE_UPDATE_CHANNEL,
        mining::CHANNEL_BIT_UPDATE_CHANNEL,
    )
}

/// A SubmitSharesExtended frame.
pub fn submit_shares_extended(s: &ShareSubmit) -> Result<SubmitFrame, Sv2Error> {
    let e = &s.extranonce[..];
    let len = SUBMIT_FIXED + 1 + e.len();
    let mut bytes = [0u8; SUBMIT_FRAME_MAX];
    let ext = 0x8000u16 * u16::from(mining::CHANNEL_BIT_SUBMIT_SHARES_EXTENDED);
    bytes[..2].copy_from_slice(&ext.to_le_bytes());
    bytes[2] = mining::MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED;
    bytes[3..6].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
    let fields = [
        s.channel_id,
        s.sequence_number,
        s.job_id,
        s.nonce,
        s.ntime,
        s.version,
    ];
    for (i, f) in fields.iter().enumerate() {
        bytes[6 + 4 * i..10 + 4 * i].copy_from_slice(&f.to_le_bytes());
    }
    bytes[6 + SUBMIT_FIXED] = e.len() as u8;
    bytes[7 + SUBMIT_FIXED..6 + len].copy_from_slice(e);
    Ok(SubmitFrame {
        bytes,
        len: 6 + len,
    })
}

/// SubmitSharesExtended's fixed fields: six u32.
const SUBMIT_FIXED: usize = 24;
/// The longest SubmitSharesExtended frame: header, fixed fields, a B032 of 32 bytes.
const SUBMIT_FRAME_MAX: usize = 6 + SUBMIT_FIXED + 1 + 32;

/// A SubmitSharesExtended frame written on the stack: `mining_sv2`'s derived encoder allocates per message,
/// and a share must not (tests/zero_alloc.rs). Its bytes are the same (tested against it below).
#[derive(Debug, Clone, Copy)]
pub struct SubmitFrame {
    bytes: [u8; SUBMIT_FRAME_MAX],
    len: usize,
}

impl framing_sv2::framing::EncodableFrame for SubmitFrame {
    fn encoded_length(&self) -> usize {
        self.len
    }

    fn encode_into(self, dst: &mut [u8]) -> Result<(), framing_sv2::Error> {
        if dst.len() != self.len {
            return Err(framing_sv2::Error::UnexpectedDestinationLength {
                expected: self.len,
                actual: dst.len(),
            });
        }
        dst.copy_from_slice(&self.bytes[..self.len]);
        Ok(())
    }
}

/// Builds a NewExtendedMiningJob message (for tests and the fuzz target: the pool side's encoding).
pub fn new_extended_job_payload(j: &ExtendedJob) -> Result<Vec<u8>, Sv2Error> {
    let path: Vec<U256<'_>> = j.merkle_path.iter().map(U256::from).collect();
    let msg = mining::NewExtendedMiningJob {
        channel_id: j.channel_id,
        job_id: j.job_id,
        min_ntime: Sv2Option::new(j.min_ntime),
        version: j.version,
        version_rolling_allowed: j.version_rolling_allowed,
        merkle_path: Seq0255::new(path).map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
        coinbase_tx_prefix: B064K::try_from(&j.coinbase_tx_prefix[..])
            .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
        coinbase_tx_suffix: B064K::try_from(&j.coinbase_tx_suffix[..])
            .map_err(|e| Sv2Error::Encode(format!("{e:?}")))?,
    };
    binary_sv2::to_bytes(msg).map_err(|e| Sv2Error::Encode(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ExtendedJob {
        ExtendedJob {
            channel_id: 2,
            job_id: 7,
            min_ntime: None,
            version: 0x2000_0000,
            version_rolling_allowed: true,
            merkle_path: vec![[0x11; 32], [0x22; 32]],
            coinbase_tx_prefix: vec![1, 2, 3],
            coinbase_tx_suffix: vec![4, 5],
        }
    }

    #[test]
    fn a_job_round_trips_and_every_truncation_is_a_typed_error() {
        let bytes = new_extended_job_payload(&job()).unwrap();
        let mut whole = bytes.clone();
        let ev = decode(0, mining::MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, &mut whole).unwrap();
        assert_eq!(ev, Event::NewJob(job()));
        for cut in 0..bytes.len() {
            let mut short = bytes[..cut].to_vec();
            let r = decode(0, mining::MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, &mut short);
            assert!(
                matches!(r, Err(Sv2Error::Malformed { msg_type: 0x1f, .. })),
                "cut at {cut}: {r:?}"
            );
        }
    }

    fn bytes<F: framing_sv2::framing::EncodableFrame>(f: F) -> Vec<u8> {
        let mut out = vec![0u8; f.encoded_length()];
        f.encode_into(&mut out).unwrap();
        out
    }

    #[test]
    fn update_channel_is_a_channel_message_0x16_with_the_rate_as_f32_and_the_target() {
        let mut target = [0xff; 32];
        target[0] = 0x01;
        let u = ChannelUpdate {
            channel_id: 2,
            nominal_hash_rate: 1.5e12,
            maximum_target: target,
        };
        let mut want = vec![0x00, 0x80, 0x16, 40, 0, 0, 2, 0, 0, 0];
        want.extend_from_slice(&1.5e12f32.to_le_bytes());
        want.extend_from_slice(&target);
        assert_eq!(bytes(update_channel(&u).unwrap()), want);
    }

    #[test]
    fn setup_connection_carries_the_version_rolling_flag_only_when_asked() {
        let mut p = SetupParams {
            flags: REQUIRES_VERSION_ROLLING,
            endpoint_host: String::new(),
            endpoint_port: 0,
            vendor: String::new(),
            hardware_version: String::new(),
            firmware: String::new(),
            device_id: String::new(),
        };
        // Header (6), protocol 0, min and max version 2, then the flags word.
        let with = bytes(setup_connection(&p).unwrap());
        assert_eq!(&with[..2], &[0, 0], "not a channel message");
        assert_eq!(with[2], 0x00);
        assert_eq!(&with[6..15], &[0, 2, 0, 2, 0, 4, 0, 0, 0]);
        p.flags = 0;
        let without = bytes(setup_connection(&p).unwrap());
        assert_eq!(&without[6..15], &[0, 2, 0, 2, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn unknown_types_and_extensions_are_typed_errors() {
        let mut p = vec![0u8; 8];
        assert_eq!(
            decode(0, 0x7e, &mut p),
            Err(Sv2Error::UnknownMessage {
                ext_type: 0,
                msg_type: 0x7e
            })
        );
        assert_eq!(
            decode(1, 0x1c, &mut p),
            Err(Sv2Error::UnknownMessage {
                ext_type: 1,
                msg_type: 0x1c
            })
        );
    }

    #[test]
    fn the_hand_written_share_messages_match_the_reference_encoding() {
        use framing_sv2::framing::EncodableFrame;
        for n in [0usize, 1, 8, 32] {
            let extranonce: Vec<u8> = (0..n as u8).map(|i| i ^ 0xa5).collect();
            let s = ShareSubmit {
                channel_id: 0x0102_0304,
                sequence_number: u32::MAX - 1,
                job_id: 7,
                nonce: 0xdead_beef,
                ntime: 0x6553_f100,
                version: 0x2000_6000,
                extranonce: Extranonce::from_slice(&extranonce).unwrap(),
            };
            let msg = mining::SubmitSharesExtended {
                channel_id: s.channel_id,
                sequence_number: s.sequence_number,
                job_id: s.job_id,
                nonce: s.nonce,
                ntime: s.ntime,
                version: s.version,
                extranonce: binary_sv2::B032::try_from(&extranonce[..]).unwrap(),
            };
            let reference = frame(
                msg,
                mining::MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED,
                mining::CHANNEL_BIT_SUBMIT_SHARES_EXTENDED,
            )
            .unwrap();
            let mut want = vec![0u8; reference.encoded_length()];
            reference.encode_into(&mut want).unwrap();
            let ours = submit_shares_extended(&s).unwrap();
            let mut got = vec![0u8; ours.encoded_length()];
            ours.encode_into(&mut got).unwrap();
            assert_eq!(got, want, "a {n}-byte extranonce");
        }
        let ok = mining::SubmitSharesSuccess {
            channel_id: 9,
            last_sequence_number: 0x8000_0001,
            new_submits_accepted_count: 3,
            new_shares_sum: 0x0102_0304_0506_0708,
        };
        let mut payload = vec![0u8; ok.get_size()];
        binary_sv2::to_writer(ok, &mut payload).unwrap();
        assert_eq!(
            decode(0, mining::MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS, &mut payload),
            Ok(Event::SharesAccepted {
                channel_id: 9,
                last_sequence_number: 0x8000_0001,
                new_submits_accepted_count: 3,
                new_shares_sum: 0x0102_0304_0506_0708,
            })
        );
        assert!(decode(
            0,
            mining::MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
            &mut payload[..19]
        )
        .is_err());
    }
}
