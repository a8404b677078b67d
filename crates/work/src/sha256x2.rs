//! Two SHA-256 compressions at once, for hashing two shares side by side.
//!
//! A V1 share's hash is a chain of about 40 compressions, each waiting for the one before, and the SHA-NI
//! round instruction has a latency of several cycles: one chain leaves most of the unit idle. Interleaving the
//! rounds of two independent chains fills it: on this project's machines one pair takes about 45 ns where two
//! single compressions take 76 ns (`cargo bench --bench share_path -- validate`).
//!
//! This is one of the crate's two `unsafe` modules (with [`crate::sha256x16`]): x86-64 SHA-NI intrinsics, used only after the CPU was
//! checked for them at run time. Elsewhere (or without SHA-NI) [`compress_pair`] is two calls to
//! `sha2::compress256`. Tests compare both paths with the sha2 crate.

use sha2::digest::generic_array::GenericArray;

/// SHA-256 initial hash value.
pub const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256 round constants.
#[cfg(target_arch = "x86_64")]
pub(crate) const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// Some(the value of `$call`, an x86 SHA-NI function) when the CPU has SHA-NI, else None (and off x86-64).
macro_rules! with_sha_ni {
    ($call:expr) => {{
        #[cfg(target_arch = "x86_64")]
        let r = if std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
        {
            // SAFETY: the CPU has the SHA and SSE4.1 (hence SSSE3, SSE2) instructions, checked just above.
            Some(unsafe { $call })
        } else {
            None
        };
        #[cfg(not(target_arch = "x86_64"))]
        let r = None;
        r
    }};
}

/// One compression of `block` into `state` (the sha2 crate's, with its own SHA-NI or AVX2 backend).
pub fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, &[*GenericArray::from_slice(block)]);
}

/// Two independent compressions: `a` with `block_a`, `b` with `block_b`.
pub fn compress_pair(a: &mut [u32; 8], block_a: &[u8; 64], b: &mut [u32; 8], block_b: &[u8; 64]) {
    if with_sha_ni!(x86::compress_pair(a, block_a, b, block_b)).is_some() {
        return;
    }
    compress(a, block_a);
    compress(b, block_b);
}

/// sha256d of two 64-byte messages (one merkle step each), both lanes interleaved and every intermediate kept
/// in registers; None when the CPU has no SHA-NI (the caller then uses [`compress_pair`]).
pub fn sha256d_64_pair(a: &[u8; 64], b: &[u8; 64]) -> Option<([u8; 32], [u8; 32])> {
    with_sha_ni!(x86::sha256d_64_pair(a, b))
}

/// sha256d of two 80-byte block headers; None without SHA-NI.
pub fn sha256d_80_pair(a: &[u8; 80], b: &[u8; 80]) -> Option<([u8; 32], [u8; 32])> {
    with_sha_ni!(x86::sha256d_80_pair(a, b))
}

/// SHA-256 of two 32-byte digests given as the state words of their first hash (the second half of a double
/// hash); None without SHA-NI.
pub fn sha256_of_states_pair(a: &[u32; 8], b: &[u32; 8]) -> Option<([u8; 32], [u8; 32])> {
    with_sha_ni!(x86::sha256_of_states_pair(a, b))
}

/// Two merkle folds of equal depth side by side (see [`crate::share_hash`]); None without SHA-NI or when the
/// branches differ in length.
pub fn merkle_fold_pair(
    acc: ([u8; 32], [u8; 32]),
    branch_a: &[[u8; 32]],
    branch_b: &[[u8; 32]],
) -> Option<([u8; 32], [u8; 32])> {
    if branch_a.len() != branch_b.len() {
        return None;
    }
    with_sha_ni!(x86::merkle_fold_pair(acc, branch_a, branch_b))
}

