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
mod tests {
    use super::test_vectors::genesis;
    use super::*;

    /// Zcash mainnet genesis block, height 0, hash
    /// 00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08: built from notify fields and a
    /// NONCE_1 || NONCE_2 split, its solution verifies with (200, 9) and it hashes to the genesis hash.
    #[test]
    fn zcash_genesis_block() {
        let g = genesis();
        assert_eq!(g.job.to_notify_params()[1], json!("04000000"));
        assert_eq!(hex::encode(&g.job.time), "90041358"); // 1477641360 little-endian
        assert_eq!(hex::encode(&g.job.bits), "ffff071f"); // 0x1f07ffff little-endian
        assert_eq!(g.solution_with_prefix.len(), 1347);
        assert_eq!(&g.solution_with_prefix[..3], &[0xfd, 0x40, 0x05]);

        // A pool's NONCE_1 (4 bytes) and the miner's NONCE_2 (28 bytes), as hex on the wire.
        let nonce1_hex = hex::encode(&g.nonce[..4]);
        let nonce2_hex = hex::encode(&g.nonce[4..]);
        assert_eq!(nonce1_hex, "57120000");
        let nonce1 = hex::decode(&nonce1_hex).unwrap_or_default();
        let nonce2 = hex::decode(&nonce2_hex).unwrap_or_default();
        let nonce = nonce_from_parts(&nonce1, &nonce2).expect("32 bytes");
        assert_eq!(nonce, g.nonce);

        let time = hex::decode_array::<4>("90041358").expect("time");
        let header = g.job.header_with_time(&time, &nonce);
        assert_eq!(header, g.job.header(&nonce));
        assert_eq!(&header[..4], &[4, 0, 0, 0]);
        assert_eq!(&header[108..], &nonce);
        let solution = parse_solution_hex(&hex::encode(&g.solution_with_prefix), &Params::ZCASH)
            .expect("well-formed solution");
        assert_eq!(solution, g.solution_with_prefix);

        let without_nonce = g.job.header_without_nonce(&time);
        assert_eq!(without_nonce.as_slice(), &header[..108]);
        verify_solution(&Params::ZCASH, &without_nonce, &nonce, &solution).expect("valid");
        verify_solution(&Params::ZCASH, &without_nonce, &nonce, &solution[3..])
            .expect("valid without prefix too");

        let hash = block_hash(&header, &solution);
        assert_eq!(hash, g.hash);
        assert_eq!(
            work::display_hex(&hash),
            "00040fe8ec8471911baa1db1266ea15dd06b4a8a5c453883c000b031973dce08"
        );
        assert!(hash_meets_target(&hash, &g.pow_limit));
        assert!(hash_meets_target(
            &hash,
            &work::target_from_nbits(0x1f07_ffff)
        ));
        let harder = target_from_hex(&format!("0003{}", "f".repeat(60))).expect("target");
        assert!(!hash_meets_target(&hash, &harder));

        let checked = check_share(
            &g.job,
            &Params::ZCASH,
            &time,
            &nonce,
            &solution,
            &g.pow_limit,
            true,
        );
        assert_eq!(checked, Ok(g.hash));

        // One byte of the nonce changed: the solution no longer verifies and the hash changes.
        let mut bad_nonce = nonce;
        bad_nonce[31] ^= 1;
        assert!(verify_solution(&Params::ZCASH, &without_nonce, &bad_nonce, &solution).is_err());
        assert_ne!(block_hash(&g.job.header(&bad_nonce), &solution), g.hash);
        let checked = check_share(
            &g.job,
            &Params::ZCASH,
            &time,
            &bad_nonce,
            &solution,
            &g.pow_limit,
            true,
        );
        assert_eq!(checked.map_err(|e| e.code()), Err(20));
        // The same for a prefix byte (NONCE_1) and for the time.
        let mut bad_prefix = nonce;
        bad_prefix[3] ^= 0xff;
        assert!(verify_solution(&Params::ZCASH, &without_nonce, &bad_prefix, &solution).is_err());
        let other_time = g.job.header_without_nonce(&[0x91, 0x04, 0x13, 0x58]);
        assert!(verify_solution(&Params::ZCASH, &other_time, &nonce, &solution).is_err());
        // One bit of the solution flipped.
        let mut bad_solution = solution.clone();
        bad_solution[100] ^= 0x10;
        assert!(verify_solution(&Params::ZCASH, &without_nonce, &nonce, &bad_solution).is_err());
        // Wrong parameters.
        let other = Params { n: 144, k: 5 };
        assert!(verify_solution(&other, &without_nonce, &nonce, &solution).is_err());
        // Without verification the wrong nonce is not seen as an invalid solution: only the hash counts.
        let unverified = check_share(
            &g.job,
            &Params::ZCASH,
            &time,
            &bad_nonce,
            &solution,
            &g.pow_limit,
            false,
        );
        assert!(unverified.is_ok() || unverified == Err(ShareError::AboveTarget));
        let low = check_share(
            &g.job,
            &Params::ZCASH,
            &time,
            &nonce,
            &solution,
            &harder,
            true,
        );
        assert_eq!(
            low.map_err(|e| (e.code(), e.message())),
            Err((23, "Low difficulty share"))
        );
    }

