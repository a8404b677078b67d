//! The output budget: bytes queued for miners that do not read fast enough, summed per reactor (each gets its
//! share of the top-level `max_queued_output`); past it the miners with the largest queues are disconnected.
//!
//! Output is queued only when the kernel does not take it, and every queue is flushed at the end of the round
//! it grew in, so the queue sizes seen after each flush are the whole picture; a broadcast also reports the
//! queues it grew at once (a burst of jobs in one round must not overshoot). A miner with nothing queued costs
//! nothing here: only those whose flush left bytes behind are in the table.

use crate::reactor::Reactor;
use crate::state::Conn;
use std::sync::atomic::Ordering::Relaxed;

/// Past the budget, miners are disconnected until this fraction of it is left, so that one more job does not
/// start it again at once.
const DOWN_TO: f64 = 0.75;

impl Reactor {
    /// Records what miner `t` has queued after a flush (`had`: it had a queue before).
    pub(crate) fn note_output(&mut self, t: usize, had: bool, queued: usize) {
        if !had && queued == 0 {
            return;
        }
        let old = if queued == 0 {
            self.out_queued.remove(&t)
        } else {
            self.out_queued.insert(t, queued)
        };
        self.out_total = self.out_total + queued - old.unwrap_or(0);
    }

    /// Miners whose queues grew (a broadcast they did not take in full): their sizes now, and past the budget
    /// the largest queues go at once, before the next line of a burst adds to them.
    pub(crate) fn note_queues(&mut self, miners: &[usize]) {
        if miners.is_empty() {
            return;
        }
        for &t in miners {
            if let Some(Conn::Miner(m)) = self.conns.get(t) {
                let queued = m.io.queued();
                self.note_output(t, true, queued);
            }
        }
        self.enforce_output_budget();
    }

    /// Miner `t` is gone: its queue no longer counts.
    pub(crate) fn forget_output(&mut self, t: usize) {
        if let Some(n) = self.out_queued.remove(&t) {
            self.out_total -= n;
        }
    }

    /// This reactor's share of the budget, in bytes.
    fn output_budget(&self) -> usize {
        let total = self.admission.max_queued_output.load(Relaxed);
        let share = total / self.admission.threads.max(1) as u64;
        usize::try_from(share).unwrap_or(usize::MAX)
    }

    /// Past the budget, disconnects the miners with the largest queues (the slowest readers) first; one log line.
    pub(crate) fn enforce_output_budget(&mut self) {
        let budget = self.output_budget();
        if self.out_total <= budget {
            return;
        }
        let before = self.out_total;
        let mut queues: Vec<(usize, usize)> =
            self.out_queued.iter().map(|(&t, &n)| (t, n)).collect();
        queues.sort_unstable_by_key(|&(_, n)| std::cmp::Reverse(n));
        let target = (budget as f64 * DOWN_TO) as usize;
        let mut dropped = 0;
        for (t, _) in queues {
            if self.out_total <= target {
                break;
            }
            if matches!(self.conns.get(t), Some(Conn::Miner(_))) {
                self.close_miner(t, crate::close::Close::OutputBudget);
                dropped += 1;
            }
            self.forget_output(t);
        }
        log::warn!(
            "{:.1} MiB queued for miners that do not read, over this reactor's {:.1} MiB of max_queued_output: \
             disconnected {dropped} miner(s), largest queues first",
            before as f64 / 1048576.0,
            budget as f64 / 1048576.0
        );
    }
}
