//! A miner's protocol state as a sans-IO session: its phase (PROXY header, greeting, waiting for a pool,
//! working, half-closed), parsed requests and `now` in, reply bytes into an outbox and typed actions out.
//!
//! The session never touches sockets, TLS or clocks: the runtime (`downstream`) reads lines, parses them with
//! [`MinerRequest`], calls the session with the miner's output queue as the outbox, and applies the returned
//! [`MinerAction`] (attach to an upstream, judge and forward a share, count, close).

use crate::auth::{AuthConfig, AuthMode, Authenticator, Refusal as AuthRefusal};
use crate::close::{Close, ProxyHeader, Refusal};
use crate::nonce::PrefixAllocator;
use crate::protocol::json::IdBuf;
use crate::protocol::miner_msg::{self, MinerError, MinerRequest};
use crate::protocol::stratum::{self, ConfigureRequest, SubmitError};
use crate::protocol::{equihash, Dialect, Share};
use crate::stats::Reject;
use crate::validate::Vardiff;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Invalid lines a miner may send before it is disconnected.
pub(crate) const MAX_BAD_LINES: u32 = 8;

/// Longest worker name kept (in characters).
pub(crate) const MAX_WORKER_NAME: usize = 128;

/// Where a miner is in its life.
#[derive(Debug)]
pub(crate) enum MinerPhase {
    /// A PROXY protocol header is still expected (before anything else, TLS included).
    AwaitingProxyHeader(crate::proxy_protocol::Mode),
    /// Configure, subscribe and authorize may come in any order; no subscribe has come yet.
    Greeting { authorized: bool },
    /// Its subscribe (`id`) waits for a ready pool connection with a free nonce prefix; `since` is set once
    /// it is attached to an upstream (and counted in that upstream's waiting miners).
    WaitingForPool {
        id: IdBuf,
        since: Option<Instant>,
        authorized: bool,
    },
    /// Subscribed with its nonce prefix (None once an extranonce change left none), not yet authorized.
    Subscribed { prefix: Option<u64> },
    /// Subscribed and authorized: it gets jobs and submits shares.
    Working { prefix: Option<u64> },
    /// It closed its sending side with shares pending; it is closed once they are answered.
    HalfClosed { prefix: Option<u64> },
}

/// The version-rolling masks agreed with a miner (BIP 310).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionRolling {
    /// The mask agreed (its shares are checked against it).
    pub agreed: Option<u32>,
    /// The mask it asked for in `mining.configure` (a pool's new mask is cut to it).
    pub requested: Option<u32>,
}

/// One miner's protocol state.
#[derive(Debug)]
pub(crate) struct MinerSession {
    pub phase: MinerPhase,
    pub dialect: Dialect,
    /// Its subscription id in subscribe results (the connection's generation).
    pub subscription: u64,
    pub worker: Box<str>,
    pub connected_at: Instant,
    pub bad_lines: u32,
    /// Shares sent upstream and not yet answered.
    pub pending_shares: u32,
    pub extranonce_subscribed: bool,
    pub version: VersionRolling,
    /// A configure waiting for a ready upstream (it may come in any phase).
    pub deferred_configure: Option<(IdBuf, ConfigureRequest)>,
    /// Its own difficulty, when the proxy runs vardiff.
    pub vardiff: Option<Box<Vardiff>>,
    /// With `auth: passthrough`: the worker name and password the pool authorizes (and submits carry).
    pub pool_account: Option<(Box<str>, Box<str>)>,
    /// With `auth: passthrough`: an authorize waiting for a ready pool connection.
    pub deferred_authorize: Option<IdBuf>,
}

/// What the runtime knows that a request's handling needs.
pub(crate) struct MinerEnv<'a> {
    pub auth: &'a AuthConfig,
    pub authenticator: &'a mut Authenticator,
    pub ip: IpAddr,
    pub now: Instant,
    /// Shutdown has begun: shares are refused.
    pub draining: bool,
    /// The upstream a submit would go to.
    pub upstream: UpstreamView<'a>,
}

/// The miner's upstream as a submit's check sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UpstreamView<'a> {
    /// Not attached to one.
    None,
    /// Attached to one that is gone.
    Gone,
    /// Its extranonce2 size for miners, and the Equihash solution shape.
    Ready {
        extranonce2_size: usize,
        solution: &'a equihash::SolutionShape,
    },
}

