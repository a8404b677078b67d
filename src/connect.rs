//! Opening pool connections: a pool's host name is resolved off the reactor thread ([`crate::resolve`]), then
//! each address it resolves to is tried in order until one connects, all within `handshake_timeout` per step.
//!
//! An attempt is one lookup (none for an IP literal) and then a non-blocking connect to each address in turn: a
//! connect refused, unreachable or not done within `handshake_timeout` moves on to the next address; only when
//! none is left does the attempt fail (back-off and failover as in `upstream`). A lookup not answered within
//! `handshake_timeout` fails the attempt too; its answer, if it ever comes, is dropped (matched by lookup id).

use crate::config::PoolUrl;
use crate::io::Io;
use crate::reactor::Reactor;
use crate::session::pool::PoolSession;
use crate::state::{Conn, Lookup, PoolConn, POOL_OUT_LIMIT};
use crate::stats::ProxyStats;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

impl Reactor {
    /// Starts a pool connection for upstream `u`, as its active connection or as a probe: at once for an IP
    /// literal, once a resolver thread has answered for a host name.
    pub(crate) fn connect(&mut self, u: usize, probe: bool, pool_idx: usize, url: PoolUrl) {
        if !self.upstreams.contains(u) {
            return;
        }
        if let Some(addr) = crate::resolve::literal(&url.host, url.port) {
            self.open_pool_conn(u, probe, pool_idx, url, VecDeque::from([addr]));
            return;
        }
        match self.resolver.start(&url.host, url.port, u) {
            Ok(id) => {
                self.upstreams[u].lookup = Some(Lookup {
                    id,
                    probe,
                    pool_idx,
                    url,
                    started: Instant::now(),
                });
            }
            Err(e) => {
                log::warn!("[{}] cannot resolve {}: {e}", self.name(u), url.host);
                self.attempt_failed(u, probe);
            }
        }
    }

    /// Takes the answers of finished lookups (called when the waker fires).
    pub(crate) fn on_resolved(&mut self) {
        while let Some(answer) = self.resolver.try_recv() {
            let u = answer.upstream;
            let Some(up) = self.upstreams.get_mut(u) else {
                continue;
            };
            if up.lookup.as_ref().map(|l| l.id) != Some(answer.id) {
                log::debug!("lookup {} answered after it was given up", answer.id);
                continue;
            }
            let Some(lookup) = up.lookup.take() else {
                continue;
            };
            match answer.result {
                Ok(addrs) => {
                    log::debug!(
                        "[{}] {} resolves to {addrs:?}",
                        self.name(u),
                        lookup.url.host
                    );
                    self.open_pool_conn(u, lookup.probe, lookup.pool_idx, lookup.url, addrs.into())
                }
                Err(e) => {
                    log::warn!("[{}] cannot resolve {}: {e}", self.name(u), lookup.url.host);
                    self.attempt_failed(u, lookup.probe);
                }
            }
        }
    }

    /// Gives up the lookup of `u` when it has taken `handshake_timeout`: the attempt fails.
    pub(crate) fn expire_lookup(&mut self, u: usize, now: Instant) {
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let limit = self.proxies[up.proxy].timing.handshake;
        let Some(lookup) = up
            .lookup
            .take_if(|l| now.duration_since(l.started) >= limit)
        else {
            return;
        };
        log::warn!(
            "[{}] cannot resolve {}: no answer within {}s",
            self.name(u),
            lookup.url.host,
            limit.as_secs_f64()
        );
        self.attempt_failed(u, lookup.probe);
    }

