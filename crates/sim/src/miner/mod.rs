//! A simulated Stratum V1 (SHA256d) miner for tests: it connects, negotiates (optionally) version rolling
//! and the extranonce subscription, subscribes, authorizes, then really hashes the jobs it gets and submits
//! every share that meets its target, checking that each submit is answered exactly once.
//! Blocking std::net, one thread per miner.

mod config;
mod hashing;
mod session;
#[cfg(test)]
mod tests;

pub use self::config::{LiveCounters, MinerReport, SimMinerConfig};
pub use self::hashing::search_nonce;
use self::session::{Session, READ_TIMEOUT};
use crate::client::Client;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// Runs one miner session until `max_shares` submits were answered, `duration` passed, `stop` was set,
/// the peer closed the connection, or the handshake failed. Then waits up to 10 s for outstanding replies.
pub fn run_miner(cfg: &SimMinerConfig, stop: &AtomicBool) -> MinerReport {
    let who = format!("simminer {}", cfg.worker);
    let conn = match Client::connect(cfg.addr, READ_TIMEOUT, who) {
        Ok(conn) => conn,
        Err(e) => {
            return MinerReport {
                error: Some(format!("connect to {}: {e}", cfg.addr)),
                ..MinerReport::default()
            }
        }
    };
    let mut session = Session::new(cfg, conn);
    session.run(stop);
    session.finish()
}

/// [`run_miner`] on its own thread.
pub fn spawn_miner(cfg: SimMinerConfig, stop: Arc<AtomicBool>) -> JoinHandle<MinerReport> {
    thread::spawn(move || run_miner(&cfg, &stop))
}
