//! Why a connection closes and why a share is refused, as types: each reason decides the behaviour (half-close,
//! the `miners_kicked` count, the reject label), its log level and its text, by `match`, never by its words.

use crate::protocol::stratum::SubmitError;
use crate::stats::Reject;
use crate::validate::Verdict;
use std::fmt;

/// Why a connection (a miner's or a pool's) is closed.
#[derive(Debug)]
pub(crate) enum Close {
    /// The peer closed its sending side (end of stream). A miner with shares pending stays half-open for
    /// their replies.
    PeerClosed,
    /// The peer reset the connection.
    PeerReset,
    /// Reading failed otherwise.
    ReadError(std::io::Error),
    /// Writing failed.
    WriteError(std::io::Error),
    /// Re-registering for readiness failed.
    Reregister(std::io::Error),
    /// A line longer than `max_line_length`.
    LineTooLong { limit: usize },
    /// A line handler stopped reading and gave no reason.
    ByHandler,
    /// The output queue is full: the peer does not read.
    OutputFull,
    /// A job broadcast found the miner's output queue full.
    BroadcastOverflow,
    /// A job broadcast could not write to the miner.
    BroadcastFailed,
    /// The miner's PROXY protocol header is bad (or it closed before sending one).
    ProxyHeader(ProxyHeader),
    /// Too many bad requests; `why` is the last one's error text.
    BadRequests { why: &'static str },
    /// Too many failed authorizations from the miner's address.
    AuthFailures,
    /// Did not subscribe and authorize within `idle_timeout`.
    Idle,
    /// Its subscribe waited `pool_wait` for a pool connection without one.
    NoPoolInTime,
    /// Over the reactor's output budget with one of the largest queues.
    OutputBudget,
    /// The pool's extranonce changed and the miner cannot be told (no `mining.extranonce.subscribe`).
    ExtranonceNotSubscribed,
    /// The pool's extranonce changed and left no nonce prefix for this miner.
    NoNonceSpace,
    /// A pool sent `count` bad lines in a row.
    PoolGarbage { count: u32 },
    /// A pool's handshake failed (refused or unusable subscribe/authorize).
    PoolHandshake(crate::session::pool::HandshakeError),
    /// Its route became unavailable and it cannot be moved (no `mining.extranonce.subscribe`): it reconnects
    /// and is placed on an available route.
    RouteGone,
    /// Kicked through the control API.
    Kicked,
}

/// What is wrong with a miner's PROXY protocol header.
#[derive(Debug)]
pub(crate) enum ProxyHeader {
    TooLong,
    ClosedBefore,
    Read(std::io::Error),
    Bad(crate::proxy_protocol::Error),
}

impl Close {
    /// The miner may still be owed replies: it is kept half-open while shares it sent are pending.
    pub fn is_half_close(&self) -> bool {
        matches!(self, Close::PeerClosed)
    }

    /// The proxy disconnects the miner for its own doing (counted in `miners_kicked`).
    pub fn is_kick(&self) -> bool {
        match self {
            Close::ProxyHeader(_)
            | Close::BadRequests { .. }
            | Close::AuthFailures
            | Close::Idle
            | Close::OutputBudget
            | Close::ExtranonceNotSubscribed
            | Close::NoNonceSpace
            | Close::RouteGone
            | Close::Kicked => true,
            Close::PeerClosed
            | Close::PeerReset
            | Close::ReadError(_)
            | Close::WriteError(_)
            | Close::Reregister(_)
            | Close::LineTooLong { .. }
            | Close::ByHandler
            | Close::OutputFull
            | Close::BroadcastOverflow
            | Close::BroadcastFailed
            | Close::NoPoolInTime
            | Close::PoolGarbage { .. }
            | Close::PoolHandshake(_) => false,
        }
    }

    /// The level a miner's disconnection is logged at: a miner leaving by itself is routine.
    pub fn miner_log_level(&self) -> log::Level {
        match self {
            Close::PeerClosed => log::Level::Debug,
            _ => log::Level::Info,
        }
    }
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::PeerClosed => f.write_str("connection closed by peer"),
            Close::PeerReset => f.write_str("connection reset by peer"),
            Close::ReadError(e) => write!(f, "read error: {e}"),
            Close::WriteError(e) => write!(f, "write error: {e}"),
            Close::Reregister(e) => write!(f, "reregister failed: {e}"),
            Close::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            Close::ByHandler => f.write_str("closed by handler"),
            Close::OutputFull => f.write_str("output queue full: the peer does not read"),
            Close::BroadcastOverflow => f.write_str("output queue full: the miner does not read"),
            Close::BroadcastFailed => f.write_str("write failed"),
            Close::ProxyHeader(ProxyHeader::TooLong) => {
                f.write_str("PROXY protocol: header too long")
            }
            Close::ProxyHeader(ProxyHeader::ClosedBefore) => {
                f.write_str("connection closed by peer before its PROXY header")
            }
            Close::ProxyHeader(ProxyHeader::Read(e)) => write!(f, "read error: {e}"),
            Close::ProxyHeader(ProxyHeader::Bad(e)) => write!(f, "{e}"),
            Close::BadRequests { why } => write!(f, "too many bad requests ({why})"),
            Close::AuthFailures => f.write_str("too many failed authorizations"),
            Close::Idle => f.write_str("idle: did not subscribe and authorize in time"),
            Close::NoPoolInTime => f.write_str("no pool connection became available in time"),
            Close::OutputBudget => f.write_str("output budget exceeded: the miner does not read"),
            Close::ExtranonceNotSubscribed => f.write_str(
                "the pool's extranonce changed and the miner did not send mining.extranonce.subscribe: \
                 it must reconnect",
            ),
            Close::NoNonceSpace => {
                f.write_str("no nonce space left after the pool's extranonce changed")
            }
            Close::PoolGarbage { count } => write!(f, "{count} bad lines in a row from the pool"),
            Close::PoolHandshake(why) => write!(f, "{why}"),
            Close::RouteGone => f.write_str(
                "its route became unavailable and it did not send mining.extranonce.subscribe: it must reconnect",
            ),
            Close::Kicked => f.write_str("kicked through the control API"),
        }
    }
}

