//! Local share validation: the jobs an upstream broadcast (its *job book*) and the verdict on each share.
//!
//! A share is rebuilt from the job and the miner's extranonces exactly as the pool will (coinbase, merkle root,
//! header with the rolled version for V1; the 140-byte header and the Equihash solution for ZIP 301), hashed,
//! and classified: stale (unknown or superseded job), invalid, low difficulty (above the miner's target),
//! duplicate, meets only the miner's target (answered locally), or meets the pool's target (forwarded).

use crate::equihash::{self, EquihashJob, Params};
use crate::protocol::{equihash as zip301, stratum};
use crate::share_hash::{share_hashes, JobHasher, ShareInput};
use crate::work::{self, Job};
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// The longest extranonce1 (pool E1 || prefix) a share may be validated with.
pub const MAX_EXTRANONCE1: usize = 64;

/// The longest extranonce2 a share may carry (its size is set by the proxy, at most 8 bytes in practice).
const MAX_EXTRANONCE2: usize = 32;

/// Jobs kept per upstream (older ones are stale).
const JOBS_KEPT: usize = 16;

/// Shares per generation of a job's duplicate set: the last 2^18 to 2^19 shares of a job are remembered
/// (several seconds of a 65,536-miner farm, minutes of a small one; an older resubmission is the pool's to
/// catch). Bounding a generation bounds memory and the pause of a set's growth inside the reactor.
const SEEN_GENERATION: usize = 1 << 18;

/// A job in either dialect.
#[derive(Debug, Clone)]
pub enum BookJob {
    Stratum(Job),
    Equihash(EquihashJob),
}

impl BookJob {
    fn id(&self) -> &str {
        match self {
            BookJob::Stratum(j) => &j.job_id,
            BookJob::Equihash(j) => &j.job_id,
        }
    }

    fn clean(&self) -> bool {
        match self {
            BookJob::Stratum(j) => j.clean_jobs,
            BookJob::Equihash(j) => j.clean_jobs,
        }
    }
}

/// Hashes a key that is already a hash (8 bytes of a share's sha256d) by keeping it: a miner cannot choose
/// it without doing the work the share stands for.
#[derive(Default)]
struct KeepHash(u64);

impl Hasher for KeepHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A job with the pool target in force when it was sent, and the shares seen for it.
#[derive(Debug)]
pub struct JobEntry {
    pub job: BookJob,
    pub pool_target: [u8; 32],
    /// The per-job part of a V1 share's hash.
    hasher: Option<JobHasher>,
    seen: Seen,
}

type KeySet = HashSet<u64, BuildHasherDefault<KeepHash>>;

/// The shares seen for a job, in two generations: when the current one is full it becomes the previous one
/// (the older is forgotten).
#[derive(Debug, Default)]
struct Seen {
    current: KeySet,
    previous: KeySet,
}

impl Seen {
    /// Records `key`; false when it was seen already.
    fn insert(&mut self, key: u64, generation: usize) -> bool {
        if self.previous.contains(&key) {
            return false;
        }
        let new = self.current.insert(key);
        if self.current.len() >= generation {
            self.previous = std::mem::take(&mut self.current);
        }
        new
    }
}

/// The jobs of one upstream, newest last.
#[derive(Debug, Default)]
pub struct JobBook {
    jobs: VecDeque<JobEntry>,
}

impl JobBook {
    /// Records a job sent to miners; a clean job voids the earlier ones.
    pub fn add(&mut self, job: BookJob, pool_target: [u8; 32]) {
        if job.clean() {
            self.jobs.clear();
        }
        self.jobs.retain(|e| e.job.id() != job.id());
        if self.jobs.len() >= JOBS_KEPT {
            self.jobs.pop_front();
        }
        let hasher = match &job {
            BookJob::Stratum(j) => Some(JobHasher::new(j)),
            BookJob::Equihash(_) => None,
        };
        self.jobs.push_back(JobEntry {
            job,
            pool_target,
            hasher,
            seen: Seen::default(),
        });
    }

    /// Forgets every job (the pool changed).
    pub fn clear(&mut self) {
        self.jobs.clear();
    }

