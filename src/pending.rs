//! The table of requests the proxy sent upstream and waits on, keyed by the proxy's own request ids.
//!
//! An id is `slot | seq << 32`: the slot indexes a slab (O(1), no hashing, no allocation once warm) and the
//! sequence number makes a reused slot's old id unknown, so a late or forged reply matches nothing.
//! Deadlines are kept in a few queues, each in deadline order, so expiring is a look at their fronts: one queue
//! while the timeout stays, another for the shorter deadlines after a reload shortened it (a heap past that).

use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// Deadline queues: one per timeout change still in flight, before the heap takes the rest.
const LANES: usize = 4;

/// A request waiting for its reply.
#[derive(Debug)]
pub struct Entry<T> {
    pub value: T,
    pub sent: Instant,
    /// The pool connection it went out on (a reactor token).
    pub conn: usize,
    seq: u32,
    /// Insertion order, so drained requests are answered in the order they were sent.
    serial: u64,
}

/// Requests in flight on one upstream.
#[derive(Debug)]
pub struct Pending<T> {
    slots: Slab<Entry<T>>,
    seq: u32,
    serial: u64,
    /// `(deadline, id)` records, each queue in non-decreasing deadline order; a deadline joins the first queue
    /// whose last deadline is not later than it.
    lanes: [VecDeque<(Instant, u64)>; LANES],
    /// Records that fit no queue (deadlines going back more often than there are queues), earliest on top.
    spill: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            slots: Slab::new(),
            seq: 0,
            serial: 0,
            lanes: std::array::from_fn(|_| VecDeque::new()),
            spill: BinaryHeap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Records a request; returns the id to send it with. Ids are below 2^53 so every JSON reader keeps them exact.
    /// `None` never expires; deadlines may come in any order (a reload can shorten the timeout).
    pub fn insert(
        &mut self,
        value: T,
        conn: usize,
        now: Instant,
        deadline: Option<Instant>,
    ) -> u64 {
        self.seq = (self.seq + 1) & 0x1F_FFFF;
        if self.seq == 0 {
            self.seq = 1;
        }
        self.serial += 1;
        let slot = self.slots.insert(Entry {
            value,
            sent: now,
            conn,
            seq: self.seq,
            serial: self.serial,
        });
        let id = (slot as u64) | (u64::from(self.seq) << 32);
        if let Some(deadline) = deadline {
            let record = (deadline, id);
            let fits =
                |q: &VecDeque<(Instant, u64)>| q.back().is_none_or(|&(last, _)| last <= deadline);
            let mut lane = self.lanes.iter().position(fits);
            // A full queue sheds the records of answered requests in place before it would grow: between two
            // expiries (the reactor's tick) thousands of answered shares must not double its memory.
            if let Some(q) = lane.map(|i| &self.lanes[i]) {
                if q.len() == q.capacity() && self.records() > 2 * self.slots.len() {
                    self.prune();
                    lane = self.lanes.iter().position(fits);
                }
            }
            match lane {
                Some(i) => self.lanes[i].push_back(record),
                None => self.spill.push(Reverse(record)),
            }
        }
        id
    }

    /// Takes the entry for a reply id; `None` when the id is unknown or already answered.
    pub fn take(&mut self, id: u64) -> Option<Entry<T>> {
        let slot = usize::try_from(id & 0xFFFF_FFFF).ok()?;
        let seq = u32::try_from(id >> 32).ok()?;
        match self.slots.get(slot) {
            Some(e) if e.seq == seq => Some(self.slots.remove(slot)),
            _ => None,
        }
    }

    /// Takes the entries whose deadline has passed, oldest first.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Entry<T>>) {
        let start = out.len();
        for q in 0..LANES {
            while let Some(&(deadline, id)) = self.lanes[q].front() {
                if deadline > now && self.is_waiting(id) {
                    break;
                }
                self.lanes[q].pop_front();
                out.extend(self.take(id));
            }
        }
        while let Some(&Reverse((deadline, id))) = self.spill.peek() {
            if deadline > now && self.is_waiting(id) {
                break;
            }
            self.spill.pop();
            out.extend(self.take(id));
        }
        // Several queues: back to send order (serials are unique; nothing to sort in the usual case).
        if out.len() - start > 1 {
            out[start..].sort_unstable_by_key(|e| e.serial);
        }
        self.compact();
    }

    /// Takes every entry that went out on connection `conn`, oldest first.
    pub fn drain_conn(&mut self, conn: usize, out: &mut Vec<Entry<T>>) {
        let start = out.len();
        let slots: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, e)| e.conn == conn)
            .map(|(k, _)| k)
            .collect();
        for k in slots {
            out.push(self.slots.remove(k));
        }
        out[start..].sort_by_key(|e| e.serial);
        self.compact();
    }

    /// Takes every entry, oldest first.
    pub fn drain_all(&mut self, out: &mut Vec<Entry<T>>) {
        let start = out.len();
        out.extend(self.slots.drain());
        out[start..].sort_by_key(|e| e.serial);
        self.clear_deadlines();
    }

    /// The requests waiting, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|(_, e)| &e.value)
    }

    /// True when `id` is still waiting for its reply.
    pub fn is_waiting(&self, id: u64) -> bool {
        waiting_in(&self.slots, id)
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// True when something sent on `conn` still waits.
    pub fn has_conn(&self, conn: usize) -> bool {
        self.slots.iter().any(|(_, e)| e.conn == conn)
    }

    fn clear_deadlines(&mut self) {
        self.lanes.iter_mut().for_each(VecDeque::clear);
        self.spill.clear();
    }

    /// Drops deadline records of answered requests when they dominate, and frees idle memory.
    fn compact(&mut self) {
        if self.slots.is_empty() {
            self.clear_deadlines();
            if self.slots.capacity() > 1024 {
                *self = Pending {
                    seq: self.seq,
                    serial: self.serial,
                    ..Pending::default()
                };
            }
            return;
        }
        if self.records() > 4 * self.slots.len() + 64 {
            self.prune();
        }
    }

    /// How many deadline records are kept, answered requests' included.
    fn records(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum::<usize>() + self.spill.len()
    }

    /// Drops the deadline records of answered requests, in place (no allocation).
    fn prune(&mut self) {
        let slots = &self.slots;
        for q in &mut self.lanes {
            q.retain(|&(_, id)| waiting_in(slots, id));
        }
        self.spill.retain(|&Reverse((_, id))| waiting_in(slots, id));
    }
}

