//! Property tests of the proxy's two bookkeeping tables against simple models: the prefix allocator
//! (`nonce::PrefixAllocator`) and the reply-id table (`pending::Pending`), driven by random operation
//! sequences.

use fastproxy::nonce::PrefixAllocator;
use fastproxy::pending::{Entry, Pending};
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum AllocOp {
    Alloc,
    /// Release one of the prefixes held (none when nothing is held).
    Release(Index),
}

fn alloc_ops(max: usize) -> impl Strategy<Value = Vec<AllocOp>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(AllocOp::Alloc),
            2 => any::<Index>().prop_map(AllocOp::Release),
        ],
        0..max,
    )
}

/// Runs `ops` on an allocator of `len`-byte prefixes and on the model: never-used prefixes in order, then
/// released ones oldest first.
fn check_allocator(len: usize, ops: &[AllocOp]) -> Result<(), TestCaseError> {
    let mut a = PrefixAllocator::new(len);
    let capacity = if len >= 8 {
        u64::MAX
    } else {
        1u64 << (8 * len)
    };
    prop_assert_eq!(a.capacity(), capacity);
    prop_assert_eq!(a.prefix_len(), len.min(8));
    let mut next_unused = 0u64;
    let mut free: VecDeque<u64> = VecDeque::new();
    let mut held: Vec<u64> = Vec::new();
    let mut held_set: HashSet<u64> = HashSet::new();
    for op in ops {
        match op {
            AllocOp::Alloc => {
                let want = if next_unused < capacity {
                    next_unused += 1;
                    Some(next_unused - 1)
                } else {
                    free.pop_front()
                };
                let got = a.alloc();
                prop_assert_eq!(got, want, "alloc with {} held", held.len());
                match got {
                    Some(v) => {
                        prop_assert!(v < capacity);
                        prop_assert!(held_set.insert(v), "prefix {} handed out twice", v);
                        held.push(v);
                        let bytes: Vec<u8> = a.bytes(v).collect();
                        prop_assert_eq!(bytes.len(), len.min(8));
                        let back = bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
                        prop_assert_eq!(back, v, "bytes are v big-endian");
                    }
                    None => prop_assert_eq!(held.len() as u64, capacity, "None before full"),
                }
            }
            AllocOp::Release(i) => {
                if held.is_empty() {
                    continue;
                }
                let v = held.swap_remove(i.index(held.len()));
                held_set.remove(&v);
                a.release(v);
                free.push_back(v);
            }
        }
        prop_assert_eq!(a.in_use(), held.len() as u64);
        prop_assert_eq!(a.is_full(), held.len() as u64 >= capacity);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// One-byte prefixes: 256 of them, so sequences fill the allocator and reuse released prefixes.
    #[test]
    fn prefix_allocator_one_byte(ops in alloc_ops(900)) {
        check_allocator(1, &ops)?;
    }

    #[test]
    fn prefix_allocator_any_length(len in 0usize..=8, ops in alloc_ops(300)) {
        check_allocator(len, &ops)?;
    }
}

/// How an inserted request's deadline is chosen.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// Never expires.
    Never,
    /// `now` plus the table's current timeout (which `SetTimeout` changes, as a reload does).
    Timeout,
    /// This many ms after the latest deadline given so far (deadlines that never go back).
    AfterLatest(u64),
    /// This many ms after `now`: any order, also before deadlines given earlier.
    FromNow(u64),
}

#[derive(Debug, Clone)]
enum PendingOp {
    /// Insert on connection `conn`.
    Insert {
        conn: usize,
        deadline: Deadline,
    },
    /// A reload: later `Deadline::Timeout` inserts use this timeout (ms), shorter or longer than before.
    SetTimeout(u64),
    /// Take an id issued earlier (possibly answered already).
    TakeIssued(Index),
    /// Take an arbitrary id.
    TakeRandom(u64),
    /// Let time pass by `ms`, then expire.
    Expire(u64),
    DrainConn(usize),
    DrainAll,
}

fn deadlines() -> impl Strategy<Value = Deadline> {
    prop_oneof![
        1 => Just(Deadline::Never),
        4 => Just(Deadline::Timeout),
        2 => (0u64..20).prop_map(Deadline::AfterLatest),
        2 => (0u64..60).prop_map(Deadline::FromNow),
    ]
}

fn pending_ops() -> impl Strategy<Value = Vec<PendingOp>> {
    prop::collection::vec(
        prop_oneof![
            6 => (0usize..3, deadlines())
                .prop_map(|(conn, deadline)| PendingOp::Insert { conn, deadline }),
            1 => prop::sample::select(vec![0u64, 1, 3, 10, 30, 100]).prop_map(PendingOp::SetTimeout),
            4 => any::<Index>().prop_map(PendingOp::TakeIssued),
            1 => any::<u64>().prop_map(PendingOp::TakeRandom),
            2 => (0u64..40).prop_map(PendingOp::Expire),
            1 => (0usize..3).prop_map(PendingOp::DrainConn),
            1 => Just(PendingOp::DrainAll),
        ],
        0..300,
    )
}

/// The model's record of one waiting request.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// Insertion order; also the stored value.
    serial: u64,
    conn: usize,
    deadline: Option<u64>,
}

struct Model {
    waiting: BTreeMap<u64, Waiting>,
    issued: Vec<u64>,
    returned: HashSet<u64>,
}