    /// The job with this id, if still valid (to read).
    pub fn get(&self, id: &str) -> Option<&JobEntry> {
        self.jobs.iter().rev().find(|e| e.job.id() == id)
    }

    /// The job with this id, if still valid.
    pub fn find(&mut self, id: &str) -> Option<&mut JobEntry> {
        self.jobs.iter_mut().rev().find(|e| e.job.id() == id)
    }
}

/// What a share is worth.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Unknown or superseded job (error 21).
    Stale,
    /// Malformed against its job (error 20 with the reason).
    Invalid(String),
    /// Above the miner's target (error 23).
    LowDifficulty,
    /// Seen already for this job (error 22).
    Duplicate,
    /// Meets the miner's target only: answered `true` by the proxy, not forwarded.
    BelowPool,
    /// Meets the pool's target: forwarded.
    MeetsPool,
}

impl Verdict {
    /// The JSON-RPC error for a refused share.
    pub fn error(&self) -> Option<(i32, &str)> {
        match self {
            Verdict::Stale => Some((21, "Job not found (stale share)")),
            Verdict::Invalid(why) => Some((20, why.as_str())),
            Verdict::LowDifficulty => Some((23, "Low difficulty share")),
            Verdict::Duplicate => Some((22, "Duplicate share")),
            Verdict::BelowPool | Verdict::MeetsPool => None,
        }
    }
}

/// The verdict on a hashed share: its hash against the miner's and the pool's targets, and duplicates.
pub fn judge(entry: &mut JobEntry, hash: [u8; 32], miner_target: &[u8; 32]) -> Verdict {
    if !work::hash_meets_target(&hash, miner_target) {
        return Verdict::LowDifficulty;
    }
    // The hash covers every submitted field: equal hashes are the same share.
    let key = u64::from_le_bytes([
        hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
    ]);
    if !entry.seen.insert(key, SEEN_GENERATION) {
        return Verdict::Duplicate;
    }
    if work::hash_meets_target(&hash, &entry.pool_target) {
        Verdict::MeetsPool
    } else {
        Verdict::BelowPool
    }
}

/// A V1 share that passed every check that needs no hashing: the inputs of its hash.
#[derive(Debug, Clone)]
pub struct StratumCheck {
    extranonce1: [u8; MAX_EXTRANONCE1],
    e1_len: usize,
    extranonce2: [u8; MAX_EXTRANONCE2],
    en2_len: usize,
    ntime: u32,
    nonce: u32,
    version: u32,
}

/// Checks a V1 share against its job without hashing it: ntime within the roll range, version bits within
/// `mask`, hex fields. `extranonce1` is the miner's (pool E1 || prefix), at most [`MAX_EXTRANONCE1`] bytes.
pub fn prepare_stratum(
    entry: &JobEntry,
    extranonce1: &[u8],
    share: &stratum::Submit<'_>,
    mask: u32,
    max_ntime_roll: u32,
) -> Result<StratumCheck, Verdict> {
    let BookJob::Stratum(job) = &entry.job else {
        return Err(Verdict::Stale);
    };
    let (Some(ntime), Some(nonce)) = (
        work::u32_from_hex(share.ntime),
        work::u32_from_hex(share.nonce),
    ) else {
        return Err(Verdict::Invalid(
            "ntime and nonce must be 8 hex digits".into(),
        ));
    };
    if ntime < job.ntime || ntime - job.ntime > max_ntime_roll {
        return Err(Verdict::Invalid(format!(
            "ntime out of range (job {:08x}, allowed up to +{max_ntime_roll}s)",
            job.ntime
        )));
    }
    let version = match share.version_bits.map(work::u32_from_hex) {
        None => job.version,
        Some(None) => return Err(Verdict::Invalid("version bits must be 8 hex digits".into())),
        Some(Some(bits)) if bits & !mask != 0 => {
            return Err(Verdict::Invalid(
                "version bits outside the negotiated mask".into(),
            ))
        }
        Some(Some(bits)) => work::rolled_version(job.version, mask, bits),
    };
    let mut check = StratumCheck {
        extranonce1: [0; MAX_EXTRANONCE1],
        e1_len: extranonce1.len(),
        extranonce2: [0; MAX_EXTRANONCE2],
        en2_len: share.extranonce2.len() / 2,
        ntime,
        nonce,
        version,
    };
    let Some(e1) = check.extranonce1.get_mut(..extranonce1.len()) else {
        return Err(Verdict::Invalid("extranonce1 too long to validate".into()));
    };
    e1.copy_from_slice(extranonce1);
    let decoded = check
        .extranonce2
        .get_mut(..check.en2_len)
        .is_some_and(|out| crate::hex::decode_into(share.extranonce2.as_bytes(), out));
    if !decoded {
        return Err(Verdict::Invalid(
            "extranonce2 is not hex of at most 32 bytes".into(),
        ));
    }
    Ok(check)
}

