//! The `sv2_session` target's invariants: after a real handshake, pool messages a reference responder encrypts
//! and V1 shares, in any order, into the SV2 pool session (`fastproxy::fuzzing::Sv2Pool`).
//!
//! Input: a sequence of operations, each an opcode byte then its arguments (bytes past the end read as 0):
//! pool messages (SetupConnection.Success, OpenExtendedMiningChannel.Success, jobs, prev hashes, targets,
//! extranonce prefixes, SubmitShares.Success / .Error with chosen or arbitrary sequence numbers and counts,
//! raw frames) and shares submitted. Checked: no panic; each share sent gets at most one verdict, only from
//! the message that can give it; never `true` for a share the pool refused or no Success covered; the
//! pool's Error and an exact Success answer their shares, and a Success counting fewer than it covers
//! answers each of them as unconfirmed (an error).

use super::sv2::{encrypt, handshake, now, Frame, AUTHORITY_PUBLIC};
use super::Bytes;
use fastproxy::fuzzing::{Sv2Pool, Sv2Step, UNCONFIRMED};
use fastproxy::protocol::stratum::Submit;
use fastproxy::protocol::sv2::messages::new_extended_job_payload;
use fastproxy::protocol::sv2::{AuthorityKey, ExtendedJob};
use std::collections::{BTreeMap, BTreeSet};

/// The V1 miners' extranonce2 size the session opens its channel for (two proxy prefix bytes on top).
const E2_SIZE: usize = 4;
/// The proxy prefix every share carries (the session only checks its length with extranonce2).
const PREFIX: [u8; 2] = [0xab, 0xcd];

/// A pool message the session was fed, as far as verdicts go.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Success {
        channel: u32,
        last: u32,
        count: u32,
    },
    Error {
        channel: u32,
        seq: u32,
        code: String,
    },
    Other,
}

/// What the session is known to have: shares sent (seq → pid) and answered, the channel, Errors seen.
#[derive(Default)]
struct Model {
    /// Every share the session accepted to send: sequence number → pending id.
    sent: BTreeMap<u32, u64>,
    /// Pending ids answered, with the verdict.
    answered: BTreeMap<u64, Option<String>>,
    /// Sequence numbers the pool sent an Error for while their share waited.
    refused: BTreeSet<u32>,
    channel: Option<u32>,
    next_pid: u64,
}

impl Model {
    fn waiting(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.sent
            .iter()
            .map(|(&s, &p)| (s, p))
            .filter(|(_, p)| !self.answered.contains_key(p))
    }
    fn next_seq(&self) -> u32 {
        self.sent.len() as u32
    }
}

fn u32_of(b: &mut Bytes) -> u32 {
    u32::from_le_bytes([b.byte(), b.byte(), b.byte(), b.byte()])
}

/// A channel id: mostly the session's channel (2) or group (1), sometimes another.
fn channel(b: &mut Bytes) -> u32 {
    match b.byte() % 8 {
        0..=4 => 2,
        5 => 1,
        6 => 3,
        _ => u32_of(b),
    }
}

/// A sequence number: the last sent, a small one, one past what was sent, or any.
fn seq(b: &mut Bytes, m: &Model) -> u32 {
    let next = m.next_seq();
    match b.byte() % 5 {
        0 | 1 => next.wrapping_sub(1),
        2 => u32::from(b.byte() % 16),
        3 => next.wrapping_add(u32::from(b.byte() % 4)),
        _ => u32_of(b),
    }
}

