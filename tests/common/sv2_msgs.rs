//! The SV2 pool messages the raw test pools send to set a proxy up: channel 2 in group 1 with extranonce prefix
//! 01020304 and 8 extranonce bytes, job 5 on a 42-byte / 30-byte coinbase split, and its prev hash.
#![allow(dead_code)]

use binary_sv2::{Seq0255, Sv2Option, B032, B064K, U256};
use mining_sv2 as mining;

/// The channel the raw test pools open, and its group (jobs and prev hashes go to the group).
pub const CHANNEL: u32 = 2;
pub const GROUP: u32 = 1;
static PREFIX: [u8; 4] = [1, 2, 3, 4];
pub static COINB1: [u8; 42] = [1; 42];
pub static COINB2: [u8; 30] = [2; 30];

/// OpenExtendedMiningChannel.Success: channel [`CHANNEL`], every hash meets its target.
pub fn channel_opened() -> mining::OpenExtendedMiningChannelSuccess<'static> {
    mining::OpenExtendedMiningChannelSuccess {
        request_id: 1,
        channel_id: CHANNEL,
        target: U256::from(&[0xffu8; 32]),
        extranonce_size: 8,
        extranonce_prefix: B032::try_from(&PREFIX[..]).unwrap(),
        group_channel_id: GROUP,
    }
}

/// NewExtendedMiningJob `job_id` for the group (`min_ntime` None: a future job), version 0x20000000.
pub fn job(
    job_id: u32,
    min_ntime: Option<u32>,
    rolling: bool,
) -> mining::NewExtendedMiningJob<'static> {
    mining::NewExtendedMiningJob {
        channel_id: GROUP,
        job_id,
        min_ntime: Sv2Option::new(min_ntime),
        version: 0x2000_0000,
        version_rolling_allowed: rolling,
        merkle_path: Seq0255::new(vec![]).unwrap(),
        coinbase_tx_prefix: B064K::try_from(&COINB1[..]).unwrap(),
        coinbase_tx_suffix: B064K::try_from(&COINB2[..]).unwrap(),
    }
}

/// SetNewPrevHash activating `job_id` for the group.
pub fn prev_hash(job_id: u32) -> mining::SetNewPrevHash<'static> {
    mining::SetNewPrevHash {
        channel_id: GROUP,
        job_id,
        prev_hash: U256::from(&[3u8; 32]),
        min_ntime: 1_700_000_000,
        nbits: 0x1d00_ffff,
    }
}