    /// Connects to the first of `addrs` that takes a connect and adds the pool connection to upstream `u`; the
    /// addresses after it stay for [`Reactor::connect_failed`].
    fn open_pool_conn(
        &mut self,
        u: usize,
        probe: bool,
        pool_idx: usize,
        url: PoolUrl,
        mut addrs: VecDeque<SocketAddr>,
    ) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let proxy = up.proxy;
        let tag = up.conns_opened;
        self.upstreams[u].conns_opened = tag.wrapping_add(1);
        let sv2 = match self.sv2_session(proxy, pool_idx, &url).transpose() {
            Ok(Some(mut sv2)) => {
                sv2.set_job_tag(tag);
                Some(sv2)
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!(
                    "[{}] cannot set up Stratum V2 pool {}:{}: {e}",
                    self.name(u),
                    url.host,
                    url.port
                );
                self.attempt_failed(u, probe);
                return;
            }
        };
        let t = self.conns.vacant_key();
        let (io, addr) = match self.pool_io(u, pool_idx, &url, &mut addrs, t) {
            Ok(got) => got,
            Err(e) => {
                log::warn!(
                    "[{}] cannot connect to {}:{}: {e}",
                    self.name(u),
                    url.host,
                    url.port
                );
                self.attempt_failed(u, probe);
                return;
            }
        };
        let account = self.proxies[proxy].accounts.get(pool_idx);
        let user = account.map_or_else(String::new, |a| a.user.clone());
        let password = account.map_or_else(String::new, |a| a.password.clone());
        let dialect = self.proxies[proxy].dialect;
        let session = PoolSession::new(dialect, pool_idx, url, user, password, Instant::now());
        let key = self.conns.insert(Conn::Pool(PoolConn {
            io,
            upstream: u,
            session,
            addr,
            next_addrs: addrs,
            sv2,
        }));
        debug_assert_eq!(key, t, "the socket was registered under the slot's key");
        ProxyStats::inc(&self.proxies[proxy].stats.pool_connections);
        let up = &mut self.upstreams[u];
        let retry = up.ever_ready || up.failover.attempts > 0;
        self.proxies[proxy]
            .stats
            .pool(pool_idx)
            .on_connecting(retry);
        if probe {
            up.probe = Some(t);
        } else {
            up.active = Some(t);
        }
    }

    /// Pool connection `t` could not connect (refused, unreachable, timed out): the next address of its name
    /// gets a turn under the same token; with none left the connection fails for `reason`.
    pub(crate) fn connect_failed(&mut self, t: usize, reason: &str) {
        let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
            return;
        };
        if pc.next_addrs.is_empty() {
            self.pool_conn_failed(t, reason);
            return;
        }
        let _ = self.poll.registry().deregister(&mut pc.io.socket);
        let (u, addr) = (pc.upstream, pc.addr);
        let (pool_idx, url) = (pc.session.pool_idx, pc.session.url.clone());
        let mut addrs = std::mem::take(&mut pc.next_addrs);
        log::info!(
            "[{}] pool {}:{} at {addr}: {reason}; trying its next address",
            self.name(u),
            url.host,
            url.port
        );
        match self.pool_io(u, pool_idx, &url, &mut addrs, t) {
            Ok((io, addr)) => {
                if let Some(Conn::Pool(pc)) = self.conns.get_mut(t) {
                    pc.io = io;
                    pc.addr = addr;
                    pc.next_addrs = addrs;
                    pc.session.started = Instant::now();
                }
            }
            Err(e) => self.pool_conn_failed(t, &e),
        }
    }

    /// A registered socket (under token `t`) to the first of `addrs` that takes a non-blocking connect, with
    /// its TLS session when the pool wants one, and that address; the addresses tried are taken off `addrs`.
    fn pool_io(
        &mut self,
        u: usize,
        pool_idx: usize,
        url: &PoolUrl,
        addrs: &mut VecDeque<SocketAddr>,
        t: usize,
    ) -> Result<(Io, SocketAddr), String> {
        let mut last = "no address".to_string();
        let (mut socket, addr) = loop {
            let Some(addr) = addrs.pop_front() else {
                return Err(last);
            };
            match mio::net::TcpStream::connect(addr) {
                Ok(s) => break (s, addr),
                Err(e) => {
                    log::debug!("[{}] connect to {addr} failed: {e}", self.name(u));
                    last = format!("{addr}: {e}");
                }
            }
        };
        self.poll
            .registry()
            .register(
                &mut socket,
                Token(t),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("cannot register pool socket: {e}"))?;
        let _ = socket.set_nodelay(true);
        let mut io = Io::new(socket, POOL_OUT_LIMIT);
        io.want_write = true;
        io.keep_capacity = 256 * 1024;
        if url.tls {
            let Some(up) = self.upstreams.get(u) else {
                return Err("upstream gone".into());
            };
            let session = self.proxies[up.proxy]
                .pool_tls
                .get(pool_idx)
                .cloned()
                .flatten()
                .ok_or_else(|| "no TLS config for this pool".to_string())
                .and_then(|cfg| {
                    let name = crate::tls::server_name(&url.host)?;
                    rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())
                });
            match session {
                Ok(c) => io.set_tls(rustls::Connection::Client(c)),
                Err(e) => {
                    let _ = self.poll.registry().deregister(&mut io.socket);
                    return Err(format!("TLS setup failed: {e}"));
                }
            }
        }
        Ok((io, addr))
    }
}
