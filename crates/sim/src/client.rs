//! The simulated miners' side of a connection: requests with ids and replies matched to them (each submit
//! answered exactly once), bounded line reads, and the steps and server calls every miner handles alike.

use crate::lines::{is_timeout, parse_line, read_line_bounded, request_parts, LineRead, MAX_LINE};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for replies to outstanding submits before closing (the wait ends as soon as all are
/// answered; generous, so a starved pool or proxy on a loaded machine still answers in time).
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines handled per [`Session::read_available`] at most.
const MAX_LINES_PER_READ: usize = 1_000;
const MAX_REJECT_MESSAGES: usize = 8;

/// Handshake requests awaiting a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Configure,
    Subscribe,
    ExtranonceSubscribe,
    Authorize,
}

/// A message from the pool, sorted out.
pub(crate) enum Incoming {
    /// A request or notification: method, id (`null` for a notification), params.
    Call(String, Value, Value),
    /// The (first) reply to one of our submits.
    SubmitReply(Value),
    /// The reply to a handshake request.
    Reply(Request, Value),
}

/// A miner's connection and its request bookkeeping.
pub(crate) struct Client {
    /// For the logs, e.g. "simminer w1".
    who: String,
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
    nonblocking: bool,
    next_id: u64,
    requests: HashMap<u64, (Request, Instant)>,
    outstanding_submits: HashSet<u64>,
    /// Submits answered so far.
    pub(crate) answered: u64,
    /// Every response received (handshake and submits).
    pub(crate) replies: u64,
    /// Responses whose id was not an outstanding request (unknown, or answered twice).
    pub(crate) unknown_replies: u64,
    /// The connection is gone (closed by the peer, a write error, a line too long).
    pub(crate) closed: bool,
    /// Closed by the peer or after a write error.
    pub(crate) by_peer: bool,
    /// What ended the connection when it was no plain close (a line too long).
    pub(crate) error: Option<String>,
    /// A fatal handshake error: stop now.
    pub(crate) failed: bool,
}

