//! Sixteen V1 share hashes at once with AVX-512, for the shares parked in a busy poll round.
//!
//! SHA-NI hashes one or two chains at a time ([`crate::sha256x2`]); AVX-512 holds one 32-bit word of sixteen
//! independent SHA-256 states per register and runs their rounds together with its rotate and three-input
//! logic instructions. On this project's machines a compression costs about 14 ns per lane this way against
//! about 23 ns per lane for a SHA-NI pair, so sixteen shares of one job are hashed here when a round has that
//! many (`cargo bench --bench share_path -- validate_batch`).
//!
//! The whole share hash of sixteen shares runs in one call with the states in registers: the coinbase from the
//! job's midstate, its second hash, each merkle level (data block, the constant padding block whose schedule is
//! precomputed, second hash) and the header's double hash. Data are laid out word-major (`[word][lane]`),
//! which is also the layout a SHA-256 state has here, so a digest becomes the next block's words with no
//! shuffling. Besides [`crate::sha256x2`] this is the crate's other `unsafe` module: AVX-512F intrinsics, run
//! only after the CPU was checked for them at run time; [`share_hashes16`] returns None otherwise.

/// Lanes per call.
pub const LANES: usize = 16;

/// One 32-bit word for each of the 16 lanes.
pub type LaneWords = [u32; LANES];

/// What the sixteen shares of one call share (one job) and what each lane brings. Words are SHA-256 message
/// words: big-endian reads of the bytes they hash.
pub struct Lanes16<'a> {
    /// SHA-256 state after coinb1's whole blocks.
    pub midstate: [u32; 8],
    /// The rest of each lane's coinbase, padded: per 64-byte block, its 16 words, each for the 16 lanes.
    pub tail: &'a [[LaneWords; 16]],
    /// The merkle branch, each hash as 8 words.
    pub branch: &'a [[u32; 8]],
    /// prevhash as it appears in the header, as 8 words.
    pub prevhash: [u32; 8],
    /// Per lane: version, ntime and nonce as header words (byte-swapped from their little-endian values).
    pub version: LaneWords,
    pub ntime: LaneWords,
    pub nonce: LaneWords,
    /// nbits as a header word.
    pub nbits: u32,
}

/// The final SHA-256 states of the sixteen share hashes (`[word][lane]`); a lane's hash is its 8 words as
/// big-endian bytes. None when the CPU has no AVX-512F (or off x86-64).
pub fn share_hashes16(lanes: &Lanes16<'_>) -> Option<[LaneWords; 8]> {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return Some(unsafe { x86::share_hashes([lanes]) }[0]);
        }
    }
    let _ = lanes;
    None
}

/// [`share_hashes16`] for two groups of sixteen shares of the same job, their rounds interleaved: one group's
/// round waits on its previous round's result, two keep the vector units busy (about 1.6 times the speed per
/// share). Both groups must have the same job: same midstate, tail length, branch, prevhash and nbits.
pub fn share_hashes32(a: &Lanes16<'_>, b: &Lanes16<'_>) -> Option<[[LaneWords; 8]; 2]> {
    assert_eq!(
        (a.tail.len(), a.branch.len()),
        (b.tail.len(), b.branch.len()),
        "two groups of one job"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return Some(unsafe { x86::share_hashes([a, b]) });
        }
    }
    None
}

