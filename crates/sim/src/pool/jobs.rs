//! The simulated Stratum V1 pool's jobs: deterministic pseudo-random contents per (pool, job number), and a
//! Bitcoin-like coinbase split around the extranonce bytes.

use super::config::SimPoolConfig;
use crate::prng::{unix_time, Prng};
use fastproxy_work::work::Job;

/// Job number `n` of pool `instance`, with a pool-unique id.
pub(super) fn make_job(instance: u64, n: u64, cfg: &SimPoolConfig, clean: bool) -> Job {
    let mut rng = Prng::new(instance, n);
    let e_len = cfg.extranonce1_size + cfg.extranonce2_size;
    let (coinb1, coinb2) = make_coinbase_parts(&mut rng, n, e_len);
    Job {
        job_id: format!("{instance:x}{n:06x}"),
        prevhash: rng.next(),
        coinb1,
        coinb2,
        merkle_branch: (0..cfg.merkle_branches).map(|_| rng.next()).collect(),
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: unix_time(),
        clean_jobs: clean,
    }
}

/// A Bitcoin-like coinbase transaction split around `extranonce_len` bytes of extranonce (which sit in a
/// push inside the input script, after the height and some random bytes).
fn make_coinbase_parts(rng: &mut Prng, height: u64, extranonce_len: usize) -> (Vec<u8>, Vec<u8>) {
    const TAG: &[u8] = b"/fastproxy-sim/";
    let random = rng.next();
    let mut script_head = vec![3];
    script_head.extend_from_slice(&height.to_le_bytes()[..3]);
    script_head.push(8);
    script_head.extend_from_slice(&random[..8]);
    if (1..=75).contains(&extranonce_len) {
        script_head.push(extranonce_len as u8); // a direct push of the extranonce bytes
    }
    let mut script_tail = vec![TAG.len() as u8];
    script_tail.extend_from_slice(TAG);
    let script_len = script_head.len() + extranonce_len + script_tail.len();

    let mut coinb1 = Vec::new();
    coinb1.extend_from_slice(&1u32.to_le_bytes()); // tx version
    coinb1.push(1); // one input
    coinb1.extend_from_slice(&[0u8; 32]); // null prevout hash
    coinb1.extend_from_slice(&u32::MAX.to_le_bytes()); // prevout index
    push_varint(&mut coinb1, script_len as u64);
    coinb1.extend_from_slice(&script_head);

    let mut coinb2 = script_tail;
    coinb2.extend_from_slice(&u32::MAX.to_le_bytes()); // sequence
    coinb2.push(1); // one output
    coinb2.extend_from_slice(&625_000_000u64.to_le_bytes());
    coinb2.extend_from_slice(&[0x19, 0x76, 0xa9, 0x14]); // P2PKH script
    coinb2.extend_from_slice(&random[8..28]);
    coinb2.extend_from_slice(&[0x88, 0xac]);
    coinb2.extend_from_slice(&0u32.to_le_bytes()); // lock time
    (coinb1, coinb2)
}

/// Bitcoin's CompactSize encoding.
fn push_varint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}
