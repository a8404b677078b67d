//! A simulated Equihash stratum (ZIP 301) pool for tests: it hands out jobs, unique NONCE_1 values and a
//! share target, supports the extranonce subscription, and checks every submitted share: known job, TIME and
//! NONCE_2 format, the solution's compactSize prefix and length, duplicates, optionally the Equihash solution
//! itself, and the block hash against the target in effect when the job was sent. One thread per connection
//! (it only serves a few).
//!
//! The simulated miners cannot solve Equihash (200, 9) in test time, so by default solutions are not
//! verified; the miners instead vary their (fake) solution until the block hash meets the target, so a share
//! whose 32-byte nonce the pool rebuilds differently from the miner (a wrong NONCE_1 prefix) fails the target
//! check, as in Stratum V1. For an exact check, compare [`EquihashPoolStats::accepted_shares`] nonces with
//! the miners' submitted nonces.

mod config;
mod judge;
mod state;
#[cfg(test)]
mod tests;

pub use self::config::{EquihashPoolConfig, EquihashPoolStats, EquihashShare, EASY_TARGET_HEX};
use self::state::Shared;
use crate::lines::{notification, reconnect_params};
use crate::server::{lock, Server, Service};
use fastproxy_work::equihash::{self, EquihashJob, NONCE_LEN};
use fastproxy_work::hex;
use serde_json::json;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A running simulated Equihash pool. Dropping it stops it (see [`EquihashPool::stop`]).
pub struct EquihashPool {
    server: Server<Shared>,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl EquihashPool {
    /// Checks `cfg` (target, NONCE_1 size below 32, parameters), binds `cfg.listen` and starts accepting.
    pub fn start(cfg: EquihashPoolConfig) -> io::Result<EquihashPool> {
        let target = equihash::target_from_hex(&cfg.target_hex)
            .ok_or_else(|| invalid_input(format!("bad target {:?}", cfg.target_hex)))?;
        let nonce1_len = cfg.fixed_nonce1.as_ref().map_or(cfg.nonce1_size, Vec::len);
        if nonce1_len >= NONCE_LEN {
            return Err(invalid_input(format!("NONCE_1 of {nonce1_len} bytes")));
        }
        cfg.params.check().map_err(invalid_input)?;
        let listen = cfg.listen;
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        Ok(EquihashPool {
            server: Server::start(listen, Shared::new(cfg, instance, target))?,
        })
    }

    fn shared(&self) -> &Shared {
        &self.server.shared
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EquihashPoolStats {
        lock(&self.shared().state).stats.clone()
    }

    /// Broadcasts a new job to every subscribed connection.
    pub fn new_job(&self, clean: bool) {
        let shared = self.shared();
        let mut guard = lock(&shared.state);
        let job = guard.make_job(shared, clean);
        guard.broadcast(shared, job);
    }

    /// Makes `job` the current job and broadcasts it as given (its `clean_jobs` flag included); connections
    /// subscribing later get it too (as a clean job). Test hook, e.g. for a real block's header; the caller
    /// keeps job ids unique.
    pub fn push_job(&self, job: EquihashJob) {
        let shared = self.shared();
        lock(&shared.state).broadcast(shared, Arc::new(job));
    }

    /// Broadcasts `mining.set_target` `[target_hex]`, then a new (not clean) job that carries it. Earlier
    /// jobs keep the target they were sent with.
    pub fn set_target(&self, target_hex: &str) -> Result<(), String> {
        let target = equihash::target_from_hex(target_hex)
            .ok_or_else(|| format!("bad target {target_hex:?}"))?;
        let shared = self.shared();
        let mut guard = lock(&shared.state);
        guard.target = target;
        let msg = notification("mining.set_target", json!([hex::encode(&target)]));
        for conn in guard.conns.values_mut().filter(|c| c.subscribed) {
            conn.send(&msg);
        }
        let job = guard.make_job(shared, false);
        guard.broadcast(shared, job);
        Ok(())
    }

    /// Gives each connection that sent `mining.extranonce.subscribe` a fresh NONCE_1 (same size) via
    /// `mining.set_extranonce` `[NONCE_1_HEX]`, followed by a new clean job for it. Other connections see
    /// nothing.
    pub fn set_extranonce_all(&self) {
        let shared = self.shared();
        let mut guard = lock(&shared.state);
        let st = &mut *guard;
        let job = st.make_job(shared, true);
        let target = st.target;
        let ids: Vec<u64> = st
            .conns
            .values()
            .filter(|c| c.subscribed && c.extranonce_subscribed)
            .map(|c| c.id)
            .collect();
        for id in ids {
            let nonce1 = st.next_nonce1(shared);
            if let Some(conn) = st.conns.get_mut(&id) {
                let params = json!([hex::encode(&nonce1)]);
                conn.nonce1 = nonce1;
                conn.send(&notification("mining.set_extranonce", params));
                conn.send_job(&job, true, target, shared.cfg.jobs_kept);
            }
        }
    }

    /// Sends `client.reconnect` `[host, port, wait]` to every connection (`[]` when all are empty/zero).
    pub fn send_reconnect_all(&self, host: Option<&str>, port: Option<u16>, wait: u32) {
        let msg = notification("client.reconnect", reconnect_params(host, port, wait));
        lock(&self.shared().state).send_all(&msg);
    }

    /// Sends `client.show_message` `[text]` to every connection (miners are to show it to their operator).
    pub fn show_message_all(&self, text: &str) {
        let msg = notification("client.show_message", json!([text]));
        lock(&self.shared().state).send_all(&msg);
    }

    /// Closes every connection; the listener keeps accepting new ones.
    pub fn disconnect_all(&self) {
        self.shared().close_all();
    }

    /// Stops accepting, closes every connection and joins all threads; the port is free afterwards.
    pub fn stop(self) {
        drop(self);
    }
}
