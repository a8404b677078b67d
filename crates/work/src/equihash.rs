//! Equihash share math for the Zcash stratum (ZIP 301): the job a `mining.notify` carries, the 140-byte
//! header a share stands for (VERSION || PREVHASH || MERKLEROOT || RESERVED || TIME || BITS || NONCE, the
//! 32-byte nonce being NONCE_1 || NONCE_2), the solution's compactSize prefix, Equihash verification (via the
//! `equihash` crate), the block hash sha256d(header || solution with prefix) and the target comparison.
//! Used by the simulated Equihash pool and miners, and by the proxy for local share checks.

use crate::hex;
use crate::work;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Bytes of the header nonce (NONCE_1 || NONCE_2).
pub const NONCE_LEN: usize = 32;
/// Bytes of a full header, nonce included.
pub const HEADER_LEN: usize = 140;
/// Bytes of the header without its nonce: the part of the Equihash input that comes before the nonce.
pub const HEADER_WITHOUT_NONCE_LEN: usize = HEADER_LEN - NONCE_LEN;
/// Largest solution [`Params::check`] accepts (bytes, without the prefix).
pub const MAX_SOLUTION_LEN: usize = 1 << 20;

/// Equihash parameters `(n, k)`: Zcash uses (200, 9), some forks others (e.g. (144, 5), (96, 5)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    /// Hash output bits.
    pub n: u32,
    /// Rounds: a solution has 2^k indices.
    pub k: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params::ZCASH
    }
}

impl Params {
    /// Zcash's (200, 9): 1344-byte solutions.
    pub const ZCASH: Params = Params { n: 200, k: 9 };

    /// Collision bit length n / (k + 1).
    fn collision_bits(&self) -> Option<u32> {
        self.n.checked_div(self.k.checked_add(1)?)
    }

    /// Ok when these parameters can be verified: n a multiple of 8 and of k + 1, 3 <= k < n, n <= 512, a
    /// collision length n / (k + 1) of 8..=24 bits (what the `equihash` crate handles without panicking),
    /// and a solution of at most [`MAX_SOLUTION_LEN`] bytes.
    pub fn check(&self) -> Result<(), String> {
        let (n, k) = (self.n, self.k);
        let shape_ok = n % 8 == 0 && k >= 3 && k < n && n <= 512;
        let c = self.collision_bits().unwrap_or(0);
        let divides = self.k.checked_add(1).is_some_and(|k1| n % k1 == 0);
        if !(shape_ok && divides && (8..=24).contains(&c)) {
            return Err(format!("unsupported Equihash parameters ({n}, {k})"));
        }
        match self.checked_solution_len() {
            Some(len) if len <= MAX_SOLUTION_LEN => Ok(()),
            _ => Err(format!("Equihash ({n}, {k}) solutions are too long")),
        }
    }

    fn checked_solution_len(&self) -> Option<usize> {
        let leaves = 1usize.checked_shl(self.k)?;
        let bits_per_index = usize::try_from(self.collision_bits()?.checked_add(1)?).ok()?;
        leaves.checked_mul(bits_per_index).map(|bits| bits / 8)
    }

    /// Bytes of a solution without its prefix: 2^k indices of n / (k + 1) + 1 bits each (1344 for (200, 9)).
    /// Zero when the length does not fit a `usize`.
    pub fn solution_len(&self) -> usize {
        self.checked_solution_len().unwrap_or(0)
    }

    /// The compactSize prefix of a solution (`fd4005` for (200, 9)).
    pub fn solution_prefix(&self) -> Vec<u8> {
        compact_size(self.solution_len() as u64)
    }

    /// Bytes of a solution with its prefix (1347 for (200, 9)).
    pub fn solution_with_prefix_len(&self) -> usize {
        self.solution_prefix().len() + self.solution_len()
    }
}

