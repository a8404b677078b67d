//! fastproxy-sim: the simulated share-checking pools (Stratum V1, Stratum V2 and Equihash) and hashing
//! miners used by `fastproxy demo`, `fastproxy sim-pool`, the tests and the benchmarks (share math + SRI crates).

mod client;
pub mod equihash_miner;
pub mod equihash_pool;
mod lines;
pub mod miner;
pub mod pool;
mod prng;
mod server;
pub mod sv2_pool;
#[cfg(test)]
mod test_client;