impl Model {
    /// Checks that `out` holds exactly the model's entries `ids` (in insertion order) and records them as
    /// returned.
    fn returned(
        &mut self,
        what: &str,
        out: &[Entry<u64>],
        ids: Vec<u64>,
    ) -> Result<(), TestCaseError> {
        let mut want: Vec<Waiting> = ids.iter().map(|id| self.waiting[id]).collect();
        want.sort_by_key(|w| w.serial);
        let got: Vec<(u64, usize)> = out.iter().map(|e| (e.value, e.conn)).collect();
        let want_pairs: Vec<(u64, usize)> = want.iter().map(|w| (w.serial, w.conn)).collect();
        prop_assert_eq!(got, want_pairs, "{}", what);
        for id in ids {
            self.waiting.remove(&id);
            prop_assert!(self.returned.insert(id), "id {} returned twice", id);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every inserted id comes back exactly once (take, expire or drain), never after; unknown and answered
    /// ids give None; expired and drained entries come out in insertion order. Deadlines come in any order
    /// (timeouts shortened and lengthened between inserts, as a reload does): each expire returns exactly the
    /// entries whose own deadline is at or before `now`, so none expires early or late.
    #[test]
    fn pending_returns_each_request_once(ops in pending_ops()) {
        let base = Instant::now();
        let at = |ms: u64| base + Duration::from_millis(ms);
        let mut p: Pending<u64> = Pending::default();
        let mut m = Model { waiting: BTreeMap::new(), issued: Vec::new(), returned: HashSet::new() };
        let mut serial = 0u64;
        let mut now = 0u64;
        let mut latest = 0u64;
        let mut timeout = 30u64;
        for op in &ops {
            match *op {
                PendingOp::SetTimeout(ms) => timeout = ms,
                PendingOp::Insert { conn, deadline } => {
                    serial += 1;
                    let deadline = match deadline {
                        Deadline::Never => None,
                        Deadline::Timeout => Some(now + timeout),
                        Deadline::AfterLatest(a) => Some(latest.max(now) + a),
                        Deadline::FromNow(a) => Some(now + a),
                    };
                    latest = latest.max(deadline.unwrap_or(0));
                    let id = p.insert(serial, conn, at(now), deadline.map(at));
                    prop_assert!(id < 1 << 53, "id {} not exact in JSON readers", id);
                    prop_assert!(!m.waiting.contains_key(&id), "id {} issued while in use", id);
                    prop_assert!(!m.issued.contains(&id), "id {} issued twice", id);
                    m.issued.push(id);
                    m.waiting.insert(id, Waiting { serial, conn, deadline });
                }
                PendingOp::TakeIssued(i) => {
                    if m.issued.is_empty() {
                        continue;
                    }
                    let id = m.issued[i.index(m.issued.len())];
                    let got = p.take(id).map(|e| (e.value, e.conn));
                    match m.waiting.remove(&id) {
                        Some(w) => {
                            prop_assert_eq!(got, Some((w.serial, w.conn)));
                            prop_assert!(m.returned.insert(id));
                        }
                        None => prop_assert_eq!(got, None, "answered id {} matched again", id),
                    }
                }
                PendingOp::TakeRandom(id) => {
                    let got = p.take(id).map(|e| e.value);
                    match m.waiting.remove(&id) {
                        Some(w) => {
                            prop_assert_eq!(got, Some(w.serial));
                            prop_assert!(m.returned.insert(id));
                        }
                        None => prop_assert_eq!(got, None, "unknown id {} matched", id),
                    }
                }
                PendingOp::Expire(ms) => {
                    now += ms;
                    let mut out = Vec::new();
                    p.expire(at(now), &mut out);
                    let due: Vec<u64> = m
                        .waiting
                        .iter()
                        .filter(|(_, w)| w.deadline.is_some_and(|d| d <= now))
                        .map(|(&id, _)| id)
                        .collect();
                    m.returned("expire", &out, due)?;
                }
                PendingOp::DrainConn(conn) => {
                    let mut out = Vec::new();
                    p.drain_conn(conn, &mut out);
                    let ids = m.waiting.iter().filter(|(_, w)| w.conn == conn).map(|(&id, _)| id).collect();
                    m.returned("drain_conn", &out, ids)?;
                    prop_assert!(!p.has_conn(conn));
                }
                PendingOp::DrainAll => {
                    let mut out = Vec::new();
                    p.drain_all(&mut out);
                    let ids = m.waiting.keys().copied().collect();
                    m.returned("drain_all", &out, ids)?;
                }
            }
            prop_assert_eq!(p.len(), m.waiting.len());
            prop_assert_eq!(p.is_empty(), m.waiting.is_empty());
            for conn in 0..3 {
                prop_assert_eq!(p.has_conn(conn), m.waiting.values().any(|w| w.conn == conn));
            }
            for &id in &m.issued {
                prop_assert_eq!(p.is_waiting(id), m.waiting.contains_key(&id));
            }
        }
        // Whatever is left comes out once, and then nothing.
        let mut out = Vec::new();
        p.drain_all(&mut out);
        let ids = m.waiting.keys().copied().collect();
        m.returned("final drain_all", &out, ids)?;
        prop_assert_eq!(m.returned.len(), m.issued.len(), "every id returned exactly once");
        let mut out = Vec::new();
        p.expire(at(now + 1_000_000), &mut out);
        prop_assert!(out.is_empty());
        for &id in &m.issued {
            prop_assert!(p.take(id).is_none());
        }
    }
}
