//! The simulated Stratum V1 miner's settings and what it reports at the end of its session.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a simulated miner does.
#[derive(Clone, Debug)]
pub struct SimMinerConfig {
    pub addr: SocketAddr,
    pub worker: String,
    pub password: String,
    /// Send `mining.configure` first and roll version bits within the granted mask.
    pub version_rolling: bool,
    /// Send `mining.extranonce.subscribe` after subscribing.
    pub extranonce_subscribe: bool,
    /// Stop after this many submits were answered (and never submit more than this).
    pub max_shares: Option<u64>,
    /// Hard stop.
    pub duration: Duration,
    /// Hash with an extranonce1 whose last byte is flipped (an extra byte if it is empty): a proxy that got
    /// the nonce split wrong. Such shares must be rejected.
    pub tamper_extranonce1: bool,
    /// Minimum time between two submits (shares found sooner are dropped).
    pub submit_interval: Option<Duration>,
    /// User agent for `mining.subscribe` and `client.get_version`.
    pub agent: String,
    /// Counters updated as replies arrive, for live progress (the demo).
    pub live: Option<Arc<LiveCounters>>,
    /// Hashes per second at most (a slower simulated machine); `None`: as fast as the CPU allows.
    pub hashrate: Option<f64>,
}

/// Accepted and rejected shares of a running miner, readable from other threads.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub accepted: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
}

impl Default for SimMinerConfig {
    fn default() -> Self {
        SimMinerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 3333)),
            worker: "sim.worker".into(),
            password: "x".into(),
            version_rolling: false,
            extranonce_subscribe: false,
            max_shares: None,
            duration: Duration::from_secs(10),
            tamper_extranonce1: false,
            submit_interval: None,
            agent: "fastproxy-simminer/0.1".into(),
            live: None,
            hashrate: None,
        }
    }
}

/// What happened during a miner's session.
#[derive(Clone, Debug, Default)]
pub struct MinerReport {
    pub subscribed: bool,
    pub authorized: bool,
    /// The latest extranonce1 received (subscribe or set_extranonce).
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
    /// The version-rolling mask granted (or set later), if any.
    pub version_mask: Option<u32>,
    pub submitted: u64,
    pub accepted: u64,
    /// Submits answered with an error or `false` (code 0 when there was no error code).
    pub rejected: u64,
    pub reject_codes: BTreeMap<i64, u64>,
    /// The first few reject messages.
    pub reject_messages: Vec<String>,
    /// Every response received (handshake and submits).
    pub replies: u64,
    /// Responses whose id was not an outstanding request (unknown, or answered twice).
    pub duplicate_or_unknown_replies: u64,
    /// Submits still unanswered at the end.
    pub unanswered: u64,
    pub jobs_received: u64,
    pub set_extranonce_received: u64,
    /// The latest difficulty received.
    pub difficulty: f64,
    pub disconnected_by_peer: bool,
    pub error: Option<String>,
    pub hashes: u64,
}