impl Client {
    /// Connects to `addr`; reads wait at most `read_timeout` while blocking.
    pub(crate) fn connect(
        addr: SocketAddr,
        read_timeout: Duration,
        who: String,
    ) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            who,
            reader: BufReader::new(stream),
            line: Vec::new(),
            nonblocking: false,
            next_id: 1,
            requests: HashMap::new(),
            outstanding_submits: HashSet::new(),
            answered: 0,
            replies: 0,
            unknown_replies: 0,
            closed: false,
            by_peer: false,
            error: None,
            failed: false,
        })
    }

    /// Whether the run is over: closed, failed, `max_shares` submits answered, `stop` set or `deadline` passed.
    pub(crate) fn should_stop(
        &self,
        max_shares: Option<u64>,
        stop: &AtomicBool,
        deadline: Instant,
    ) -> bool {
        let enough = max_shares.is_some_and(|max| self.answered >= max);
        self.closed
            || self.failed
            || enough
            || stop.load(Ordering::Relaxed)
            || Instant::now() >= deadline
    }

    /// Whether some submit awaits its reply.
    pub(crate) fn awaiting_submits(&self) -> bool {
        !self.outstanding_submits.is_empty()
    }

    /// Closes the connection; returns the number of submits left unanswered.
    pub(crate) fn finish(&mut self) -> u64 {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
        self.outstanding_submits.len() as u64
    }

    /// Sends one JSON line; a failed write closes the connection.
    pub(crate) fn send(&mut self, msg: &Value) {
        if self.closed {
            return;
        }
        let mut line = msg.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.write_all(&line) {
            log::debug!("{}: write failed: {e}", self.who);
            self.closed = true;
            self.by_peer = true;
        }
    }

    /// Writes everything, also while the socket is non-blocking (bounded by [`WRITE_TIMEOUT`]).
    fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let mut stream = self.reader.get_ref();
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends a handshake request and remembers it.
    pub(crate) fn request(&mut self, kind: Request, method: &str, params: Value) {
        let id = self.take_id();
        self.requests.insert(id, (kind, Instant::now()));
        self.send(&json!({"id": id, "method": method, "params": params}));
    }

    /// Forgets the requests of `kind` sent more than `after` ago; returns how many.
    pub(crate) fn drop_stale(&mut self, kind: Request, after: Duration) -> usize {
        let before = self.requests.len();
        self.requests
            .retain(|_, (k, at)| !(*k == kind && at.elapsed() > after));
        before - self.requests.len()
    }

    /// Sends `mining.submit` with `params`, awaiting its one reply.
    pub(crate) fn submit(&mut self, params: Value) {
        let id = self.take_id();
        self.outstanding_submits.insert(id);
        self.send(&json!({"id": id, "method": "mining.submit", "params": params}));
    }

    /// After a successful subscribe: `mining.extranonce.subscribe` (when asked for), then `mining.authorize`.
    pub(crate) fn authorize(&mut self, extranonce_subscribe: bool, worker: &str, password: &str) {
        if extranonce_subscribe {
            self.request(
                Request::ExtranonceSubscribe,
                "mining.extranonce.subscribe",
                json!([]),
            );
        }
        let params = json!([worker, password]);
        self.request(Request::Authorize, "mining.authorize", params);
    }

    /// Reads (non-blocking) or waits at most one read timeout (blocking).
    pub(crate) fn set_nonblocking(&mut self, nonblocking: bool) {
        if self.nonblocking != nonblocking
            && self.reader.get_ref().set_nonblocking(nonblocking).is_ok()
        {
            self.nonblocking = nonblocking;
        }
    }

    /// One line: `None` when nothing more is to be read now; `Some(None)` for a line with nothing to handle.
    fn read_message(&mut self) -> Option<Option<Incoming>> {
        match read_line_bounded(&mut self.reader, &mut self.line, MAX_LINE) {
            Ok(LineRead::Line) => {
                let line = std::mem::take(&mut self.line);
                let msg = parse_line(&line, &self.who).and_then(|msg| self.sort(msg));
                self.line = line;
                self.line.clear();
                Some(msg)
            }
            Ok(LineRead::Eof) => self.peer_closed("connection closed by peer"),
            Ok(LineRead::TooLong) => {
                self.error = Some("line too long from peer".into());
                self.closed = true;
                None
            }
            Err(e) if is_timeout(&e) => None,
            Err(e) => self.peer_closed(&format!("read error: {e}")),
        }
    }

    fn peer_closed<T>(&mut self, why: &str) -> Option<T> {
        log::debug!("{}: {why}", self.who);
        self.closed = true;
        self.by_peer = true;
        None
    }

    /// A call, or a reply matched to its request (`None`: a reply to nothing outstanding, counted).
    fn sort(&mut self, msg: Value) -> Option<Incoming> {
        if let Some((method, id, params)) = request_parts(&msg) {
            return Some(Incoming::Call(method.to_string(), id, params));
        }
        self.replies += 1;
        let id = msg.get("id").and_then(Value::as_u64);
        if let Some(id) = id.filter(|id| self.outstanding_submits.remove(id)) {
            log::trace!("{}: submit {id} answered", self.who);
            self.answered += 1;
            return Some(Incoming::SubmitReply(msg));
        }
        match id.and_then(|id| self.requests.remove(&id)) {
            Some((kind, _)) => Some(Incoming::Reply(kind, msg)),
            None => {
                self.unknown_replies += 1;
                None
            }
        }
    }

    /// Answers the calls every miner answers alike (`client.get_version` with `agent`, `mining.ping`),
    /// ignores `client.reconnect` and `client.show_message`, and refuses any other request with 20.
    pub(crate) fn answer_call(&mut self, method: &str, id: &Value, params: &Value, agent: &str) {
        match method {
            "client.get_version" => self.send(&json!({"id": id, "result": agent, "error": null})),
            "mining.ping" => self.send(&json!({"id": id, "result": "pong", "error": null})),
            "client.reconnect" | "client.show_message" => {
                log::debug!("{}: ignoring {method} {params}", self.who);
            }
            _ if !id.is_null() => {
                self.send(
                    &json!({"id": id, "result": null, "error": [20, "Unknown method", null]}),
                );
            }
            _ => {}
        }
    }
}