/// Bitcoin's compactSize (canonical) encoding of `n`.
pub fn compact_size(n: u64) -> Vec<u8> {
    match n {
        0..=0xfc => vec![n as u8],
        0xfd..=0xffff => [&[0xfd][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[0xfe][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[0xff][..], &n.to_le_bytes()].concat(),
    }
}

/// Reads a canonical compactSize at the start of `bytes`: `(value, bytes used)`. `None` when it is cut short
/// or not in its shortest form.
pub fn read_compact_size(bytes: &[u8]) -> Option<(u64, usize)> {
    let (&first, rest) = bytes.split_first()?;
    let (value, used, min) = match first {
        0..=0xfc => return Some((u64::from(first), 1)),
        0xfd => (u64::from(u16::from_le_bytes(*rest.first_chunk()?)), 3, 0xfd),
        0xfe => (
            u64::from(u32::from_le_bytes(*rest.first_chunk()?)),
            5,
            0x1_0000,
        ),
        0xff => (u64::from_le_bytes(*rest.first_chunk()?), 9, 0x1_0000_0000),
    };
    (value >= min).then_some((value, used))
}

/// Decodes a submit's `EQUIHASH_SOLUTION` hex and checks its compactSize prefix and length against `params`
/// (`fd4005` followed by 1344 bytes for (200, 9)). Returns the solution with its prefix, as it goes into the
/// block (and into [`block_hash`]).
pub fn parse_solution_hex(s: &str, params: &Params) -> Result<Vec<u8>, String> {
    let expected = params.solution_with_prefix_len();
    if s.len() != 2 * expected {
        return Err(format!(
            "solution has {} hex digits, expected {}",
            s.len(),
            2 * expected
        ));
    }
    let bytes = hex::decode(s).ok_or("solution is not hex")?;
    solution_body(&bytes, params)?;
    Ok(bytes)
}

/// The solution without its prefix. `solution` may come with its compactSize prefix (which must then
/// announce exactly `params.solution_len()` bytes) or without it.
pub fn solution_body<'a>(solution: &'a [u8], params: &Params) -> Result<&'a [u8], String> {
    let len = params.solution_len();
    if solution.len() == len && len > 0 {
        return Ok(solution);
    }
    let (announced, used) =
        read_compact_size(solution).ok_or("solution has no canonical compactSize prefix")?;
    if announced != len as u64 || len == 0 {
        return Err(format!(
            "solution prefix announces {announced} bytes, expected {len}"
        ));
    }
    let body = &solution[used..];
    if body.len() != len {
        return Err(format!("solution has {} bytes, expected {len}", body.len()));
    }
    Ok(body)
}

/// Checks an Equihash solution (with or without its compactSize prefix) for the header without its nonce
/// and the 32-byte nonce, with the BLAKE2b personalization "ZcashPoW" || n || k.
pub fn verify_solution(
    params: &Params,
    header_without_nonce: &[u8; HEADER_WITHOUT_NONCE_LEN],
    nonce: &[u8; NONCE_LEN],
    solution: &[u8],
) -> Result<(), String> {
    params.check()?;
    let body = solution_body(solution, params)?;
    equihash::is_valid_solution(params.n, params.k, header_without_nonce, nonce, body)
        .map_err(|e| format!("invalid Equihash solution: {e}"))
}

/// The block hash: sha256d(header || solution with its compactSize prefix), in header byte order (reverse it
/// for the display form, see [`work::display_hex`]).
pub fn block_hash(header: &[u8; HEADER_LEN], solution_with_prefix: &[u8]) -> [u8; 32] {
    let first = Sha256::new()
        .chain_update(header)
        .chain_update(solution_with_prefix)
        .finalize();
    Sha256::digest(first).into()
}

/// Parses a `mining.set_target` target: exactly 64 hex digits, a big-endian 256-bit number.
pub fn target_from_hex(s: &str) -> Option<[u8; 32]> {
    hex::decode_array::<32>(s)
}

/// True when `hash` (a block hash, read as a little-endian 256-bit number) is <= `target` (big-endian).
pub fn hash_meets_target(hash: &[u8; 32], target: &[u8; 32]) -> bool {
    work::hash_meets_target(hash, target)
}

/// The 32-byte header nonce NONCE_1 || NONCE_2; `None` unless the parts add up to 32 bytes.
pub fn nonce_from_parts(nonce1: &[u8], nonce2: &[u8]) -> Option<[u8; NONCE_LEN]> {
    if nonce1.len() + nonce2.len() != NONCE_LEN {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..nonce1.len()].copy_from_slice(nonce1);
    nonce[nonce1.len()..].copy_from_slice(nonce2);
    Some(nonce)
}

