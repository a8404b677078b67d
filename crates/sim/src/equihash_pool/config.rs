//! The simulated Equihash pool's settings and what it reports: its counters and the shares it accepted.

use fastproxy_work::equihash::{Params, NONCE_LEN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The default share target: 0x00ff..ff (one hash in 256 meets it).
pub const EASY_TARGET_HEX: &str =
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// How the simulated Equihash pool behaves.
#[derive(Clone, Debug)]
pub struct EquihashPoolConfig {
    /// Address to bind (127.0.0.1:0 by default: any free port).
    pub listen: SocketAddr,
    /// Bytes of NONCE_1 per connection (less than 32); miners fill the other 32 - `nonce1_size` bytes.
    pub nonce1_size: usize,
    /// Test hook: every `mining.subscribe` gets this NONCE_1 (not unique!) instead of a fresh one, e.g. to
    /// replay a known block's nonce. `mining.set_extranonce` still hands out fresh values of its length.
    pub fixed_nonce1: Option<Vec<u8>>,
    /// Share target sent with `mining.set_target` on subscribe: 64 hex digits, big-endian.
    pub target_hex: String,
    /// Broadcast a new (not clean) job this often; `None`: only on demand.
    pub job_interval: Option<Duration>,
    /// False: never reply to `mining.submit` (shares are still counted and checked).
    pub answer_submits: bool,
    /// Equihash parameters: the solution length expected, and the verification.
    pub params: Params,
    /// Verify each Equihash solution against the rebuilt header (an invalid one is rejected with 20). Off by
    /// default: the simulated miners submit well-formed but fake solutions.
    pub verify_solutions: bool,
    /// Reject shares whose block hash is above the target with 23 (on by default; the simulated miners
    /// vary their solution until the hash meets the target).
    pub check_target: bool,
    /// Jobs remembered per connection (older ones answer 21 "Job not found").
    pub jobs_kept: usize,
}

impl Default for EquihashPoolConfig {
    fn default() -> Self {
        EquihashPoolConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            nonce1_size: 4,
            fixed_nonce1: None,
            target_hex: EASY_TARGET_HEX.into(),
            job_interval: None,
            answer_submits: true,
            params: Params::ZCASH,
            verify_solutions: false,
            check_target: true,
            jobs_kept: 8,
        }
    }
}

/// Counters of a running Equihash pool (a snapshot).
#[derive(Clone, Default, Debug)]
pub struct EquihashPoolStats {
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// `mining.submit` requests received.
    pub submits: u64,
    /// Submits accepted.
    pub accepted: u64,
    /// Submits rejected (any code).
    pub rejected: u64,
    /// Rejected submits per error code.
    pub rejected_by_code: BTreeMap<i64, u64>,
    /// Submits rejected as duplicates (22).
    pub duplicates: u64,
    /// Every accepted share, in order.
    pub accepted_shares: Vec<EquihashShare>,
    /// Worker names authorized, in order.
    pub authorized_users: Vec<String>,
    /// `mining.extranonce.subscribe` requests received.
    pub extranonce_subscribes: u64,
    /// The params of every `mining.subscribe` received (agent, session id, host, port).
    pub subscribe_params: Vec<Value>,
}

/// One share the pool accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EquihashShare {
    /// The pool's id of the connection.
    pub conn_id: u64,
    /// The connection's NONCE_1 when the job was sent to it.
    pub nonce1: Vec<u8>,
    /// The submit's NONCE_2.
    pub nonce2: Vec<u8>,
    /// The header nonce the pool rebuilt: `nonce1 || nonce2`.
    pub nonce: [u8; NONCE_LEN],
    /// The submit's worker name.
    pub worker: String,
    /// The submit's job id.
    pub job_id: String,
    /// The submit's TIME, as in the header.
    pub time: [u8; 4],
    /// sha256d(header || solution), header byte order.
    pub block_hash: [u8; 32],
}
