//! The load generator's one reactor: a mio `Poll` that drives the fast pool and every miner on one thread.
//! It dispatches readiness events, keeps the tallies the phases read (admissions, share replies and their
//! latencies, job arrivals per job), and paces submits when a total rate is asked for.

use super::args::Dialect;
use super::clock::Clock;
use super::conn;
use super::hist::Histogram;
use super::miners::{Event, Miner, State, TOKEN_BASE};
use super::pool::{self, FastPool, ShareSeen};
use mio::{Events, Poll, Token};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// Counters and latency histograms, read by the phases.
#[derive(Default)]
pub struct Tallies {
    pub in_setup: u32,
    pub admitted: u32,
    pub refused: u32,
    pub connect_failed: u32,
    pub closed_after_admit: u32,
    pub first_error: Option<String>,
    pub last_admit_ns: u64,
    /// Connect start to authorize answer, per miner.
    pub admit: Histogram,
    /// Admitted miners that received a job.
    pub with_job: u32,
    pub last_first_job_ns: u64,
    pub replies: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Replies to shares the pool never saw (the proxy answered them itself).
    pub answered_by_proxy: u64,
    pub unreadable: u64,
    /// Replies over the whole run (warm-up and after the window too): told accepted, told rejected.
    pub told_true_all: u64,
    pub told_false_all: u64,
    /// Submit to reply, as the miner sees it.
    pub rtt: Histogram,
    /// The same less the time the share spent inside the pool (read to answer written).
    pub transit: Histogram,
    /// Miners that received job n, and when the last of them did.
    pub job_received: Vec<u32>,
    pub job_last_ns: Vec<u64>,
    /// Pool send to miner receipt, for jobs numbered `fanout_from` and up.
    pub fanout: Histogram,
}

/// Pacing of submits at a fixed total rate.
struct Pacer {
    rate: f64,
    t0: u64,
    issued: u64,
    ready: VecDeque<u32>,
}

pub struct Reactor {
    poll: Poll,
    events: Events,
    tokens: Vec<Token>,
    pub clock: Clock,
    pub pool: FastPool,
    pub miners: Vec<Miner>,
    pub dialect: Dialect,
    /// Where miners connect (the proxy, or the pool in direct mode).
    pub target: SocketAddr,
    pub miners_per_source: u32,
    scratch: Vec<u8>,
    submit_buf: Vec<u8>,
    seen: Vec<ShareSeen>,
    ev: Vec<Event>,
    pub t: Tallies,
    /// Miners submit while this is set.
    pub submitting: bool,
    /// Replies are recorded in the latency histograms while this is set.
    pub measuring: bool,
    /// Fan-out is measured for jobs from this number on.
    pub fanout_from: u32,
    pacer: Option<Pacer>,
}

impl Reactor {
    pub fn new(
        pool_listen: SocketAddr,
        dialect: Dialect,
        merkle_branches: usize,
        miners_per_source: u32,
        every_share_meets: bool,
    ) -> std::io::Result<Reactor> {
        let poll = Poll::new()?;
        let pool = FastPool::bind(
            pool_listen,
            poll.registry(),
            dialect,
            merkle_branches,
            every_share_meets,
        )?;
        let target = pool.addr();
        Ok(Reactor {
            poll,
            events: Events::with_capacity(4096),
            tokens: Vec::with_capacity(4096),
            clock: Clock::start(),
            pool,
            miners: Vec::new(),
            dialect,
            target,
            miners_per_source,
            scratch: vec![0; 256 * 1024],
            submit_buf: Vec::with_capacity(4096),
            seen: Vec::new(),
            ev: Vec::new(),
            t: Tallies::default(),
            submitting: false,
            measuring: false,
            fanout_from: u32::MAX,
            pacer: None,
        })
    }

    /// Paces submits at `rate` per second in all (0: as fast as replies come).
    pub fn set_rate(&mut self, rate: f64) {
        self.pacer = (rate > 0.0).then(|| Pacer {
            rate,
            t0: self.clock.now(),
            issued: 0,
            ready: VecDeque::new(),
        });
    }

    /// Starts connecting miner `i` (miners are numbered from 0 in connect order).
    pub fn start_miner(&mut self, i: u32) {
        if self.miners.len() <= i as usize {
            self.miners.resize_with(i as usize + 1, Miner::new);
        }
        let from = conn::source_for(i, self.miners_per_source);
        let now = self.clock.now();
        match self.miners[i as usize].connect(i, self.target, Some(from), self.poll.registry(), now)
        {
            Ok(()) => self.t.in_setup += 1,
            Err(e) => {
                self.t.connect_failed += 1;
                self.t
                    .first_error
                    .get_or_insert_with(|| format!("connect from {from}: {e}"));
            }
        }
    }

    /// The pool sends a new job to every working connection; returns its number.
    pub fn broadcast_notify(&mut self) -> u32 {
        self.pool
            .broadcast_notify(&self.clock, self.poll.registry())
    }

    /// Closes every miner.
    pub fn close_miners(&mut self) {
        for m in &mut self.miners {
            m.close(self.poll.registry());
        }
    }

    /// Miners admitted and still connected.
    pub fn live_miners(&self) -> u32 {
        self.t.admitted - self.t.closed_after_admit
    }

