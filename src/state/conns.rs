//! Everything with a socket in a reactor's slab ([`Conn`]): listeners, miners (socket, place in the runtime and
//! [`MinerSession`]) and pool connections (socket and [`PoolSession`]); data only, the handlers are `impl Reactor`.

use crate::io::{Io, Sent};
use crate::protocol::Dialect;
use crate::session::miner::MinerSession;
use crate::session::pool::PoolSession;
use mio::net::TcpListener;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Everything with a socket.
pub(crate) enum Conn {
    Listener {
        listener: TcpListener,
        proxy: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
        proxy_protocol: Option<crate::proxy_protocol::Mode>,
    },
    Miner(Miner),
    Pool(PoolConn),
    /// A kicked miner's socket in its lingering close (see `linger`): bytes to send and to drain, not a miner.
    Lingering(Lingering),
}

/// A kicked miner's socket after the kick: its output was sent and its sending side shut; what it still sends is
/// read and dropped until it closes or the deadline passes.
#[derive(Debug)]
pub(crate) struct Lingering {
    pub io: Io,
    /// The kicked miner's generation (tells this entry from a later one in the same slot).
    pub gen: u64,
    /// Bytes read and dropped.
    pub discarded: u64,
}

/// A bound listener for a reactor: its proxy's index, TLS config and PROXY protocol mode.
pub(crate) type Listening = (
    usize,
    TcpListener,
    Option<Arc<rustls::ServerConfig>>,
    Option<crate::proxy_protocol::Mode>,
);

/// Bytes queued for a pool before the connection is considered stuck.
pub(crate) const POOL_OUT_LIMIT: usize = 64 * 1024 * 1024;

/// How long a miner's previous vardiff target still counts after a retarget.
pub(crate) const VARDIFF_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// One miner connection: its socket and place in the runtime, and its protocol session.
#[derive(Debug)]
pub(crate) struct Miner {
    pub io: Io,
    pub addr: SocketAddr,
    /// Tells this miner from an earlier one in the same slot.
    pub gen: u64,
    pub proxy: usize,
    /// The upstream it is attached to, and its index in that upstream's miner list.
    pub upstream: Option<usize>,
    pub slot_in_upstream: usize,
    /// Its worker's counters (shares, hashrate), once authorized.
    pub worker_stats: Option<std::sync::Arc<crate::stats::WorkerStats>>,
    /// Its place in the weighted split (entries with several routes).
    pub seat: Seat,
    /// Its protocol state.
    pub session: MinerSession,
}

/// Where a miner is in its proxy entry's weighted split, and where it was before its last move.
#[derive(Debug, Default)]
pub(crate) struct Seat {
    /// The scheduler placed it (a route of the entry).
    pub placed: bool,
    /// The assignment it had before its last move between routes: shares for that upstream's jobs still go
    /// there, under that prefix, until its next move or its end.
    pub prev: Option<PrevSeat>,
    /// Difficulty the pools accepted from it since the last hashrate sample, and its measured hashrate
    /// (difficulty per second, 0 until measured).
    pub credited: f64,
    pub hashrate: f64,
    /// When its hashrate was last sampled.
    pub sampled: Option<Instant>,
}

/// A miner's previous assignment: upstream, prefix there, that upstream's prefix epoch and its count of
/// extranonce1 changes (`Upstream::e1_changes`) when the miner left it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PrevSeat {
    pub upstream: usize,
    pub prefix: u64,
    pub epoch: u32,
    pub e1_changes: u32,
}

impl Miner {
    /// A miner just accepted, on `io`, of proxy entry `proxy` (speaking `dialect`).
    pub fn new(
        io: Io,
        addr: SocketAddr,
        gen: u64,
        proxy: usize,
        dialect: Dialect,
        proxy_header: Option<crate::proxy_protocol::Mode>,
        vardiff: bool,
    ) -> Miner {
        let session = MinerSession::new(dialect, gen, Instant::now(), proxy_header, vardiff);
        Miner {
            io,
            addr,
            gen,
            proxy,
            upstream: None,
            slot_in_upstream: 0,
            worker_stats: None,
            seat: Seat::default(),
            session,
        }
    }

    /// Subscribed and authorized: it gets jobs.
    pub fn gets_jobs(&self) -> bool {
        self.session.gets_jobs()
    }
}

/// Runs `f` with the miner's output queue as its outbox: what it returns, and whether the queue overflowed
/// (`None`) or grew (`Some(true)`).
pub(crate) fn with_outbox<R>(
    m: &mut Miner,
    f: impl FnOnce(&mut MinerSession, &mut Vec<u8>) -> R,
) -> (R, Option<bool>) {
    let Miner { io, session, .. } = m;
    let before = io.queued();
    let mut r = None;
    let sent = io.queue_with(|out| r = Some(f(session, out)));
    let grew = match sent {
        Sent::Ok => Some(io.queued() != before),
        Sent::Overflow | Sent::Failed => None,
    };
    (r.expect("queue_with calls its writer"), grew)
}

/// One TCP connection to a pool: its socket and its protocol session.
#[derive(Debug)]
pub(crate) struct PoolConn {
    pub io: Io,
    pub upstream: usize,
    pub session: PoolSession,
    /// The address this connection goes to (one of its pool's name).
    pub addr: std::net::SocketAddr,
    /// The addresses of the pool's name not tried yet (the next one gets a turn if this connect fails).
    pub next_addrs: std::collections::VecDeque<std::net::SocketAddr>,
    /// A Stratum V2 pool's protocol state (its `session` then keeps the phase and the work for miners).
    pub sv2: Option<Box<crate::session::sv2_pool::Sv2Pool>>,
}
