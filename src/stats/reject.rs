//! Why a share was not accepted ([`Reject`]: a pool's Stratum error code, or the proxy's own refusal), read
//! from a pool's error value without allocating, and one relaxed counter per reason ([`ReasonCounters`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a share was not accepted: a pool's Stratum error code, or what made the proxy answer it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Code 20 or anything not listed here.
    Other = 0,
    /// 21: job not found (stale).
    Stale = 1,
    /// 22: duplicate share.
    Duplicate = 2,
    /// 23: low difficulty share.
    LowDifficulty = 3,
    /// 24: unauthorized worker.
    Unauthorized = 4,
    /// 25: not subscribed.
    NotSubscribed = 5,
    /// No ready pool connection (or it dropped before answering).
    PoolUnavailable = 6,
    /// The pool did not answer within `share_timeout` (`sv2_share_timeout` for an SV2 pool).
    Timeout = 7,
}

impl Reject {
    /// Every reason, in counter order.
    pub const ALL: [Reject; 8] = [
        Reject::Other,
        Reject::Stale,
        Reject::Duplicate,
        Reject::LowDifficulty,
        Reject::Unauthorized,
        Reject::NotSubscribed,
        Reject::PoolUnavailable,
        Reject::Timeout,
    ];

    /// The label value used in metrics and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Reject::Other => "other",
            Reject::Stale => "stale",
            Reject::Duplicate => "duplicate",
            Reject::LowDifficulty => "low_difficulty",
            Reject::Unauthorized => "unauthorized",
            Reject::NotSubscribed => "not_subscribed",
            Reject::PoolUnavailable => "pool_unavailable",
            Reject::Timeout => "timeout",
        }
    }

    /// The reason for a Stratum error code (21..=25; anything else is `Other`).
    pub fn from_code(code: i64) -> Reject {
        match code {
            21 => Reject::Stale,
            22 => Reject::Duplicate,
            23 => Reject::LowDifficulty,
            24 => Reject::Unauthorized,
            25 => Reject::NotSubscribed,
            _ => Reject::Other,
        }
    }

    /// The reason in a pool's error value (`[21, "Job not found", null]`, `{"code": 23, "message": ...}`, or a
    /// bare string). Codes 21..=25 decide; otherwise the message is looked at, since many pools send code 20
    /// with "stale" / "duplicate" / "low difficulty" in the text. No allocation.
    pub fn from_error_json(err: Option<&str>) -> Reject {
        let Some(err) = err else {
            return Reject::Other;
        };
        if let Some(code) = first_integer(err) {
            let r = Reject::from_code(code);
            if r != Reject::Other {
                return r;
            }
        }
        const WORDS: [(&str, Reject); 9] = [
            ("stale", Reject::Stale),
            ("job not found", Reject::Stale),
            ("duplicate", Reject::Duplicate),
            ("low difficulty", Reject::LowDifficulty),
            ("above target", Reject::LowDifficulty),
            ("high-hash", Reject::LowDifficulty),
            ("unauthorized", Reject::Unauthorized),
            ("not subscribed", Reject::NotSubscribed),
            ("timeout", Reject::Timeout),
        ];
        WORDS
            .iter()
            .find(|(w, _)| contains_ignore_case(err, w))
            .map_or(Reject::Other, |&(_, r)| r)
    }
}

/// The first integer in `s` outside string literals (the error code).
fn first_integer(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            c if !in_str && (c.is_ascii_digit() || c == b'-') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                return s[start..i].parse().ok();
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// One counter per [`Reject`] reason.
#[derive(Debug, Default)]
pub struct ReasonCounters([AtomicU64; 8]);

impl ReasonCounters {
    pub(super) const fn new() -> ReasonCounters {
        ReasonCounters([const { AtomicU64::new(0) }; 8])
    }

    /// Counts one share for `reason`.
    pub fn inc(&self, reason: Reject) {
        self.0[reason as usize].fetch_add(1, Relaxed);
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reject) -> u64 {
        self.0[reason as usize].load(Relaxed)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_from_pool_errors() {
        let f = |s: &str| Reject::from_error_json(Some(s));
        assert_eq!(f(r#"[21,"Job not found",null]"#), Reject::Stale);
        assert_eq!(f(r#"[22,"Duplicate share",null]"#), Reject::Duplicate);
        assert_eq!(
            f(r#"{"code":23,"message":"Low difficulty"}"#),
            Reject::LowDifficulty
        );
        assert_eq!(f(r#"[24,"x",null]"#), Reject::Unauthorized);
        assert_eq!(f(r#"[25,"x",null]"#), Reject::NotSubscribed);
        assert_eq!(f(r#"[20,"Stale share",null]"#), Reject::Stale);
        assert_eq!(f(r#"[20,"high-hash",null]"#), Reject::LowDifficulty);
        assert_eq!(f(r#"["23 in text",20]"#), Reject::Other);
        assert_eq!(f(r#"[-1,"whatever",null]"#), Reject::Other);
        assert_eq!(Reject::from_error_json(None), Reject::Other);
        for (i, r) in Reject::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
