//! A scripted pool for tests that need a pool to misbehave: it accepts the proxy's connection, answers the
//! handshake, and then sends whatever the test writes.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub struct FakePool {
    listener: TcpListener,
}

pub struct FakeConn {
    reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl FakePool {
    pub fn new() -> FakePool {
        FakePool {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Accepts the proxy's next connection (within 10 s) and answers its handshake with extranonce1 `e1` and
    /// extranonce2 size `n`, then sends a difficulty and a job.
    pub fn accept(&self, e1: &str, n: u64) -> FakeConn {
        self.listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let s = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("the proxy never connected: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut c = FakeConn {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        let mut answered = 0;
        while answered < 3 {
            let v = c.read(Duration::from_secs(5)).expect("handshake request");
            let id = v["id"].clone();
            match v["method"].as_str() {
                Some("mining.configure") => {
                    c.send(&json!({"id": id, "result": null, "error": [20, "unknown", null]}))
                }
                Some("mining.subscribe") => {
                    c.send(&json!({"id": id, "result": [[["mining.notify", "1"]], e1, n], "error": null}));
                    answered += 1;
                }
                Some("mining.extranonce.subscribe") | Some("mining.authorize") => {
                    c.send(&json!({"id": id, "result": true, "error": null}));
                    answered += 1;
                }
                _ => {}
            }
        }
        c.send(&json!({"id": null, "method": "mining.set_difficulty", "params": [0.001]}));
        c.send(&c.job("j1"));
        c
    }
}

impl FakeConn {
    /// A well-formed job.
    pub fn job(&self, id: &str) -> Value {
        json!({"id": null, "method": "mining.notify", "params": [
            id, "00".repeat(32), "01000000", "ffffffff", [], "20000000", "1d00ffff", "5f5e1000", true]})
    }

    pub fn send(&mut self, v: &Value) {
        self.send_raw(format!("{v}\n").as_bytes());
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        let _ = self.writer.write_all(b);
    }

    /// Next JSON line from the proxy, or None after `limit`.
    pub fn read(&mut self, limit: Duration) -> Option<Value> {
        let start = Instant::now();
        let mut line = String::new();
        while start.elapsed() < limit {
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) if line.ends_with('\n') => return serde_json::from_str(line.trim()).ok(),
                _ => {}
            }
        }
        None
    }
}