fn sv2_str(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

fn frame(channel_msg: bool, ty: u8, payload: Vec<u8>) -> Frame {
    Frame {
        ext: if channel_msg { 0x8000 } else { 0 },
        ty,
        payload,
    }
}

/// The next pool message from the input, and what it means for verdicts.
fn pool_message(op: u8, b: &mut Bytes, m: &Model) -> (Frame, Sent) {
    let le = |v: u32| v.to_le_bytes();
    match op {
        0 => {
            let mut p = 2u16.to_le_bytes().to_vec();
            p.extend_from_slice(&le(u32::from(b.byte())));
            (frame(false, 0x01, p), Sent::Other)
        }
        1 => {
            let mut p = le(1).to_vec();
            p.extend_from_slice(&le(channel(b)));
            p.extend_from_slice(&[0xff; 32]);
            let size = match b.byte() % 4 {
                0 => u16::from(b.byte() % 40),
                _ => (E2_SIZE + PREFIX.len()) as u16 + u16::from(b.byte() % 3),
            };
            p.extend_from_slice(&size.to_le_bytes());
            let plen = usize::from(b.byte() % 12);
            p.extend_from_slice(&sv2_str(&vec![0x5a; plen]));
            p.extend_from_slice(&le(1));
            (frame(false, 0x14, p), Sent::Other)
        }
        2 => {
            let flags = b.byte();
            let job = ExtendedJob {
                channel_id: channel(b),
                job_id: u32::from(b.byte() % 8),
                min_ntime: (flags & 1 == 1).then_some(1_700_000_000),
                version: 0x2000_0000,
                version_rolling_allowed: flags & 2 == 2,
                merkle_path: vec![[0x11; 32]; usize::from(flags >> 6)],
                coinbase_tx_prefix: vec![0x01; 42],
                coinbase_tx_suffix: vec![0x02; 32],
            };
            let p = new_extended_job_payload(&job).expect("a job encodes");
            (frame(true, 0x1f, p), Sent::Other)
        }
        3 => {
            let mut p = le(channel(b)).to_vec();
            p.extend_from_slice(&le(u32::from(b.byte() % 8)));
            p.extend_from_slice(&[b.byte(); 32]);
            p.extend_from_slice(&le(1_700_000_000));
            p.extend_from_slice(&le(0x1d00_ffff));
            (frame(true, 0x20, p), Sent::Other)
        }
        4 => {
            let mut p = le(channel(b)).to_vec();
            let fill = b.byte();
            p.extend_from_slice(&[fill; 32]);
            (frame(true, 0x21, p), Sent::Other)
        }
        5 => {
            let mut p = le(channel(b)).to_vec();
            p.extend_from_slice(&sv2_str(&vec![0x77; usize::from(b.byte() % 40)]));
            (frame(true, 0x19, p), Sent::Other)
        }
        6 => {
            let ch = channel(b);
            let last = seq(b, m);
            let covered = m.waiting().filter(|&(s, _)| s <= last).count() as u32;
            let count = match b.byte() % 4 {
                0 | 1 => covered,
                2 => covered.saturating_sub(1),
                _ => u32_of(b),
            };
            let mut p = le(ch).to_vec();
            p.extend_from_slice(&le(last));
            p.extend_from_slice(&le(count));
            p.extend_from_slice(&u64::from(count).to_le_bytes());
            let sent = Sent::Success {
                channel: ch,
                last,
                count,
            };
            (frame(true, 0x1c, p), sent)
        }
        7 => {
            let ch = channel(b);
            let s = seq(b, m);
            let code = format!("code-{}", b.byte());
            let mut p = le(ch).to_vec();
            p.extend_from_slice(&le(s));
            p.extend_from_slice(&sv2_str(code.as_bytes()));
            let sent = Sent::Error {
                channel: ch,
                seq: s,
                code,
            };
            (frame(true, 0x1d, p), sent)
        }
        _ => {
            let ext = u16::from(b.byte() & 0x81) << 8;
            // Not the verdicts' types: those come structured, so the model knows what they say.
            let ty = match b.byte() {
                0x1c | 0x1d => 0x7e,
                t => t,
            };
            let len = usize::from(b.byte() % 64);
            let payload = (0..len).map(|_| b.byte()).collect();
            (Frame { ext, ty, payload }, Sent::Other)
        }
    }
}

/// Checks one step of the session against the message that caused it; false when the connection must close.
fn check(step: &Sv2Step, m: &Model) -> bool {
    match step {
        Sv2Step::Fatal { .. } | Sv2Step::RollingRefused { .. } => return false,
        Sv2Step::Ready { .. } => {
            assert!(m.channel.is_none(), "a second channel became ready");
        }
        Sv2Step::Accepted(_) | Sv2Step::Rejected { .. } => {
            unreachable!("verdicts are checked together")
        }
        _ => {}
    }
    true
}

/// Checks the verdicts (pending id, None for accepted or the error code) the session gave for one message.
fn check_verdicts(verdicts: &[(u64, Option<String>)], sent: &Sent, m: &mut Model) {
    for (pid, verdict) in verdicts {
        let seq = m
            .sent
            .iter()
            .find(|&(_, p)| p == pid)
            .map(|(&s, _)| s)
            .unwrap_or_else(|| panic!("a verdict for pending id {pid}, never sent"));
        let before = m.answered.insert(*pid, verdict.clone());
        assert!(
            before.is_none(),
            "share {seq} answered twice: {before:?} then {verdict:?}"
        );
        match (verdict, sent) {
            (None, Sent::Success { last, .. }) => {
                assert!(
                    seq <= *last,
                    "share {seq} accepted by a Success up to {last}"
                );
                assert!(
                    !m.refused.contains(&seq),
                    "share {seq} told true after the pool's Error for it"
                );
            }
            (
                Some(code),
                Sent::Error {
                    seq: s, code: c, ..
                },
            ) => {
                assert_eq!((seq, code), (*s, c), "an Error answered another share");
            }
            (Some(code), Sent::Success { last, .. }) if code == UNCONFIRMED => {
                assert!(
                    seq <= *last,
                    "share {seq} left unconfirmed by a Success up to {last}"
                );
            }
            _ => panic!("verdict {verdict:?} for share {seq} from {sent:?}"),
        }
    }
    if let Sent::Success { count, .. } = sent {
        let yes = verdicts.iter().filter(|(_, v)| v.is_none()).count() as u64;
        assert!(
            yes <= u64::from(*count),
            "{yes} shares accepted by a Success counting {count}"
        );
    }
}

/// What the session must answer for `sent` (given the model before it): the pool's Error for a waiting share
/// of the channel, or a Success over exactly `count` waiting shares of the channel.
fn must_answer(sent: &Sent, m: &Model) -> Vec<u64> {
    match sent {
        Sent::Error { channel, seq, .. } if Some(*channel) == m.channel => m
            .waiting()
            .filter(|(s, _)| s == seq)
            .map(|(_, p)| p)
            .collect(),
        Sent::Success {
            channel,
            last,
            count,
        } if Some(*channel) == m.channel && *last < m.next_seq() => {
            let covered: Vec<u64> = m
                .waiting()
                .filter(|(s, _)| s <= last)
                .map(|(_, p)| p)
                .collect();
            // Exactly `count`: each accepted; more: each unconfirmed (an error); fewer: any answer is allowed.
            if covered.len() as u64 >= u64::from(*count) {
                covered
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// One share, mostly well-formed for a job the pool may have sent.
fn submit(pool: &mut Sv2Pool, b: &mut Bytes, m: &mut Model, tag: u32) {
    // Job ids as the session tags them (none for tag 0), with a wrong tag or none now and then.
    let job_id = match b.byte() % 10 {
        7 => "x".to_string(),
        8 => format!("{}.{:x}", b.byte() % 8, tag + 1),
        9 => format!("{}", b.byte() % 8),
        j if tag == 0 => j.to_string(),
        j => format!("{j}.{tag:x}"),
    };
    let e2_len = match b.byte() % 8 {
        0 => usize::from(b.byte() % 10),
        _ => E2_SIZE,
    };
    let e2 = "00".repeat(e2_len);
    let version_bits = (b.byte() & 1 == 1).then_some("00002000");
    let share = Submit {
        job_id: &job_id,
        extranonce2: &e2,
        ntime: "6553f100",
        nonce: "0000abcd",
        version_bits,
    };
    let pid = m.next_pid;
    m.next_pid += 1;
    let seq = m.next_seq();
    if pool.submit(pid, &share, &PREFIX, 0x1fff_e000).is_ok() {
        m.sent.insert(seq, pid);
    }
}

pub fn sv2_session(data: &[u8]) {
    let key = AuthorityKey::from_x_only(AUTHORITY_PUBLIC).expect("the generator's x is a key");
    let mut pool =
        Sv2Pool::new(&key, "fuzz.worker", "127.0.0.1", 34254, E2_SIZE).expect("a session");
    let tag = data.first().map_or(0, |x| u32::from(x % 3));
    pool.set_job_tag(tag);
    let mut enc = handshake(&mut pool.client);
    let mut m = Model::default();
    let mut b = Bytes(data);
    while !b.0.is_empty() {
        let op = b.byte() % 12;
        if op >= 9 {
            submit(&mut pool, &mut b, &mut m, tag);
            pool.client.take_output();
            continue;
        }
        let (f, sent) = pool_message(op, &mut b, &m);
        let must = must_answer(&sent, &m);
        let ready = f.ty == 0x14 && f.ext & 0x7fff == 0 && f.payload.len() >= 8;
        pool.client.feed(&encrypt(&f, &mut enc));
        let (mut steps, mut quiet, mut verdicts) = (0, 0, Vec::new());
        while let Some(step) = pool.next_step(now()) {
            match step {
                Sv2Step::Accepted(pid) => verdicts.push((pid, None)),
                Sv2Step::Rejected { pid, ref code } => verdicts.push((pid, Some(code.clone()))),
                Sv2Step::Ignored(_) | Sv2Step::Nothing => (steps, quiet) = (steps + 1, quiet + 1),
                _ => steps += 1,
            }
            // A Success counting fewer shares than it covers is logged (ignored) and leaves them unconfirmed.
            let unconfirmed = !verdicts.is_empty()
                && verdicts
                    .iter()
                    .all(|(_, v)| v.as_deref() == Some(UNCONFIRMED));
            assert!(
                steps + usize::from(!verdicts.is_empty()) <= 1
                    || (unconfirmed && steps == 1 && quiet == 1),
                "more than one step (or a step and verdicts) from one frame"
            );
            if steps == 0 || matches!(step, Sv2Step::Accepted(_) | Sv2Step::Rejected { .. }) {
                continue;
            }
            if ready {
                if let Sv2Step::Ready { .. } = step {
                    m.channel = Some(u32::from_le_bytes(f.payload[4..8].try_into().unwrap()));
                    continue;
                }
            }
            if !check(&step, &m) {
                return;
            }
        }
        if !verdicts.is_empty() {
            check_verdicts(&verdicts, &sent, &mut m);
        }
        pool.client.take_output();
        for pid in must {
            assert!(
                m.answered.contains_key(&pid),
                "{sent:?} left pending id {pid} unanswered"
            );
        }
        if let Sent::Error { channel, seq, .. } = &sent {
            if Some(*channel) == m.channel && m.sent.contains_key(seq) {
                m.refused.insert(*seq);
            }
        }
    }
}
