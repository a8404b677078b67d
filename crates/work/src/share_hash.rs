//! The share hash on the proxy's hot path: double SHA-256 of a V1 share's header with no allocation, no more
//! SHA-256 compressions than the data needs, and two shares hashed side by side when two are waiting.
//!
//! [`crate::work::Job::share_hash`] is the plain reference (build the coinbase, hash it, fold the branch,
//! hash the header); the simulated pool uses it. This module computes the same value faster:
//! - per job, coinb1's whole 64-byte blocks are compressed once ([`JobHasher::new`]); a share resumes from
//!   that midstate with the tail of coinb1, the extranonces and coinb2;
//! - the merkle fold and the header use fixed-length double hashes that call the compression function
//!   directly with their constant padding blocks (three compressions per branch level, three for the header);
//! - [`share_hashes`] with two inputs runs both shares' compressions pairwise ([`crate::sha256x2`]);
//! - [`hash_many`] hashes a poll round's parked shares: groups of one job sixteen or thirty-two at a time
//!   ([`crate::sha256x16`], AVX-512), the rest in pairs.

use crate::sha256x16::{LaneWords, Lanes16};
use crate::sha256x2::{
    compress, compress_pair, merkle_fold_pair, sha256_of_states_pair, sha256d_64_pair,
    sha256d_80_pair, IV,
};
use crate::work::{block_header, swap_words, Job};

/// The padding block of a message of exactly 64 bytes: 0x80, zeros, bit length 512.
const PAD_64: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

/// The coinbase after coinb1's whole blocks, padded, fits this on the stack (longer ones use the heap).
const TAIL_ON_STACK: usize = 512;

fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

fn block(bytes: &[u8]) -> &[u8; 64] {
    bytes.try_into().expect("a 64-byte block")
}

/// Compresses one block per lane: pairwise when there are two lanes.
fn compress_lanes<const N: usize>(states: &mut [[u32; 8]; N], blocks: [&[u8; 64]; N]) {
    if let ([a, b], [ba, bb]) = (&mut states[..], &blocks[..]) {
        compress_pair(a, ba, b, bb);
    } else {
        for (s, b) in states.iter_mut().zip(blocks) {
            compress(s, b);
        }
    }
}

/// With two lanes, the result of `pair` (a SHA-NI path) as lanes; None with one lane or without SHA-NI.
fn paired<T, const N: usize>(
    inputs: &[T; N],
    pair: impl FnOnce(&T, &T) -> Option<([u8; 32], [u8; 32])>,
) -> Option<[[u8; 32]; N]> {
    let [a, b] = &inputs[..] else {
        return None;
    };
    let (ha, hb) = pair(a, b)?;
    let mut out = [[0u8; 32]; N];
    (out[0], out[1]) = (ha, hb);
    Some(out)
}

/// SHA-256 of 32-byte digests given as the state words of their first hash: one compression each.
fn sha256_of_states<const N: usize>(states: [[u32; 8]; N]) -> [[u8; 32]; N] {
    if let Some(out) = paired(&states, sha256_of_states_pair) {
        return out;
    }
    let mut blocks = [[0u8; 64]; N];
    for (b, s) in blocks.iter_mut().zip(&states) {
        b[..32].copy_from_slice(&state_bytes(s));
        b[32] = 0x80;
        b[62] = 0x01;
    }
    let mut out = [IV; N];
    compress_lanes(&mut out, std::array::from_fn(|i| &blocks[i]));
    out.map(|s| state_bytes(&s))
}

/// sha256d of exactly 64 bytes per lane (one merkle step): three compressions.
fn sha256d_64_lanes<const N: usize>(data: [&[u8; 64]; N]) -> [[u8; 32]; N] {
    if let Some(out) = paired(&data, |a, b| sha256d_64_pair(a, b)) {
        return out;
    }
    let mut states = [IV; N];
    compress_lanes(&mut states, data);
    compress_lanes(&mut states, [&PAD_64; N]);
    sha256_of_states(states)
}

/// sha256d of exactly 64 bytes (one merkle step).
pub fn sha256d_64(data: &[u8; 64]) -> [u8; 32] {
    sha256d_64_lanes([data])[0]
}

/// sha256d of 80-byte block headers: three compressions each.
fn sha256d_80_lanes<const N: usize>(headers: [&[u8; 80]; N]) -> [[u8; 32]; N] {
    if let Some(out) = paired(&headers, |a, b| sha256d_80_pair(a, b)) {
        return out;
    }
    let mut tails = [[0u8; 64]; N];
    for (t, h) in tails.iter_mut().zip(&headers) {
        t[..16].copy_from_slice(&h[64..]);
        t[16] = 0x80;
        // Bit length 640 = 0x280.
        t[62] = 0x02;
        t[63] = 0x80;
    }
    let mut states = [IV; N];
    compress_lanes(&mut states, headers.map(|h| block(&h[..64])));
    compress_lanes(&mut states, std::array::from_fn(|i| &tails[i]));
    sha256_of_states(states)
}

