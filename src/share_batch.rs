//! V1 shares waiting, within one poll round, to be hashed together.
//!
//! With `validate_shares`, a V1 share that passed every check needing no hash is parked here instead of
//! being hashed at once; at the end of the round (before output is flushed) the reactor hashes the parked
//! shares together ([`crate::share_hash::hash_many`]: sixteen or thirty-two shares of one job at a time
//! with AVX-512, the rest in SHA-NI pairs) and answers or forwards each, in the order they came
//! (`Reactor::judge_waiting_shares`). Every parked share is judged in the round it arrived in, so each still
//! gets exactly one reply. The submit's text fields are copied into one arena that keeps its capacity: no
//! allocation per share in steady state.

use crate::protocol::json::IdBuf;
use crate::protocol::stratum::Submit;
use crate::validate::StratumCheck;
use std::ops::Range;
use std::time::Instant;

/// One parked share with its submit fields.
struct Waiting {
    parked: Parked,
    /// job_id, extranonce2, ntime, nonce, version bits (empty range: none) in the arena.
    fields: [Range<usize>; 5],
    has_version: bool,
}

/// The parked shares of this round.
#[derive(Default)]
pub(crate) struct ShareBatch {
    arena: String,
    waiting: Vec<Waiting>,
}

/// A parked share: who sent it, where it goes, and what its hash is computed from.
pub(crate) struct Parked {
    pub miner: usize,
    pub gen: u64,
    pub id: IdBuf,
    pub upstream: usize,
    pub prefix: u64,
    pub check: StratumCheck,
    pub miner_target: [u8; 32],
    pub now: Instant,
}

impl ShareBatch {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Parks a share with a copy of its submit fields.
    pub fn park(&mut self, p: Parked, submit: &Submit<'_>) {
        let mut copy = |s: &str| {
            let start = self.arena.len();
            self.arena.push_str(s);
            start..self.arena.len()
        };
        let fields = [
            copy(submit.job_id),
            copy(submit.extranonce2),
            copy(submit.ntime),
            copy(submit.nonce),
            copy(submit.version_bits.unwrap_or("")),
        ];
        self.waiting.push(Waiting {
            parked: p,
            fields,
            has_version: submit.version_bits.is_some(),
        });
    }

    pub fn get(&self, i: usize) -> &Parked {
        &self.waiting[i].parked
    }

    /// The submit of parked share `i`, borrowed from the arena.
    pub fn submit(&self, i: usize) -> Submit<'_> {
        let w = &self.waiting[i];
        let f = |k: usize| &self.arena[w.fields[k].clone()];
        Submit {
            job_id: f(0),
            extranonce2: f(1),
            ntime: f(2),
            nonce: f(3),
            version_bits: w.has_version.then(|| f(4)),
        }
    }

    /// Forgets every parked share, keeping the memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.waiting.clear();
    }
}
