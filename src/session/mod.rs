//! Sans-IO sessions: the protocol state of a pool connection, a miner and an upstream's failover, as typed
//! state machines that take parsed messages and `now`, write bytes into an outbox and return events.

pub(crate) mod failover;
pub(crate) mod pool;

#[cfg(test)]
mod pool_tests;