/// The merkle fold of each lane; levels both lanes have are hashed pairwise.
fn merkle_fold_lanes<const N: usize>(
    mut acc: [[u8; 32]; N],
    branches: [&[[u8; 32]]; N],
) -> [[u8; 32]; N] {
    if let ([a, b], [ba, bb]) = (&acc[..], &branches[..]) {
        if let Some((ha, hb)) = merkle_fold_pair((*a, *b), ba, bb) {
            (acc[0], acc[1]) = (ha, hb);
            return acc;
        }
    }
    let mut pairs = [[0u8; 64]; N];
    let depth = branches.iter().map(|b| b.len()).max().unwrap_or(0);
    for level in 0..depth {
        for ((p, a), b) in pairs.iter_mut().zip(&acc).zip(&branches) {
            if let Some(h) = b.get(level) {
                p[..32].copy_from_slice(a);
                p[32..].copy_from_slice(h);
            }
        }
        if branches.iter().all(|b| level < b.len()) {
            acc = sha256d_64_lanes(std::array::from_fn(|i| &pairs[i]));
        } else {
            for ((a, p), b) in acc.iter_mut().zip(&pairs).zip(&branches) {
                if level < b.len() {
                    *a = sha256d_64(p);
                }
            }
        }
    }
    acc
}

/// What a job's shares have in common, computed once per job.
#[derive(Clone, Debug)]
pub struct JobHasher {
    /// SHA-256 state after coinb1's whole 64-byte blocks.
    midstate: [u32; 8],
    /// How many bytes of coinb1 the midstate covers.
    hashed: usize,
    /// prevhash in header byte order.
    prevhash: [u8; 32],
    /// prevhash and the merkle branch as SHA-256 message words (for [`crate::sha256x16`]).
    prevhash_words: [u32; 8],
    branch_words: Vec<[u32; 8]>,
}

/// 32 bytes as 8 big-endian words.
fn words(bytes: &[u8; 32]) -> [u32; 8] {
    std::array::from_fn(|i| {
        u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"))
    })
}

impl JobHasher {
    pub fn new(job: &Job) -> JobHasher {
        let mut midstate = IV;
        let whole = job.coinb1.len() / 64 * 64;
        for b in job.coinb1[..whole].chunks_exact(64) {
            compress(&mut midstate, block(b));
        }
        let prevhash = swap_words(&job.prevhash);
        JobHasher {
            midstate,
            hashed: whole,
            prevhash,
            prevhash_words: words(&prevhash),
            branch_words: job.merkle_branch.iter().map(words).collect(),
        }
    }
}

/// One share to hash: its job (with the job's [`JobHasher`]) and the fields the miner chose.
#[derive(Clone, Copy, Debug)]
pub struct ShareInput<'a> {
    pub job: &'a Job,
    pub hasher: &'a JobHasher,
    /// The miner's whole extranonce1 (pool E1 || prefix).
    pub extranonce1: &'a [u8],
    pub extranonce2: &'a [u8],
    pub ntime: u32,
    pub nonce: u32,
    pub version: u32,
}

impl ShareInput<'_> {
    /// The coinbase from the end of the midstate on, padded to whole blocks, written to `out` (which must be
    /// long enough: [`ShareInput::padded_tail_len`]).
    fn write_padded_tail(&self, out: &mut [u8]) {
        let parts = [
            &self.job.coinb1[self.hasher.hashed..],
            self.extranonce1,
            self.extranonce2,
            &self.job.coinb2[..],
        ];
        let mut at = 0;
        for p in parts {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let bits = ((self.hasher.hashed + at) as u64) * 8;
        out[at] = 0x80;
        let end = out.len();
        out[at + 1..end - 8].fill(0);
        out[end - 8..].copy_from_slice(&bits.to_be_bytes());
    }

    fn padded_tail_len(&self) -> usize {
        let len = self.job.coinb1.len() - self.hasher.hashed
            + self.extranonce1.len()
            + self.extranonce2.len()
            + self.job.coinb2.len();
        (len + 9).div_ceil(64) * 64
    }

    fn header(&self, merkle_root: &[u8; 32]) -> [u8; 80] {
        block_header(
            self.version,
            &self.hasher.prevhash,
            merkle_root,
            self.ntime,
            self.job.nbits,
            self.nonce,
        )
    }
}