/// True when `id` names an entry of `slots` (same slot, same sequence number).
fn waiting_in<T>(slots: &Slab<Entry<T>>, id: u64) -> bool {
    let slot = (id & 0xFFFF_FFFF) as usize;
    slots
        .get(slot)
        .is_some_and(|e| u64::from(e.seq) == id >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answered_requests_do_not_grow_the_deadline_queue_between_expiries() {
        // Shares answered as fast as they come, 64 in flight, and no expiry for 100,000 of them (as between
        // two ticks of a busy reactor): the queue keeps the capacity it had once warm.
        let now = Instant::now();
        let mut p = Pending::default();
        let mut ids = std::collections::VecDeque::new();
        let mut warm = 0;
        for i in 0..100_000u32 {
            ids.push_back(p.insert(i, 1, now, Some(now + Duration::from_secs(30))));
            if ids.len() > 64 {
                assert!(p.take(ids.pop_front().unwrap()).is_some());
            }
            if i == 1000 {
                warm = p.lanes[0].capacity();
            }
        }
        assert!(warm > 0);
        assert_eq!(p.lanes[0].capacity(), warm, "the queue grew");
        assert_eq!(p.len(), 64);
    }

    #[test]
    fn ids_match_once_and_reused_slots_get_new_ids() {
        let now = Instant::now();
        let mut p = Pending::default();
        let a = p.insert("a", 1, now, Some(now));
        assert_eq!(p.take(a).map(|e| e.value), Some("a"));
        assert!(p.take(a).is_none(), "answered twice");
        let b = p.insert("b", 1, now, None);
        assert_ne!(a, b, "same slot, new sequence");
        assert!(p.take(a).is_none(), "old id does not match the reused slot");
        assert_eq!(p.take(b).map(|e| e.value), Some("b"));
        assert!(p.take(u64::MAX).is_none());
    }

    #[test]
    fn expire_and_drain_by_connection() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut p = Pending::default();
        let never = p.insert(0, 9, now, None);
        let _a = p.insert(1, 7, now, Some(now));
        let b = p.insert(2, 8, now, Some(later));
        let _c = p.insert(3, 7, now, Some(later));
        let _d = p.insert(4, 7, now, Some(later));
        let mut out = Vec::new();
        p.expire(now, &mut out);
        assert_eq!(out.iter().map(|e| e.value).collect::<Vec<_>>(), vec![1]);
        out.clear();
        p.drain_conn(7, &mut out);
        assert_eq!(
            out.iter().map(|e| e.value).collect::<Vec<_>>(),
            vec![3, 4],
            "in send order"
        );
        assert_eq!(p.len(), 2);
        assert!(p.take(b).is_some());
        assert!(p.take(never).is_some());
        assert!(p.is_empty());
    }

    #[test]
    fn a_shortened_timeout_does_not_wait_behind_longer_deadlines() {
        let now = Instant::now();
        let secs = |s| now + Duration::from_secs(s);
        let mut p = Pending::default();
        // Sent with a 30 s timeout, then (after a reload) with 1 s, then with 5 s.
        let _old = p.insert(1, 1, now, Some(secs(30)));
        let _short = p.insert(2, 1, secs(2), Some(secs(3)));
        let _mid = p.insert(3, 1, secs(2), Some(secs(7)));
        let mut out = Vec::new();
        p.expire(secs(3), &mut out);
        assert_eq!(out.iter().map(|e| e.value).collect::<Vec<_>>(), vec![2]);
        out.clear();
        p.expire(secs(29), &mut out);
        assert_eq!(out.iter().map(|e| e.value).collect::<Vec<_>>(), vec![3]);
        out.clear();
        p.expire(secs(30), &mut out);
        assert_eq!(out.iter().map(|e| e.value).collect::<Vec<_>>(), vec![1]);
        assert!(p.is_empty());
    }

    #[test]
    fn answered_requests_do_not_hold_back_later_deadlines() {
        let now = Instant::now();
        let mut p = Pending::default();
        let first = p.insert(1, 1, now, Some(now + Duration::from_secs(60)));
        let _second = p.insert(2, 1, now, Some(now + Duration::from_secs(60)));
        assert!(p.take(first).is_some());
        let mut out = Vec::new();
        p.expire(now + Duration::from_secs(61), &mut out);
        assert_eq!(out.len(), 1);
    }
}
