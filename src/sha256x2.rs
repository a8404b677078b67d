//! Two SHA-256 compressions at once, for hashing two shares side by side.
//!
//! A V1 share's hash is a chain of about 40 compressions, each waiting for the one before, and the SHA-NI
//! round instruction has a latency of several cycles: one chain leaves most of the unit idle. Interleaving the
//! rounds of two independent chains fills it: on this project's machines one pair takes about 45 ns where two
//! single compressions take 76 ns (`cargo bench --bench share_path -- validate`).
//!
//! This is the one `unsafe` module of the crate: x86-64 SHA-NI intrinsics, used only after the CPU was
//! checked for them at run time. Elsewhere (or without SHA-NI) [`compress_pair`] is two calls to
//! `sha2::compress256`. Tests compare both paths with the sha2 crate.

use sha2::digest::generic_array::GenericArray;

/// SHA-256 round constants.
#[cfg(target_arch = "x86_64")]
const K: [u32; 64] = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
    0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
    0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
    0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
    0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
    0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
    0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
];

/// One compression of `block` into `state` (the sha2 crate's, with its own SHA-NI or AVX2 backend).
pub fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, &[*GenericArray::from_slice(block)]);
}

/// Two independent compressions: `a` with `block_a`, `b` with `block_b`.
pub fn compress_pair(a: &mut [u32; 8], block_a: &[u8; 64], b: &mut [u32; 8], block_b: &[u8; 64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sha") && std::arch::is_x86_feature_detected!("sse4.1") {
        // SAFETY: the CPU has the SHA and SSE4.1 (hence SSSE3, SSE2) instructions, checked just above.
        unsafe { x86::compress_pair(a, block_a, b, block_b) };
        return;
    }
    compress(a, block_a);
    compress(b, block_b);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::K;
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

    /// # Safety
    /// The CPU must support the `sha`, `sse2`, `ssse3` and `sse4.1` instructions.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress_pair(
        a: &mut [u32; 8],
        block_a: &[u8; 64],
        b: &mut [u32; 8],
        block_b: &[u8; 64],
    ) {
        // Big-endian words from bytes.
        let be = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let (mut abef_a, mut cdgh_a) = load_state!(a);
        let (mut abef_b, mut cdgh_b) = load_state!(b);
        let saved = (abef_a, cdgh_a, abef_b, cdgh_b);
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
        rounds!(0, a0, b0, abef_a, cdgh_a, abef_b, cdgh_b);
        rounds!(1, a1, b1, abef_a, cdgh_a, abef_b, cdgh_b);
        rounds!(2, a2, b2, abef_a, cdgh_a, abef_b, cdgh_b);
        rounds!(3, a3, b3, abef_a, cdgh_a, abef_b, cdgh_b);
        let mut i = 4;
        while i < 16 {
            a0 = schedule!(a0, a1, a2, a3);
            b0 = schedule!(b0, b1, b2, b3);
            rounds!(i, a0, b0, abef_a, cdgh_a, abef_b, cdgh_b);
            a1 = schedule!(a1, a2, a3, a0);
            b1 = schedule!(b1, b2, b3, b0);
            rounds!(i + 1, a1, b1, abef_a, cdgh_a, abef_b, cdgh_b);
            a2 = schedule!(a2, a3, a0, a1);
            b2 = schedule!(b2, b3, b0, b1);
            rounds!(i + 2, a2, b2, abef_a, cdgh_a, abef_b, cdgh_b);
            a3 = schedule!(a3, a0, a1, a2);
            b3 = schedule!(b3, b0, b1, b2);
            rounds!(i + 3, a3, b3, abef_a, cdgh_a, abef_b, cdgh_b);
            i += 4;
        }
        store_state!(a, _mm_add_epi32(abef_a, saved.0), _mm_add_epi32(cdgh_a, saved.1));
        store_state!(b, _mm_add_epi32(abef_b, saved.2), _mm_add_epi32(cdgh_b, saved.3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }
}
