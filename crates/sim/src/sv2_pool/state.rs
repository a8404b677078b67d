//! What the simulated SV2 pool's handle and its connection threads share: the pool's settings and counters,
//! its jobs and chain tip, the commands sent to connections, and the prefix and job makers.

use fastproxy_work::work;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the simulated SV2 pool behaves.
#[derive(Clone, Debug)]
pub struct Sv2PoolConfig {
    /// Address to bind (127.0.0.1:0: any free port).
    pub listen: SocketAddr,
    /// Bytes of the per-channel extranonce prefix the pool assigns.
    pub extranonce_prefix_size: usize,
    /// Rollable extranonce bytes granted (at least the client's `min_extranonce_size`).
    pub extranonce_size: u16,
    /// Share difficulty of every channel (the target is DIFF1 / difficulty).
    pub difficulty: f64,
    /// Merkle path entries per job.
    pub merkle_branches: usize,
    /// Header version bits a share may roll (BIP 320).
    pub version_rolling_mask: u32,
    /// Valid shares acknowledged per SubmitShares.Success.
    pub batch_size: u32,
    /// Validity of the Noise certificate the pool signs for each connection.
    pub cert_validity: Duration,
    /// The authority keypair (x-only public key, secret key) to sign with; None: a fresh one (a pool
    /// restarted with the same keypair is the same pool to its clients).
    pub authority: Option<([u8; 32], [u8; 32])>,
    /// Every Nth submit (counting all), when valid, is refused with [`SIM_REJECT`] instead (0: never): a
    /// known fraction of refusals for measurements.
    pub reject_every: u64,
    /// Refuse SetupConnection with SetupConnection.Error (flags = REQUIRES_VERSION_ROLLING) when it requires
    /// version rolling: a pool that does not support the flag.
    pub refuse_version_rolling: bool,
    /// Send jobs with `version_rolling_allowed = false` (shares must carry the job's version exactly); see
    /// also [`super::Sv2SimPool::set_version_rolling_allowed`].
    pub fixed_version_jobs: bool,
}

/// The error code of the shares [`Sv2PoolConfig::reject_every`] refuses.
pub const SIM_REJECT: &str = "sim-reject";

impl Default for Sv2PoolConfig {
    fn default() -> Self {
        Sv2PoolConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extranonce_prefix_size: 4,
            extranonce_size: 8,
            difficulty: 1.0 / 16_777_216.0,
            merkle_branches: 2,
            version_rolling_mask: 0x1fff_e000,
            batch_size: 1,
            cert_validity: Duration::from_secs(3600),
            authority: None,
            reject_every: 0,
            refuse_version_rolling: false,
            fixed_version_jobs: false,
        }
    }
}

/// A share the pool accepted, with everything needed to check it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sv2AcceptedShare {
    pub channel_id: u32,
    pub sequence_number: u32,
    pub job_id: u32,
    pub extranonce_prefix: Vec<u8>,
    pub extranonce: Vec<u8>,
    pub nonce: u32,
    pub ntime: u32,
    pub version: u32,
    pub hash: [u8; 32],
}

/// Counters of a running pool (a snapshot).
#[derive(Clone, Default, Debug)]
pub struct Sv2PoolStats {
    pub connections_total: u64,
    /// The flags of each SetupConnection, in order.
    pub setup_flags: Vec<u32>,
    /// The user identity of each opened channel, in order.
    pub user_identities: Vec<String>,
    pub submits: u64,
    pub accepted: u64,
    pub rejected_by_code: BTreeMap<String, u64>,
    pub accepted_shares: Vec<Sv2AcceptedShare>,
    pub successes_sent: u64,
    /// The nominal_hash_rate of each OpenExtendedMiningChannel, in order.
    pub open_hash_rates: Vec<f32>,
    /// Each UpdateChannel received: (channel_id, nominal_hash_rate, maximum_target little-endian), in order.
    pub channel_updates: Vec<(u32, f32, [u8; 32])>,
}

