//! Driving a Stratum V2 pool connection (an `impl Reactor` block): its bytes read into its [`Sv2Pool`], the
//! steps that come out applied to the upstream and its miners as a V1 pool's events are, and shares sent.
//!
//! A pool connection is SV2 when its pool's URL is `stratum2+tcp://`; it then has `PoolConn::sv2`, and the few
//! places that differ (`pool_driver`: connected, readable, `forward_share`) hand it here. Everything else
//! (phases, the handshake timeout, draining, failover, the extranonce split, pending shares and their
//! timeouts) is the V1 path's, fed from [`Sv2Step`]s.

use crate::close::Refusal;
use crate::config::PoolUrl;
use crate::protocol::pool_msg;
use crate::protocol::stratum::Submit;
use crate::reactor::Reactor;
use crate::session::pool::{Granted, Handshake, PoolPhase};
use crate::session::sv2_pool::{Sv2Pool, Sv2Step, SV2_VERSION_MASK};
use crate::state::Conn;
use crate::stats::Reject;
use crate::validate::Verdict;
use std::time::Duration;

/// Why a V1 share going to an SV2 connection is refused before any local acceptance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Sv2Refusal {
    /// Its job is not the connection's (an earlier connection's, in flight at a switch): stale.
    UnknownJob,
    /// It rolls version bits of a job that does not allow it (the pool would hash another version).
    FixedVersion,
}

impl Sv2Refusal {
    /// What the miner is told.
    pub(crate) fn refusal(self) -> Refusal<'static> {
        match self {
            Sv2Refusal::UnknownJob => {
                Refusal::of_verdict(&Verdict::Stale).unwrap_or(Refusal::NotForwarded)
            }
            Sv2Refusal::FixedVersion => Refusal::Judged {
                code: 20,
                why: FIXED_VERSION_REFUSAL,
            },
        }
    }
}

/// What a miner hears for a share rolling version bits of an SV2 job that does not allow version rolling.
const FIXED_VERSION_REFUSAL: &str =
    "version rolling not allowed: the pool's job fixes the block version, version bits must be 00000000";

impl Reactor {
    /// Whether pool connection `t` speaks Stratum V2.
    pub(crate) fn is_sv2_conn(&self, t: usize) -> bool {
        matches!(self.conns.get(t), Some(Conn::Pool(pc)) if pc.sv2.is_some())
    }

    /// The SV2 session for a connection of proxy `p` to its pool `pool_idx` at `url`: None for a V1 pool.
    pub(crate) fn sv2_session(
        &self,
        p: usize,
        pool_idx: usize,
        url: &PoolUrl,
    ) -> Option<Result<Box<Sv2Pool>, String>> {
        let cfg = &self.proxies[p].cfg;
        // Every route's pools, one after the other (`pool_idx` indexes that list).
        let pool = self.proxies[p]
            .accounts
            .get(pool_idx)
            .filter(|pool| pool.is_sv2())?;
        let key = match pool.authority_key() {
            Some(Ok(key)) => key,
            Some(Err(e)) => return Some(Err(e)),
            None => return Some(Err("no authority_public_key".into())),
        };
        let refused = self.proxies[p]
            .sv2_rolling_refused
            .contains(&(url.host.clone(), url.port));
        let session = Sv2Pool::with_rolling(
            &key,
            &pool.user,
            &url.host,
            url.port,
            cfg.min_extranonce2_size,
            !refused,
        );
        Some(session.map(Box::new).map_err(|e| e.to_string()))
    }

    /// Connected: an SV2 connection starts its Noise handshake (false for a V1 one).
    pub(crate) fn sv2_start(&mut self, t: usize) -> bool {
        let Some(pc) = self.pool_conn(t) else {
            return false;
        };
        if pc.sv2.is_none() {
            return false;
        }
        pc.session.phase = PoolPhase::Handshake(Handshake::default());
        let u = pc.upstream;
        // The channel opens with the upstream's measured hashrate (miners kept across a failover or reconnect).
        let rate = self
            .upstreams
            .get(u)
            .map_or(0.0, |up| up.rate.hashes_per_second());
        if let Some(s) = self.pool_conn(t).and_then(|pc| pc.sv2.as_mut()) {
            s.set_nominal_hash_rate(rate);
        }
        log::debug!("[{}] connected, Noise handshake", self.name(u));
        self.sv2_pump(t);
        true
    }

