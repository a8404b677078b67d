//! A non-blocking socket with its unfinished input line and its bounded output queue.
//!
//! Output is written straight to the socket when nothing is queued (the common case, so broadcast bytes go
//! from one shared buffer into every socket without a copy); only what the kernel does not take is queued,
//! up to a limit past which the peer is treated as not reading.
//!
//! With TLS, a rustls connection sits between the queue and the socket: plaintext goes from the queue into
//! rustls (whose own buffer is bounded) and records from rustls to the socket; the caller sees the same
//! interface, and write interest follows rustls' `wants_write`.

use mio::net::TcpStream;
use std::io::{self, Read, Write};

/// Plaintext rustls may hold for sending, beyond the connection's own queue.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

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
    /// Output capacity kept when the queue empties (small for miners, larger for busy pool connections).
    pub keep_capacity: usize,
    /// The TLS session, when this connection is encrypted.
    pub tls: Option<Box<rustls::Connection>>,
    /// Raw bytes read from the socket ahead of time (after a PROXY protocol header), consumed before the socket.
    pub pre: Vec<u8>,
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
            keep_capacity: 2048,
            tls: None,
            pre: Vec::new(),
        }
    }

    /// Encrypts this connection with `conn` (a fresh rustls client or server session).
    pub fn set_tls(&mut self, mut conn: rustls::Connection) {
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        self.tls = Some(Box::new(conn));
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Appends to the output queue; the caller flushes later (replies batch per read).
    pub fn queue(&mut self, bytes: &[u8]) -> Sent {
        self.queue_with(|out| out.extend_from_slice(bytes))
    }

    /// Appends what `write` writes straight into the output queue (no intermediate buffer); undone when the
    /// queue would exceed its limit.
    pub fn queue_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Sent {
        let before = self.out.len();
        write(&mut self.out);
        if self.out.len() - self.out_pos > self.out_limit {
            self.out.truncate(before);
            return Sent::Overflow;
        }
        self.dirty = true;
        Sent::Ok
    }

    /// Writes `bytes` now if nothing is queued, queueing only the rest; else appends to the queue.
    pub fn send_now(&mut self, bytes: &[u8]) -> Sent {
        if self.queued() > 0 || self.tls.is_some() {
            let r = self.queue(bytes);
            if r == Sent::Ok && self.flush().is_err() {
                return Sent::Failed;
            }
            return r;
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
        if self.tls.is_some() {
            return self.flush_tls();
        }
        while self.out_pos < self.out.len() {
            match self.socket.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.reset_out();
        Ok(true)
    }

    fn reset_out(&mut self) {
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > self.keep_capacity {
            self.out = Vec::new();
        }
    }

    fn flush_tls(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(true);
        };
        loop {
            while self.out_pos < self.out.len() {
                let n = tls.writer().write(&self.out[self.out_pos..])?;
                if n == 0 {
                    break;
                }
                self.out_pos += n;
            }
            let mut wrote = false;
            while tls.wants_write() {
                match tls.write_tls(&mut self.socket) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => wrote = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.out_pos >= self.out.len() {
                self.reset_out();
                return Ok(true);
            }
            if !wrote {
                // rustls holds no records yet takes no plaintext (handshake under way): wait for the peer.
                return Ok(false);
            }
        }
    }

    /// Reads what the socket has into `buf` (plaintext, with TLS): `Ok(0)` at end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tls.is_some() {
            return self.read_tls(buf);
        }
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pre[..n]);
            self.pre.drain(..n);
            return Ok(n);
        }
        loop {
            match self.socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Raw bytes from the socket, bypassing TLS (for a PROXY protocol header, which comes before TLS).
    pub fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn read_tls(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(0);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let got = if self.pre.is_empty() {
                tls.read_tls(&mut self.socket)
            } else {
                let mut pre = &self.pre[..];
                let r = tls.read_tls(&mut pre);
                let used = self.pre.len() - pre.len();
                self.pre.drain(..used);
                r
            };
            match got {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // Send the alert rustls prepared, best effort, then fail.
                        let _ = tls.write_tls(&mut self.socket);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("TLS error: {e}"),
                        ));
                    }
                    if tls.wants_write() {
                        self.dirty = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