/// One job as the pool made it, and the prev-hash epoch it belongs to.
#[derive(Debug)]
pub(super) struct SimJob {
    pub(super) job_id: u32,
    pub(super) epoch: u64,
    pub(super) version: u32,
    pub(super) merkle_path: Vec<[u8; 32]>,
    pub(super) prefix: Vec<u8>,
    pub(super) suffix: Vec<u8>,
}

/// The chain tip the pool's jobs build on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tip {
    pub(super) epoch: u64,
    pub(super) prev_hash: [u8; 32],
    pub(super) nbits: u32,
    pub(super) min_ntime: u32,
}

/// What the test side asks connection threads to do.
pub(super) enum Cmd {
    Job(Arc<SimJob>, Option<Tip>),
    Target(f64),
    Reconnect(String, u16),
    NewPrefix,
    Disconnect,
}

pub(super) struct State {
    pub(super) stats: Sv2PoolStats,
    pub(super) tip: Tip,
    pub(super) jobs: BTreeMap<u32, Arc<SimJob>>,
    pub(super) job_counter: u32,
    pub(super) prefix_counter: u64,
}

pub(super) struct Shared {
    pub(super) cfg: Sv2PoolConfig,
    pub(super) instance: u64,
    pub(super) authority_public: [u8; 32],
    pub(super) authority_secret: [u8; 32],
    pub(super) stop: AtomicBool,
    pub(super) answer: AtomicBool,
    /// Jobs sent from now on allow version rolling.
    pub(super) rolling_allowed: AtomicBool,
    pub(super) state: Mutex<State>,
    pub(super) forced: Mutex<VecDeque<String>>,
    pub(super) conns: Mutex<Vec<Sender<Cmd>>>,
}
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

pub(super) fn other(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}
pub(super) fn new_tip(instance: u64, epoch: u64) -> Tip {
    let seed = [instance.to_le_bytes(), epoch.to_le_bytes()].concat();
    Tip {
        epoch,
        prev_hash: work::sha256d(&seed),
        nbits: 0x1d00_ffff,
        min_ntime: unix_now(),
    }
}

/// A new job on the current tip: a plausible coinbase split around the extranonce, a random-looking path.
pub(super) fn make_job(cfg: &Sv2PoolConfig, instance: u64, st: &mut State) -> Arc<SimJob> {
    st.job_counter += 1;
    let id = st.job_counter;
    let extranonce_len = cfg.extranonce_prefix_size + usize::from(cfg.extranonce_size);
    let mut prefix = vec![1, 0, 0, 0, 1];
    prefix.extend_from_slice(&[0; 32]);
    prefix.extend_from_slice(&[0xff; 4]);
    prefix.push((1 + 8 + extranonce_len) as u8); // script: push of 8 bytes (instance, job) then extranonce
    prefix.push(8);
    prefix.extend_from_slice(&(instance << 32 | u64::from(id)).to_le_bytes());
    let mut suffix = vec![0xff; 4];
    suffix.push(1);
    suffix.extend_from_slice(&5_000_000_000u64.to_le_bytes());
    suffix.extend_from_slice(&[0x16, 0x00, 0x14]);
    suffix.extend_from_slice(&work::sha256d(&prefix)[..20]);
    suffix.extend_from_slice(&[0; 4]);
    let merkle_path = (0..cfg.merkle_branches)
        .map(|i| work::sha256d(&[&prefix[..], &[i as u8]].concat()))
        .collect();
    let job = Arc::new(SimJob {
        job_id: id,
        epoch: st.tip.epoch,
        version: 0x2000_0000,
        merkle_path,
        prefix,
        suffix,
    });
    st.jobs.insert(id, Arc::clone(&job));
    while st.jobs.len() > 16 {
        st.jobs.pop_first();
    }
    job
}
pub(super) fn next_prefix(shared: &Shared) -> Vec<u8> {
    let mut st = lock(&shared.state);
    st.prefix_counter += 1;
    let n = (shared.instance << 24) | st.prefix_counter;
    let bytes = n.to_be_bytes();
    let size = shared.cfg.extranonce_prefix_size.min(8);
    bytes[8 - size..].to_vec()
}
