//! fastproxy: a Stratum mining proxy.
//!
//! Miners connect to the proxy; the proxy holds one connection per pool (more only when one connection's
//! nonce space is full) and splits that connection's extranonce space among the miners, so up to 65,536
//! miners share one pool connection. Shares go up with the miner's prefix in front of its extranonce2, and the
//! pool's verdicts come back to the miner that sent each share.
//!
//! Design: one mio reactor per thread (`reactor`) owns every socket of its shard in a slab; the protocol logic is
//! in sans-IO sessions (`session`: a miner session, a pool session, an upstream's failover state) that take
//! parsed messages and write replies into an outbox; the runtime's data (connections, upstreams, proxy entries)
//! is in `state`, and the reactor's handlers drive the sessions: miners in `downstream`, upstreams in `upstream`
//! (their connections opened in `connect`, with host names resolved off the reactor in `resolve`, and driven in
//! `pool_driver`), the nonce split in `nonce`, the reply-id table in `pending`, line framing in `framing`, and the
//! wire formats in `protocol`. The share math is the `fastproxy-work` crate (crates/work), re-exported here under
//! its old paths (`work`, `hex`, `sha256x2`, ...); the simulated pool and miners (crates/sim) and the load
//! generator (crates/loadgen) are crates of their own. LIFECYCLE.md tells a connection's life.
//!
//! Layers, lowest first; a module imports only from its own layer or lower ones (`tests/layering.rs` checks
//! it): base (hex, framing, nonce, pending, io, tls, proxy_protocol) → hash (work, sha256x2, sha256x16,
//! share_hash, equihash: the `fastproxy-work` crate) → config (auth, config) → wire (protocol's message
//! modules) → shares (validate, stats, `protocol::Dialect`, `protocol::pool_msg`) → session (session/, close,
//! share_batch) → runtime-state (state/) → reactor → handlers (the `impl Reactor` blocks: downstream, upstream,
//! connect, pool_driver, upstream_miners, share_flow, passthrough, vardiff, budget, admission, lifecycle) →
//! runtime (proxy, service, metrics, api) → the binaries. The simulator needs only the share math; the load
//! generator sits above the proxy.

pub use fastproxy_work::{equihash, hex, sha256x16, sha256x2, share_hash, work};

pub mod api;
pub mod auth;
pub mod config;
pub mod control;
pub mod framing;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod nonce;
pub mod pending;
pub mod protocol;
pub mod proxy;
pub mod proxy_protocol;
pub mod resolve;
pub mod routing;
pub mod stats;
pub mod tls;
pub mod validate;

mod admission;
mod budget;
mod close;
mod connect;
mod downstream;
mod duration;
mod io;
mod linger;
mod passthrough;
mod pool_driver;
mod reactor;
mod route_driver;
mod session;
mod share_batch;
mod share_flow;
mod state;
mod sv2_driver;
mod upstream;
mod upstream_miners;
mod vardiff;

/// The SV2 pool session for the `sv2_session` fuzz target (fuzz/) and its replays: not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::session::sv2_pool::{Sv2Pool, Sv2Step, UNCONFIRMED};
}