/// What the runtime does after a request.
#[derive(Debug)]
pub(crate) enum MinerAction<'a> {
    /// Nothing more.
    Continue,
    /// Attach to an upstream (if not yet), then answer what waits ([`MinerSession::serve`]).
    Attach,
    /// Authorized (`first`: for the first time): attach its worker counters; the first time, send it work.
    Admitted { first: bool },
    /// A share of the right form: judge it and forward it under `prefix`.
    Share { share: Share<'a>, prefix: u64 },
    /// A share refused before judging (the reply is written): count it under this label.
    Refused(Reject),
    /// Its credentials were refused (the reply is written); the runtime logs it.
    AuthRefused,
    /// Stop reading and close it.
    Close(Close),
}

/// A ready upstream's offer to a miner whose configure or subscribe waits.
pub(crate) struct PoolOffer<'a> {
    /// The pool's version-rolling mask.
    pub mask: Option<u32>,
    /// The pool's extranonce1.
    pub e1: &'a [u8],
    pub prefixes: &'a mut PrefixAllocator,
    pub extranonce2_size: usize,
}

/// What [`MinerSession::serve`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Served {
    /// Its subscribe took a prefix (it no longer waits).
    pub subscribed: bool,
    /// Its subscribe found no free prefix: move it to another upstream.
    pub full: bool,
}

impl MinerSession {
    /// A miner just accepted (`proxy_header`: the PROXY header it must send first; `vardiff`: the proxy sets
    /// its difficulty).
    pub fn new(
        dialect: Dialect,
        subscription: u64,
        now: Instant,
        proxy_header: Option<crate::proxy_protocol::Mode>,
        vardiff: bool,
    ) -> MinerSession {
        MinerSession {
            phase: match proxy_header {
                Some(mode) => MinerPhase::AwaitingProxyHeader(mode),
                None => MinerPhase::Greeting { authorized: false },
            },
            dialect,
            subscription,
            worker: "".into(),
            connected_at: now,
            bad_lines: 0,
            pending_shares: 0,
            extranonce_subscribed: false,
            version: VersionRolling::default(),
            deferred_configure: None,
            vardiff: vardiff.then(|| Box::new(Vardiff::new(now))),
            pool_account: None,
            deferred_authorize: None,
        }
    }

    /// The PROXY header mode still expected, if any.
    pub fn proxy_header(&self) -> Option<crate::proxy_protocol::Mode> {
        match self.phase {
            MinerPhase::AwaitingProxyHeader(mode) => Some(mode),
            _ => None,
        }
    }

    /// The bytes read so far before any line: `Ok(None)` while more are needed, `Ok(Some((len, source)))` once
    /// the header (of `len` bytes, 0 when absent) is read, with the client's address when it names one.
    pub fn on_proxy_bytes(
        &mut self,
        pre: &[u8],
    ) -> Result<Option<(usize, Option<SocketAddr>)>, ProxyHeader> {
        use crate::proxy_protocol::{parse, Parsed};
        let Some(mode) = self.proxy_header() else {
            return Ok(Some((0, None)));
        };
        let done = match parse(pre, mode).map_err(ProxyHeader::Bad)? {
            Parsed::Incomplete => return Ok(None),
            Parsed::Header { len, source } => (len, source),
            Parsed::Absent => (0, None),
        };
        self.phase = MinerPhase::Greeting { authorized: false };
        Ok(Some(done))
    }

    /// Its subscribe has been answered.
    pub fn subscribed(&self) -> bool {
        matches!(
            self.phase,
            MinerPhase::Subscribed { .. }
                | MinerPhase::Working { .. }
                | MinerPhase::HalfClosed { .. }
        )
    }

    /// An authorize has been accepted.
    pub fn authorized(&self) -> bool {
        match self.phase {
            MinerPhase::Greeting { authorized } | MinerPhase::WaitingForPool { authorized, .. } => {
                authorized
            }
            MinerPhase::Working { .. } | MinerPhase::HalfClosed { .. } => true,
            MinerPhase::AwaitingProxyHeader(_) | MinerPhase::Subscribed { .. } => false,
        }
    }

    /// Subscribed and authorized: it gets jobs.
    pub fn gets_jobs(&self) -> bool {
        matches!(
            self.phase,
            MinerPhase::Working { .. } | MinerPhase::HalfClosed { .. }
        )
    }

