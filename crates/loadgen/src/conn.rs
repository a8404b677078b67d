//! Socket plumbing shared by the miners and the fast pool: a non-blocking connect from a chosen loopback
//! source address, reading whole lines out of an edge-triggered socket, and writing with a carry-over buffer.

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

/// Longest line accepted from a peer; a longer one is an error.
pub const MAX_LINE: usize = 256 * 1024;

/// First source port the miners bind explicitly: the kernel's own choice of a port for a bind to a given
/// address scans every bound port, which costs O(n) per connect with tens of thousands of sockets.
pub const FIRST_SOURCE_PORT: u32 = 10_000;

/// Starts a non-blocking connect to `to` from `from`, with TCP_NODELAY. When `from` cannot be bound or
/// connected from (its port is taken, by another program or a TIME_WAIT), the kernel picks the port.
pub fn connect(to: SocketAddr, from: Option<SocketAddr>) -> io::Result<TcpStream> {
    match try_connect(to, from) {
        Err(_) if from.is_some_and(|f| f.port() != 0) => {
            try_connect(to, from.map(|f| SocketAddr::new(f.ip(), 0)))
        }
        r => r,
    }
}

fn try_connect(to: SocketAddr, from: Option<SocketAddr>) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    if let Some(a) = from {
        s.bind(&a.into())?;
    }
    match s.connect(&to.into()) {
        Ok(()) => {}
        // EINPROGRESS: the usual answer of a non-blocking connect.
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

/// The source address of connection number `i`: 127.0.0.2 for the first `per_source`, then 127.0.0.3, ...
/// (so that many connections to one address fit in the port range), each on its own port.
pub fn source_for(i: u32, per_source: u32) -> SocketAddr {
    let per = per_source.clamp(1, 65_535 - FIRST_SOURCE_PORT);
    let k = 2 + i / per;
    let ip = IpAddr::from([127, 0, (k >> 8) as u8, (k & 0xff) as u8]);
    SocketAddr::new(ip, (FIRST_SOURCE_PORT + i % per) as u16)
}

/// Closes with a reset instead of a FIN: a load generator that closes 65,536 sockets should not leave as
/// many TIME_WAIT entries (and taken ports) behind for the next run.
pub fn abort(sock: &TcpStream) {
    let _ = socket2::SockRef::from(sock).set_linger(Some(std::time::Duration::ZERO));
}

/// Reads everything the socket has (until WouldBlock), calling `f` for each complete line (without its
/// newline). An unfinished line is kept in `tail`. Ok(true) on end of stream.
pub fn read_lines(
    sock: &mut TcpStream,
    tail: &mut Vec<u8>,
    scratch: &mut [u8],
    mut f: impl FnMut(&[u8]),
) -> io::Result<bool> {
    loop {
        let n = match sock.read(scratch) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut data = &scratch[..n];
        if !tail.is_empty() {
            match memchr::memchr(b'\n', data) {
                None => {
                    tail.extend_from_slice(data);
                    if tail.len() > MAX_LINE {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
                    }
                    continue;
                }
                Some(i) => {
                    tail.extend_from_slice(&data[..i]);
                    f(trim_cr(tail));
                    tail.clear();
                    data = &data[i + 1..];
                }
            }
        }
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', data) {
            f(trim_cr(&data[start..i]));
            start = i + 1;
        }
        tail.extend_from_slice(&data[start..]);
        if tail.len() > MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
    }
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Writes as much of `out` as the socket takes, keeping the rest in `out` for the next writable event.
pub fn flush(sock: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    let mut done = 0;
    while done < out.len() {
        match sock.write(&out[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.drain(..done);
    Ok(())
}

/// Sends `bytes`: straight to the socket when nothing is queued, the part the kernel does not take (and
/// everything, when something is queued) kept in `out`.
pub fn send(sock: &mut TcpStream, out: &mut Vec<u8>, bytes: &[u8]) -> io::Result<()> {
    if !out.is_empty() {
        out.extend_from_slice(bytes);
        return flush(sock, out);
    }
    let mut done = 0;
    while done < bytes.len() {
        match sock.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.extend_from_slice(&bytes[done..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_spread() {
        assert_eq!(source_for(0, 100), "127.0.0.2:10000".parse().unwrap());
        assert_eq!(source_for(250, 100), "127.0.0.4:10050".parse().unwrap());
        assert_eq!(
            source_for(300 * 100, 100),
            "127.0.1.46:10000".parse().unwrap()
        );
    }
}