    /// Shares waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.miners.iter().filter(|m| m.in_flight).count()
    }

    /// A miner wants to submit: now, or when the pacer allows.
    pub fn want_submit(&mut self, i: u32) {
        let m = &self.miners[i as usize];
        if !self.submitting || m.in_flight || m.job.is_none() || m.state != State::Admitted {
            return;
        }
        match &mut self.pacer {
            Some(p) => p.ready.push_back(i),
            None => self.submit(i),
        }
    }

    fn submit(&mut self, i: u32) {
        let now = self.clock.now();
        let (dialect, buf) = (self.dialect, &mut self.submit_buf);
        if !self.miners[i as usize].submit(i, dialect, buf, now) {
            let m = &mut self.miners[i as usize];
            m.close(self.poll.registry());
            self.t.closed_after_admit += 1;
        }
    }

    /// Waits for events (at most `timeout`) and handles them.
    pub fn turn(&mut self, timeout: Duration) {
        let timeout = match &self.pacer {
            Some(p) if self.submitting && !p.ready.is_empty() => {
                timeout.min(Duration::from_micros(200))
            }
            _ => timeout,
        };
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::warn!("poll: {e}");
            }
            return;
        }
        self.tokens.clear();
        self.tokens.extend(self.events.iter().map(|e| e.token()));
        for k in 0..self.tokens.len() {
            let tok = self.tokens[k];
            if tok == pool::LISTENER {
                self.pool.accept(self.poll.registry());
            } else if tok.0 >= TOKEN_BASE {
                self.on_miner((tok.0 - TOKEN_BASE) as u32);
            } else {
                self.on_pool_conn(tok.0 - pool::CONN_BASE);
            }
        }
        self.pace();
    }

    fn on_pool_conn(&mut self, key: usize) {
        let registry = self.poll.registry();
        self.pool.on_event(
            key,
            registry,
            &self.clock,
            &mut self.scratch,
            &mut self.seen,
        );
        for s in self.seen.drain(..) {
            if let Some(m) = self.miners.get_mut(s.miner as usize) {
                m.pool_rx_ns = s.rx_ns;
                m.pool_tx_ns = s.tx_ns;
            }
        }
    }

    fn on_miner(&mut self, i: u32) {
        let Some(m) = self.miners.get_mut(i as usize) else {
            return;
        };
        let before = m.state;
        let port = self.target.port();
        m.on_event(
            i,
            self.dialect,
            port,
            self.poll.registry(),
            &mut self.scratch,
            &mut self.ev,
        );
        if self.ev.is_empty() {
            return;
        }
        let now = self.clock.now();
        let mut admitted_now = false;
        let mut evs = std::mem::take(&mut self.ev);
        for ev in evs.drain(..) {
            match ev {
                Event::Admitted => {
                    admitted_now = true;
                    self.t.admitted += 1;
                    self.t.in_setup -= 1;
                    self.t.last_admit_ns = now;
                    self.t.admit.record(now - self.miners[i as usize].sent_ns);
                    self.want_submit(i);
                }
                Event::Refused => self.t.refused += 1,
                Event::Job(n) => self.on_job(i, n, now),
                Event::ShareReply(ok) => self.on_reply(i, ok, now),
                Event::Unreadable => self.t.unreadable += 1,
                Event::Closed => {
                    if before == State::Admitted || admitted_now {
                        self.t.closed_after_admit += 1;
                    } else {
                        self.t.in_setup -= 1;
                        self.t.connect_failed += 1;
                    }
                }
            }
        }
        self.ev = evs;
        let m = &mut self.miners[i as usize];
        if m.state == State::Admitted && m.job.is_some() && !m.job_counted {
            m.job_counted = true;
            self.t.with_job += 1;
            self.t.last_first_job_ns = now;
        }
    }

    fn on_job(&mut self, i: u32, n: u32, now: u64) {
        if n >= self.fanout_from {
            if let Some(sent) = self.pool.job_sent(n) {
                let n = n as usize;
                if self.t.job_received.len() <= n {
                    self.t.job_received.resize(n + 1, 0);
                    self.t.job_last_ns.resize(n + 1, 0);
                }
                self.t.job_received[n] += 1;
                self.t.job_last_ns[n] = now;
                self.t.fanout.record(now.saturating_sub(sent));
            }
        }
        self.want_submit(i);
    }

    fn on_reply(&mut self, i: u32, ok: bool, now: u64) {
        let m = &self.miners[i as usize];
        if ok {
            self.t.told_true_all += 1;
        } else {
            self.t.told_false_all += 1;
        }
        if self.measuring {
            let rtt = now.saturating_sub(m.sent_ns);
            self.t.replies += 1;
            if ok {
                self.t.accepted += 1;
            } else {
                self.t.rejected += 1;
            }
            self.t.rtt.record(rtt);
            if m.pool_rx_ns >= m.sent_ns && m.pool_tx_ns >= m.pool_rx_ns {
                self.t
                    .transit
                    .record(rtt.saturating_sub(m.pool_tx_ns - m.pool_rx_ns));
            } else {
                self.t.answered_by_proxy += 1;
            }
        }
        self.want_submit(i);
    }

    fn pace(&mut self) {
        if !self.submitting {
            return;
        }
        let now = self.clock.now();
        let Some(p) = &mut self.pacer else { return };
        let allowed = ((now - p.t0) as f64 * p.rate / 1e9) as u64;
        // No credit piles up while no miner is ready: at most 1 ms worth of burst.
        let burst = (p.rate / 1000.0).ceil() as u64;
        if p.ready.is_empty() {
            p.issued = p.issued.max(allowed.saturating_sub(burst));
            return;
        }
        let mut go = Vec::new();
        while p.issued < allowed {
            let Some(i) = p.ready.pop_front() else { break };
            p.issued += 1;
            go.push(i);
        }
        for i in go {
            self.submit(i);
        }
    }

    /// Handles events until `done` holds or the clock reaches `deadline_ns`; true when `done` held.
    pub fn run_until(&mut self, deadline_ns: u64, done: impl Fn(&Reactor) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let now = self.clock.now();
            if now >= deadline_ns {
                return false;
            }
            self.turn(Duration::from_nanos((deadline_ns - now).min(10_000_000)));
        }
    }
}