    /// Pool connection `t` (SV2) is readable: read until the socket would block, handling every step.
    pub(crate) fn on_sv2_readable(&mut self, t: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(pc) = self.pool_conn(t) else { return };
            let failed = match pc.io.read(&mut buf) {
                Ok(0) => Some(match pc.sv2.as_ref().map(|s| s.client.at_eof()) {
                    Some(Err(e)) => format!("pool closed the connection: {e}"),
                    _ => "pool closed the connection".to_string(),
                }),
                Ok(n) => {
                    if let Some(s) = pc.sv2.as_mut() {
                        s.client.feed(&buf[..n]);
                    }
                    self.count_pool_bytes(t, n, true);
                    self.sv2_steps(t)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => Some(format!("read error: {e}")),
            };
            if let Some(why) = failed {
                self.pool_conn_failed(t, why);
                return;
            }
        }
    }

    /// Handles the steps of the bytes fed so far; Some(why) when the connection must close.
    fn sv2_steps(&mut self, t: usize) -> Option<String> {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let mut result = None;
        while let Some(step) = self
            .pool_conn(t)
            .and_then(|pc| pc.sv2.as_mut())
            .and_then(|s| s.next_step(now_unix))
        {
            if let Err(why) = self.sv2_apply(t, step) {
                result = Some(why);
                break;
            }
        }
        self.sv2_pump(t);
        result
    }

    /// Moves what the SV2 client has to send into the connection's output queue (no copy in between).
    fn sv2_pump(&mut self, t: usize) {
        let Some(pc) = self.pool_conn(t) else { return };
        let Some(s) = pc.sv2.as_mut() else { return };
        let n = s.client.output().len();
        if n == 0 {
            return;
        }
        let sent = pc
            .io
            .queue_with(|out| out.extend_from_slice(s.client.output()));
        s.client.advance_output(n);
        if sent == crate::io::Sent::Ok {
            self.count_pool_bytes(t, n, false);
            self.mark_dirty(t);
        } else {
            self.close_conn(t, crate::close::Close::OutputFull);
        }
    }