/// The state after the first SHA-256 of each lane's coinbase, from its job's midstate; blocks all lanes have
/// are compressed pairwise.
fn coinbase_first_hash<const N: usize>(inputs: [&ShareInput<'_>; N]) -> [[u32; 8]; N] {
    let lens = inputs.map(|i| i.padded_tail_len());
    let mut stack = [[0u8; TAIL_ON_STACK]; N];
    let mut heap: [Vec<u8>; N] = std::array::from_fn(|_| Vec::new());
    let tails: [&[u8]; N] = {
        for i in 0..N {
            if lens[i] <= TAIL_ON_STACK {
                inputs[i].write_padded_tail(&mut stack[i][..lens[i]]);
            } else {
                heap[i] = vec![0; lens[i]];
                inputs[i].write_padded_tail(&mut heap[i]);
            }
        }
        std::array::from_fn(|i| {
            if lens[i] <= TAIL_ON_STACK {
                &stack[i][..lens[i]]
            } else {
                &heap[i][..]
            }
        })
    };
    let mut states = inputs.map(|i| i.hasher.midstate);
    let common = lens.iter().min().copied().unwrap_or(0) / 64;
    for j in 0..common {
        compress_lanes(
            &mut states,
            std::array::from_fn(|i| block(&tails[i][j * 64..j * 64 + 64])),
        );
    }
    for (s, t) in states.iter_mut().zip(&tails) {
        for b in t[common * 64..].chunks_exact(64) {
            compress(s, block(b));
        }
    }
    states
}

/// sha256d of each share's header: one share alone, or two side by side (about 1.7 times the speed).
pub fn share_hashes<const N: usize>(inputs: [&ShareInput<'_>; N]) -> [[u8; 32]; N] {
    let coinbase = sha256_of_states(coinbase_first_hash(inputs));
    let merkle = merkle_fold_lanes(coinbase, inputs.map(|i| &i.job.merkle_branch[..]));
    let headers: [[u8; 80]; N] = std::array::from_fn(|i| inputs[i].header(&merkle[i]));
    sha256d_80_lanes(std::array::from_fn(|i| &headers[i]))
}

/// A group of at least this many shares of one job (and one coinbase layout) is hashed sixteen at a time with
/// AVX-512: sixteen lanes cost about as much as ten shares hashed in SHA-NI pairs.
pub const MIN_WIDE: usize = 10;

/// A group of at least this many is hashed thirty-two at a time (two interleaved groups of sixteen), which
/// costs about as much as sixteen lanes plus three pairs.
pub const MIN_DOUBLE_WIDE: usize = 19;

const LANES: usize = crate::sha256x16::LANES;

/// Reusable memory for [`hash_many`].
#[derive(Default)]
pub struct ManyScratch {
    /// (job, coinbase layout, input index) of every input that has a job.
    order: Vec<(usize, usize, usize)>,
    /// Inputs left for pairs.
    rest: Vec<usize>,
}

/// The share hash of every input `get(0) .. get(n - 1)` into `out` (None where `get` gives None): groups of
/// [`MIN_WIDE`] or more shares of one job sixteen or thirty-two at a time (AVX-512, when the CPU has it), the
/// rest in pairs.
pub fn hash_many<'a>(
    n: usize,
    get: impl Fn(usize) -> Option<ShareInput<'a>>,
    out: &mut Vec<Option<[u8; 32]>>,
    scratch: &mut ManyScratch,
) {
    out.clear();
    out.resize(n, None);
    let ManyScratch { order, rest } = scratch;
    order.clear();
    rest.clear();
    let wide = n >= MIN_WIDE && crate::sha256x16::available();
    for i in 0..n {
        if let Some(x) = get(i) {
            if wide && x.padded_tail_len() <= TAIL_ON_STACK {
                let layout = x.extranonce1.len() + x.extranonce2.len();
                order.push((x.hasher as *const JobHasher as usize, layout, i));
            } else {
                rest.push(i);
            }
        }
    }
    order.sort_unstable();
    // Lane k of a group takes input k of the chunk, or its last one where the chunk is shorter.
    let lanes = |chunk: &[(usize, usize, usize)], from: usize| -> [ShareInput<'a>; LANES] {
        std::array::from_fn(|k| {
            let c = chunk[(from + k).min(chunk.len() - 1)];
            get(c.2).expect("an input with a job")
        })
    };
    for run in order.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        for chunk in run.chunks(2 * LANES) {
            // Stores the hashes of the chunk's first inputs; how many (padding lanes are dropped).
            let mut record = |hashes: &[[u8; 32]]| {
                for (c, h) in chunk.iter().zip(hashes) {
                    out[c.2] = Some(*h);
                }
                hashes.len().min(chunk.len())
            };
            let done = if chunk.len() >= MIN_DOUBLE_WIDE {
                hashes32(&lanes(chunk, 0), &lanes(chunk, LANES)).map(|h| record(h.as_flattened()))
            } else if chunk.len() >= MIN_WIDE {
                hashes16(&lanes(chunk, 0)).map(|h| record(&h))
            } else {
                None
            };
            rest.extend(chunk[done.unwrap_or(0)..].iter().map(|c| c.2));
        }
    }
    for pair in rest.chunks(2) {
        match *pair {
            [a, b] => {
                let (x, y) = (get(a).expect("a job"), get(b).expect("a job"));
                let [ha, hb] = share_hashes([&x, &y]);
                (out[a], out[b]) = (Some(ha), Some(hb));
            }
            [a] => out[a] = Some(share_hashes([&get(a).expect("a job")])[0]),
            _ => unreachable!("chunks of two"),
        }
    }
}

