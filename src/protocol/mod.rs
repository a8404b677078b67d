//! The Stratum dialects a proxy entry can speak, chosen per proxy by a plain enum (static dispatch: the hot
//! path is a `match`, never a trait object).
//!
//! Adding a dialect means a module beside `stratum` (with its method table in `miner_msg`), a variant here, and
//! the arms the compiler then asks for (here, in `pool_msg`, `session::miner` and `session::pool`).

pub mod equihash;
pub mod json;
pub mod miner_msg;
pub mod pool_msg;
pub mod stratum;
pub mod sv2;

use crate::config::ProtocolKind;

/// The dialect of one proxy entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Bitcoin Stratum V1 (SHA256d).
    Stratum,
    /// Equihash stratum (ZIP 301).
    Equihash,
}

impl Dialect {
    /// The dialect for a configured protocol.
    pub fn for_kind(kind: ProtocolKind) -> Dialect {
        match kind {
            ProtocolKind::Stratum => Dialect::Stratum,
            ProtocolKind::Equihash => Dialect::Equihash,
        }
    }

    /// A miner's line as a typed request, by this dialect's method table ([`miner_msg`]).
    pub fn miner_request<'a>(self, msg: &'a json::Msg<'a>) -> miner_msg::MinerRequest<'a> {
        match self {
            Dialect::Stratum => miner_msg::MinerRequest::stratum(msg),
            Dialect::Equihash => miner_msg::MinerRequest::equihash(msg),
        }
    }

    /// Prefix bytes per miner when the pool leaves `n` bytes of extranonce2 / NONCE_2.
    pub fn prefix_len(self, n: usize, min_keep: usize) -> usize {
        match self {
            Dialect::Stratum => crate::nonce::prefix_len(n, min_keep),
            Dialect::Equihash => equihash::PREFIX_LEN.min(n),
        }
    }

    /// Whether a pool leaving `n` bytes of extranonce2 / NONCE_2 can be used at all.
    pub fn check_pool(self, n: usize) -> Result<(), String> {
        match self {
            Dialect::Stratum => Ok(()),
            Dialect::Equihash => equihash::check_pool_nonce(n),
        }
    }

    /// The pool's subscribe result: extranonce1 / NONCE_1 and the size it leaves.
    pub fn parse_subscribe_result(self, result_json: &str) -> Result<(Vec<u8>, usize), String> {
        match self {
            Dialect::Stratum => stratum::parse_subscribe_result(result_json),
            Dialect::Equihash => equihash::parse_subscribe_result(result_json),
        }
    }

    /// Parses a pool's `mining.notify` params (given as JSON text) field by field, so a job miners could not
    /// use (bad hex, wrong sizes or types) is never broadcast. Jobs are rare: parsing them fully costs nothing.
    pub fn parse_job(self, params_json: &str) -> Result<crate::validate::BookJob, String> {
        use crate::validate::BookJob;
        let v: serde_json::Value =
            serde_json::from_str(params_json).map_err(|_| "params are not JSON".to_string())?;
        match self {
            Dialect::Stratum => crate::work::Job::from_notify_params(&v).map(BookJob::Stratum),
            Dialect::Equihash => {
                crate::equihash::EquihashJob::from_notify_params(&v).map(BookJob::Equihash)
            }
        }
    }
}

/// A miner's checked share in its dialect.
#[derive(Debug, Clone, Copy)]
pub enum Share<'a> {
    Stratum(stratum::Submit<'a>),
    Equihash(equihash::Submit<'a>),
}

impl Share<'_> {
    /// The job it was found for.
    pub fn job_id(&self) -> &str {
        match self {
            Share::Stratum(s) => s.job_id,
            Share::Equihash(s) => s.job_id,
        }
    }
}
