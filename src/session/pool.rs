//! A pool connection's protocol state, sans IO: connecting, handshake, ready, draining, each phase holding the
//! data it needs; it takes parsed pool messages and replies, writes what goes back into an outbox, and returns events.

use crate::config::PoolUrl;
use crate::protocol::json::{IdBuf, Msg};
use crate::protocol::pool_msg::{self, HandshakeReq, PoolMessage};
use crate::protocol::{stratum, Dialect};
use crate::validate::BookJob;
use std::fmt;
use std::time::{Duration, Instant};

/// Unparsable lines in a row after which a pool connection is dropped.
pub(crate) const MAX_POOL_BAD_LINES: u32 = 64;

/// What the pool granted in its handshake (or changed later with set_extranonce / set_version_mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Granted {
    /// extranonce1 / NONCE_1.
    pub e1: Vec<u8>,
    /// The extranonce2 / NONCE_2 size it leaves.
    pub n: usize,
    /// The version-rolling mask (`None`: no version rolling).
    pub mask: Option<u32>,
}

/// The handshake's answers so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Handshake {
    /// extranonce1 and extranonce2_size from the subscribe result (or a set_extranonce).
    pub sub: Option<(Vec<u8>, usize)>,
    pub authorized: bool,
    /// The version-rolling mask the pool granted; outer `None` until it answered.
    pub configure: Option<Option<u32>>,
}

/// A pool connection's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PoolPhase {
    /// The TCP (and TLS) connect is under way.
    Connecting,
    /// Handshake requests sent; their answers so far.
    Handshake(Handshake),
    /// Serving shares.
    Ready(Granted),
    /// Replaced by another connection; kept until its in-flight shares are answered.
    Draining(Granted),
}

/// Why a pool's handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandshakeError {
    /// The pool answered mining.subscribe with an error (its JSON).
    SubscribeRefused(String),
    /// The subscribe result cannot be read.
    BadSubscribe(String),
    /// The pool's extranonce leaves no usable space: retrying it would give the same answer.
    Unusable(String),
    /// The pool refused mining.authorize for the configured account (its error JSON, or `false`).
    AuthorizeRefused(String),
}

impl HandshakeError {
    /// Retrying this pool cannot help: move down the pool list at once.
    pub fn skips_pool(&self) -> bool {
        matches!(self, HandshakeError::Unusable(_))
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::SubscribeRefused(e) => write!(f, "pool refused mining.subscribe: {e}"),
            HandshakeError::BadSubscribe(e) | HandshakeError::Unusable(e) => f.write_str(e),
            HandshakeError::AuthorizeRefused(e) => {
                write!(
                    f,
                    "pool refused mining.authorize for the configured user: {e}"
                )
            }
        }
    }
}

/// Something a pool message means for the upstream and its miners (the runtime applies it; on a connection
/// that is not the live one it only updates the connection's state).
#[derive(Debug)]
pub(crate) enum PoolEvent<'a> {
    /// Nothing beyond the session's own state (and its outbox).
    Nothing,
    /// The handshake completed.
    Ready,
    /// A job: `line` for miners, `job` parsed, `target` the pool's current one.
    Job {
        line: Vec<u8>,
        job: BookJob,
        target: [u8; 32],
    },
    /// A new share difficulty (V1, `difficulty` set) or target (Equihash, kept in `pool_target`): `line` for
    /// miners.
    Target {
        line: Vec<u8>,
        difficulty: Option<f64>,
    },
    /// A new version-rolling mask.
    VersionMask(u32),
    /// A new extranonce1 and size.
    Extranonce { e1: Vec<u8>, n: usize },
    /// `client.reconnect`: to `host:port` (or the current pool) after `wait`.
    Reconnect {
        host: Option<&'a str>,
        port: Option<u16>,
        wait: Duration,
    },
    /// `client.show_message`.
    ShowMessage(&'a str),
    /// Ignored, with why (for the log).
    Ignored(Ignored<'a>),
}

/// Why a pool message was ignored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ignored<'a> {
    /// A `mining.notify` miners could not use.
    BadJob(String),
    BadDifficulty,
    BadTarget,
    BadVersionMask,
    /// A set_extranonce that cannot be read or used.
    BadExtranonce(String),
    /// A method the proxy does not handle.
    Unknown(&'a str),
}

/// What a bad line from the pool means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadLine {
    /// Log it (the first few in a row).
    Warn,
    /// Ignore it quietly.
    Quiet,
    /// Too many in a row: drop the connection.
    Close { count: u32 },
}

