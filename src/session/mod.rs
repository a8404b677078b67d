//! The sans-IO sessions: a miner's and a pool connection's protocol state and an upstream's failover, as typed
//! phases that take parsed messages and `now`, write bytes into an outbox and return typed actions or events.

pub(crate) mod failover;
pub(crate) mod miner;
mod miner_vardiff;
pub(crate) mod pool;
pub(crate) mod sv2_pool;
pub(crate) mod sv2_rate;

#[cfg(test)]
mod miner_tests;
#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod sv2_pool_tests;