/// Whether [`share_hashes16`] and [`share_hashes32`] run on this CPU.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LaneWords, Lanes16};
    use crate::sha256x2::{IV, K, PAD_64_WK};
    use std::arch::x86_64::*;

    /// One SHA-256 state of 16 lanes.
    type State = [__m512i; 8];
    /// One block of 16 lanes.
    type Block = [__m512i; 16];

    #[inline(always)]
    unsafe fn splat(x: u32) -> __m512i {
        _mm512_set1_epi32(x as i32)
    }

    #[inline(always)]
    unsafe fn load(w: &LaneWords) -> __m512i {
        _mm512_loadu_si512(w.as_ptr() as *const _)
    }

    #[inline(always)]
    unsafe fn iv<const G: usize>() -> [State; G] {
        [IV.map(|x| splat(x)); G]
    }

    /// x rotated right by A, B and C bits, XORed (the rounds' Σ functions).
    #[inline(always)]
    unsafe fn big_sigma<const A: i32, const B: i32, const C: i32>(x: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32(
            _mm512_ror_epi32::<A>(x),
            _mm512_ror_epi32::<B>(x),
            _mm512_ror_epi32::<C>(x),
            0x96,
        )
    }

    /// x rotated right by A and B bits and shifted right by C, XORed (the schedule's σ functions).
    #[inline(always)]
    unsafe fn small_sigma<const A: i32, const B: i32, const C: u32>(x: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32(
            _mm512_ror_epi32::<A>(x),
            _mm512_ror_epi32::<B>(x),
            _mm512_srli_epi32::<C>(x),
            0x96,
        )
    }

    /// One round: `wk` is the message word plus the round constant.
    #[inline(always)]
    unsafe fn round(s: &mut State, wk: __m512i) {
        let [a, b, c, d, e, f, g, h] = *s;
        let ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);
        let t1 = _mm512_add_epi32(
            _mm512_add_epi32(h, big_sigma::<6, 11, 25>(e)),
            _mm512_add_epi32(ch, wk),
        );
        let maj = _mm512_ternarylogic_epi32(a, b, c, 0xE8);
        let t2 = _mm512_add_epi32(big_sigma::<2, 13, 22>(a), maj);
        *s = [
            _mm512_add_epi32(t1, t2),
            a,
            b,
            c,
            _mm512_add_epi32(d, t1),
            e,
            f,
            g,
        ];
    }

    /// Message word `i` (16 or more) of a block from the sixteen before it, in place.
    #[inline(always)]
    unsafe fn schedule(w: &mut Block, i: usize) {
        let s0 = small_sigma::<7, 18, 3>(w[(i + 1) & 15]);
        let s1 = small_sigma::<17, 19, 10>(w[(i + 14) & 15]);
        w[i & 15] = _mm512_add_epi32(
            _mm512_add_epi32(w[i & 15], s0),
            _mm512_add_epi32(w[(i + 9) & 15], s1),
        );
    }

    /// Adds the state before a compression (`start`) to the state after it.
    #[inline(always)]
    unsafe fn feed_forward<const G: usize>(s: &mut [State; G], start: [State; G]) {
        for (sq, startq) in s.iter_mut().zip(start) {
            for (x, y) in sq.iter_mut().zip(startq) {
                *x = _mm512_add_epi32(*x, y);
            }
        }
    }

    /// Compresses one block per lane into each group's state, the groups' rounds interleaved.
    #[inline(always)]
    unsafe fn compress<const G: usize>(s: &mut [State; G], mut w: [Block; G]) {
        let start = *s;
        for i in 0..64 {
            if i >= 16 {
                for wq in w.iter_mut() {
                    schedule(wq, i);
                }
            }
            for (sq, wq) in s.iter_mut().zip(&w) {
                round(sq, _mm512_add_epi32(wq[i & 15], splat(K[i])));
            }
        }
        feed_forward(s, start);
    }

    /// Compresses the padding block of a 64-byte message (its schedule is constant) into each state.
    #[inline(always)]
    unsafe fn compress_pad64<const G: usize>(s: &mut [State; G]) {
        let start = *s;
        for wk in PAD_64_WK {
            let wk = splat(wk);
            for sq in s.iter_mut() {
                round(sq, wk);
            }
        }
        feed_forward(s, start);
    }

    /// SHA-256 of the 32-byte digests whose first-hash states are `s`: one compression.
    #[inline(always)]
    unsafe fn hash_digests<const G: usize>(s: &[State; G]) -> [State; G] {
        let w = s.map(|sq| {
            let mut w = [splat(0); 16];
            w[..8].copy_from_slice(&sq);
            w[8] = splat(0x8000_0000);
            w[15] = splat(256);
            w
        });
        let mut out = iv();
        compress(&mut out, w);
        out
    }

    /// The share hashes of G groups of sixteen lanes of one job.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn share_hashes<const G: usize>(l: [&Lanes16<'_>; G]) -> [[LaneWords; 8]; G] {
        let job = l[0];
        // Coinbase: resume from the job's midstate, then hash the digest.
        let mut s = [job.midstate.map(|x| splat(x)); G];
        for j in 0..job.tail.len() {
            compress(&mut s, l.map(|g| g.tail[j].each_ref().map(|w| load(w))));
        }
        let mut acc = hash_digests(&s);
        // Merkle fold: sha256d(acc || branch hash) per level.
        for hash in job.branch {
            let w = acc.map(|a| {
                let mut w = [splat(0); 16];
                w[..8].copy_from_slice(&a);
                for (x, &h) in w[8..].iter_mut().zip(hash) {
                    *x = splat(h);
                }
                w
            });
            let mut first = iv();
            compress(&mut first, w);
            compress_pad64(&mut first);
            acc = hash_digests(&first);
        }
        // Header: version, prevhash, merkle root, ntime, nbits, nonce; 80 bytes = two blocks.
        let w = std::array::from_fn(|q| {
            let mut w = [splat(0); 16];
            w[0] = load(&l[q].version);
            for (x, &p) in w[1..9].iter_mut().zip(&job.prevhash) {
                *x = splat(p);
            }
            w[9..16].copy_from_slice(&acc[q][..7]);
            w
        });
        let mut first = iv();
        compress(&mut first, w);
        let w = std::array::from_fn(|q| {
            let mut w = [splat(0); 16];
            w[0] = acc[q][7];
            w[1] = load(&l[q].ntime);
            w[2] = splat(job.nbits);
            w[3] = load(&l[q].nonce);
            w[4] = splat(0x8000_0000);
            // Bit length 640.
            w[15] = splat(640);
            w
        });
        compress(&mut first, w);
        let out = hash_digests(&first);
        out.map(|sq| {
            let mut words = [[0u32; 16]; 8];
            for (o, v) in words.iter_mut().zip(sq) {
                _mm512_storeu_si512(o.as_mut_ptr() as *mut _, v);
            }
            words
        })
    }
}
