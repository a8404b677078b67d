//! Bitcoin share math for Stratum V1: double SHA-256, difficulty targets, and the block header a share
//! stands for (coinbase = coinb1 || extranonce1 || extranonce2 || coinb2, merkle root from the job's branch,
//! 80-byte header). Used by the simulated pool and miners, and by the proxy for local share checks.

use crate::hex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The difficulty-1 target, 0x00000000FFFF0000...0000, as a big-endian 256-bit number.
pub const DIFF1_TARGET: [u8; 32] = {
    let mut t = [0u8; 32];
    t[4] = 0xff;
    t[5] = 0xff;
    t
};

/// The largest 256-bit target (every hash meets it).
pub const MAX_TARGET: [u8; 32] = [0xff; 32];

/// Hashes a difficulty-1 share takes on average (2^32): accepted difficulty per second × this = hashes per second.
pub const HASHES_PER_DIFF1: f64 = 4_294_967_296.0;

/// SHA-256 applied twice.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// Share target for a Stratum difficulty: DIFF1 / `diff` as a big-endian 256-bit number (rounded down).
///
/// DIFF1 is 0xFFFF * 2^208, so the target is (65535 / diff) * 2^208, computed from the exact mantissa and
/// exponent of the `f64` quotient. A difficulty below 1 gives a target above DIFF1; one so small that the
/// target would not fit saturates at 2^256 - 1. A difficulty that is zero, negative, NaN or infinite gives
/// [`MAX_TARGET`] (no usable difficulty: accept everything). A huge difficulty can round down to zero.
pub fn target_from_difficulty(diff: f64) -> [u8; 32] {
    if diff.is_nan() || diff <= 0.0 || diff.is_infinite() {
        return MAX_TARGET;
    }
    let quotient = 65535.0 / diff;
    // target >= 2^256 exactly when quotient >= 2^48 (also catches an infinite quotient).
    if quotient >= 281_474_976_710_656.0 || !quotient.is_finite() {
        return MAX_TARGET;
    }
    let (mantissa, exponent) = decompose(quotient);
    u64_times_pow2(mantissa, exponent + 208)
}

/// Splits a finite non-negative `f64` into `(m, e)` with value = m * 2^e exactly.
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    }
}

/// `m * 2^shift` rounded down, as a big-endian 256-bit number, saturating at 2^256 - 1.
fn u64_times_pow2(m: u64, shift: i32) -> [u8; 32] {
    let mut out = [0u8; 32];
    if shift < 0 {
        let value = m.checked_shr(shift.unsigned_abs()).unwrap_or(0);
        out[24..].copy_from_slice(&value.to_be_bytes());
        return out;
    }
    let shifted = (m as u128) << (shift % 8);
    let byte_shift = (shift / 8) as usize;
    // Byte i of `shifted` (counted from the least significant) lands at significance i + byte_shift.
    for (i, &b) in shifted.to_le_bytes().iter().enumerate() {
        match 31usize.checked_sub(i + byte_shift) {
            Some(pos) => out[pos] = b,
            None if b != 0 => return MAX_TARGET,
            None => {}
        }
    }
    out
}

/// Target encoded by a header's compact `nbits` (e.g. 0x1d00ffff is DIFF1), big-endian. Negative or
/// overflowing encodings give zero and [`MAX_TARGET`] respectively.
pub fn target_from_nbits(nbits: u32) -> [u8; 32] {
    let size = (nbits >> 24) as i32;
    if nbits & 0x0080_0000 != 0 {
        return [0u8; 32];
    }
    let mantissa = u64::from(nbits & 0x007f_ffff);
    u64_times_pow2(mantissa, 8 * (size - 3))
}

/// True when `hash` (a sha256d output, read as a little-endian 256-bit number) is <= `target_be`
/// (big-endian).
pub fn hash_meets_target(hash: &[u8; 32], target_be: &[u8; 32]) -> bool {
    hash.iter()
        .rev()
        .zip(target_be.iter())
        .find(|(h, t)| h != t)
        .is_none_or(|(h, t)| h < t)
}

/// The usual display form of a hash: its bytes reversed, in hex (block explorers' order).
pub fn display_hex(hash: &[u8; 32]) -> String {
    let mut reversed = *hash;
    reversed.reverse();
    hex::encode(&reversed)
}

/// Reverses the bytes of each 4-byte word: turns a notify `prevhash` into header byte order and back.
pub fn swap_words(bytes: &[u8; 32]) -> [u8; 32] {
    let mut out = *bytes;
    for word in out.chunks_exact_mut(4) {
        word.reverse();
    }
    out
}