impl JobEntry {
    /// What the hash of a prepared share is computed from (None for an Equihash job).
    pub fn share_input<'a>(&'a self, c: &'a StratumCheck) -> Option<ShareInput<'a>> {
        match (&self.job, &self.hasher) {
            (BookJob::Stratum(job), Some(hasher)) => Some(ShareInput {
                job,
                hasher,
                extranonce1: &c.extranonce1[..c.e1_len],
                extranonce2: &c.extranonce2[..c.en2_len],
                ntime: c.ntime,
                nonce: c.nonce,
                version: c.version,
            }),
            _ => None,
        }
    }
}

/// Judges a V1 share. `extranonce1` is the miner's (pool E1 || prefix); `mask` the version bits it may roll;
/// `miner_target` the easiest target it may be held to (the job's pool target when there is no vardiff).
pub fn check_stratum(
    entry: &mut JobEntry,
    extranonce1: &[u8],
    share: &stratum::Submit<'_>,
    mask: u32,
    miner_target: &[u8; 32],
    max_ntime_roll: u32,
) -> Verdict {
    let check = match prepare_stratum(entry, extranonce1, share, mask, max_ntime_roll) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let Some(input) = entry.share_input(&check) else {
        return Verdict::Stale;
    };
    let [hash] = share_hashes([&input]);
    judge(entry, hash, miner_target)
}

/// Judges an Equihash share: `nonce1` is the miner's (pool NONCE_1 || prefix). The solution is verified.
pub fn check_equihash(
    entry: &mut JobEntry,
    nonce1: &[u8],
    share: &zip301::Submit<'_>,
    params: &Params,
) -> Verdict {
    let BookJob::Equihash(job) = &entry.job else {
        return Verdict::Stale;
    };
    let (Some(time), Some(nonce2)) = (
        crate::hex::decode_array::<4>(share.time),
        crate::hex::decode(share.nonce2),
    ) else {
        return Verdict::Invalid("time and nonce_2 must be hex".into());
    };
    let Some(nonce) = equihash::nonce_from_parts(nonce1, &nonce2) else {
        return Verdict::Invalid("NONCE_1 || NONCE_2 is not 32 bytes".into());
    };
    let solution = match equihash::parse_solution_hex(share.solution, params) {
        Ok(s) => s,
        Err(e) => return Verdict::Invalid(e),
    };
    // Verify against the easiest target: the miner's target is the job's pool target here.
    let target = entry.pool_target;
    match equihash::check_share(job, params, &time, &nonce, &solution, &[0xff; 32], true) {
        Ok(hash) => judge(entry, hash, &target),
        Err(e) => Verdict::Invalid(e.message().to_string()),
    }
}

/// The target for a V1 share difficulty.
pub fn stratum_target(difficulty: f64) -> [u8; 32] {
    work::target_from_difficulty(difficulty)
}

/// Counters of local validation, per proxy entry (summed over reactors).
#[derive(Debug, Default)]
pub struct ValidationStats {
    /// Shares that met the miner's target only: answered by the proxy.
    pub accepted_locally: std::sync::atomic::AtomicU64,
    /// Shares that met the pool's target: forwarded.
    pub forwarded: std::sync::atomic::AtomicU64,
    pub stale: std::sync::atomic::AtomicU64,
    pub invalid: std::sync::atomic::AtomicU64,
    pub low_difficulty: std::sync::atomic::AtomicU64,
    pub duplicate: std::sync::atomic::AtomicU64,
    /// Difficulty changes sent to miners by vardiff.
    pub retargets: std::sync::atomic::AtomicU64,
}