/// One pool connection's protocol state.
#[derive(Debug)]
pub(crate) struct PoolSession {
    pub dialect: Dialect,
    pub phase: PoolPhase,
    /// Index in the proxy's pool list.
    pub pool_idx: usize,
    pub url: PoolUrl,
    /// The pool account this connection uses (copied: a reload may change the pool list under it).
    pub user: String,
    pub password: String,
    /// When the current connect attempt started (for the handshake timeout).
    pub started: Instant,
    /// The latest set_difficulty / set_target and notify received, as lines for miners.
    pub difficulty_line: Vec<u8>,
    pub notify_line: Vec<u8>,
    /// The pool's current share target and difficulty on this connection (for validation).
    pub pool_target: [u8; 32],
    pub pool_difficulty: f64,
    /// The latest job, parsed (kept only when validating).
    pub last_job: Option<BookJob>,
    /// Unparsable lines in a row.
    bad_lines: u32,
}

impl PoolSession {
    pub fn new(
        dialect: Dialect,
        pool_idx: usize,
        url: PoolUrl,
        user: String,
        password: String,
        now: Instant,
    ) -> PoolSession {
        PoolSession {
            dialect,
            phase: PoolPhase::Connecting,
            pool_idx,
            url,
            user,
            password,
            started: now,
            difficulty_line: Vec::new(),
            notify_line: Vec::new(),
            pool_target: crate::validate::stratum_target(1.0),
            pool_difficulty: 1.0,
            last_job: None,
            bad_lines: 0,
        }
    }

    /// Ready or draining: it had completed its handshake.
    pub fn was_ready(&self) -> bool {
        matches!(self.phase, PoolPhase::Ready(_) | PoolPhase::Draining(_))
    }

    /// What the pool granted, once ready.
    pub fn granted(&self) -> Option<&Granted> {
        match &self.phase {
            PoolPhase::Ready(g) | PoolPhase::Draining(g) => Some(g),
            PoolPhase::Connecting | PoolPhase::Handshake(_) => None,
        }
    }

    /// Connected: writes the handshake into `out`, each request's id taken from `id`.
    pub fn start_handshake(&mut self, out: &mut Vec<u8>, id: impl FnMut(HandshakeReq) -> u64) {
        let hs = Handshake {
            // No version rolling in the Equihash dialect.
            configure: match self.dialect {
                Dialect::Stratum => None,
                Dialect::Equihash => Some(None),
            },
            ..Handshake::default()
        };
        self.phase = PoolPhase::Handshake(hs);
        let (host, port) = (self.url.host.as_str(), self.url.port);
        pool_msg::write_handshake(
            self.dialect,
            out,
            id,
            &self.user,
            &self.password,
            host,
            port,
        );
    }

    /// Whether the connect or handshake has taken `limit` by `now`: `Some(true)` while connecting,
    /// `Some(false)` in the handshake, `None` when not overdue.
    pub fn handshake_overdue(&self, now: Instant, limit: Duration) -> Option<bool> {
        let connecting = match self.phase {
            PoolPhase::Connecting => true,
            PoolPhase::Handshake(_) => false,
            PoolPhase::Ready(_) | PoolPhase::Draining(_) => return None,
        };
        (now.duration_since(self.started) >= limit).then_some(connecting)
    }

    /// Replaced by another connection: drain.
    pub fn drain(&mut self) {
        if let PoolPhase::Ready(g) = &self.phase {
            self.phase = PoolPhase::Draining(g.clone());
        }
    }

