//! Stratum V2 towards a pool (issue 14), sans-IO: the Noise NX initiator and encrypted framing of a client
//! connection (`client`), its messages as owned types (`messages`), and SV2 jobs as V1 notify fields (`job`).
//!
//! Built on the reference implementation's crates: `noise_sv2` (handshake, ChaCha20-Poly1305), `codec_sv2`
//! and `framing_sv2` (encrypted frames), `binary_sv2`, `mining_sv2` and `common_messages_sv2` (message
//! encodings). None of them needs an async runtime; nothing here touches a socket or reads a clock (the
//! caller passes the time for the certificate check), so the reactor drives it like any other session.

pub mod client;
pub mod common;
pub mod job;
pub mod messages;

pub use client::Sv2Client;
pub use common::{AuthorityKey, Phase, Sv2Error, MAX_PAYLOAD};
pub use job::{difficulty_for_target, share_extranonce, submit_version, target_to_be, v1_job};
pub use messages::{
    ChannelUpdate, Event, ExtendedJob, Extranonce, OpenChannel, PrevHash, SetupParams, ShareSubmit,
};