/// Why a share fails [`check_share`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// The solution is malformed or not a valid Equihash solution for the header.
    InvalidSolution(String),
    /// The block hash is above the target.
    AboveTarget,
}

impl ShareError {
    /// The conventional Stratum error code: 20 (other) or 23 (low difficulty share).
    pub fn code(&self) -> i64 {
        match self {
            ShareError::InvalidSolution(_) => 20,
            ShareError::AboveTarget => 23,
        }
    }

    /// A short message for the error reply.
    pub fn message(&self) -> &'static str {
        match self {
            ShareError::InvalidSolution(_) => "Invalid solution",
            ShareError::AboveTarget => "Low difficulty share",
        }
    }
}

/// Checks a share of `job` with header time `time` and nonce `nonce`: the solution's prefix and length, the
/// Equihash solution itself when `verify` is set (the expensive part), and the block hash against `target`.
/// Returns the block hash.
pub fn check_share(
    job: &EquihashJob,
    params: &Params,
    time: &[u8; 4],
    nonce: &[u8; NONCE_LEN],
    solution_with_prefix: &[u8],
    target: &[u8; 32],
    verify: bool,
) -> Result<[u8; 32], ShareError> {
    let body_len = solution_body(solution_with_prefix, params)
        .map_err(ShareError::InvalidSolution)?
        .len();
    if body_len == solution_with_prefix.len() {
        let err = "solution lacks its compactSize prefix".to_string();
        return Err(ShareError::InvalidSolution(err));
    }
    let header = job.header_with_time(time, nonce);
    if verify {
        verify_solution(
            params,
            &job.header_without_nonce(time),
            nonce,
            solution_with_prefix,
        )
        .map_err(ShareError::InvalidSolution)?;
    }
    let hash = block_hash(&header, solution_with_prefix);
    if !hash_meets_target(&hash, target) {
        return Err(ShareError::AboveTarget);
    }
    Ok(hash)
}

/// One Equihash stratum job, as carried by `mining.notify`. Every byte field is as it appears in the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EquihashJob {
    /// The pool's id for the job (echoed in submits).
    pub job_id: String,
    /// `04000000` for Zcash, `00000020` for some forks: passed through unchanged.
    pub version: [u8; 4],
    /// Previous block hash, header byte order.
    pub prevhash: [u8; 32],
    /// Merkle root of the block's transactions, header byte order.
    pub merkleroot: [u8; 32],
    /// hashFinalSaplingRoot / block commitments (zero by ZIP 301's old convention).
    pub reserved: [u8; 32],
    /// Block time suggested by the pool (little-endian).
    pub time: [u8; 4],
    /// Network target in compact form (little-endian).
    pub bits: [u8; 4],
    /// Earlier jobs are void (a new block arrived).
    pub clean_jobs: bool,
}

impl EquihashJob {
    /// Parses `mining.notify` params `[JOB_ID, VERSION, PREVHASH, MERKLEROOT, RESERVED, TIME, BITS,
    /// CLEAN_JOBS]`; extra trailing elements (some pools send a 9th) are ignored. Every field is type- and
    /// length-checked.
    pub fn from_notify_params(params: &Value) -> Result<EquihashJob, String> {
        let p = params.as_array().ok_or("notify params are not an array")?;
        if p.len() < 8 {
            return Err(format!("notify has {} params, expected 8", p.len()));
        }
        Ok(EquihashJob {
            job_id: p[0].as_str().ok_or("job_id is not a string")?.to_string(),
            version: hex_array::<4>(&p[1], "version")?,
            prevhash: hex_array::<32>(&p[2], "prevhash")?,
            merkleroot: hex_array::<32>(&p[3], "merkleroot")?,
            reserved: hex_array::<32>(&p[4], "reserved")?,
            time: hex_array::<4>(&p[5], "time")?,
            bits: hex_array::<4>(&p[6], "bits")?,
            clean_jobs: p[7].as_bool().ok_or("clean_jobs is not a boolean")?,
        })
    }

    /// The `mining.notify` params for this job (8 elements; the inverse of
    /// [`EquihashJob::from_notify_params`]).
    pub fn to_notify_params(&self) -> Value {
        json!([
            self.job_id,
            hex::encode(&self.version),
            hex::encode(&self.prevhash),
            hex::encode(&self.merkleroot),
            hex::encode(&self.reserved),
            hex::encode(&self.time),
            hex::encode(&self.bits),
            self.clean_jobs
        ])
    }

