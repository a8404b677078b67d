//! fastproxy-sim: the simulated share-checking pools (Stratum V1 and Equihash) and hashing miners used by
//! `fastproxy demo`, `fastproxy sim-pool`, the tests and the benchmarks. It needs only the share math.

pub mod equihash_miner;
pub mod equihash_pool;
pub mod miner;
pub mod pool;
