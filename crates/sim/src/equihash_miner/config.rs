//! The simulated Equihash miner's settings and what it reports at the end of its session.

use fastproxy_work::equihash::{Params, NONCE_LEN};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// What a simulated Equihash miner does.
#[derive(Clone, Debug)]
pub struct EquihashMinerConfig {
    /// Pool (or proxy) to connect to.
    pub addr: SocketAddr,
    /// Worker name for `mining.authorize` and the submits.
    pub worker: String,
    /// Password for `mining.authorize`.
    pub password: String,
    /// Send `mining.extranonce.subscribe` after subscribing.
    pub extranonce_subscribe: bool,
    /// Stop after this many submits were answered (and never submit more than this).
    pub max_shares: Option<u64>,
    /// Hard stop.
    pub duration: Duration,
    /// Time between two submits (from one submit to the start of the next share).
    pub share_interval: Duration,
    /// Hash with a NONCE_1 whose last byte is flipped (byte 0 of the nonce when NONCE_1 is empty) while
    /// sending the true NONCE_2: a proxy that got the nonce split wrong. The pool rebuilds another header,
    /// so (with the pool's target check on) such shares are rejected with 23.
    pub tamper_nonce1: bool,
    /// Equihash parameters: the length of the solutions submitted.
    pub params: Params,
    /// Vary the solution until the block hash meets the target (default); false: submit the first variant.
    pub meet_target: bool,
    /// User agent for `mining.subscribe` and `client.get_version`.
    pub agent: String,
    /// SESSION_ID sent in `mining.subscribe` (`null` when `None`).
    pub session_id: Option<String>,
}

impl Default for EquihashMinerConfig {
    fn default() -> Self {
        EquihashMinerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 3333)),
            worker: "sim.worker".into(),
            password: "x".into(),
            extranonce_subscribe: false,
            max_shares: None,
            duration: Duration::from_secs(10),
            share_interval: Duration::from_millis(50),
            tamper_nonce1: false,
            params: Params::ZCASH,
            meet_target: true,
            agent: "fastproxy-eqminer/0.1".into(),
            session_id: None,
        }
    }
}

/// What happened during an Equihash miner's session.
#[derive(Clone, Debug, Default)]
pub struct EquihashMinerReport {
    /// The subscribe succeeded.
    pub subscribed: bool,
    /// The authorize succeeded.
    pub authorized: bool,
    /// The SESSION_ID of the subscribe result (`None` when the pool sent `null`).
    pub session_id: Option<String>,
    /// The latest NONCE_1 received (subscribe or set_extranonce).
    pub nonce1: Vec<u8>,
    /// The latest target received.
    pub target: Option<[u8; 32]>,
    /// Submits sent.
    pub submitted: u64,
    /// Submits answered `true`.
    pub accepted: u64,
    /// Submits answered with an error or `false` (code 0 when there was no error code).
    pub rejected: u64,
    /// Rejected submits per error code.
    pub reject_codes: BTreeMap<i64, u64>,
    /// The first few reject messages.
    pub reject_messages: Vec<String>,
    /// Every response received (handshake and submits).
    pub replies: u64,
    /// Responses whose id was not an outstanding request (unknown, or answered twice).
    pub duplicate_or_unknown_replies: u64,
    /// Submits still unanswered at the end.
    pub unanswered: u64,
    /// `mining.notify` messages received.
    pub jobs_received: u64,
    /// `mining.set_target` messages received.
    pub set_target_received: u64,
    /// `mining.set_extranonce` messages received.
    pub set_extranonce_received: u64,
    /// The connection was closed by the other side (or a write failed).
    pub disconnected_by_peer: bool,
    /// Why the session failed, if it did (connect, subscribe, authorize, protocol).
    pub error: Option<String>,
    /// The 32-byte header nonce of each submit, in order: NONCE_1 || NONCE_2 as hashed (tampered when so
    /// configured).
    pub submitted_nonces: Vec<[u8; NONCE_LEN]>,
    /// Solution variants hashed.
    pub hashes: u64,
}
