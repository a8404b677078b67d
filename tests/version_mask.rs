//! `mining.set_version_mask` from the pool reaches each miner as the pool's new mask within the mask that
//! miner asked for in `mining.configure` (BIP 310); its later version-rolled shares are checked against it.

mod common;

use common::*;
use fastproxy::hex;
use fastproxy::work::{self, Job};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The pool's mask at the handshake, and the one it sets later.
const POOL_MASK: u32 = 0x1fff_e000;
const NEW_POOL_MASK: u32 = 0x0c03_e000;
const WAIT: Duration = Duration::from_secs(5);

/// A raw miner with what it needs to hash: its extranonce, the latest job and target.
struct Rig {
    c: Client,
    /// The mask it asked for (`None`: no `mining.configure`).
    asked: Option<u32>,
    e1: Vec<u8>,
    e2_size: usize,
    e2_next: u64,
    job: Option<Job>,
    target: [u8; 32],
    /// Every `mining.set_version_mask` mask received, in order.
    masks: Vec<u32>,
}

impl Rig {
    fn connect(proxy: std::net::SocketAddr, asked: Option<u32>) -> Rig {
        let mut c = Client::connect(proxy);
        if let Some(mask) = asked {
            let id = c.request(
                "mining.configure",
                json!([["version-rolling"], {
                    "version-rolling.mask": work::u32_to_hex(mask),
                    "version-rolling.min-bit-count": 2
                }]),
            );
            let (r, _) = c.reply(id, WAIT);
            assert_eq!(r["result"]["version-rolling"], json!(true), "{r}");
            let granted = work::u32_to_hex(mask & POOL_MASK);
            assert_eq!(r["result"]["version-rolling.mask"], json!(granted), "{r}");
        }
        let (e1, n, notes) = c.handshake();
        let mut rig = Rig {
            c,
            asked,
            e1: hex::decode(&e1).expect("hex extranonce1"),
            e2_size: usize::try_from(n).unwrap(),
            e2_next: 0,
            job: None,
            target: [0; 32],
            masks: Vec::new(),
        };
        for v in &notes {
            rig.note(v);
        }
        let start = Instant::now();
        while rig.job.is_none() || rig.target == [0; 32] {
            assert!(start.elapsed() < WAIT, "no job and difficulty");
            if let Some(v) = rig.c.read(WAIT) {
                rig.note(&v);
            }
        }
        rig
    }

    /// Takes in a notification from the proxy.
    fn note(&mut self, v: &Value) {
        let params = &v["params"];
        match v["method"].as_str() {
            Some("mining.notify") => self.job = Some(Job::from_notify_params(params).unwrap()),
            Some("mining.set_difficulty") => {
                self.target = work::target_from_difficulty(params[0].as_f64().unwrap());
            }
            Some("mining.set_version_mask") => {
                let mask = params[0].as_str().and_then(work::u32_from_hex);
                self.masks
                    .push(mask.unwrap_or_else(|| panic!("bad mask in {v}")));
            }
            _ => {}
        }
    }

    /// Reads what arrives within `limit`.
    fn read_for(&mut self, limit: Duration) {
        let start = Instant::now();
        while let Some(v) = self.c.read(limit.saturating_sub(start.elapsed())) {
            self.note(&v);
        }
    }