    #[test]
    fn params_and_solution_lengths() {
        assert_eq!(Params::ZCASH.solution_len(), 1344);
        assert_eq!(Params::ZCASH.solution_prefix(), vec![0xfd, 0x40, 0x05]);
        assert_eq!(Params::ZCASH.solution_with_prefix_len(), 1347);
        assert_eq!(Params::default(), Params::ZCASH);
        assert_eq!(Params { n: 144, k: 5 }.solution_len(), 100);
        assert_eq!(Params { n: 144, k: 5 }.solution_prefix(), vec![100]);
        assert_eq!(Params { n: 192, k: 7 }.solution_len(), 400);
        assert_eq!(Params { n: 96, k: 5 }.solution_len(), 68);
        assert_eq!(Params { n: 48, k: 5 }.solution_len(), 36);
        for good in [(200, 9), (144, 5), (192, 7), (96, 5), (48, 5)] {
            assert!(
                Params {
                    n: good.0,
                    k: good.1
                }
                .check()
                .is_ok(),
                "{good:?}"
            );
        }
        for bad in [
            (201, 9),
            (200, 2),
            (200, 8),
            (0, 0),
            (8, 8),
            (1024, 15),
            (256, 255),
            (16, 1),
            (210, 9),
        ] {
            assert!(Params { n: bad.0, k: bad.1 }.check().is_err(), "{bad:?}");
        }
        let weird = Params {
            n: 512,
            k: u32::MAX,
        };
        assert_eq!(weird.solution_len(), 0);
        assert!(weird.check().is_err());
        let header = [0u8; HEADER_WITHOUT_NONCE_LEN];
        assert!(verify_solution(&weird, &header, &[0; 32], &[0; 10]).is_err());
        // Parameters the crate would panic on are refused before reaching it.
        let too_wide = Params { n: 208, k: 7 }; // 26-bit collisions
        assert!(too_wide.check().is_err());
        assert!(verify_solution(
            &too_wide,
            &header,
            &[0; 32],
            &vec![0; too_wide.solution_len()]
        )
        .is_err());
    }

    #[test]
    fn compact_sizes_and_solution_parsing() {
        for (n, enc) in [
            (0u64, "00"),
            (252, "fc"),
            (253, "fdfd00"),
            (1344, "fd4005"),
            (0xffff, "fdffff"),
            (0x1_0000, "fe00000100"),
            (0x1_0000_0000, "ff0000000001000000"),
        ] {
            assert_eq!(hex::encode(&compact_size(n)), enc);
            let bytes = hex::decode(enc).unwrap_or_default();
            assert_eq!(read_compact_size(&bytes), Some((n, bytes.len())));
        }
        assert_eq!(read_compact_size(&[]), None);
        assert_eq!(read_compact_size(&[0xfd, 0x40]), None, "cut short");
        assert_eq!(
            read_compact_size(&[0xfd, 0x10, 0x00]),
            None,
            "not canonical"
        );
        assert_eq!(
            read_compact_size(&[0xfe, 0xff, 0xff, 0, 0]),
            None,
            "not canonical"
        );

        let p = Params::ZCASH;
        let good = format!("fd4005{}", "ab".repeat(1344));
        assert_eq!(parse_solution_hex(&good, &p).map(|s| s.len()), Ok(1347));
        let upper = format!("FD4005{}", "AB".repeat(1344));
        assert!(parse_solution_hex(&upper, &p).is_ok());
        assert!(parse_solution_hex(&format!("fd4005{}", "ab".repeat(1343)), &p).is_err());
        assert!(parse_solution_hex(&format!("fd4005{}", "ab".repeat(1345)), &p).is_err());
        assert!(parse_solution_hex(&format!("fd4105{}", "ab".repeat(1344)), &p).is_err());
        assert!(parse_solution_hex(&format!("fe400500{}", "ab".repeat(1343)), &p).is_err());
        assert!(
            parse_solution_hex(&"ab".repeat(1347), &p).is_err(),
            "no prefix"
        );
        assert!(parse_solution_hex(&format!("fd4005{}zz", "ab".repeat(1343)), &p).is_err());
        assert!(parse_solution_hex(&format!("fd4005{}a", "ab".repeat(1343)), &p).is_err());
        let small = Params { n: 144, k: 5 };
        assert!(parse_solution_hex(&format!("64{}", "00".repeat(100)), &small).is_ok());

        let body = [7u8; 1344];
        assert_eq!(solution_body(&body, &p).map(<[u8]>::len), Ok(1344));
        assert!(solution_body(&body[..1343], &p).is_err());

        // check_share wants the prefix.
        let job = sample_job();
        let target = [0xff; 32];
        let res = check_share(&job, &p, &job.time, &[0; 32], &body, &target, false);
        assert_eq!(res.map_err(|e| e.code()), Err(20));
        let with = [&p.solution_prefix()[..], &body[..]].concat();
        assert!(check_share(&job, &p, &job.time, &[0; 32], &with, &target, false).is_ok());
        let res = check_share(&job, &p, &job.time, &[0; 32], &with, &[0; 32], false);
        assert_eq!(res, Err(ShareError::AboveTarget));
    }

