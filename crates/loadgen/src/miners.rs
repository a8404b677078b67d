//! A simulated miner as a small state machine driven by the reactor: connect, pipelined subscribe and
//! authorize, then jobs and share replies. It turns each line it reads into an `Event` for the reactor,
//! which owns the timing and the counters.

use super::args::Dialect;
use super::conn;
use super::line;
use super::wire;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::SocketAddr;

/// Miner `i` has token `TOKEN_BASE + i`.
pub const TOKEN_BASE: usize = 1 << 31;

/// Where a miner is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Idle,
    /// Connect in progress.
    Connecting,
    /// Subscribe and authorize sent, not both answered yet.
    Handshaking,
    /// Subscribed and authorized.
    Admitted,
    /// Closed (refused, reset, or by the peer).
    Closed,
}

/// What a line (or the socket) told a miner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Both subscribe and authorize were answered with success.
    Admitted,
    /// Subscribe or authorize failed: the miner closes.
    Refused,
    /// A job arrived (its number, from the job id).
    Job(u32),
    /// A share was answered: accepted or not.
    ShareReply(bool),
    /// A line it could not read.
    Unreadable,
    /// The connection ended (the miner is closed now).
    Closed,
}

/// One simulated miner.
pub struct Miner {
    sock: Option<TcpStream>,
    pub state: State,
    tail: Vec<u8>,
    out: Vec<u8>,
    subscribe_ok: bool,
    authorize_ok: bool,
    /// Extranonce2 (V1) or NONCE_2 (Equihash) bytes the miner fills.
    pub space: u8,
    /// The latest job, if any.
    /// Its low 32 bits are the job number; the high ones, when not 0, are 1 + the hex tag a routing proxy puts
    /// before a `.` in the job id (fastproxy with several routes), sent back as it came.
    pub job: Option<u64>,
    /// Counted among the admitted miners that have a job.
    pub job_counted: bool,
    /// A share is waiting for its answer.
    pub in_flight: bool,
    /// When the share in flight (or the connect) was sent.
    pub sent_ns: u64,
    /// When the pool read and answered this miner's latest share.
    pub pool_rx_ns: u64,
    pub pool_tx_ns: u64,
    next_id: u32,
}

impl Miner {
    pub fn new() -> Miner {
        Miner {
            sock: None,
            state: State::Idle,
            tail: Vec::new(),
            out: Vec::new(),
            subscribe_ok: false,
            authorize_ok: false,
            space: 0,
            job: None,
            job_counted: false,
            in_flight: false,
            sent_ns: 0,
            pool_rx_ns: 0,
            pool_tx_ns: 0,
            next_id: 3,
        }
    }

    /// Starts connecting miner `i` to `to` from `from`.
    pub fn connect(
        &mut self,
        i: u32,
        to: SocketAddr,
        from: Option<SocketAddr>,
        registry: &Registry,
        now: u64,
    ) -> io::Result<()> {
        let mut s = conn::connect(to, from)?;
        registry.register(
            &mut s,
            Token(TOKEN_BASE + i as usize),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.sock = Some(s);
        self.state = State::Connecting;
        self.sent_ns = now;
        Ok(())
    }

    /// Closes the socket.
    pub fn close(&mut self, registry: &Registry) {
        if let Some(mut s) = self.sock.take() {
            conn::abort(&s);
            let _ = registry.deregister(&mut s);
        }
        self.state = State::Closed;
        self.in_flight = false;
        self.tail = Vec::new();
        self.out = Vec::new();
    }

    /// Handles a readiness event; events for the reactor go to `events`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_event(
        &mut self,
        i: u32,
        dialect: Dialect,
        target_port: u16,
        registry: &Registry,
        scratch: &mut [u8],
        events: &mut Vec<Event>,
    ) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        if self.state == State::Connecting {
            match (sock.take_error(), sock.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    self.state = State::Handshaking;
                    let mut hs = Vec::with_capacity(192);
                    wire::handshake(&mut hs, dialect, i, target_port);
                    if conn::send(sock, &mut self.out, &hs).is_err() {
                        return self.fail(registry, events);
                    }
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => return,
                _ => return self.fail(registry, events),
            }
        }
        if !self.out.is_empty() && conn::flush(sock, &mut self.out).is_err() {
            return self.fail(registry, events);
        }
        let mut lines = std::mem::take(&mut self.tail);
        let read = conn::read_lines(sock, &mut lines, scratch, |l| {
            on_line(
                l,
                dialect,
                &mut self.subscribe_ok,
                &mut self.authorize_ok,
                &mut self.space,
                &mut self.job,
                &mut self.in_flight,
                &mut self.state,
                events,
            )
        });
        self.tail = lines;
        if !matches!(read, Ok(false)) || self.state == State::Closed {
            self.fail(registry, events);
        }
    }

    fn fail(&mut self, registry: &Registry, events: &mut Vec<Event>) {
        self.close(registry);
        events.push(Event::Closed);
    }

    /// Sends one share on the current job (the caller checked there is one and none is in flight).
    pub fn submit(&mut self, i: u32, dialect: Dialect, scratch: &mut Vec<u8>, now: u64) -> bool {
        let (Some(sock), Some(job)) = (self.sock.as_mut(), self.job) else {
            return false;
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(3);
        scratch.clear();
        wire::submit(
            scratch,
            dialect,
            u64::from(id),
            i,
            (job >> 32) as u32,
            job as u32,
            usize::from(self.space),
            id,
        );
        self.sent_ns = now;
        self.in_flight = true;
        conn::send(sock, &mut self.out, scratch).is_ok()
    }
}