impl ValidationStats {
    /// The share counters by verdict, with their metrics labels.
    pub fn verdicts(&self) -> [(&'static str, &std::sync::atomic::AtomicU64); 6] {
        [
            ("accepted_locally", &self.accepted_locally),
            ("forwarded", &self.forwarded),
            ("stale", &self.stale),
            ("invalid", &self.invalid),
            ("low_difficulty", &self.low_difficulty),
            ("duplicate", &self.duplicate),
        ]
    }

    /// Counts a verdict.
    pub fn count(&self, v: &Verdict) {
        let c = match v {
            Verdict::Stale => &self.stale,
            Verdict::Invalid(_) => &self.invalid,
            Verdict::LowDifficulty => &self.low_difficulty,
            Verdict::Duplicate => &self.duplicate,
            Verdict::BelowPool => &self.accepted_locally,
            Verdict::MeetsPool => &self.forwarded,
        };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A miner's own difficulty under vardiff.
#[derive(Debug, Clone)]
pub struct Vardiff {
    pub difficulty: f64,
    pub target: [u8; 32],
    /// The previous target and when it was replaced: shares found before the miner switched still count.
    pub previous: Option<([u8; 32], std::time::Instant)>,
    /// Shares counted since `since`.
    pub shares: u32,
    pub since: std::time::Instant,
    /// The miner's `mining.suggest_difficulty`, if any.
    pub suggested: Option<f64>,
    /// Its first difficulty has been sent.
    pub started: bool,
}

impl Vardiff {
    /// Not started yet.
    pub fn new(now: std::time::Instant) -> Vardiff {
        Vardiff {
            difficulty: 1.0,
            target: work::target_from_difficulty(1.0),
            previous: None,
            shares: 0,
            since: now,
            suggested: None,
            started: false,
        }
    }

    /// Switches to `difficulty`, keeping the old target valid for `grace`.
    pub fn set(&mut self, difficulty: f64, now: std::time::Instant) {
        if self.started {
            self.previous = Some((self.target, now));
        }
        self.started = true;
        self.difficulty = difficulty;
        self.target = work::target_from_difficulty(difficulty);
        self.shares = 0;
        self.since = now;
    }

    /// The easiest target a share may meet now (the previous one during its grace time).
    pub fn target(&self, now: std::time::Instant, grace: std::time::Duration) -> [u8; 32] {
        match self.previous {
            Some((prev, at)) if now.duration_since(at) < grace => {
                // Targets are big-endian: the larger one is the easier.
                if prev > self.target {
                    prev
                } else {
                    self.target
                }
            }
            _ => self.target,
        }
    }

    /// The next difficulty for the shares found since `since`, aiming at `per_minute`, moving at most 4x per
    /// step and staying within [min, max]. `None` while the window is too short to judge, or when the change
    /// would be under 10 %.
    pub fn retarget(
        &self,
        per_minute: f64,
        min: f64,
        max: f64,
        now: std::time::Instant,
    ) -> Retarget {
        let minutes = now.duration_since(self.since).as_secs_f64() / 60.0;
        if minutes <= 0.0 {
            return Retarget::Wait;
        }
        // A window must hold enough shares to say anything: at least 8 expected at the target rate, unless the
        // miner is clearly faster (16 found already). Fewer make a noisy estimate that swings the difficulty.
        if per_minute * minutes < 8.0 && self.shares < 16 {
            return Retarget::Wait;
        }
        let rate = f64::from(self.shares) / minutes;
        let factor = (rate / per_minute).clamp(0.25, 4.0);
        let next = (self.difficulty * factor).clamp(min, max.max(min));
        if (next / self.difficulty - 1.0).abs() > 0.1 {
            Retarget::Change(next)
        } else {
            Retarget::Keep
        }
    }
}

/// What a vardiff window says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retarget {
    /// Too few shares yet to judge: keep counting.
    Wait,
    /// On target: start a new window.
    Keep,
    /// Move to this difficulty.
    Change(f64),
}

#[cfg(test)]
mod tests;
