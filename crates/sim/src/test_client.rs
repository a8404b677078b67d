//! A raw JSON-lines Stratum client for the simulated pools' unit tests: it sends requests, matches replies
//! by id and keeps the notifications that arrive while it waits for a reply.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read waits before the test fails (an upper bound for a starved pool on a loaded machine; no
/// test waits it out when it passes).
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A raw JSON-lines Stratum client; keeps notifications that arrive while it waits for a reply.
pub(crate) struct Client {
    pub(crate) reader: BufReader<TcpStream>,
    pub(crate) queued: VecDeque<Value>,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        Client {
            reader: BufReader::new(stream),
            queued: VecDeque::new(),
        }
    }

    pub(crate) fn send_raw(&mut self, text: &str) {
        let mut stream = self.reader.get_ref();
        stream.write_all(text.as_bytes()).expect("write");
    }

    pub(crate) fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => Some(serde_json::from_str(&line).expect("pool sent JSON")),
            _ => None,
        }
    }

    /// Sends a request and returns its reply (matched by id).
    pub(crate) fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        let msg = json!({"id": id, "method": method, "params": params});
        self.send_raw(&format!("{msg}\n"));
        for _ in 0..100 {
            let msg = self.recv().expect("reply before timeout");
            if msg.get("method").is_none() && msg.get("id") == Some(&id) {
                return msg;
            }
            self.queued.push_back(msg);
        }
        panic!("no reply to {id}");
    }

    /// The next message with `method` (queued ones first).
    pub(crate) fn notification(&mut self, method: &str) -> Value {
        if let Some(i) = self.queued.iter().position(|m| m["method"] == method) {
            return self.queued.remove(i).unwrap_or_default()["params"].clone();
        }
        for _ in 0..100 {
            let msg = self.recv().expect("notification before timeout");
            if msg["method"] == method {
                return msg["params"].clone();
            }
            self.queued.push_back(msg);
        }
        panic!("no {method}");
    }

    /// Sends `mining.submit` with `params` (id 100) and returns its reply.
    pub(crate) fn submit(&mut self, params: Value) -> Value {
        self.call(json!(100), "mining.submit", params)
    }
}

/// The error code of a reply (0 when there is none).
pub(crate) fn code(reply: &Value) -> i64 {
    reply["error"][0].as_i64().unwrap_or(0)
}