/// Parses exactly 8 hex digits as a big-endian `u32` (Stratum's version, nbits, ntime, nonce fields).
pub fn u32_from_hex(s: &str) -> Option<u32> {
    hex::decode_array::<4>(s).map(u32::from_be_bytes)
}

/// Formats a `u32` as 8 lower-case hex digits, big-endian.
pub fn u32_to_hex(v: u32) -> String {
    format!("{v:08x}")
}

/// The header version of a share with version rolling: `(job_version & !mask) | (bits & mask)`.
pub fn rolled_version(job_version: u32, mask: u32, bits: u32) -> u32 {
    (job_version & !mask) | (bits & mask)
}

/// Folds a merkle branch onto the coinbase transaction hash: merkle = sha256d(merkle || h) per branch entry.
pub fn merkle_root_with_branch(coinbase_hash: [u8; 32], branch: &[[u8; 32]]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    branch.iter().fold(coinbase_hash, |acc, h| {
        pair[..32].copy_from_slice(&acc);
        pair[32..].copy_from_slice(h);
        sha256d(&pair)
    })
}

/// An 80-byte block header from its fields (`prevhash` in header byte order).
pub fn block_header(
    version: u32,
    prevhash: &[u8; 32],
    merkle_root: &[u8; 32],
    ntime: u32,
    nbits: u32,
    nonce: u32,
) -> [u8; 80] {
    let mut header = [0u8; 80];
    header[0..4].copy_from_slice(&version.to_le_bytes());
    header[4..36].copy_from_slice(prevhash);
    header[36..68].copy_from_slice(merkle_root);
    header[68..72].copy_from_slice(&ntime.to_le_bytes());
    header[72..76].copy_from_slice(&nbits.to_le_bytes());
    header[76..80].copy_from_slice(&nonce.to_le_bytes());
    header
}

/// One Stratum V1 job, as carried by `mining.notify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub job_id: String,
    /// As sent in notify: header byte order with each 4-byte word reversed.
    pub prevhash: [u8; 32],
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    pub merkle_branch: Vec<[u8; 32]>,
    pub version: u32,
    pub nbits: u32,
    pub ntime: u32,
    pub clean_jobs: bool,
}

impl Job {
    /// Parses `mining.notify` params `[job_id, prevhash, coinb1, coinb2, merkle_branch[], version, nbits,
    /// ntime, clean_jobs]`. Extra trailing elements are ignored; every field is type- and length-checked.
    pub fn from_notify_params(params: &Value) -> Result<Job, String> {
        let p = params.as_array().ok_or("notify params are not an array")?;
        if p.len() < 9 {
            return Err(format!("notify has {} params, expected 9", p.len()));
        }
        let branch = p[4].as_array().ok_or("merkle_branch is not an array")?;
        Ok(Job {
            job_id: p[0].as_str().ok_or("job_id is not a string")?.to_string(),
            prevhash: hex_array::<32>(&p[1], "prevhash")?,
            coinb1: hex_vec(&p[2], "coinb1")?,
            coinb2: hex_vec(&p[3], "coinb2")?,
            merkle_branch: branch
                .iter()
                .map(|h| hex_array::<32>(h, "merkle_branch entry"))
                .collect::<Result<_, _>>()?,
            version: hex_u32(&p[5], "version")?,
            nbits: hex_u32(&p[6], "nbits")?,
            ntime: hex_u32(&p[7], "ntime")?,
            clean_jobs: p[8].as_bool().ok_or("clean_jobs is not a boolean")?,
        })
    }

    /// The `mining.notify` params for this job (the inverse of [`Job::from_notify_params`]).
    pub fn to_notify_params(&self) -> Value {
        let branch: Vec<String> = self.merkle_branch.iter().map(|h| hex::encode(h)).collect();
        json!([
            self.job_id,
            hex::encode(&self.prevhash),
            hex::encode(&self.coinb1),
            hex::encode(&self.coinb2),
            branch,
            u32_to_hex(self.version),
            u32_to_hex(self.nbits),
            u32_to_hex(self.ntime),
            self.clean_jobs
        ])
    }

