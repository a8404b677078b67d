//! The sans-IO sessions: a miner's and a pool's protocol state as typed phases, parsed messages and `now` in,
//! bytes into an outbox and typed actions out. Nothing here touches sockets, TLS or clocks.

pub(crate) mod miner;
#[cfg(test)]
mod miner_tests;
mod miner_vardiff;
