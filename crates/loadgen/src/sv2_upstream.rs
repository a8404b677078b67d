//! `--upstream sv2`: a Stratum V2 pool for the started fastproxy (`fastproxy_sim::sv2_pool::Sv2SimPool` in
//! this process, on its own thread), whose target every hash meets, so the load generator's fixed shares pass.
//!
//! The pool still rebuilds and hashes every share; its counters go into the report (`sv2_pool`).

use crate::args::{Options, Upstream};
use fastproxy_sim::sv2_pool::{Sv2PoolConfig, Sv2SimPool};
use std::time::{Duration, Instant};

/// The SV2 pool's counters at the end of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sv2Counters {
    pub connections: u64,
    pub submits: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub successes_sent: u64,
    /// Replies the miners got over the whole run.
    pub miners_told_true: u64,
    pub miners_told_false: u64,
    /// Miners told `true` beyond the shares the pool accepted: at least this many were told `true` for a
    /// share the pool refused (or never saw).
    pub told_true_not_accepted: u64,
}

/// Starts the SV2 pool when `o` asks for one.
pub fn start(o: &Options) -> Result<Option<Sv2SimPool>, String> {
    if o.upstream != Upstream::Sv2 {
        return Ok(None);
    }
    // A fixed measurement-only authority (secret 1, public key the generator's x), so a proxy's config
    // written before the run (translator_sv2's) can name it.
    let mut secret = [0u8; 32];
    secret[31] = 1;
    let cfg = Sv2PoolConfig {
        listen: o.sv2_listen,
        difficulty: o.sv2_difficulty,
        extranonce_size: o.sv2_extranonce_size,
        reject_every: o.sv2_reject_every,
        authority: Some((GENERATOR_X, secret)),
        merkle_branches: o.merkle_branches,
        batch_size: o.sv2_batch,
        ..Sv2PoolConfig::default()
    };
    let pool = Sv2SimPool::start(cfg).map_err(|e| format!("the SV2 pool cannot start: {e}"))?;
    eprintln!(
        "fastproxy-loadgen: SV2 pool at {} authority_public_key {}",
        pool.addr(),
        pool.authority_public_key()
    );
    Ok(Some(pool))
}

/// The x coordinate of secp256k1's generator: the public key of secret 1.
const GENERATOR_X: [u8; 32] = [
    0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07,
    0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
];

/// Waits (at most `secs`) until the proxy has opened `n` connections to the SV2 pool.
pub fn wait_channels(p: &Sv2SimPool, n: u64, secs: f64) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        if p.stats().connections_total >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The pool's counters against the miners' replies (the pool stops when dropped).
pub fn counters(p: Sv2SimPool, told_true: u64, told_false: u64) -> Sv2Counters {
    let s = p.stats();
    Sv2Counters {
        miners_told_true: told_true,
        miners_told_false: told_false,
        told_true_not_accepted: told_true.saturating_sub(s.accepted),
        connections: s.connections_total,
        submits: s.submits,
        accepted: s.accepted,
        rejected: s.rejected_by_code.values().sum(),
        successes_sent: s.successes_sent,
    }
}