/// Why the proxy answers a miner's share with an error itself (the pool never sees it).
#[derive(Debug)]
pub(crate) enum Refusal<'a> {
    /// Shutdown has begun.
    ShuttingDown,
    /// No subscribe answered (or no nonce prefix).
    NotSubscribed,
    /// No authorize accepted.
    Unauthorized,
    /// The miner's upstream is gone.
    PoolUnavailable,
    /// No ready pool connection to forward it on, or forwarding failed.
    NotForwarded,
    /// The submit's params are malformed.
    BadSubmit(SubmitError),
    /// The pool's extranonce1 and the prefix do not fit the validation buffer.
    Extranonce1TooLong,
    /// `max_pending_shares` reached.
    TooManyPending,
    /// Local validation refused it (stale, duplicate, low difficulty, invalid).
    Judged { code: i32, why: &'a str },
}

impl<'a> Refusal<'a> {
    /// The refusal for a verdict that is one (None for a share that passes).
    pub fn of_verdict(verdict: &'a Verdict) -> Option<Refusal<'a>> {
        verdict
            .error()
            .map(|(code, why)| Refusal::Judged { code, why })
    }

    /// The JSON-RPC error code the miner gets.
    pub fn code(&self) -> i32 {
        match self {
            Refusal::NotSubscribed => 25,
            Refusal::Unauthorized => 24,
            Refusal::Judged { code, .. } => *code,
            Refusal::ShuttingDown
            | Refusal::PoolUnavailable
            | Refusal::NotForwarded
            | Refusal::BadSubmit(_)
            | Refusal::Extranonce1TooLong
            | Refusal::TooManyPending => 20,
        }
    }

    /// The label it is counted under (`errors_by_reason`, `fastproxy_share_errors_total`).
    pub fn reject(&self) -> Reject {
        match self {
            Refusal::NotSubscribed => Reject::NotSubscribed,
            Refusal::Unauthorized => Reject::Unauthorized,
            Refusal::PoolUnavailable | Refusal::NotForwarded => Reject::PoolUnavailable,
            Refusal::Judged { code, .. } => Reject::from_code(i64::from(*code)),
            Refusal::ShuttingDown
            | Refusal::BadSubmit(_)
            | Refusal::Extranonce1TooLong
            | Refusal::TooManyPending => Reject::Other,
        }
    }

    /// Calls `f` with the error message the miner gets (allocating only for a malformed submit).
    pub fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Refusal::ShuttingDown => f("proxy is shutting down, share not forwarded"),
            Refusal::NotSubscribed => f("not subscribed"),
            Refusal::Unauthorized => f("unauthorized worker"),
            Refusal::PoolUnavailable => f("pool unavailable"),
            Refusal::NotForwarded => f("pool unavailable, share not forwarded"),
            Refusal::BadSubmit(e) => f(&e.to_string()),
            Refusal::Extranonce1TooLong => f("extranonce1 too long to validate"),
            Refusal::TooManyPending => f("too many shares waiting for the pool"),
            Refusal::Judged { why, .. } => f(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_texts_codes_and_labels_are_those_miners_and_metrics_saw_before() {
        let cases = [
            (
                Refusal::ShuttingDown,
                20,
                "proxy is shutting down, share not forwarded",
                "other",
            ),
            (
                Refusal::NotSubscribed,
                25,
                "not subscribed",
                "not_subscribed",
            ),
            (
                Refusal::Unauthorized,
                24,
                "unauthorized worker",
                "unauthorized",
            ),
            (
                Refusal::PoolUnavailable,
                20,
                "pool unavailable",
                "pool_unavailable",
            ),
            (
                Refusal::NotForwarded,
                20,
                "pool unavailable, share not forwarded",
                "pool_unavailable",
            ),
            (
                Refusal::BadSubmit(SubmitError::OutsideMask),
                20,
                "version bits outside the negotiated mask",
                "other",
            ),
            (
                Refusal::Extranonce1TooLong,
                20,
                "extranonce1 too long to validate",
                "other",
            ),
            (
                Refusal::TooManyPending,
                20,
                "too many shares waiting for the pool",
                "other",
            ),
            (
                Refusal::Judged {
                    code: 21,
                    why: "Job not found (stale share)",
                },
                21,
                "Job not found (stale share)",
                "stale",
            ),
        ];
        for (r, code, text, label) in cases {
            assert_eq!(r.code(), code, "{r:?}");
            assert_eq!(r.with_text(str::to_string), text, "{r:?}");
            assert_eq!(r.reject().label(), label, "{r:?}");
        }
    }

    #[test]
    fn only_the_peer_closing_is_a_half_close_and_logged_at_debug() {
        assert!(Close::PeerClosed.is_half_close());
        assert_eq!(Close::PeerClosed.miner_log_level(), log::Level::Debug);
        for c in [
            Close::PeerReset,
            Close::Idle,
            Close::LineTooLong { limit: 9 },
        ] {
            assert!(!c.is_half_close(), "{c}");
            assert_eq!(c.miner_log_level(), log::Level::Info, "{c}");
        }
        assert!(Close::Idle.is_kick() && !Close::PeerClosed.is_kick());
        assert_eq!(
            Close::BadRequests {
                why: "unknown method"
            }
            .to_string(),
            "too many bad requests (unknown method)"
        );
    }
}