    /// coinb1 || extranonce1 || extranonce2 || coinb2.
    pub fn coinbase(&self, extranonce1: &[u8], extranonce2: &[u8]) -> Vec<u8> {
        let mut tx = Vec::with_capacity(
            self.coinb1.len() + extranonce1.len() + extranonce2.len() + self.coinb2.len(),
        );
        tx.extend_from_slice(&self.coinb1);
        tx.extend_from_slice(extranonce1);
        tx.extend_from_slice(extranonce2);
        tx.extend_from_slice(&self.coinb2);
        tx
    }

    /// Merkle root (header byte order) of a block whose coinbase transaction is `coinbase`.
    pub fn merkle_root(&self, coinbase: &[u8]) -> [u8; 32] {
        merkle_root_with_branch(sha256d(coinbase), &self.merkle_branch)
    }

    /// The 80-byte header for an already computed merkle root.
    pub fn header_with_merkle_root(
        &self,
        merkle_root: &[u8; 32],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> [u8; 80] {
        let prevhash = swap_words(&self.prevhash);
        block_header(version, &prevhash, merkle_root, ntime, self.nbits, nonce)
    }

    /// The 80-byte header of a share: version, prevhash (words swapped back), merkle root, ntime, nbits, nonce.
    pub fn header(
        &self,
        extranonce1: &[u8],
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> [u8; 80] {
        let merkle = self.merkle_root(&self.coinbase(extranonce1, extranonce2));
        self.header_with_merkle_root(&merkle, ntime, nonce, version)
    }

    /// sha256d of the share's header (compare with [`hash_meets_target`]).
    pub fn share_hash(
        &self,
        extranonce1: &[u8],
        extranonce2: &[u8],
        ntime: u32,
        nonce: u32,
        version: u32,
    ) -> [u8; 32] {
        sha256d(&self.header(extranonce1, extranonce2, ntime, nonce, version))
    }
}

fn hex_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{what} is not a string"))
}

fn hex_vec(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(hex_str(v, what)?).ok_or_else(|| format!("{what} is not hex"))
}

fn hex_array<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], String> {
    hex::decode_array::<N>(hex_str(v, what)?)
        .ok_or_else(|| format!("{what} is not {} hex digits", 2 * N))
}