/// The coinbase tails of sixteen shares of one job, one layout, as message words per block and lane.
type TailWords = [[LaneWords; 16]; TAIL_ON_STACK / 64];

/// The [`Lanes16`] of sixteen shares of one job whose coinbases have one layout (tails on the stack), with the
/// tail words written to `tail`.
fn lanes16<'t>(inputs: &'t [ShareInput<'_>; LANES], tail: &'t mut TailWords) -> Lanes16<'t> {
    let first = &inputs[0];
    let len = first.padded_tail_len();
    let mut bufs = [[0u8; TAIL_ON_STACK]; LANES];
    for (b, x) in bufs.iter_mut().zip(inputs) {
        x.write_padded_tail(&mut b[..len]);
    }
    // Words that hold extranonce bytes differ per lane; the others are lane 0's.
    let varies = first.job.coinb1.len() - first.hasher.hashed;
    let varies = varies..varies + first.extranonce1.len() + first.extranonce2.len();
    for (j, block) in tail[..len / 64].iter_mut().enumerate() {
        for (t, word) in block.iter_mut().enumerate() {
            let at = 64 * j + 4 * t;
            let be = |b: &[u8; TAIL_ON_STACK]| {
                u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
            };
            if at < varies.end && at + 4 > varies.start {
                *word = std::array::from_fn(|k| be(&bufs[k]));
            } else {
                *word = [be(&bufs[0]); LANES];
            }
        }
    }
    let lane =
        |f: fn(&ShareInput<'_>) -> u32| -> LaneWords { std::array::from_fn(|k| f(&inputs[k])) };
    Lanes16 {
        midstate: first.hasher.midstate,
        tail: &tail[..len / 64],
        branch: &first.hasher.branch_words,
        prevhash: first.hasher.prevhash_words,
        version: lane(|x| x.version.swap_bytes()),
        ntime: lane(|x| x.ntime.swap_bytes()),
        nonce: lane(|x| x.nonce.swap_bytes()),
        nbits: first.job.nbits.swap_bytes(),
    }
}

/// Each lane's hash from the final states' words.
fn lane_hashes(words: &[LaneWords; 8]) -> [[u8; 32]; LANES] {
    std::array::from_fn(|k| {
        let mut h = [0u8; 32];
        for (o, w) in h.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w[k].to_be_bytes());
        }
        h
    })
}

/// The hashes of sixteen shares of one job and one coinbase layout; None without AVX-512.
fn hashes16(inputs: &[ShareInput<'_>; LANES]) -> Option<[[u8; 32]; LANES]> {
    let mut tail = [[[0u32; LANES]; 16]; TAIL_ON_STACK / 64];
    let words = crate::sha256x16::share_hashes16(&lanes16(inputs, &mut tail))?;
    Some(lane_hashes(&words))
}

/// The hashes of two groups of sixteen shares of one job and one coinbase layout; None without AVX-512.
fn hashes32(
    a: &[ShareInput<'_>; LANES],
    b: &[ShareInput<'_>; LANES],
) -> Option<[[[u8; 32]; LANES]; 2]> {
    let mut tails = [[[[0u32; LANES]; 16]; TAIL_ON_STACK / 64]; 2];
    let [ta, tb] = &mut tails;
    let [wa, wb] = crate::sha256x16::share_hashes32(&lanes16(a, ta), &lanes16(b, tb))?;
    Some([lane_hashes(&wa), lane_hashes(&wb)])
}

#[cfg(test)]
mod tests;