    /// Finds a share meeting the target with version bits `bits` rolled in under `mask`, submits it and
    /// returns the reply and the nonce.
    fn mine_and_submit(&mut self, bits: u32, mask: u32) -> (Value, u32) {
        let job = self.job.clone().unwrap();
        let e2_num = self.e2_next;
        self.e2_next += 1;
        let mut e2 = vec![0u8; self.e2_size];
        let n = self.e2_size.min(8);
        e2[self.e2_size - n..].copy_from_slice(&e2_num.to_be_bytes()[8 - n..]);
        let version = work::rolled_version(job.version, mask, bits);
        let mut header = job.header(&self.e1, &e2, job.ntime, 0, version);
        let nonce = (0..=u32::MAX)
            .find(|nonce| {
                header[76..80].copy_from_slice(&nonce.to_le_bytes());
                work::hash_meets_target(&work::sha256d(&header), &self.target)
            })
            .expect("a nonce meeting the target");
        let id = self.c.request(
            "mining.submit",
            json!([
                "rig.1",
                job.job_id,
                hex::encode(&e2),
                work::u32_to_hex(job.ntime),
                work::u32_to_hex(nonce),
                work::u32_to_hex(bits)
            ]),
        );
        let (r, notes) = self.c.reply(id, WAIT);
        for v in &notes {
            self.note(v);
        }
        (r, nonce)
    }
}

fn accepted_with(pool: &SimPool, nonce: u32, bits: u32) -> bool {
    pool.stats()
        .accepted_shares
        .iter()
        .any(|s| s.nonce == nonce && s.version_bits == Some(bits))
}

#[test]
fn set_version_mask_reaches_each_miner_within_its_own_mask() {
    // One hash in 4,096 meets the target: a header built with other version bits passes by chance as rarely.
    let pool = pool(SimPoolConfig {
        version_rolling_mask: Some(POOL_MASK),
        difficulty: 1.0 / (1u64 << 20) as f64,
        ..SimPoolConfig::default()
    });
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let asked = [0x1fff_e000u32, 0x00ff_e000, 0x1e00_0000];
    let mut rigs: Vec<Rig> = asked.iter().map(|&m| Rig::connect(addr, Some(m))).collect();
    let mut plain = Rig::connect(addr, None);

    pool.set_version_mask_all(NEW_POOL_MASK);
    for rig in &mut rigs {
        let start = Instant::now();
        while rig.masks.is_empty() {
            assert!(start.elapsed() < WAIT, "no mining.set_version_mask");
            if let Some(v) = rig.c.read(WAIT) {
                rig.note(&v);
            }
        }
    }
    // One reactor sends them all in one go: whatever else was sent has arrived by now.
    for rig in rigs.iter_mut().chain([&mut plain]) {
        rig.read_for(Duration::from_millis(300));
    }
    for rig in &rigs {
        let want = NEW_POOL_MASK & rig.asked.unwrap();
        assert_eq!(
            rig.masks,
            vec![want],
            "miner that asked for {:08x}: got {:08x?}, want exactly {want:08x}",
            rig.asked.unwrap(),
            rig.masks
        );
    }
    assert!(
        plain.masks.is_empty(),
        "a miner that did not negotiate got {:08x?}",
        plain.masks
    );

    for rig in &mut rigs {
        let asked = rig.asked.unwrap();
        let mask = NEW_POOL_MASK & asked;
        // All of its new mask rolled: accepted by the pool, which re-hashed it with these bits.
        let (r, nonce) = rig.mine_and_submit(mask, mask);
        assert_eq!(r["result"], json!(true), "mask {mask:08x}: {r}");
        assert!(accepted_with(&pool, nonce, mask), "mask {mask:08x}");

        // A bit it was granted at the handshake but not in the new mask: refused by the proxy (error 20),
        // never forwarded, though the share meets the target with that version.
        let old = POOL_MASK & asked;
        let outside = old & !mask & (old & !mask).wrapping_neg();
        assert_ne!(outside, 0);
        let before = pool.stats().submits;
        let (r, _) = rig.mine_and_submit(outside, old);
        assert_eq!(r["result"], json!(null), "bits {outside:08x}: {r}");
        assert_eq!(r["error"][0], json!(20), "bits {outside:08x}: {r}");
        let msg = r["error"][1].as_str().unwrap_or_default();
        assert!(msg.contains("outside the negotiated mask"), "{r}");
        assert_eq!(pool.stats().submits, before, "forwarded to the pool");
    }
    assert_eq!(pool.stats().rejected, 0);
}