    /// The pool's reply to handshake request `req`: `Ready` when that completed the handshake.
    pub fn on_handshake_reply(
        &mut self,
        req: HandshakeReq,
        msg: &Msg<'_>,
    ) -> Result<PoolEvent<'static>, HandshakeError> {
        match req {
            HandshakeReq::Configure => {
                let mask = match msg.error_json {
                    Some(_) => None,
                    None => stratum::parse_configure_result(msg.result_json),
                };
                match &mut self.phase {
                    PoolPhase::Handshake(hs) => hs.configure = Some(mask),
                    PoolPhase::Ready(g) | PoolPhase::Draining(g) => g.mask = mask,
                    PoolPhase::Connecting => {}
                }
            }
            HandshakeReq::Subscribe => {
                let (e1, n) = match msg.error_json {
                    Some(e) => return Err(HandshakeError::SubscribeRefused(e.to_string())),
                    None => self
                        .dialect
                        .parse_subscribe_result(msg.result_json)
                        .map_err(HandshakeError::BadSubscribe)?,
                };
                self.dialect
                    .check_pool(n)
                    .map_err(HandshakeError::Unusable)?;
                self.set_sub(e1, n);
            }
            HandshakeReq::Authorize => {
                if !pool_msg::accepted(msg) {
                    let e = msg.error_json.unwrap_or("false");
                    return Err(HandshakeError::AuthorizeRefused(e.to_string()));
                }
                if let PoolPhase::Handshake(hs) = &mut self.phase {
                    hs.authorized = true;
                }
            }
            HandshakeReq::ExtranonceSubscribe => {}
        }
        Ok(self.check_handshake())
    }

    fn set_sub(&mut self, e1: Vec<u8>, n: usize) {
        match &mut self.phase {
            PoolPhase::Handshake(hs) => hs.sub = Some((e1, n)),
            PoolPhase::Ready(g) | PoolPhase::Draining(g) => (g.e1, g.n) = (e1, n),
            PoolPhase::Connecting => {}
        }
    }

    /// Ready once subscribed and authorized. Replies come in order: a pool that answered authorize but not
    /// configure ignores configure.
    fn check_handshake(&mut self) -> PoolEvent<'static> {
        let PoolPhase::Handshake(hs) = &mut self.phase else {
            return PoolEvent::Nothing;
        };
        if !hs.authorized {
            return PoolEvent::Nothing;
        }
        let Some((e1, n)) = hs.sub.take() else {
            return PoolEvent::Nothing;
        };
        let mask = hs.configure.flatten();
        self.phase = PoolPhase::Ready(Granted { e1, n, mask });
        PoolEvent::Ready
    }

    /// A line that parsed.
    pub fn line_ok(&mut self) {
        self.bad_lines = 0;
    }

    /// A line that did not parse.
    pub fn bad_line(&mut self) -> BadLine {
        self.bad_lines += 1;
        match self.bad_lines {
            n if n > MAX_POOL_BAD_LINES => BadLine::Close { count: n },
            1..=3 => BadLine::Warn,
            _ => BadLine::Quiet,
        }
    }

    /// A notification or request from the pool (request `id`): answers go into `out`. `validates`: jobs are
    /// kept parsed for local share validation.
    pub fn on_message<'a>(
        &mut self,
        msg: PoolMessage<'a>,
        id: &IdBuf,
        validates: bool,
        out: &mut Vec<u8>,
    ) -> PoolEvent<'a> {
        match msg {
            PoolMessage::Notify { params_json } => {
                let job = match self.dialect.parse_job(params_json) {
                    Ok(j) => j,
                    Err(e) => return PoolEvent::Ignored(Ignored::BadJob(e)),
                };
                let mut line = Vec::with_capacity(params_json.len() + 64);
                pool_msg::write_notify(&mut line, params_json);
                self.notify_line.clone_from(&line);
                if validates {
                    self.last_job = Some(job.clone());
                }
                PoolEvent::Job {
                    line,
                    job,
                    target: self.pool_target,
                }
            }
            PoolMessage::SetDifficulty(d) => {
                let Some(diff) = d.as_f64().filter(|d| *d > 0.0 && d.is_finite()) else {
                    return PoolEvent::Ignored(Ignored::BadDifficulty);
                };
                let mut line = Vec::with_capacity(64);
                pool_msg::write_set_difficulty(&mut line, &d);
                self.pool_difficulty = diff;
                self.set_target(line, crate::validate::stratum_target(diff), Some(diff))
            }
            PoolMessage::SetTarget(t) => {
                let Some(hex) = t
                    .as_str()
                    .filter(|t| t.len() == 64 && crate::hex::is_hex(t.as_bytes()))
                else {
                    return PoolEvent::Ignored(Ignored::BadTarget);
                };
                let mut line = Vec::with_capacity(100);
                pool_msg::write_set_target(&mut line, hex);
                let target = crate::equihash::target_from_hex(hex).unwrap_or([0xff; 32]);
                self.set_target(line, target, None)
            }
            PoolMessage::SetVersionMask(Some(mask)) => {
                match &mut self.phase {
                    PoolPhase::Handshake(hs) => hs.configure = Some(Some(mask)),
                    PoolPhase::Ready(g) | PoolPhase::Draining(g) => g.mask = Some(mask),
                    PoolPhase::Connecting => {}
                }
                PoolEvent::VersionMask(mask)
            }
            PoolMessage::SetVersionMask(None) => PoolEvent::Ignored(Ignored::BadVersionMask),
            PoolMessage::SetExtranonce(parsed) => {
                let dialect = self.dialect;
                match parsed.and_then(|(e1, n)| dialect.check_pool(n).map(|_| (e1, n))) {
                    Ok((e1, n)) => {
                        self.set_sub(e1.clone(), n);
                        PoolEvent::Extranonce { e1, n }
                    }
                    Err(e) => PoolEvent::Ignored(Ignored::BadExtranonce(e)),
                }
            }
            PoolMessage::Reconnect { host, port, wait } => PoolEvent::Reconnect {
                host,
                port,
                wait: Duration::from_secs_f64(wait),
            },
            PoolMessage::ShowMessage(text) => PoolEvent::ShowMessage(text),
            PoolMessage::GetVersion | PoolMessage::Ping => {
                if !id.is_null() {
                    pool_msg::write_answer(out, &msg, id.as_bytes());
                }
                PoolEvent::Nothing
            }
            PoolMessage::Unknown(method) => PoolEvent::Ignored(Ignored::Unknown(method)),
        }
    }

    fn set_target<'a>(
        &mut self,
        line: Vec<u8>,
        target: [u8; 32],
        difficulty: Option<f64>,
    ) -> PoolEvent<'a> {
        self.difficulty_line.clone_from(&line);
        self.pool_target = target;
        PoolEvent::Target { line, difficulty }
    }
}