    /// It closed its sending side (nothing more is read from it).
    pub fn read_closed(&self) -> bool {
        matches!(self.phase, MinerPhase::HalfClosed { .. })
    }

    /// Its nonce prefix, once subscribed.
    pub fn prefix(&self) -> Option<u64> {
        match self.phase {
            MinerPhase::Subscribed { prefix }
            | MinerPhase::Working { prefix }
            | MinerPhase::HalfClosed { prefix } => prefix,
            _ => None,
        }
    }

    /// A subscribed miner's new prefix (its upstream's prefixes were laid out anew).
    pub fn set_prefix(&mut self, new: Option<u64>) {
        if let MinerPhase::Subscribed { prefix }
        | MinerPhase::Working { prefix }
        | MinerPhase::HalfClosed { prefix } = &mut self.phase
        {
            *prefix = new;
        }
    }

    /// Its subscribe waits for a pool.
    pub fn waits_for_subscribe(&self) -> bool {
        matches!(self.phase, MinerPhase::WaitingForPool { .. })
    }

    /// A configure or subscribe waits for a ready pool.
    pub fn waits(&self) -> bool {
        self.waits_for_subscribe() || self.deferred_configure.is_some()
    }

    /// When its subscribe started waiting on its upstream.
    pub fn waiting_since(&self) -> Option<Instant> {
        match self.phase {
            MinerPhase::WaitingForPool { since, .. } => since,
            _ => None,
        }
    }