    /// The first 108 header bytes (everything but the nonce) with header time `time`.
    pub fn header_without_nonce(&self, time: &[u8; 4]) -> [u8; HEADER_WITHOUT_NONCE_LEN] {
        let mut out = [0u8; HEADER_WITHOUT_NONCE_LEN];
        out[0..4].copy_from_slice(&self.version);
        out[4..36].copy_from_slice(&self.prevhash);
        out[36..68].copy_from_slice(&self.merkleroot);
        out[68..100].copy_from_slice(&self.reserved);
        out[100..104].copy_from_slice(time);
        out[104..108].copy_from_slice(&self.bits);
        out
    }

    /// The 140-byte header with the job's own time.
    pub fn header(&self, nonce: &[u8; NONCE_LEN]) -> [u8; HEADER_LEN] {
        self.header_with_time(&self.time, nonce)
    }

    /// The 140-byte header with header time `time` (a submit's TIME).
    pub fn header_with_time(&self, time: &[u8; 4], nonce: &[u8; NONCE_LEN]) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..HEADER_WITHOUT_NONCE_LEN].copy_from_slice(&self.header_without_nonce(time));
        out[HEADER_WITHOUT_NONCE_LEN..].copy_from_slice(nonce);
        out
    }
}

fn hex_array<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{what} is not a string"))?;
    hex::decode_array::<N>(s).ok_or_else(|| format!("{what} is not {} hex digits", 2 * N))
}

/// Known-good data for tests elsewhere in the crate, and in other crates' tests with the `test-vectors` feature.
#[cfg(any(test, feature = "test-vectors"))]
pub mod test_vectors {
    use super::*;

    /// The Zcash mainnet genesis block (height 0, hash
    /// 00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08), from zcashd's
    /// `src/chainparams.cpp`; see the fixture's "source" field.
    pub const ZCASH_GENESIS_JSON: &str = include_str!("../../../tests/fixtures/zcash_genesis.json");

    /// The genesis block as a pool would hand it out and a miner would submit it.
    pub struct Genesis {
        pub job: EquihashJob,
        pub nonce: [u8; NONCE_LEN],
        /// `fd4005` followed by the 1344-byte solution.
        pub solution_with_prefix: Vec<u8>,
        /// Header byte order.
        pub hash: [u8; 32],
        pub pow_limit: [u8; 32],
    }

    fn field<'a>(v: &'a Value, name: &str) -> &'a str {
        v[name].as_str().expect("fixture field")
    }

    /// 32 bytes given in display order, returned in header order.
    fn from_display(s: &str) -> [u8; 32] {
        let mut b = hex::decode_array::<32>(s).expect("fixture hex");
        b.reverse();
        b
    }

    /// Parses the fixture and builds the job through its `mining.notify` params, as a pool sends them.
    pub fn genesis() -> Genesis {
        let v: Value = serde_json::from_str(ZCASH_GENESIS_JSON).expect("fixture JSON");
        let version = u32::try_from(v["version"].as_u64().expect("version")).expect("u32");
        let time = u32::try_from(v["time"].as_u64().expect("time")).expect("u32");
        let bits = u32::from_str_radix(field(&v, "bits"), 16).expect("bits");
        let notify = json!([
            "genesis",
            hex::encode(&version.to_le_bytes()),
            hex::encode(&from_display(field(&v, "prev_hash"))),
            hex::encode(&from_display(field(&v, "merkle_root"))),
            hex::encode(&from_display(field(&v, "reserved"))),
            hex::encode(&time.to_le_bytes()),
            hex::encode(&bits.to_le_bytes()),
            true
        ]);
        let job = EquihashJob::from_notify_params(&notify).expect("genesis notify");
        let mut solution_with_prefix = Params::ZCASH.solution_prefix();
        solution_with_prefix.extend(hex::decode(field(&v, "solution")).expect("solution hex"));
        Genesis {
            job,
            nonce: from_display(field(&v, "nonce")),
            solution_with_prefix,
            hash: from_display(field(&v, "hash")),
            pow_limit: target_from_hex(field(&v, "pow_limit")).expect("pow limit"),
        }
    }
}

#[cfg(test)]
mod tests;
