//! `auth: passthrough`: a miner's `mining.authorize` goes to the pool under the miner's own worker name, the
//! pool's answer decides, and that worker's shares then carry its name upstream so the pool's per-worker stats
//! keep working. After a switch to another pool connection the workers are authorized there again.

use crate::protocol::json::{IdBuf, Msg};
use crate::protocol::pool_msg;
use crate::reactor::Reactor;
use crate::state::{Conn, Req};
use std::time::Instant;

impl Reactor {
    /// Sends miner `t`'s waiting authorize to its (ready) pool connection.
    pub(crate) fn forward_miner_authorize(&mut self, t: usize) {
        let Some(Conn::Miner(m)) = self.conns.get_mut(t) else {
            return;
        };
        let (Some(u), Some((worker, password))) = (m.upstream, m.session.pool_account.clone())
        else {
            return;
        };
        let gen = m.gen;
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        let Some(conn) = up.ready_conn() else {
            return;
        };
        let Some(id) = m.session.deferred_authorize.take() else {
            return;
        };
        let now = Instant::now();
        let timeout = self.proxies[up.proxy].timing.share;
        let pid = up.pending.insert(
            Req::MinerAuthorize { miner: t, gen, id },
            conn,
            now,
            Some(now + timeout),
        );
        let mut line = Vec::with_capacity(96);
        pool_msg::write_authorize(&mut line, pid, &worker, &password);
        self.queue(conn, &line);
    }

    /// The pool's answer to a passed-through authorize.
    pub(crate) fn miner_authorize_reply(&mut self, t: usize, gen: u64, id: &IdBuf, msg: &Msg<'_>) {
        let alive = matches!(self.conns.get(t), Some(Conn::Miner(m)) if m.gen == gen);
        if !alive {
            return;
        }
        if pool_msg::accepted(msg) {
            let _ = self.admit(t, id, b"true");
            return;
        }
        let mut line = Vec::with_capacity(96);
        pool_msg::write_authorize_refusal(&mut line, id.as_bytes(), msg);
        self.queue(t, &line);
    }

    /// Authorizes every passthrough worker of `u` on its new pool connection (their shares follow on it).
    pub(crate) fn reauthorize_workers(&mut self, u: usize) {
        let Some(up) = self.upstreams.get(u) else {
            return;
        };
        let Some(conn) = up.ready_conn() else { return };
        let accounts: Vec<(Box<str>, Box<str>)> = up
            .miners
            .iter()
            .filter_map(|&t| match self.conns.get(t) {
                Some(Conn::Miner(m)) if m.session.authorized() => m.session.pool_account.clone(),
                _ => None,
            })
            .collect();
        let now = Instant::now();
        let mut out = Vec::new();
        let up = &mut self.upstreams[u];
        for (worker, password) in accounts {
            let pid = up.pending.insert(Req::ReAuthorize, conn, now, None);
            pool_msg::write_authorize(&mut out, pid, &worker, &password);
        }
        if !out.is_empty() {
            self.queue(conn, &out);
        }
    }

    /// A share answered true already (`share_reply: immediate`) got its verdict: only the count changes.
    /// False when the miner is gone.
    pub(crate) fn note_share_answered(&mut self, t: usize, gen: u64) -> bool {
        match self.conns.get_mut(t) {
            Some(Conn::Miner(m)) if m.gen == gen => {
                if m.session.share_answered() {
                    self.close_miner(t, crate::close::Close::PeerClosed);
                }
                true
            }
            _ => false,
        }
    }
}