    fn sample_job() -> EquihashJob {
        EquihashJob {
            job_id: "j".into(),
            version: [4, 0, 0, 0],
            prevhash: [1; 32],
            merkleroot: [2; 32],
            reserved: [3; 32],
            time: [5, 6, 7, 8],
            bits: [9, 10, 11, 12],
            clean_jobs: false,
        }
    }

    #[test]
    fn notify_params_parse_strictly() {
        let job = sample_job();
        let params = job.to_notify_params();
        assert_eq!(params.as_array().map(Vec::len), Some(8));
        assert_eq!(params[1], json!("04000000"));
        assert_eq!(params[5], json!("05060708"));
        assert_eq!(EquihashJob::from_notify_params(&params), Ok(job.clone()));
        let header = job.header(&[0xee; 32]);
        assert_eq!(&header[4..36], &[1; 32]);
        assert_eq!(&header[36..68], &[2; 32]);
        assert_eq!(&header[68..100], &[3; 32]);
        assert_eq!(&header[100..104], &[5, 6, 7, 8]);
        assert_eq!(&header[104..108], &[9, 10, 11, 12]);
        assert_eq!(&header[108..], &[0xee; 32]);

        // A 9th element is accepted and ignored; a fork's version passes unchanged.
        let mut nine = params.as_array().cloned().unwrap_or_default();
        nine.push(json!(true));
        nine[1] = json!("00000020");
        let forked =
            EquihashJob::from_notify_params(&Value::Array(nine.clone())).expect("9 params");
        assert_eq!(forked.version, [0, 0, 0, 0x20]);
        assert_eq!(forked.to_notify_params()[1], json!("00000020"));

        let broken = |i: usize, v: Value| {
            let mut p = nine.clone();
            p[i] = v;
            EquihashJob::from_notify_params(&Value::Array(p)).is_err()
        };
        assert!(broken(0, json!(1)));
        assert!(broken(1, json!("040000")));
        assert!(broken(2, json!("00".repeat(31))));
        assert!(broken(3, json!("00".repeat(33))));
        assert!(broken(4, json!("zz".repeat(32))));
        assert!(broken(5, json!("0506070")));
        assert!(broken(6, json!(null)));
        assert!(broken(7, json!("true")));
        let short = Value::Array(nine[..7].to_vec());
        assert!(EquihashJob::from_notify_params(&short).is_err());
        assert!(EquihashJob::from_notify_params(&json!({"a": 1})).is_err());
    }

    #[test]
    fn targets_and_nonces() {
        let t = target_from_hex(&format!("00ff{}", "f".repeat(60))).expect("target");
        assert_eq!(t[0], 0);
        assert_eq!(t[1], 0xff);
        assert!(target_from_hex(&"f".repeat(63)).is_none());
        assert!(target_from_hex(&"f".repeat(66)).is_none());
        let mut hash = [0xff; 32];
        hash[31] = 0; // little-endian: the most significant byte
        assert!(hash_meets_target(&hash, &t));
        hash[31] = 1;
        assert!(!hash_meets_target(&hash, &t));
        assert_eq!(
            nonce_from_parts(&[1; 4], &[2; 28]).map(|n| n[3..5].to_vec()),
            Some(vec![1, 2])
        );
        assert_eq!(nonce_from_parts(&[], &[2; 32]), Some([2; 32]));
        assert_eq!(nonce_from_parts(&[1; 4], &[2; 27]), None);
        assert_eq!(nonce_from_parts(&[1; 4], &[2; 29]), None);
    }
}
