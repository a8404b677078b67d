//! The miner side of the wire: a miner's request as a typed [`MinerRequest`] (parsed per dialect), and the
//! replies and notifications the proxy writes to miners. No miner-side method name appears outside this file.

use super::json::{self, IdBuf, Msg, Scalar, MAX_PARAMS};
use super::stratum::{self, ConfigureRequest};

/// One line from a miner, by what it asks.
#[derive(Debug)]
pub enum MinerRequest<'a> {
    /// `mining.submit`, its params still to be checked (the check needs the pool's extranonce sizes).
    Submit {
        params: &'a [Scalar<'a>; MAX_PARAMS],
        len: Option<usize>,
    },
    /// `mining.subscribe`.
    Subscribe,
    /// `mining.authorize`: the worker name (None when the first param is not a string) and password.
    Authorize {
        worker: Option<&'a str>,
        password: &'a str,
    },
    /// `mining.configure` (V1 only), parsed, or the reason it could not be.
    Configure(Result<ConfigureRequest, &'static str>),
    /// `mining.extranonce.subscribe`.
    ExtranonceSubscribe,
    /// `mining.suggest_difficulty`, with the difficulty when the dialect uses it (V1; Equihash acknowledges it).
    SuggestDifficulty(Option<f64>),
    /// `mining.suggest_target` (acknowledged).
    SuggestTarget,
    /// `mining.ping`.
    Ping,
    /// A method the proxy knows but does not offer (`mining.get_transactions`, `mining.multi_version`).
    Unsupported,
    /// Any other method.
    Unknown,
    /// A request without a method.
    NoMethod,
    /// A reply from the miner (to `client.get_version`, say): nothing waits for it.
    Reply,
}

impl<'a> MinerRequest<'a> {
    /// A V1 (Bitcoin Stratum) miner's line.
    pub fn stratum(msg: &'a Msg<'a>) -> MinerRequest<'a> {
        let Some(method) = msg.method else {
            return Self::without_method(msg);
        };
        match method {
            "mining.submit" => Self::submit(msg),
            "mining.subscribe" => MinerRequest::Subscribe,
            "mining.authorize" => Self::authorize(msg),
            "mining.configure" => {
                MinerRequest::Configure(stratum::parse_configure(msg.params_json))
            }
            "mining.extranonce.subscribe" => MinerRequest::ExtranonceSubscribe,
            "mining.suggest_difficulty" => MinerRequest::SuggestDifficulty(msg.param(0).as_f64()),
            "mining.suggest_target" => MinerRequest::SuggestTarget,
            "mining.ping" => MinerRequest::Ping,
            "mining.get_transactions" | "mining.multi_version" => MinerRequest::Unsupported,
            _ => MinerRequest::Unknown,
        }
    }

    /// An Equihash (ZIP 301) miner's line: no `mining.configure`; difficulty suggestions only acknowledged.
    pub fn equihash(msg: &'a Msg<'a>) -> MinerRequest<'a> {
        let Some(method) = msg.method else {
            return Self::without_method(msg);
        };
        match method {
            "mining.submit" => Self::submit(msg),
            "mining.subscribe" => MinerRequest::Subscribe,
            "mining.authorize" => Self::authorize(msg),
            "mining.extranonce.subscribe" => MinerRequest::ExtranonceSubscribe,
            "mining.suggest_difficulty" => MinerRequest::SuggestDifficulty(None),
            "mining.suggest_target" => MinerRequest::SuggestTarget,
            "mining.ping" => MinerRequest::Ping,
            _ => MinerRequest::Unknown,
        }
    }

    fn without_method(msg: &Msg<'_>) -> MinerRequest<'a> {
        if msg.is_reply {
            MinerRequest::Reply
        } else {
            MinerRequest::NoMethod
        }
    }

    fn submit(msg: &'a Msg<'a>) -> MinerRequest<'a> {
        MinerRequest::Submit {
            params: &msg.params,
            len: msg.params_len,
        }
    }

    fn authorize(msg: &'a Msg<'a>) -> MinerRequest<'a> {
        MinerRequest::Authorize {
            worker: msg.param(0).as_str(),
            password: msg.param(1).as_str().unwrap_or(""),
        }
    }
}

/// An error the proxy answers a miner's request with (not a share refusal: see `close::Refusal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinerError {
    /// A malformed or unknown request; the text says what (counted towards the bad-line limit).
    Bad(&'static str),
    AlreadySubscribed,
    Unsupported,
    Unauthorized,
    TooManyAuthFailures,
    NoPoolInTime,
}

impl MinerError {
    /// The JSON-RPC error code and message.
    pub fn code_and_text(self) -> (i32, &'static str) {
        match self {
            MinerError::Bad(why) => (20, why),
            MinerError::AlreadySubscribed => (20, "already subscribed"),
            MinerError::Unsupported => (20, "not supported by this proxy"),
            MinerError::Unauthorized => (24, "unauthorized worker"),
            MinerError::TooManyAuthFailures => (
                24,
                "too many failed authorizations from this address, try later",
            ),
            MinerError::NoPoolInTime => (20, "no pool connection available"),
        }
    }
}

/// The error text of a request with no method.
pub const NO_METHOD: &str = "request has no method";
/// The error text of an unknown method.
pub const UNKNOWN_METHOD: &str = "unknown method";
/// The error text of an authorize without a worker name.
pub const NO_WORKER: &str = "authorize needs a worker name";

/// Appends the error reply for `e`.
pub fn write_error(out: &mut Vec<u8>, id: &IdBuf, e: MinerError) {
    let (code, text) = e.code_and_text();
    json::write_error(out, id.as_bytes(), code, text);
}

/// Appends `{"id":ID,"result":true,"error":null}`.
pub fn write_true(out: &mut Vec<u8>, id: &IdBuf) {
    json::write_result(out, id.as_bytes(), b"true");
}

/// Appends the answer to `mining.ping`.
pub fn write_pong(out: &mut Vec<u8>, id: &IdBuf) {
    json::write_result(out, id.as_bytes(), b"\"pong\"");
}

/// Appends a refused share's (or request's) error reply with `code` and `message`.
pub fn write_refusal(out: &mut Vec<u8>, id: &IdBuf, code: i32, message: &str) {
    json::write_error(out, id.as_bytes(), code, message);
}

/// Appends `mining.set_difficulty [d]`.
pub fn write_set_difficulty(out: &mut Vec<u8>, d: f64) {
    out.extend_from_slice(b"{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[");
    json::write_scalar(&Scalar::Float(d), "", out);
    out.extend_from_slice(b"]}\n");
}

/// Appends `mining.set_version_mask ["MASK"]` (BIP 310).
pub fn write_set_version_mask(out: &mut Vec<u8>, mask: u32) {
    use std::io::Write;
    let _ = writeln!(
        out,
        "{{\"id\":null,\"method\":\"mining.set_version_mask\",\"params\":[\"{mask:08x}\"]}}"
    );
}
