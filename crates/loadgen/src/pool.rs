//! The fast pool: a mio Stratum pool (V1 or Equihash) that lives on the load generator's reactor. It answers
//! configure / subscribe / extranonce.subscribe / authorize, accepts every well-formed submit with `true`
//! without hashing (so the load generator never becomes CPU-bound on SHA-256 or Equihash), sends jobs on
//! demand, and reports when each share arrived and was answered, for the latency split.

use super::args::Dialect;
use super::clock::Clock;
use super::conn;
use super::line;
use super::wire;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io;
use std::net::SocketAddr;

/// Token of the pool's listener.
pub const LISTENER: Token = Token(0);
/// Tokens of pool connections start here (miners' tokens start at `super::miners::TOKEN_BASE`).
pub const CONN_BASE: usize = 1;

/// A share the pool answered: whose (the miner number carried in the share), when its line was read, and
/// when the answer was handed to the kernel.
#[derive(Clone, Copy, Debug)]
pub struct ShareSeen {
    pub miner: u32,
    pub rx_ns: u64,
    pub tx_ns: u64,
}

/// Counters of the pool.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PoolCounters {
    pub connections_total: u64,
    pub connections_open: u64,
    /// Connections that subscribed and authorized (they get jobs).
    pub working: u64,
    pub submits: u64,
    /// Lines that were not a JSON-RPC request the pool knows.
    pub unreadable: u64,
}

struct PoolConn {
    sock: TcpStream,
    tail: Vec<u8>,
    out: Vec<u8>,
    subscribed: bool,
    authorized: bool,
    /// Shares read in this round, answered at the flush: (miner, read time).
    answered: Vec<(u32, u64)>,
}

struct Ctx {
    dialect: Dialect,
    merkle_branches: usize,
    difficulty_line: &'static [u8],
    next_e1: u32,
    notify_line: Vec<u8>,
    counters: PoolCounters,
}

/// The pool.
pub struct FastPool {
    listener: TcpListener,
    conns: Slab<PoolConn>,
    ctx: Ctx,
    addr: SocketAddr,
    /// When job n was sent (index n; job 0 is the one every connection gets first).
    job_sent_ns: Vec<u64>,
}