/// A miner's session over a [`Client`]: how it reads, in the same way for both miners.
pub(crate) trait Session {
    /// The connection.
    fn conn(&mut self) -> &mut Client;
    /// Handles one message from the pool.
    fn on_incoming(&mut self, msg: Incoming);

    /// Handles the messages that are available (blocking at most one read timeout when in blocking mode).
    fn read_available(&mut self) {
        for _ in 0..MAX_LINES_PER_READ {
            match self.conn().read_message() {
                None => return,
                Some(Some(msg)) => self.on_incoming(msg),
                Some(None) => {}
            }
        }
    }

    /// Waits (bounded) for the replies to outstanding submits.
    fn drain_replies(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        self.conn().set_nonblocking(false);
        while !self.conn().closed && self.conn().awaiting_submits() && Instant::now() < deadline {
            self.read_available();
        }
    }
}

/// A handshake reply's result and whether it carried an error.
pub(crate) fn reply_result(msg: &Value) -> (&Value, bool) {
    let result = msg.get("result").unwrap_or(&Value::Null);
    let failed = !msg.get("error").is_none_or(Value::is_null);
    (result, failed)
}

/// Whether an authorize reply says yes; else the error to report.
pub(crate) fn check_authorized(msg: &Value) -> Result<(), String> {
    let (result, failed) = reply_result(msg);
    if !failed && result.as_bool() == Some(true) {
        Ok(())
    } else {
        Err(format!("authorize rejected: {msg}"))
    }
}

/// A miner report's submit verdicts.
pub(crate) struct Verdicts<'a> {
    pub(crate) accepted: &'a mut u64,
    pub(crate) rejected: &'a mut u64,
    pub(crate) reject_codes: &'a mut BTreeMap<i64, u64>,
    pub(crate) reject_messages: &'a mut Vec<String>,
}

impl Verdicts<'_> {
    /// Counts a submit's reply; returns whether it accepted the share.
    pub(crate) fn count(self, msg: &Value) -> bool {
        if msg.get("result") == Some(&Value::Bool(true)) {
            *self.accepted += 1;
            return true;
        }
        let (code, message) =
            crate::lines::describe_error(msg.get("error").unwrap_or(&Value::Null));
        *self.rejected += 1;
        *self.reject_codes.entry(code).or_default() += 1;
        if self.reject_messages.len() < MAX_REJECT_MESSAGES {
            self.reject_messages.push(message);
        }
        false
    }
}

/// Helpers the two miners' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::DRAIN_TIMEOUT;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    /// How long [`wait_for`] waits. Only an upper bound: a starved debug build on a loaded 2-core machine
    /// hashes 50 times slower than an idle one, and a test's few seconds of hashing must still fit.
    pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(120);
    /// The tests' miners' `duration`: longer than [`WAIT_LIMIT`] and [`STOP_LIMIT`], so a miner outlives
    /// every wait and a miner that missed its stop flag is told apart from a stopped one.
    pub(crate) const MINER_DURATION: Duration = Duration::from_secs(300);
    /// A stopped miner returns within the drain time and a margin for a starved thread.
    pub(crate) const STOP_LIMIT: Duration = DRAIN_TIMEOUT.saturating_add(Duration::from_secs(20));

    /// Waits (at most [`WAIT_LIMIT`]) until `cond` holds; panics naming `what` if it never does.
    pub(crate) fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT_LIMIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Joins `handle` if its thread ends within `limit`; panics otherwise (rather than hang the test).
    pub(crate) fn join_within<T>(handle: JoinHandle<T>, limit: Duration) -> T {
        let deadline = Instant::now() + limit;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the miner did not return within {limit:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
        handle.join().expect("miner thread")
    }
}
