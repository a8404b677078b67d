pub mod equihash_miner;
pub mod equihash_pool;
pub mod miner;
pub mod pool;