impl FastPool {
    /// Binds `addr` and registers the listener.
    pub fn bind(
        addr: SocketAddr,
        registry: &Registry,
        dialect: Dialect,
        merkle_branches: usize,
        every_share_meets: bool,
    ) -> io::Result<FastPool> {
        let mut listener = listen(addr)?;
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        let addr = listener.local_addr()?;
        Ok(FastPool {
            listener,
            conns: Slab::new(),
            ctx: Ctx {
                dialect,
                merkle_branches,
                difficulty_line: wire::difficulty(dialect, every_share_meets),
                next_e1: 0x1000_0000,
                notify_line: wire::notify(dialect, 0, merkle_branches),
                counters: PoolCounters::default(),
            },
            addr,
            job_sent_ns: vec![0],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counters(&self) -> &PoolCounters {
        &self.ctx.counters
    }

    /// The number of the latest job.
    pub fn job(&self) -> u32 {
        (self.job_sent_ns.len() - 1) as u32
    }

    /// When job `n` was sent, if it was.
    pub fn job_sent(&self, n: u32) -> Option<u64> {
        self.job_sent_ns.get(n as usize).copied().filter(|&t| t > 0)
    }

    /// Accepts every waiting connection.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let token = Token(CONN_BASE + entry.key());
                    if registry
                        .register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        continue;
                    }
                    entry.insert(PoolConn {
                        sock,
                        tail: Vec::new(),
                        out: Vec::new(),
                        subscribed: false,
                        authorized: false,
                        answered: Vec::new(),
                    });
                    self.ctx.counters.connections_total += 1;
                    self.ctx.counters.connections_open += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors or similar: leave the rest in the backlog for now.
                    log::warn!("pool: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Serves an event on connection `key`: reads and answers every line, and appends the shares it answered
    /// to `seen`.
    pub fn on_event(
        &mut self,
        key: usize,
        registry: &Registry,
        clock: &Clock,
        scratch: &mut [u8],
        seen: &mut Vec<ShareSeen>,
    ) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let ctx = &mut self.ctx;
        let PoolConn {
            sock,
            tail,
            out,
            subscribed,
            authorized,
            answered,
        } = c;
        let read = conn::read_lines(sock, tail, scratch, |l| {
            let was_working = *subscribed && *authorized;
            handle_line(ctx, l, out, subscribed, authorized, answered, clock);
            if !was_working && *subscribed && *authorized {
                ctx.counters.working += 1;
                out.extend_from_slice(ctx.difficulty_line);
                out.extend_from_slice(&ctx.notify_line);
            }
        });
        let flushed = conn::flush(sock, out);
        let tx = clock.now();
        seen.extend(answered.drain(..).map(|(miner, rx_ns)| ShareSeen {
            miner,
            rx_ns,
            tx_ns: tx,
        }));
        if !matches!(read, Ok(false)) || flushed.is_err() {
            self.close(key, registry);
        }
    }

    fn close(&mut self, key: usize, registry: &Registry) {
        let mut c = self.conns.remove(key);
        let _ = registry.deregister(&mut c.sock);
        self.ctx.counters.connections_open -= 1;
        if c.subscribed && c.authorized {
            self.ctx.counters.working -= 1;
        }
    }

    /// Sends a new job (clean) to every working connection and returns its number. The send time is taken
    /// before the first write.
    pub fn broadcast_notify(&mut self, clock: &Clock, registry: &Registry) -> u32 {
        let n = self.job_sent_ns.len() as u32;
        self.ctx.notify_line = wire::notify(self.ctx.dialect, n, self.ctx.merkle_branches);
        self.job_sent_ns.push(clock.now().max(1));
        let mut dead = Vec::new();
        for (key, c) in self.conns.iter_mut() {
            if c.subscribed
                && c.authorized
                && conn::send(&mut c.sock, &mut c.out, &self.ctx.notify_line).is_err()
            {
                dead.push(key);
            }
        }
        for key in dead {
            self.close(key, registry);
        }
        n
    }
}

/// A listener with the same backlog as fastproxy's (4096): in direct mode thousands of miners connect at
/// once, and a SYN dropped for a full queue costs a 1 s retransmit.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(TcpListener::from_std(s.into()))
}

/// Answers one line from a pool client.
fn handle_line(
    ctx: &mut Ctx,
    l: &[u8],
    out: &mut Vec<u8>,
    subscribed: &mut bool,
    authorized: &mut bool,
    answered: &mut Vec<(u32, u64)>,
    clock: &Clock,
) {
    let method = line::field(l, "method").and_then(line::string);
    let id = line::field(l, "id").and_then(line::scalar);
    let (Some(method), Some(id)) = (method, id) else {
        // A reply (to nothing we asked) or garbage.
        ctx.counters.unreadable += u64::from(method.is_some() || !l.starts_with(b"{"));
        return;
    };
    match method {
        b"mining.submit" => {
            ctx.counters.submits += 1;
            let params = line::field(l, "params").unwrap_or(b"");
            let carrier = match ctx.dialect {
                Dialect::Stratum => 4,
                Dialect::Equihash => 3,
            };
            let miner = line::nth_scalar(params, carrier)
                .and_then(line::string)
                .filter(|s| s.len() >= 8)
                .and_then(|s| line::hex_u64(&s[s.len() - 8..]));
            match miner {
                Some(m) => {
                    answered.push((m as u32, clock.now()));
                    wire::result(out, id, b"true");
                }
                None => {
                    ctx.counters.unreadable += 1;
                    wire::error(out, id, "malformed share");
                }
            }
        }
        b"mining.subscribe" => {
            *subscribed = true;
            ctx.next_e1 = ctx.next_e1.wrapping_add(1);
            wire::subscribe_result(out, ctx.dialect, id, ctx.next_e1);
        }
        b"mining.authorize" => {
            *authorized = true;
            wire::result(out, id, b"true");
        }
        b"mining.configure" if ctx.dialect == Dialect::Stratum => wire::result(
            out,
            id,
            br#"{"version-rolling":true,"version-rolling.mask":"1fffe000"}"#,
        ),
        b"mining.extranonce.subscribe" | b"mining.suggest_difficulty" => {
            wire::result(out, id, b"true")
        }
        _ => {
            ctx.counters.unreadable += 1;
            wire::error(out, id, "unknown method");
        }
    }
}
