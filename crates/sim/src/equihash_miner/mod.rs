//! A simulated Equihash stratum (ZIP 301) miner for tests: it subscribes (optionally also to
//! `mining.extranonce.subscribe`), authorizes, follows `mining.set_target`, `mining.notify` and
//! `mining.set_extranonce`, and submits a share for the current job every `share_interval`, checking that
//! each submit is answered exactly once. Blocking std::net, one thread per miner.
//!
//! It cannot solve Equihash (200, 9) in test time (the `equihash` crate's optional solver only does (200, 9)
//! and takes seconds per run even optimized), so each share carries a well-formed but fake solution: the
//! compactSize prefix and pseudo-random bytes, whose last bytes are varied until the block hash
//! sha256d(header || solution) meets the target. Each share uses a fresh NONCE_2 (a counter); the 32-byte
//! nonce it hashed (NONCE_1 || NONCE_2) is kept in the report, for comparison with what the pool rebuilt.

mod config;
mod grind;
mod session;
#[cfg(test)]
mod tests;

pub use self::config::{EquihashMinerConfig, EquihashMinerReport};
pub use self::grind::grind_solution;
use self::session::{Session, READ_TIMEOUT};
use crate::client::Client;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// Runs one miner session until `max_shares` submits were answered, `duration` passed, `stop` was set,
/// the peer closed the connection, or the handshake failed. Then waits up to 10 s for outstanding replies.
pub fn run_equihash_miner(cfg: &EquihashMinerConfig, stop: &AtomicBool) -> EquihashMinerReport {
    let who = format!("eqminer {}", cfg.worker);
    let conn = match Client::connect(cfg.addr, READ_TIMEOUT, who) {
        Ok(conn) => conn,
        Err(e) => {
            return EquihashMinerReport {
                error: Some(format!("connect to {}: {e}", cfg.addr)),
                ..EquihashMinerReport::default()
            }
        }
    };
    let mut session = Session::new(cfg, conn);
    session.run(stop);
    session.finish()
}

/// [`run_equihash_miner`] on its own thread.
pub fn spawn_equihash_miner(
    cfg: EquihashMinerConfig,
    stop: Arc<AtomicBool>,
) -> JoinHandle<EquihashMinerReport> {
    thread::spawn(move || run_equihash_miner(&cfg, &stop))
}
