//! A simulated Stratum V1 (SHA256d) pool for tests: it hands out jobs and unique extranonce1 values,
//! negotiates version rolling (BIP 310) and the extranonce subscription, and validates every submitted share
//! by rebuilding the coinbase, merkle root and header and checking the hash against the target of the
//! difficulty in effect when the job was sent. One thread per connection (it only serves a few).
//!
//! This file is the pool's control API; config.rs holds its settings and counters, state.rs the answers to
//! each request, judge.rs a connection's share check, jobs.rs the job contents.

mod config;
mod jobs;
mod judge;
mod state;
#[cfg(test)]
mod tests;

pub use self::config::{AcceptedShare, PoolStats, RejectedShare, SimPoolConfig};
use self::state::Shared;
pub use crate::lines::MAX_LINE;
use crate::lines::{notification, reconnect_params, Reject};
use crate::server::{lock, Server};
use fastproxy_work::hex;
use fastproxy_work::work;
use serde_json::json;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A running simulated pool. Dropping it stops it (see [`SimPool::stop`]).
pub struct SimPool {
    server: Server<Shared>,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

impl SimPool {
    /// Binds `cfg.listen` and starts accepting connections.
    pub fn start(cfg: SimPoolConfig) -> io::Result<SimPool> {
        let listen = cfg.listen;
        let shared = Shared::new(cfg, NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed));
        Ok(SimPool {
            server: Server::start(listen, shared)?,
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
    pub fn stats(&self) -> PoolStats {
        lock(&self.shared().state).stats.clone()
    }

    /// (accepted, rejected, submits) without copying the share lists, for frequent sampling.
    pub fn counts(&self) -> (u64, u64, u64) {
        let st = lock(&self.shared().state);
        (st.stats.accepted, st.stats.rejected, st.stats.submits)
    }

    /// Broadcasts a new job to every subscribed connection.
    pub fn new_job(&self, clean: bool) {
        self.shared().broadcast_job(clean);
    }

    /// Broadcasts `mining.set_difficulty`, then a new (not clean) job that carries it.
    pub fn set_difficulty(&self, diff: f64) {
        {
            let mut st = lock(&self.shared().state);
            st.difficulty = diff;
            let msg = notification("mining.set_difficulty", json!([diff]));
            for conn in st.conns.values_mut().filter(|c| c.subscribed) {
                conn.send(&msg);
            }
        }
        self.shared().broadcast_job(false);
    }

    /// Gives each connection that sent `mining.extranonce.subscribe` a fresh extranonce1 (same size) via
    /// `mining.set_extranonce`, followed by a new clean job for it. Other connections see nothing.
    pub fn set_extranonce_all(&self) {
        let shared = self.shared();
        let mut guard = lock(&shared.state);
        let st = &mut *guard;
        let job = st.make_job(shared, true);
        let target = work::target_from_difficulty(st.difficulty);
        let ids: Vec<u64> = st
            .conns
            .values()
            .filter(|c| c.subscribed && c.extranonce_subscribed)
            .map(|c| c.id)
            .collect();
        for id in ids {
            let e1 = st.next_extranonce1(shared);
            if let Some(conn) = st.conns.get_mut(&id) {
                let params = json!([hex::encode(&e1), shared.cfg.extranonce2_size]);
                conn.extranonce1 = e1;
                conn.send(&notification("mining.set_extranonce", params));
                conn.send_job(&job, true, target, shared.cfg.jobs_kept);
            }
        }
    }

    /// Sends `client.reconnect` `[host, port, wait]` to every connection (`null` for a missing host or
    /// port; `[]` when all three are empty/zero).
    pub fn send_reconnect_all(&self, host: Option<&str>, port: Option<u16>, wait: u32) {
        let msg = notification("client.reconnect", reconnect_params(host, port, wait));
        lock(&self.shared().state).send_all(&msg);
    }

    /// Sends `client.show_message` `[text]` to every connection (miners are to show it to their operator).
    pub fn show_message_all(&self, text: &str) {
        let msg = notification("client.show_message", json!([text]));
        lock(&self.shared().state).send_all(&msg);
    }

    /// Sends `mining.set_version_mask` to each connection that negotiated version rolling; its new mask is
    /// `mask` limited to the pool's configured mask.
    pub fn set_version_mask_all(&self, mask: u32) {
        let allowed = mask & self.shared().cfg.version_rolling_mask.unwrap_or(0);
        let msg = notification(
            "mining.set_version_mask",
            json!([work::u32_to_hex(allowed)]),
        );
        for conn in lock(&self.shared().state).conns.values_mut() {
            if conn.version_mask.is_some() {
                conn.version_mask = Some(allowed);
                conn.send(&msg);
            }
        }
    }

    /// From now on answer `mining.submit` (`true`, the default) or leave it unanswered (`false`; shares are
    /// still checked and counted, as with `SimPoolConfig::answer_submits: false`).
    pub fn set_answer_submits(&self, answer: bool) {
        self.shared().muted.store(!answer, Ordering::SeqCst);
    }

    /// Refuses the next submit (whichever connection sends it, valid or not) with error `[code, message,
    /// null]` instead of checking it; calls queue up, one verdict per submit. Counted as a rejection.
    pub fn reject_next(&self, code: i64, message: &'static str) {
        let verdict: Reject = (code, message);
        lock(&self.shared().forced).push_back(verdict);
    }

    /// Bytes read from (complete lines) and written to all connections so far: `(received, sent)`.
    pub fn byte_counts(&self) -> (u64, u64) {
        let threads = &self.shared().threads;
        (
            threads.bytes_received.load(Ordering::SeqCst),
            threads.bytes_sent.load(Ordering::SeqCst),
        )
    }

    /// Closes every connection; the listener keeps accepting new ones.
    pub fn disconnect_all(&self) {
        use crate::server::Service;
        self.shared().close_all();
    }

    /// Stops accepting, closes every connection and joins all threads; the port is free afterwards.
    pub fn stop(self) {
        drop(self);
    }

    /// Stops (as [`SimPool::stop`]) and returns the final counters: no share is accepted after them.
    pub fn stop_with_stats(mut self) -> PoolStats {
        self.server.shutdown();
        self.stats()
    }
}