impl Default for Miner {
    fn default() -> Self {
        Miner::new()
    }
}

/// Reads one line from the proxy (or the pool, in direct mode).
#[allow(clippy::too_many_arguments)]
fn on_line(
    l: &[u8],
    dialect: Dialect,
    subscribe_ok: &mut bool,
    authorize_ok: &mut bool,
    space: &mut u8,
    job: &mut Option<u64>,
    in_flight: &mut bool,
    state: &mut State,
    events: &mut Vec<Event>,
) {
    if let Some(method) = line::field(l, "method").and_then(line::string) {
        if method == b"mining.notify" {
            let n = line::field(l, "params")
                .and_then(|p| line::nth_scalar(p, 0))
                .and_then(line::string)
                .and_then(|id| match id.iter().rposition(|&b| b == b'.') {
                    // A routing proxy's tag: "<hex tag>.<job>".
                    Some(dot) => {
                        let tag = line::hex_u64(&id[..dot]).filter(|&t| t < u64::from(u32::MAX))?;
                        Some(((tag + 1) << 32) | (line::hex_u64(&id[dot + 1..])? & 0xffff_ffff))
                    }
                    None => line::hex_u64(id).map(|n| n & 0xffff_ffff),
                });
            match n {
                Some(n) => {
                    *job = Some(n);
                    events.push(Event::Job(n as u32));
                }
                None => events.push(Event::Unreadable),
            }
        }
        // set_difficulty, set_target and the rest: nothing to do.
        return;
    }
    let Some(id) = line::field(l, "id").and_then(line::number) else {
        events.push(Event::Unreadable);
        return;
    };
    let result = line::field(l, "result").unwrap_or(b"null");
    match id {
        wire::ID_SUBSCRIBE => match subscribe_space(result, dialect) {
            Some(s) => {
                *space = s;
                *subscribe_ok = true;
            }
            None => refuse(state, events),
        },
        wire::ID_AUTHORIZE => {
            if result.starts_with(b"true") {
                *authorize_ok = true;
            } else {
                refuse(state, events)
            }
        }
        _ => {
            if *in_flight {
                *in_flight = false;
                events.push(Event::ShareReply(result.starts_with(b"true")));
            } else {
                events.push(Event::Unreadable);
            }
        }
    }
    if *state == State::Handshaking && *subscribe_ok && *authorize_ok {
        *state = State::Admitted;
        events.push(Event::Admitted);
    }
}

fn refuse(state: &mut State, events: &mut Vec<Event>) {
    *state = State::Closed;
    events.push(Event::Refused);
}

/// The bytes a miner fills from a subscribe result: V1 `[subs, e1, e2size]`, Equihash `[session, nonce1]`
/// (NONCE_2 is 32 bytes less NONCE_1).
fn subscribe_space(result: &[u8], dialect: Dialect) -> Option<u8> {
    let v: serde_json::Value = serde_json::Deserializer::from_slice(result)
        .into_iter()
        .next()?
        .ok()?;
    let a = v.as_array()?;
    match dialect {
        Dialect::Stratum => {
            let n = a.get(2)?.as_u64()?;
            (1..=32).contains(&n).then_some(n as u8)
        }
        Dialect::Equihash => {
            let n1 = a.get(1)?.as_str()?.len() / 2;
            (n1 <= 24).then(|| (32 - n1) as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_then_jobs_and_replies() {
        let mut ev = Vec::new();
        let (mut s, mut a, mut sp, mut job, mut fl, mut st) =
            (false, false, 0, None, false, State::Handshaking);
        let mut feed = |l: &[u8], ev: &mut Vec<Event>| {
            on_line(
                l,
                Dialect::Stratum,
                &mut s,
                &mut a,
                &mut sp,
                &mut job,
                &mut fl,
                &mut st,
                ev,
            )
        };
        feed(
            br#"{"id":1,"result":[[["mining.notify","1"]],"0000000100",6],"error":null}"#,
            &mut ev,
        );
        feed(br#"{"id":2,"result":true,"error":null}"#, &mut ev);
        feed(
            br#"{"id":null,"method":"mining.notify","params":["1a","00"]}"#,
            &mut ev,
        );
        assert_eq!(ev, vec![Event::Admitted, Event::Job(0x1a)]);
        assert_eq!(
            subscribe_space(br#"["1","0000000100"],"error":null}"#, Dialect::Equihash),
            Some(27)
        );
    }

    #[test]
    fn a_routing_proxys_tagged_job_id_goes_back_as_it_came() {
        let (mut s, mut a, mut sp, mut job, mut fl, mut st) =
            (true, true, 4, None, false, State::Admitted);
        let mut ev = Vec::new();
        on_line(
            br#"{"id":null,"method":"mining.notify","params":["c.1b","00"]}"#,
            Dialect::Stratum,
            &mut s,
            &mut a,
            &mut sp,
            &mut job,
            &mut fl,
            &mut st,
            &mut ev,
        );
        assert_eq!(job, Some((0xd << 32) | 0x1b), "the tag is kept");
        assert_eq!(ev, vec![Event::Job(0x1b)]);
        let mut out = Vec::new();
        let j = job.unwrap();
        wire::submit(
            &mut out,
            Dialect::Stratum,
            7,
            1,
            (j >> 32) as u32,
            j as u32,
            4,
            7,
        );
        assert!(
            String::from_utf8_lossy(&out).contains(r#""c.1b""#),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}
