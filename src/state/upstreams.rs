//! An upstream's data: the pool session many miners share ([`Upstream`]: its connections, failover state,
//! extranonce split and jobs), what each request sent to its pool was ([`Req`]), and a host name lookup it waits for.

use crate::config::PoolUrl;
use crate::nonce::PrefixAllocator;
use crate::pending::Pending;
use crate::protocol::json::IdBuf;
use crate::protocol::pool_msg::HandshakeReq;
use crate::session::failover::Failover;
use crate::validate::JobBook;
use std::collections::HashMap;
use std::time::Instant;

/// What a request sent upstream was.
#[derive(Debug)]
pub(crate) enum Req {
    Submit {
        miner: usize,
        gen: u64,
        id: IdBuf,
        prefix: u64,
        epoch: u32,
        /// The miner was answered already (`share_reply: immediate`).
        replied: bool,
        /// The share's difficulty (the miner's under vardiff, else the pool's), for hashrate figures.
        difficulty: f64,
    },
    /// A miner's own authorize, passed to the pool (`auth: passthrough`).
    MinerAuthorize { miner: usize, gen: u64, id: IdBuf },
    /// A passthrough worker authorized again on a new pool connection; nobody waits for the answer.
    ReAuthorize,
    /// The proxy's own handshake.
    Handshake(HandshakeReq),
}

/// A pool session shared by up to `prefixes.capacity()` miners.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub proxy: usize,
    /// The route of the proxy entry it serves (its pools are that route's).
    pub route: usize,
    /// Number for logs (per proxy).
    pub number: usize,
    pub active: Option<usize>,
    pub probe: Option<usize>,
    pub draining: Vec<usize>,
    /// Index in the proxy's pool list of the pool in use (or being tried), within its route's span.
    pub pool_idx: usize,
    /// Back-off, failover, failback and reconnect.
    pub failover: Failover,
    /// The active connection is ready and its extranonce applies.
    pub ready: bool,
    pub ever_ready: bool,
    pub e1: Vec<u8>,
    pub n: usize,
    pub prefixes: PrefixAllocator,
    /// Bumped when prefixes are laid out anew, so stale shares cannot release new prefixes.
    pub epoch: u32,
    /// Bumped at every change of `e1` or `n` (a new pool connection with another extranonce1, a pool's
    /// set_extranonce that changes it): a share kept for a miner's previous seat here was hashed under the old one, and would
    /// reach the pool under an extranonce its miner never had.
    pub e1_changes: u32,
    pub pool_mask: Option<u32>,
    pub difficulty_line: Vec<u8>,
    pub notify_line: Vec<u8>,
    /// Attached miners.
    pub miners: Vec<usize>,
    /// Attached miners whose subscribe waits for a prefix.
    pub waiting: usize,
    pub pending: Pending<Req>,
    /// Prefixes of departed miners whose shares are still in flight, with their count.
    pub orphans: HashMap<u64, u32>,
    /// Jobs broadcast, for local validation.
    pub book: JobBook,
    /// The pool's current share difficulty (V1), the ceiling of every miner's vardiff difficulty.
    pub pool_difficulty: f64,
    /// The host name lookup a connection attempt (active or probe) waits for; at most one at a time.
    pub lookup: Option<Lookup>,
    /// Accepted difficulty per second, and what an SV2 channel was told of it (OpenExtendedMiningChannel,
    /// UpdateChannel).
    pub rate: crate::session::sv2_rate::ChannelRate,
    /// Pool connections opened so far (V1 or SV2): an SV2 connection's job tag (`Sv2Pool::set_job_tag`), so
    /// that its job ids differ from those of every earlier connection (V1 pools may number jobs too).
    pub conns_opened: u32,
}

impl Upstream {
    /// The extranonce2 size each miner gets.
    pub fn miner_extranonce2_size(&self) -> usize {
        self.n.saturating_sub(self.prefixes.prefix_len())
    }

    /// The connection shares go to, when ready.
    pub fn ready_conn(&self) -> Option<usize> {
        if self.ready {
            self.active
        } else {
            None
        }
    }

    /// Room for one more miner (assumed while the capacity is unknown).
    pub fn has_room(&self) -> bool {
        !self.ever_ready
            || self.prefixes.in_use() + (self.waiting as u64) < self.prefixes.capacity()
    }
}

/// A lookup an upstream waits for before it can connect.
#[derive(Debug)]
pub(crate) struct Lookup {
    pub id: u64,
    /// For a probe connection (else for the active one).
    pub probe: bool,
    pub pool_idx: usize,
    pub url: PoolUrl,
    pub started: Instant,
}
