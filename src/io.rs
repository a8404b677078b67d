//! A non-blocking socket with its unfinished input line and its bounded output queue.
//!
//! Output is written straight to the socket when nothing is queued (the common case, so broadcast bytes go
//! from one shared buffer into every socket without a copy); only what the kernel does not take is queued,
//! up to a limit past which the peer is treated as not reading.

use mio::net::TcpStream;
use std::io::{self, Read, Write};

/// Outcome of queueing or writing.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Everything was written or queued within the limit.
    Ok,
    /// The queue would exceed its limit: the peer does not read.
    Overflow,
    /// The socket failed.
    Failed,
}

/// One connection's socket and buffers.
#[derive(Debug)]
pub struct Io {
    pub socket: TcpStream,
    /// The unfinished line of input (empty most of the time).
    pub partial: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    out_limit: usize,
    /// Writable interest is registered (output is queued).
    pub want_write: bool,
    /// Queued output waits for a flush at the end of this event round.
    pub dirty: bool,
}

impl Io {
    /// Wraps a connected (or connecting) socket.
    pub fn new(socket: TcpStream, out_limit: usize) -> Io {
        Io {
            socket,
            partial: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            out_limit,
            want_write: false,
            dirty: false,
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Appends to the output queue; the caller flushes later (replies batch per read).
    pub fn queue(&mut self, bytes: &[u8]) -> Sent {
        if self.queued() + bytes.len() > self.out_limit {
            return Sent::Overflow;
        }
        self.out.extend_from_slice(bytes);
        self.dirty = true;
        Sent::Ok
    }

    /// Writes `bytes` now if nothing is queued, queueing only the rest; else appends to the queue.
    pub fn send_now(&mut self, bytes: &[u8]) -> Sent {
        if self.queued() > 0 {
            return self.queue(bytes);
        }
        let mut done = 0;
        while done < bytes.len() {
            match self.socket.write(&bytes[done..]) {
                Ok(0) => return Sent::Failed,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Sent::Failed,
            }
        }
        if done < bytes.len() {
            let r = self.queue(&bytes[done..]);
            self.dirty = true;
            return r;
        }
        Sent::Ok
    }

    /// Writes queued output; `Ok(true)` when the queue is empty afterwards.
    pub fn flush(&mut self) -> io::Result<bool> {
        self.dirty = false;
        while self.out_pos < self.out.len() {
            match self.socket.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > 2048 {
            self.out = Vec::new();
        }
        Ok(true)
    }

    /// Reads what the socket has into `buf`: `Ok(0)` at end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}