fn hex_u32(v: &Value, what: &str) -> Result<u32, String> {
    u32_from_hex(hex_str(v, what)?).ok_or_else(|| format!("{what} is not 8 hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        hex::decode_array::<32>(s).expect("test vector hex")
    }

    fn from_display(s: &str) -> [u8; 32] {
        let mut b = h32(s);
        b.reverse();
        b
    }

    /// Notify form of a block hash given in display order: header order with words swapped.
    fn notify_prevhash(display: &str) -> [u8; 32] {
        swap_words(&from_display(display))
    }

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s).expect("test vector hex")
    }

    #[test]
    fn sha256d_known_value() {
        assert_eq!(
            hex::encode(&sha256d(b"hello")),
            "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"
        );
    }

    /// Bitcoin wiki "Block hashing algorithm": block 125552.
    #[test]
    fn block_125552_header_hash() {
        let header = hx(concat!(
            "01000000",
            "81cd02ab7e569e8bcd9317e2fe99f2de44d49ab2b8851ba4a308000000000000",
            "e320b6c2fffc8d750423db8b1eb942ae710e951ed797f7affc8892b0f1fc122b",
            "c7f5d74d",
            "f2b9441a",
            "42a14695"
        ));
        let hash = sha256d(&header);
        assert_eq!(
            display_hex(&hash),
            "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d"
        );
        assert!(hash_meets_target(&hash, &target_from_nbits(0x1a44b9f2)));
        assert!(!hash_meets_target(&hash, &target_from_nbits(0x180fffff)));

        // The same header assembled from notify fields.
        let job = Job {
            job_id: "1".into(),
            prevhash: notify_prevhash(
                "00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81",
            ),
            coinb1: vec![],
            coinb2: vec![],
            merkle_branch: vec![],
            version: 1,
            nbits: 0x1a44b9f2,
            ntime: 1305998791,
            clean_jobs: true,
        };
        let merkle =
            from_display("2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3");
        let built = job.header_with_merkle_root(&merkle, 1305998791, 2504433986, 1);
        assert_eq!(built.as_slice(), header.as_slice());
    }

    const GENESIS_COINBASE: &str = concat!(
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d",
        "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e20",
        "6272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a0100",
        "0000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38",
        "c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
    );

    /// Splits a real coinbase into coinb1 / e1 (4 bytes) / e2 (`e2_len` bytes) / coinb2 at `at`.
    fn split_job(
        coinbase: &[u8],
        at: usize,
        e2_len: usize,
        prev_display: &str,
    ) -> (Job, Vec<u8>, Vec<u8>) {
        let e1 = coinbase[at..at + 4].to_vec();
        let e2 = coinbase[at + 4..at + 4 + e2_len].to_vec();
        let job = Job {
            job_id: "b".into(),
            prevhash: notify_prevhash(prev_display),
            coinb1: coinbase[..at].to_vec(),
            coinb2: coinbase[at + 4 + e2_len..].to_vec(),
            merkle_branch: vec![],
            version: 1,
            nbits: 0x1d00ffff,
            ntime: 0,
            clean_jobs: true,
        };
        (job, e1, e2)
    }

    #[test]
    fn genesis_block_from_job() {
        let coinbase = hx(GENESIS_COINBASE);
        assert_eq!(
            display_hex(&sha256d(&coinbase)),
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
        );
        let zero = "0000000000000000000000000000000000000000000000000000000000000000";
        let (job, e1, e2) = split_job(&coinbase, 42, 8, zero);
        assert_eq!(job.coinbase(&e1, &e2), coinbase);
        let hash = job.share_hash(&e1, &e2, 1231006505, 2083236893, 1);
        assert_eq!(
            display_hex(&hash),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert!(hash_meets_target(&hash, &target_from_difficulty(1.0)));
        assert_eq!(target_from_nbits(0x1d00ffff), DIFF1_TARGET);
    }

    /// Block 1: a non-zero prevhash proves the notify word swap.
    #[test]
    fn block_1_from_job_prevhash_word_swap() {
        let coinbase = hx(concat!(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff07",
            "04ffff001d0104ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae139081",
            "3a627c66fb8be7947be63c52da7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c858",
            "eeac00000000"
        ));
        let genesis = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
        let (job, e1, e2) = split_job(&coinbase, 41, 2, genesis);
        assert_eq!(
            hex::encode(&job.prevhash),
            "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"
        );
        let hash = job.share_hash(&e1, &e2, 1231469665, 2573394689, 1);
        assert_eq!(
            display_hex(&hash),
            "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
        );
    }

    /// Block 170 (two transactions): the coinbase plus a one-entry merkle branch.
    #[test]
    fn block_170_from_notify_with_branch() {
        let coinbase = hx(concat!(
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff07",
            "04ffff001d0102ffffffff0100f2052a01000000434104d46c4968bde02899d2aa0963367c7a6ce34eec33",
            "2b32e42e5f3407e052d64ac625da6f0718e7b302140434bd725706957c092db53805b821a85b23a7ac6172",
            "5bac00000000"
        ));
        let prev = "000000002a22cfee1f2c846adbd12b3e183d4f97683f85dad08a79780a84bd55";
        let (mut job, e1, e2) = split_job(&coinbase, 43, 4, prev);
        job.merkle_branch = vec![from_display(
            "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16",
        )];
        // Through the wire format and back.
        let job = Job::from_notify_params(&job.to_notify_params()).expect("round trip");
        let merkle = job.merkle_root(&job.coinbase(&e1, &e2));
        assert_eq!(
            display_hex(&merkle),
            "7dac2c5666815c17a3b36427de37bb9d2e2c5ccec3f8633eb91a4205cb4c10ff"
        );
        let hash = job.share_hash(&e1, &e2, 1231731025, 1889418792, 1);
        assert_eq!(
            display_hex(&hash),
            "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"
        );
        assert!(hash_meets_target(&hash, &target_from_nbits(job.nbits)));

        // One byte of extranonce1 wrong: a different, invalid hash.
        let mut bad_e1 = e1.clone();
        bad_e1[3] ^= 1;
        let bad = job.share_hash(&bad_e1, &e2, 1231731025, 1889418792, 1);
        assert_ne!(bad, hash);
        assert!(!hash_meets_target(&bad, &target_from_nbits(job.nbits)));
    }

    #[test]
    fn notify_params_parse_strictly() {
        let good = json!([
            "j1",
            "00".repeat(32),
            "0102",
            "",
            ["11".repeat(32)],
            "20000000",
            "1d00ffff",
            "5f5e1000",
            false,
            "extra"
        ]);
        let job = Job::from_notify_params(&good).expect("valid notify");
        assert_eq!(job.version, 0x2000_0000);
        assert_eq!(job.ntime, 0x5f5e_1000);
        assert_eq!(job.coinb1, vec![1, 2]);
        assert_eq!(job.merkle_branch, vec![[0x11; 32]]);
        assert!(!job.clean_jobs);

        let broken = |i: usize, v: Value| {
            let mut p = good.as_array().cloned().unwrap_or_default();
            p[i] = v;
            Job::from_notify_params(&Value::Array(p)).is_err()
        };
        assert!(broken(0, json!(7)));
        assert!(broken(1, json!("00".repeat(31))));
        assert!(broken(2, json!("abc")));
        assert!(broken(4, json!(["11"])));
        assert!(broken(4, json!("11")));
        assert!(broken(5, json!("2000000")));
        assert!(broken(6, json!("1d00fffg")));
        assert!(broken(8, json!("true")));
        let short: Vec<Value> = good.as_array().cloned().unwrap_or_default()[..8].to_vec();
        assert!(Job::from_notify_params(&Value::Array(short)).is_err());
        assert!(Job::from_notify_params(&json!({"a": 1})).is_err());
    }

    fn target_hex(diff: f64) -> String {
        hex::encode(&target_from_difficulty(diff))
    }

    #[test]
    fn targets_from_difficulty() {
        assert_eq!(target_from_difficulty(1.0), DIFF1_TARGET);
        let zeros = |n: usize| "0".repeat(n);
        assert_eq!(target_hex(2.0), format!("000000007fff8{}", zeros(51)));
        assert_eq!(target_hex(3.0), format!("0000000055550{}", zeros(51)));
        assert_eq!(target_hex(0.5), format!("00000001fffe{}", zeros(52)));
        assert_eq!(target_hex(1.0 / 65536.0), format!("0000ffff{}", zeros(56)));
        assert_eq!(
            target_hex(65536.0),
            format!("000000000000ffff{}", zeros(48))
        );
        // 65535 / 1e-6 = 65535000000 = 0xf4230bdc0.
        assert_eq!(target_hex(1e-6), format!("000f4230bdc{}", zeros(53)));
        // 65535 / 2^-48 = 0xffff * 2^48 * 2^208 > 2^256: saturates; just below does not.
        assert_eq!(target_from_difficulty(2f64.powi(-48)), MAX_TARGET);
        assert_ne!(
            target_from_difficulty(65535.0 / (2f64.powi(47))),
            MAX_TARGET
        );
        assert_eq!(target_from_difficulty(1e-30), MAX_TARGET);
        assert_eq!(target_from_difficulty(f64::MIN_POSITIVE), MAX_TARGET);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(target_from_difficulty(bad), MAX_TARGET);
        }
        // Huge difficulty: tiny target, eventually zero.
        assert_eq!(target_hex(2f64.powi(200)), format!("{}ffff00", zeros(58)));
        assert_eq!(target_from_difficulty(1e300), [0u8; 32]);
        // Monotone: higher difficulty, lower target.
        assert!(target_from_difficulty(1000.5) < target_from_difficulty(1000.0));
    }

    #[test]
    fn hash_versus_target() {
        let mut target = [0u8; 32];
        target[2] = 0x10;
        let mut hash = [0u8; 32];
        hash[29] = 0x10; // little-endian: byte 29 is big-endian byte 2
        assert!(hash_meets_target(&hash, &target)); // equal
        hash[0] = 1;
        assert!(!hash_meets_target(&hash, &target));
        hash[29] = 0x0f;
        hash[0] = 0xff;
        assert!(hash_meets_target(&hash, &target));
        assert!(hash_meets_target(&[0xff; 32], &MAX_TARGET));
        assert!(!hash_meets_target(&[1; 32], &[0; 32]));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(u32_from_hex("1d00ffff"), Some(0x1d00_ffff));
        assert_eq!(u32_from_hex("1d00fff"), None);
        assert_eq!(u32_from_hex("1d00ffff0"), None);
        assert_eq!(u32_to_hex(1), "00000001");
        assert_eq!(
            rolled_version(0x2000_0000, 0x1fff_e000, 0x0000_6000),
            0x2000_6000
        );
        assert_eq!(
            rolled_version(0x2000_0000, 0x1fff_e000, 0xffff_ffff),
            0x3fff_e000
        );
        let words = h32(&format!("00010203{}", "00".repeat(28)));
        assert_eq!(&swap_words(&words)[..4], &[3, 2, 1, 0]);
        assert_eq!(swap_words(&swap_words(&words)), words);
        assert_eq!(
            target_from_nbits(0x1a44b9f2)[..10],
            [0, 0, 0, 0, 0, 0, 0x44, 0xb9, 0xf2, 0]
        );
    }
}
