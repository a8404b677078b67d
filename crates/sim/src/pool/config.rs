//! The simulated Stratum V1 pool's settings and what it reports: its counters and the shares it accepted
//! and refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How the simulated pool behaves.
#[derive(Clone, Debug)]
pub struct SimPoolConfig {
    /// Address to bind (127.0.0.1:0 by default: any free port).
    pub listen: SocketAddr,
    pub extranonce1_size: usize,
    pub extranonce2_size: usize,
    /// Share difficulty sent on subscribe.
    pub difficulty: f64,
    /// Broadcast a new (not clean) job this often; `None`: only on demand.
    pub job_interval: Option<Duration>,
    /// Version-rolling mask offered; `None`: `mining.configure` is answered with error 20 (unknown method).
    pub version_rolling_mask: Option<u32>,
    /// Number of merkle branch entries per job.
    pub merkle_branches: usize,
    /// If set, `mining.authorize` succeeds only for exactly this user name.
    pub user: Option<String>,
    /// False: never reply to `mining.submit` (shares are still counted and checked).
    pub answer_submits: bool,
    /// Jobs remembered per connection (older ones answer 21 "Job not found").
    pub jobs_kept: usize,
    /// More user names `mining.authorize` accepts besides `user`; with `user` unset and this empty, any name.
    pub users: Vec<String>,
}

impl Default for SimPoolConfig {
    fn default() -> Self {
        SimPoolConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extranonce1_size: 4,
            extranonce2_size: 8,
            difficulty: 1.0 / 65536.0,
            job_interval: None,
            version_rolling_mask: Some(0x1fff_e000),
            merkle_branches: 2,
            user: None,
            answer_submits: true,
            jobs_kept: 8,
            users: Vec::new(),
        }
    }
}

/// Counters of a running pool (a snapshot).
#[derive(Clone, Default, Debug)]
pub struct PoolStats {
    pub connections_total: u64,
    pub connections_open: u64,
    pub submits: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_by_code: BTreeMap<i64, u64>,
    pub duplicates: u64,
    pub accepted_shares: Vec<AcceptedShare>,
    pub authorized_users: Vec<String>,
    pub configure_requests: u64,
    pub extranonce_subscribes: u64,
    /// Every refused submit, in order, with its reason (see [`RejectedShare`]).
    pub rejected_shares: Vec<RejectedShare>,
}

/// One share the pool accepted.
#[derive(Clone, Debug)]
pub struct AcceptedShare {
    pub conn_id: u64,
    /// The connection's extranonce1 when the job was sent to it.
    pub extranonce1: Vec<u8>,
    pub extranonce2: Vec<u8>,
    pub worker: String,
    pub job_id: String,
    pub nonce: u32,
    pub version_bits: Option<u32>,
    /// The share's ntime as submitted.
    pub ntime: u32,
    /// The header version hashed (the job's, with the rolled bits applied).
    pub version: u32,
}

impl AcceptedShare {
    /// extranonce1 || extranonce2: the coinbase bytes between coinb1 and coinb2 (a proxy that splits the
    /// extranonce space leaves these the same on both of its sides).
    pub fn full_extranonce(&self) -> Vec<u8> {
        [&self.extranonce1[..], &self.extranonce2[..]].concat()
    }
}

/// One submit the pool refused.
#[derive(Clone, Debug)]
pub struct RejectedShare {
    pub conn_id: u64,
    /// The error code and message the pool answered (22 for a duplicate, 23 for low difficulty, ...).
    pub code: i64,
    pub reason: &'static str,
    /// The connection's extranonce1 at the time.
    pub extranonce1: Vec<u8>,
    /// The submit's params as sent (strings as they were, anything else as JSON text).
    pub params: Vec<String>,
}