    /// Attached to an upstream at `now`: true when its subscribe starts waiting there (count it).
    pub fn start_waiting(&mut self, now: Instant) -> bool {
        match &mut self.phase {
            MinerPhase::WaitingForPool {
                since: since @ None,
                ..
            } => {
                *since = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Detached from its upstream: true when its subscribe was counted as waiting there.
    pub fn stop_waiting(&mut self) -> bool {
        match &mut self.phase {
            MinerPhase::WaitingForPool { since, .. } => since.take().is_some(),
            _ => false,
        }
    }

    /// One request (with its id); replies are written to `out`.
    pub fn on_request<'m>(
        &mut self,
        req: MinerRequest<'m>,
        id: &IdBuf,
        env: MinerEnv<'_>,
        out: &mut Vec<u8>,
    ) -> MinerAction<'m> {
        match req {
            MinerRequest::Submit { params, len } => self.submit(params, len, id, env, out),
            MinerRequest::Subscribe => {
                if self.subscribed() || self.waits_for_subscribe() {
                    miner_msg::write_error(out, id, MinerError::AlreadySubscribed);
                    return MinerAction::Continue;
                }
                let authorized = self.authorized();
                self.phase = MinerPhase::WaitingForPool {
                    id: id.clone(),
                    since: None,
                    authorized,
                };
                MinerAction::Attach
            }
            MinerRequest::Authorize { worker, password } => {
                self.authorize(worker, password, id, env, out)
            }
            MinerRequest::Configure(Ok(req)) => {
                self.deferred_configure = Some((id.clone(), req));
                MinerAction::Attach
            }
            MinerRequest::Configure(Err(why)) => self.bad_line(id, why, out),
            MinerRequest::ExtranonceSubscribe => {
                self.extranonce_subscribed = true;
                miner_msg::write_true(out, id);
                MinerAction::Continue
            }
            MinerRequest::SuggestDifficulty(d) => {
                // Without vardiff the pool's difficulty rules the upstream: acknowledged, not forwarded.
                if let (Some(vd), Some(d)) = (self.vardiff.as_mut(), d) {
                    vd.suggested = (d.is_finite() && d > 0.0).then_some(d);
                }
                miner_msg::write_true(out, id);
                MinerAction::Continue
            }
            MinerRequest::SuggestTarget => {
                miner_msg::write_true(out, id);
                MinerAction::Continue
            }
            MinerRequest::Ping => {
                miner_msg::write_pong(out, id);
                MinerAction::Continue
            }
            MinerRequest::Unsupported => {
                miner_msg::write_error(out, id, MinerError::Unsupported);
                MinerAction::Continue
            }
            MinerRequest::Unknown => self.bad_line(id, miner_msg::UNKNOWN_METHOD, out),
            MinerRequest::NoMethod => self.bad_line(id, miner_msg::NO_METHOD, out),
            MinerRequest::Reply => MinerAction::Continue,
        }
    }

    /// A bad line (unparsable, unknown method, malformed request): answered with an error; past
    /// [`MAX_BAD_LINES`] the miner is closed.
    pub fn bad_line<'m>(
        &mut self,
        id: &IdBuf,
        why: &'static str,
        out: &mut Vec<u8>,
    ) -> MinerAction<'m> {
        self.bad_lines += 1;
        miner_msg::write_error(out, id, MinerError::Bad(why));
        if self.bad_lines > MAX_BAD_LINES {
            return MinerAction::Close(Close::BadRequests { why });
        }
        MinerAction::Continue
    }

    fn authorize<'m>(
        &mut self,
        worker: Option<&str>,
        password: &str,
        id: &IdBuf,
        env: MinerEnv<'_>,
        out: &mut Vec<u8>,
    ) -> MinerAction<'m> {
        let Some(worker) = worker else {
            return self.bad_line(id, miner_msg::NO_WORKER, out);
        };
        let cut = worker
            .char_indices()
            .nth(MAX_WORKER_NAME)
            .map_or(worker.len(), |(i, _)| i);
        self.worker = worker[..cut].into();
        match env.auth {
            AuthConfig::Mode(AuthMode::None) => {}
            AuthConfig::Mode(AuthMode::Passthrough) => {
                // The pool decides; the answer comes back through the reply table.
                self.pool_account = Some((self.worker.clone(), password.into()));
                self.deferred_authorize = Some(id.clone());
                return MinerAction::Attach;
            }
            AuthConfig::Users(cfg) => {
                match env
                    .authenticator
                    .check(cfg, worker, password, env.ip, env.now)
                {
                    Ok(()) => {}
                    Err(AuthRefusal::BadCredentials) => {
                        miner_msg::write_error(out, id, MinerError::Unauthorized);
                        return MinerAction::AuthRefused;
                    }
                    Err(AuthRefusal::TooManyFailures) => {
                        miner_msg::write_error(out, id, MinerError::TooManyAuthFailures);
                        return MinerAction::Close(Close::AuthFailures);
                    }
                }
            }
        }
        self.admit(id, b"true", out)
    }

    /// Marks it authorized and answers its authorize with `result` (JSON text).
    pub fn admit<'m>(&mut self, id: &IdBuf, result: &[u8], out: &mut Vec<u8>) -> MinerAction<'m> {
        let first = !self.authorized();
        match &mut self.phase {
            MinerPhase::Greeting { authorized } | MinerPhase::WaitingForPool { authorized, .. } => {
                *authorized = true
            }
            MinerPhase::Subscribed { prefix } => {
                self.phase = MinerPhase::Working { prefix: *prefix }
            }
            MinerPhase::AwaitingProxyHeader(_)
            | MinerPhase::Working { .. }
            | MinerPhase::HalfClosed { .. } => {}
        }
        crate::protocol::json::write_result(out, id.as_bytes(), result);
        MinerAction::Admitted { first }
    }

    /// A submit: refused by its phase or its form (the error is written), or a share to judge.
    fn submit<'m>(
        &mut self,
        params: &'m [crate::protocol::json::Scalar<'m>; crate::protocol::json::MAX_PARAMS],
        len: Option<usize>,
        id: &IdBuf,
        env: MinerEnv<'_>,
        out: &mut Vec<u8>,
    ) -> MinerAction<'m> {
        if env.draining {
            return refuse(out, id, Refusal::ShuttingDown);
        }
        let prefix = match self.phase {
            MinerPhase::Working { prefix } | MinerPhase::HalfClosed { prefix } => prefix,
            MinerPhase::Subscribed { .. } => return refuse(out, id, Refusal::Unauthorized),
            MinerPhase::AwaitingProxyHeader(_)
            | MinerPhase::Greeting { .. }
            | MinerPhase::WaitingForPool { .. } => return refuse(out, id, Refusal::NotSubscribed),
        };
        let (extranonce2_size, solution, prefix) = match (env.upstream, prefix) {
            (UpstreamView::None, _) | (_, None) => return refuse(out, id, Refusal::NotSubscribed),
            (UpstreamView::Gone, _) => return refuse(out, id, Refusal::PoolUnavailable),
            (
                UpstreamView::Ready {
                    extranonce2_size,
                    solution,
                },
                Some(prefix),
            ) => (extranonce2_size, solution, prefix),
        };
        let share = match self.dialect {
            Dialect::Stratum => {
                stratum::check_submit(params, len, extranonce2_size).and_then(|s| {
                    let bits = s
                        .version_bits
                        .map(|v| u32::from_str_radix(v, 16).unwrap_or(u32::MAX));
                    match (bits, self.version.agreed) {
                        (Some(b), mask) if b & !mask.unwrap_or(0) != 0 => {
                            Err(SubmitError::OutsideMask)
                        }
                        _ => Ok(Share::Stratum(s)),
                    }
                })
            }
            Dialect::Equihash => {
                equihash::check_submit(params, len, extranonce2_size, solution).map(Share::Equihash)
            }
        };
        match share {
            Ok(share) => MinerAction::Share { share, prefix },
            Err(e) => refuse(out, id, Refusal::BadSubmit(e)),
        }
    }

    /// Answers what waits (configure, subscribe) from its ready upstream.
    pub fn serve(&mut self, pool: PoolOffer<'_>, out: &mut Vec<u8>) -> Served {
        if let Some((id, req)) = self.deferred_configure.take() {
            let vr = req
                .version_rolling
                .map(|asked| pool.mask.map(|pm| pm & asked));
            self.version = VersionRolling {
                agreed: vr.flatten(),
                requested: req.version_rolling,
            };
            stratum::write_configure_result(out, &id, vr, &req.others);
        }
        let MinerPhase::WaitingForPool { id, authorized, .. } = &self.phase else {
            return Served::default();
        };
        let Some(prefix) = pool.prefixes.alloc() else {
            return Served {
                subscribed: false,
                full: true,
            };
        };
        let bytes = pool.prefixes.bytes(prefix);
        match self.dialect {
            Dialect::Stratum => stratum::write_subscribe_result(
                out,
                id,
                self.subscription,
                pool.e1,
                bytes,
                pool.extranonce2_size,
            ),
            Dialect::Equihash => {
                equihash::write_subscribe_result(out, id, self.subscription, pool.e1, bytes)
            }
        }
        let prefix = Some(prefix);
        self.phase = if *authorized {
            MinerPhase::Working { prefix }
        } else {
            MinerPhase::Subscribed { prefix }
        };
        Served {
            subscribed: true,
            full: false,
        }
    }

    /// Its sending side closed: true when it stays half-open for the replies to its pending shares.
    pub fn on_peer_closed(&mut self) -> bool {
        if self.pending_shares == 0 {
            return false;
        }
        let prefix = self.prefix();
        self.phase = MinerPhase::HalfClosed { prefix };
        true
    }

    /// A share was forwarded.
    pub fn share_forwarded(&mut self) {
        self.pending_shares += 1;
    }

    /// One of its forwarded shares was answered: true when it is half-closed and now owed nothing.
    pub fn share_answered(&mut self) -> bool {
        self.pending_shares = self.pending_shares.saturating_sub(1);
        self.done()
    }

    /// Half-closed and owed nothing: close it.
    pub fn done(&self) -> bool {
        self.read_closed() && self.pending_shares == 0
    }

    /// Once a second: `Some` reason to close it (never subscribed and authorized within `idle`, or its subscribe
    /// waited `pool_wait` without a pool: then its waiting configure and subscribe are answered first).
    pub fn tick(
        &mut self,
        now: Instant,
        idle: Duration,
        pool_wait: Duration,
        out: &mut Vec<u8>,
    ) -> Option<Close> {
        if let MinerPhase::WaitingForPool {
            id,
            since: Some(since),
            ..
        } = &self.phase
        {
            if now.duration_since(*since) < pool_wait {
                return None;
            }
            if let Some((cid, _)) = self.deferred_configure.take() {
                miner_msg::write_error(out, &cid, MinerError::NoPoolInTime);
            }
            miner_msg::write_error(out, id, MinerError::NoPoolInTime);
            return Some(Close::NoPoolInTime);
        }
        if !self.gets_jobs()
            && !self.waits_for_subscribe()
            && now.duration_since(self.connected_at) >= idle
        {
            return Some(Close::Idle);
        }
        None
    }
}

/// Writes a share refusal and says how to count it.
fn refuse<'m>(out: &mut Vec<u8>, id: &IdBuf, refusal: Refusal<'_>) -> MinerAction<'m> {
    let code = refusal.code();
    refusal.with_text(|why| miner_msg::write_refusal(out, id, code, why));
    MinerAction::Refused(refusal.reject())
}