    /// Applies one step of pool connection `t`; Err(why) when the connection must close.
    fn sv2_apply(&mut self, t: usize, step: Sv2Step) -> Result<(), String> {
        let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
            return Ok(());
        };
        let (u, pool_idx) = (pc.upstream, pc.session.pool_idx);
        let Some(up) = self.upstreams.get(u) else {
            return Ok(());
        };
        let live = up.active == Some(t) && up.ready;
        let validates = self.proxies[up.proxy].cfg.validates();
        let stats = self.proxies[up.proxy].stats.clone();
        match step {
            Sv2Step::Nothing => {}
            Sv2Step::Ready {
                e1,
                n,
                target,
                difficulty,
                line,
            } => {
                let ss = &mut pc.session;
                ss.difficulty_line = line;
                ss.pool_target = target;
                ss.pool_difficulty = difficulty;
                ss.phase = PoolPhase::Ready(Granted {
                    e1,
                    n,
                    mask: Some(SV2_VERSION_MASK),
                });
                stats.pool(pool_idx).set_difficulty(difficulty);
                if let Some(s) = pc.sv2.as_ref() {
                    let nominal = s.nominal_hash_rate();
                    self.upstreams[u]
                        .rate
                        .opened(nominal, std::time::Instant::now());
                }
                self.pool_ready(t);
            }
            Sv2Step::Job { line, job, rolling } => {
                self.sv2_job_mask(t, rolling);
                let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
                    return Ok(());
                };
                let ss = &mut pc.session;
                ss.notify_line.clone_from(&line);
                if validates {
                    ss.last_job = Some(job.clone());
                }
                let target = ss.pool_target;
                stats.pool(pool_idx).on_job();
                if live {
                    // Tagged with the upstream in an entry with several routes, as a V1 pool's job.
                    let line = self.job_line_for(u, line);
                    let up = &mut self.upstreams[u];
                    up.notify_line.clone_from(&line);
                    if validates {
                        up.book.add(job, target);
                    }
                    self.broadcast(u, &line, |m| m.gets_jobs());
                }
            }
            Sv2Step::Target {
                line,
                difficulty,
                target,
            } => {
                let ss = &mut pc.session;
                ss.difficulty_line.clone_from(&line);
                ss.pool_target = target;
                ss.pool_difficulty = difficulty;
                stats.pool(pool_idx).set_difficulty(difficulty);
                if live {
                    self.on_pool_target(u, line, Some(difficulty));
                }
            }
            Sv2Step::Extranonce { e1, n } => {
                if let PoolPhase::Ready(g) | PoolPhase::Draining(g) = &mut pc.session.phase {
                    (g.e1, g.n) = (e1.clone(), n);
                }
                if live {
                    self.change_extranonce(u, e1, n);
                }
            }
            Sv2Step::Reconnect { host, port } => {
                self.pool_reconnect_request(u, host.as_deref(), port, Duration::ZERO);
            }
            Sv2Step::Accepted(pid) => self.sv2_verdict(u, t, pid, None),
            Sv2Step::Rejected { pid, code } => self.sv2_verdict(u, t, pid, Some(&code)),
            Sv2Step::Ignored(why) => log::warn!("[{}] pool: {why}; ignored", self.name(u)),
            Sv2Step::RollingRefused { why } => {
                let key = (pc.session.url.host.clone(), pc.session.url.port);
                log::warn!(
                    "[{}] pool {}:{}: {why}; reconnecting at once without requiring it",
                    self.name(u),
                    key.0,
                    key.1
                );
                let up = &mut self.upstreams[u];
                up.failover.retry_now = true;
                self.proxies[up.proxy].sv2_rolling_refused.insert(key);
                return Err(why);
            }
            Sv2Step::Fatal { why, skip_pool } => {
                if skip_pool {
                    self.upstreams[u].failover.skip_pool = true;
                }
                return Err(why);
            }
        }
        Ok(())
    }

    /// Once a second: every upstream's hashrate sampled; an SV2 upstream's ready channel gets an UpdateChannel
    /// when its estimate moved more than 20 % from the value last sent, at most once per `sv2_update_interval`.
    pub(crate) fn tick_sv2_channels(&mut self, now: std::time::Instant) {
        // By slot number rather than a collected key list: a tick allocates nothing (tests/zero_alloc.rs).
        for u in 0..self.upstreams.capacity() {
            let Some(up) = self.upstreams.get_mut(u) else {
                continue;
            };
            up.rate.sample(now);
            let Some(t) = up.ready_conn() else { continue };
            let interval = self.proxies[up.proxy].timing.sv2_update;
            let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
                continue;
            };
            let Some(s) = pc.sv2.as_mut() else { continue };
            let Some(rate) = up.rate.update_due(now, interval) else {
                continue;
            };
            match s.update_channel(rate) {
                Ok(()) => {
                    log::info!(
                        "[{}] UpdateChannel: measured hashrate {:.3e} h/s",
                        self.name(u),
                        rate
                    );
                    self.sv2_pump(t);
                }
                Err(why) => log::debug!("[{}] no UpdateChannel: {why}", self.name(u)),
            }
        }
    }

    /// A job of SV2 connection `t` allows version rolling or not (`rolling`): its mask becomes the granted one
    /// or 0, and when `t` is live and the mask changes, miners that negotiated version rolling get
    /// `mining.set_version_mask` before the job's notify (see `set_version_masks`).
    fn sv2_job_mask(&mut self, t: usize, rolling: bool) {
        let Some(Conn::Pool(pc)) = self.conns.get_mut(t) else {
            return;
        };
        let mask = if rolling { SV2_VERSION_MASK } else { 0 };
        if let PoolPhase::Ready(g) | PoolPhase::Draining(g) = &mut pc.session.phase {
            g.mask = Some(mask);
        }
        let u = pc.upstream;
        let Some(up) = self.upstreams.get_mut(u) else {
            return;
        };
        if up.active != Some(t) || !up.ready || up.pool_mask == Some(mask) {
            return;
        }
        up.pool_mask = Some(mask);
        log::info!(
            "[{}] the pool's jobs {} version rolling: miners' mask {mask:08x}",
            self.name(u),
            if rolling { "allow" } else { "do not allow" }
        );
        self.set_version_masks(u, mask);
    }

    /// Why a V1 share going to SV2 connection `conn` is refused here, if it is (None for a V1 connection).
    pub(crate) fn sv2_share_refusal(&self, conn: usize, share: &Submit<'_>) -> Option<Sv2Refusal> {
        let Some(Conn::Pool(pc)) = self.conns.get(conn) else {
            return None;
        };
        let s = pc.sv2.as_ref()?;
        let Some(allows_rolling) = s.job_allows_rolling(share.job_id) else {
            return Some(Sv2Refusal::UnknownJob);
        };
        let bits = share
            .version_bits
            .map_or(0, |b| crate::work::u32_from_hex(b).unwrap_or(u32::MAX));
        (bits != 0 && !allows_rolling).then_some(Sv2Refusal::FixedVersion)
    }

    /// The pool's verdict on the share sent with id `pid` on connection `t`: `None` accepted, else its error
    /// code. A share answered already (timed out) is only counted.
    fn sv2_verdict(&mut self, u: usize, t: usize, pid: u64, code: Option<&str>) {
        let Some(entry) = self
            .upstreams
            .get_mut(u)
            .and_then(|up| up.pending.take(pid))
        else {
            return;
        };
        let rejected = code.map(|c| {
            (
                Reject::from_code(i64::from(pool_msg::sv2_error_number(c))),
                c,
            )
        });
        self.share_verdict(u, t, entry, rejected, |out, id| match code {
            None => pool_msg::write_share_accepted(out, id),
            Some(c) => pool_msg::write_share_refused(out, id, c),
        });
    }

    /// Sends a miner's share to SV2 pool connection `conn` as SubmitSharesExtended; false when it cannot go.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_sv2_share(
        &mut self,
        u: usize,
        conn: usize,
        miner: usize,
        gen: u64,
        id: &crate::protocol::json::IdBuf,
        share: &Submit<'_>,
        prefix: u64,
        replied: bool,
    ) -> bool {
        let Some(pid) = self.pending_submit(u, conn, miner, gen, id, prefix, replied) else {
            return false;
        };
        let up = &mut self.upstreams[u];
        let mut bytes = [0u8; 8];
        let mut len = 0;
        for (slot, b) in bytes.iter_mut().zip(up.prefixes.bytes(prefix)) {
            *slot = b;
            len += 1;
        }
        // The channel's mask, not the upstream's current one: a job fixing the version sets that to 0 for
        // miners, while shares for earlier jobs that allow rolling keep their rolled bits (`submit_version`).
        let mask = SV2_VERSION_MASK;
        let Some(Conn::Pool(pc)) = self.conns.get_mut(conn) else {
            up.pending.take(pid);
            return false;
        };
        let Some(s) = pc.sv2.as_mut() else {
            up.pending.take(pid);
            return false;
        };
        if let Err(why) = s.submit(pid, share, &bytes[..len], mask) {
            up.pending.take(pid);
            log::debug!("[{}] share not sent to the SV2 pool: {why}", self.name(u));
            return false;
        }
        // Queued here rather than by `sv2_pump`: a full queue must leave this share unsent (one reply).
        let n = s.client.output().len();
        let queued = pc
            .io
            .queue_with(|out| out.extend_from_slice(s.client.output()));
        s.client.advance_output(n);
        if queued != crate::io::Sent::Ok {
            up.pending.take(pid);
            self.close_conn(conn, crate::close::Close::OutputFull);
            return false;
        }
        self.count_pool_bytes(conn, n, false);
        self.mark_dirty(conn);
        true
    }
}