/// The message schedule of the padding block of a 64-byte message, plus the round constants: that block is
/// the same for every merkle step, so its 64 words are computed once, at compile time.
#[cfg(target_arch = "x86_64")]
pub(crate) const PAD_64_WK: [u32; 64] = {
    let mut w = [0u32; 64];
    w[0] = 0x8000_0000;
    w[15] = 512;
    let mut t = 16;
    while t < 64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
        t += 1;
    }
    let mut i = 0;
    while i < 64 {
        w[i] = w[i].wrapping_add(K[i]);
        i += 1;
    }
    w
};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{IV, K};
    use std::arch::x86_64::*;

    /// State words a..h as the (ABEF, CDGH) register pair the SHA round instruction works on.
    macro_rules! load_state {
        ($s:expr) => {{
            let p = $s.as_ptr() as *const __m128i;
            let cdab = _mm_shuffle_epi32(_mm_loadu_si128(p), 0xB1);
            let efgh = _mm_shuffle_epi32(_mm_loadu_si128(p.add(1)), 0x1B);
            (
                _mm_alignr_epi8(cdab, efgh, 8),
                _mm_blend_epi16(efgh, cdab, 0xF0),
            )
        }};
    }

    macro_rules! store_state {
        ($s:expr, $abef:expr, $cdgh:expr) => {{
            let feba = _mm_shuffle_epi32($abef, 0x1B);
            let dchg = _mm_shuffle_epi32($cdgh, 0xB1);
            let p = $s.as_mut_ptr() as *mut __m128i;
            _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
            _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
        }};
    }

    /// The next four message words from the previous sixteen (w[i-16..i] in four registers).
    macro_rules! schedule {
        ($w0:expr, $w1:expr, $w2:expr, $w3:expr) => {{
            let t = _mm_add_epi32(_mm_sha256msg1_epu32($w0, $w1), _mm_alignr_epi8($w3, $w2, 4));
            _mm_sha256msg2_epu32(t, $w3)
        }};
    }

    /// Rounds 4i..4i+4 of both lanes, interleaved.
    macro_rules! rounds {
        ($i:expr, $wa:expr, $wb:expr, $abef_a:ident, $cdgh_a:ident, $abef_b:ident, $cdgh_b:ident) => {{
            let k = _mm_loadu_si128(K.as_ptr().add(4 * $i) as *const __m128i);
            let ta = _mm_add_epi32($wa, k);
            let tb = _mm_add_epi32($wb, k);
            $cdgh_a = _mm_sha256rnds2_epu32($cdgh_a, $abef_a, ta);
            $cdgh_b = _mm_sha256rnds2_epu32($cdgh_b, $abef_b, tb);
            $abef_a = _mm_sha256rnds2_epu32($abef_a, $cdgh_a, _mm_shuffle_epi32(ta, 0x0E));
            $abef_b = _mm_sha256rnds2_epu32($abef_b, $cdgh_b, _mm_shuffle_epi32(tb, 0x0E));
        }};
    }

    /// All 64 rounds of both lanes from their first 16 message words (four registers per lane), then the
    /// feed-forward of the starting state.
    macro_rules! compress_regs {
        ($a0:ident, $a1:ident, $a2:ident, $a3:ident, $b0:ident, $b1:ident, $b2:ident, $b3:ident,
         $abef_a:ident, $cdgh_a:ident, $abef_b:ident, $cdgh_b:ident) => {{
            let saved = ($abef_a, $cdgh_a, $abef_b, $cdgh_b);
            rounds!(0, $a0, $b0, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
            rounds!(1, $a1, $b1, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
            rounds!(2, $a2, $b2, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
            rounds!(3, $a3, $b3, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
            let mut i = 4;
            while i < 16 {
                $a0 = schedule!($a0, $a1, $a2, $a3);
                $b0 = schedule!($b0, $b1, $b2, $b3);
                rounds!(i, $a0, $b0, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
                $a1 = schedule!($a1, $a2, $a3, $a0);
                $b1 = schedule!($b1, $b2, $b3, $b0);
                rounds!(i + 1, $a1, $b1, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
                $a2 = schedule!($a2, $a3, $a0, $a1);
                $b2 = schedule!($b2, $b3, $b0, $b1);
                rounds!(i + 2, $a2, $b2, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
                $a3 = schedule!($a3, $a0, $a1, $a2);
                $b3 = schedule!($b3, $b0, $b1, $b2);
                rounds!(i + 3, $a3, $b3, $abef_a, $cdgh_a, $abef_b, $cdgh_b);
                i += 4;
            }
            $abef_a = _mm_add_epi32($abef_a, saved.0);
            $cdgh_a = _mm_add_epi32($cdgh_a, saved.1);
            $abef_b = _mm_add_epi32($abef_b, saved.2);
            $cdgh_b = _mm_add_epi32($cdgh_b, saved.3);
        }};
    }

    /// State words (a, b, c, d) and (e, f, g, h), lane 0 first, from the (ABEF, CDGH) pair.
    macro_rules! state_words {
        ($abef:expr, $cdgh:expr) => {{
            let feba = _mm_shuffle_epi32($abef, 0x1B);
            let dchg = _mm_shuffle_epi32($cdgh, 0xB1);
            (
                _mm_blend_epi16(feba, dchg, 0xF0),
                _mm_alignr_epi8(dchg, feba, 8),
            )
        }};
    }

    /// The second SHA-256 of a double hash, for both lanes: its message is the first hash's 8 state words,
    /// 0x80000000, zeros and the bit length 256. Evaluates to the digests' words, (a..d, e..h) per lane.
    macro_rules! second_hash_words {
        ($abef_a:ident, $cdgh_a:ident, $abef_b:ident, $cdgh_b:ident, $iv_abef:ident, $iv_cdgh:ident) => {{
            let (mut a0, mut a1) = state_words!($abef_a, $cdgh_a);
            let (mut b0, mut b1) = state_words!($abef_b, $cdgh_b);
            let pad = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
            let len = _mm_set_epi32(256, 0, 0, 0);
            let (mut a2, mut a3, mut b2, mut b3) = (pad, len, pad, len);
            let (mut abef_a, mut cdgh_a, mut abef_b, mut cdgh_b) =
                ($iv_abef, $iv_cdgh, $iv_abef, $iv_cdgh);
            compress_regs!(a0, a1, a2, a3, b0, b1, b2, b3, abef_a, cdgh_a, abef_b, cdgh_b);
            let (lo_a, hi_a) = state_words!(abef_a, cdgh_a);
            let (lo_b, hi_b) = state_words!(abef_b, cdgh_b);
            (lo_a, hi_a, lo_b, hi_b)
        }};
    }

    /// sha256d of one 64-byte message per lane, given as message words: the data block, the constant padding
    /// block (its schedule precomputed), the second hash. Evaluates to the digests' words.
    macro_rules! double_64 {
        ($a0:ident, $a1:ident, $a2:ident, $a3:ident, $b0:ident, $b1:ident, $b2:ident, $b3:ident,
         $iv_abef:ident, $iv_cdgh:ident) => {{
            let (mut abef_a, mut cdgh_a, mut abef_b, mut cdgh_b) =
                ($iv_abef, $iv_cdgh, $iv_abef, $iv_cdgh);
            compress_regs!($a0, $a1, $a2, $a3, $b0, $b1, $b2, $b3, abef_a, cdgh_a, abef_b, cdgh_b);
            let saved = (abef_a, cdgh_a, abef_b, cdgh_b);
            for i in 0..16 {
                let wk = _mm_loadu_si128(super::PAD_64_WK.as_ptr().add(4 * i) as *const __m128i);
                let hi = _mm_shuffle_epi32(wk, 0x0E);
                cdgh_a = _mm_sha256rnds2_epu32(cdgh_a, abef_a, wk);
                cdgh_b = _mm_sha256rnds2_epu32(cdgh_b, abef_b, wk);
                abef_a = _mm_sha256rnds2_epu32(abef_a, cdgh_a, hi);
                abef_b = _mm_sha256rnds2_epu32(abef_b, cdgh_b, hi);
            }
            abef_a = _mm_add_epi32(abef_a, saved.0);
            cdgh_a = _mm_add_epi32(cdgh_a, saved.1);
            abef_b = _mm_add_epi32(abef_b, saved.2);
            cdgh_b = _mm_add_epi32(cdgh_b, saved.3);
            second_hash_words!(abef_a, cdgh_a, abef_b, cdgh_b, $iv_abef, $iv_cdgh)
        }};
    }

    /// Loads 16 bytes as 4 big-endian words.
    macro_rules! load_be {
        ($ptr:expr, $be:ident) => {
            _mm_shuffle_epi8(_mm_loadu_si128($ptr as *const __m128i), $be)
        };
    }

    /// Stores both lanes' digest words as bytes.
    macro_rules! digests {
        ($words:expr, $be:ident) => {{
            let (lo_a, hi_a, lo_b, hi_b) = $words;
            let mut out = ([0u8; 32], [0u8; 32]);
            let store = |dst: *mut u8, words: __m128i| {
                _mm_storeu_si128(dst as *mut __m128i, _mm_shuffle_epi8(words, $be))
            };
            store(out.0.as_mut_ptr(), lo_a);
            store(out.0.as_mut_ptr().add(16), hi_a);
            store(out.1.as_mut_ptr(), lo_b);
            store(out.1.as_mut_ptr().add(16), hi_b);
            out
        }};
    }

    /// # Safety
    /// The CPU must support the `sha`, `sse2`, `ssse3` and `sse4.1` instructions.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress_pair(
        a: &mut [u32; 8],
        block_a: &[u8; 64],
        b: &mut [u32; 8],
        block_b: &[u8; 64],
    ) {
        let be = big_endian_mask();
        let (mut abef_a, mut cdgh_a) = load_state!(a);
        let (mut abef_b, mut cdgh_b) = load_state!(b);
        let pa = block_a.as_ptr() as *const __m128i;
        let pb = block_b.as_ptr() as *const __m128i;
        let mut a0 = _mm_shuffle_epi8(_mm_loadu_si128(pa), be);
        let mut a1 = _mm_shuffle_epi8(_mm_loadu_si128(pa.add(1)), be);
        let mut a2 = _mm_shuffle_epi8(_mm_loadu_si128(pa.add(2)), be);
        let mut a3 = _mm_shuffle_epi8(_mm_loadu_si128(pa.add(3)), be);
        let mut b0 = _mm_shuffle_epi8(_mm_loadu_si128(pb), be);
        let mut b1 = _mm_shuffle_epi8(_mm_loadu_si128(pb.add(1)), be);
        let mut b2 = _mm_shuffle_epi8(_mm_loadu_si128(pb.add(2)), be);
        let mut b3 = _mm_shuffle_epi8(_mm_loadu_si128(pb.add(3)), be);
        compress_regs!(a0, a1, a2, a3, b0, b1, b2, b3, abef_a, cdgh_a, abef_b, cdgh_b);
        store_state!(a, abef_a, cdgh_a);
        store_state!(b, abef_b, cdgh_b);
    }

    /// Swaps the bytes of each 32-bit lane (big-endian words from bytes and back).
    #[target_feature(enable = "sse2")]
    unsafe fn big_endian_mask() -> __m128i {
        _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        )
    }

    /// sha256d of two 64-byte messages; nothing goes through memory between the three compressions.
    ///
    /// # Safety
    /// The CPU must support the `sha`, `sse2`, `ssse3` and `sse4.1` instructions.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn sha256d_64_pair(a: &[u8; 64], b: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
        let be = big_endian_mask();
        let iv = IV;
        let (iv_abef, iv_cdgh) = load_state!(iv);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut a0, mut a1) = (load_be!(pa, be), load_be!(pa.add(16), be));
        let (mut a2, mut a3) = (load_be!(pa.add(32), be), load_be!(pa.add(48), be));
        let (mut b0, mut b1) = (load_be!(pb, be), load_be!(pb.add(16), be));
        let (mut b2, mut b3) = (load_be!(pb.add(32), be), load_be!(pb.add(48), be));
        digests!(
            double_64!(a0, a1, a2, a3, b0, b1, b2, b3, iv_abef, iv_cdgh),
            be
        )
    }

    /// sha256d of two 80-byte block headers: two blocks and the second hash, all in registers.
    ///
    /// # Safety
    /// The CPU must support the `sha`, `sse2`, `ssse3` and `sse4.1` instructions.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn sha256d_80_pair(a: &[u8; 80], b: &[u8; 80]) -> ([u8; 32], [u8; 32]) {
        let be = big_endian_mask();
        let iv = IV;
        let (iv_abef, iv_cdgh) = load_state!(iv);
        let (mut abef_a, mut cdgh_a, mut abef_b, mut cdgh_b) = (iv_abef, iv_cdgh, iv_abef, iv_cdgh);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut a0, mut a1) = (load_be!(pa, be), load_be!(pa.add(16), be));
        let (mut a2, mut a3) = (load_be!(pa.add(32), be), load_be!(pa.add(48), be));
        let (mut b0, mut b1) = (load_be!(pb, be), load_be!(pb.add(16), be));
        let (mut b2, mut b3) = (load_be!(pb.add(32), be), load_be!(pb.add(48), be));
        compress_regs!(a0, a1, a2, a3, b0, b1, b2, b3, abef_a, cdgh_a, abef_b, cdgh_b);
        // The last 16 bytes, 0x80000000, zeros, bit length 640.
        let (mut a0, mut b0) = (load_be!(pa.add(64), be), load_be!(pb.add(64), be));
        let pad = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
        let len = _mm_set_epi32(640, 0, 0, 0);
        let zero = _mm_setzero_si128();
        let (mut a1, mut a2, mut a3) = (pad, zero, len);
        let (mut b1, mut b2, mut b3) = (pad, zero, len);
        compress_regs!(a0, a1, a2, a3, b0, b1, b2, b3, abef_a, cdgh_a, abef_b, cdgh_b);
        digests!(
            second_hash_words!(abef_a, cdgh_a, abef_b, cdgh_b, iv_abef, iv_cdgh),
            be
        )
    }

    /// Two merkle folds of equal depth side by side: each level is sha256d(acc || h), with `acc` kept as
    /// words in registers from one level to the next.
    ///
    /// # Safety
    /// The CPU must support the `sha`, `sse2`, `ssse3` and `sse4.1` instructions; the branches must have the
    /// same length.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn merkle_fold_pair(
        acc: ([u8; 32], [u8; 32]),
        branch_a: &[[u8; 32]],
        branch_b: &[[u8; 32]],
    ) -> ([u8; 32], [u8; 32]) {
        let be = big_endian_mask();
        let iv = IV;
        let (iv_abef, iv_cdgh) = load_state!(iv);
        let (pa, pb) = (acc.0.as_ptr(), acc.1.as_ptr());
        let mut words = (
            load_be!(pa, be),
            load_be!(pa.add(16), be),
            load_be!(pb, be),
            load_be!(pb.add(16), be),
        );
        for (ha, hb) in branch_a.iter().zip(branch_b) {
            let (mut a0, mut a1, mut b0, mut b1) = words;
            let (ha, hb) = (ha.as_ptr(), hb.as_ptr());
            let (mut a2, mut a3) = (load_be!(ha, be), load_be!(ha.add(16), be));
            let (mut b2, mut b3) = (load_be!(hb, be), load_be!(hb.add(16), be));
            words = double_64!(a0, a1, a2, a3, b0, b1, b2, b3, iv_abef, iv_cdgh);
        }
        digests!(words, be)
    }

    /// SHA-256 of two 32-byte digests given as state words (the first hash of a double hash).
    ///
    /// # Safety
    /// The CPU must support the `sha`, `sse2`, `ssse3` and `sse4.1` instructions.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn sha256_of_states_pair(a: &[u32; 8], b: &[u32; 8]) -> ([u8; 32], [u8; 32]) {
        let be = big_endian_mask();
        let iv = IV;
        let (iv_abef, iv_cdgh) = load_state!(iv);
        let (abef_a, cdgh_a) = load_state!(a);
        let (abef_b, cdgh_b) = load_state!(b);
        digests!(
            second_hash_words!(abef_a, cdgh_a, abef_b, cdgh_b, iv_abef, iv_cdgh),
            be
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.ci/run` sets FASTPROXY_EXPECT_SHA_NI=1 on a CPU with SHA-NI: then a fallback here is a failure.
    fn fallback_allowed(what: &str) {
        assert!(
            std::env::var("FASTPROXY_EXPECT_SHA_NI").as_deref() != Ok("1"),
            "{what}: SHA-NI expected but the fallback ran"
        );
    }

    #[test]
    fn a_pair_equals_two_single_compressions() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut blocks = [[0u8; 64]; 2];
            let mut states = [[0u32; 8]; 2];
            for b in blocks.iter_mut().flat_map(|b| b.iter_mut()) {
                *b = next() as u8;
            }
            for w in states.iter_mut().flat_map(|s| s.iter_mut()) {
                *w = next() as u32;
            }
            let (mut a, mut b) = (states[0], states[1]);
            compress_pair(&mut a, &blocks[0], &mut b, &blocks[1]);
            let (mut ra, mut rb) = (states[0], states[1]);
            compress(&mut ra, &blocks[0]);
            compress(&mut rb, &blocks[1]);
            assert_eq!((a, b), (ra, rb));
            let depth = (next() % 5) as usize;
            let branches: Vec<Vec<[u8; 32]>> = (0..2)
                .map(|_| (0..depth).map(|_| [next() as u8; 32]).collect())
                .collect();
            let acc = (
                blocks[0][..32].try_into().unwrap(),
                blocks[1][32..].try_into().unwrap(),
            );
            if let Some(folded) = merkle_fold_pair(acc, &branches[0], &branches[1]) {
                let reference = crate::work::merkle_root_with_branch;
                assert_eq!(
                    folded,
                    (
                        reference(acc.0, &branches[0]),
                        reference(acc.1, &branches[1])
                    )
                );
            } else {
                fallback_allowed("merkle_fold_pair");
            }
            let headers: [[u8; 80]; 2] =
                std::array::from_fn(|_| std::array::from_fn(|_| next() as u8));
            if let Some(h) = sha256d_80_pair(&headers[0], &headers[1]) {
                let reference = |m: &[u8]| crate::work::sha256d(m);
                assert_eq!(h, (reference(&headers[0]), reference(&headers[1])));
            } else {
                fallback_allowed("sha256d_80_pair");
            }
            if let Some((da, db)) = sha256d_64_pair(&blocks[0], &blocks[1]) {
                let reference = |m: &[u8]| crate::work::sha256d(m);
                assert_eq!((da, db), (reference(&blocks[0]), reference(&blocks[1])));
            } else {
                fallback_allowed("sha256d_64_pair");
            }
        }
    }
}
