pub mod miner;
pub mod pool;
