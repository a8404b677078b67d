//! Miner authentication: who may use a proxy.
//!
//! `auth: none` admits every worker name. `auth: { users: [...] }` checks the miner's password against argon2
//! hashes made by `fastproxy hash-password` (never plain text in the config), matching the worker name or the
//! account part before its first '.'. Argon2 is slow on purpose, so each reactor remembers the verdict for a
//! (name, password) pair (farms use one password for thousands of rigs). Repeated failures from one address
//! are refused without checking for a while. `auth: passthrough` asks the pool instead (see `upstream`).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// How a proxy admits miners.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AuthConfig {
    /// `none` or `passthrough`.
    Mode(AuthMode),
    /// A list of users with password hashes.
    Users(UsersConfig),
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig::Mode(AuthMode::None)
    }
}

/// The keyword forms of `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Passthrough,
}

/// `auth: { users: [...], match: account | worker, max_failures: 5, ban_seconds: 60 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersConfig {
    pub users: Vec<UserEntry>,
    /// Match the part of the worker name before its first '.' (`account`, default) or the whole (`worker`).
    #[serde(default, rename = "match")]
    pub match_by: MatchBy,
    /// Failed authorizations from one address before it is refused for `ban_seconds`.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    #[serde(default = "default_ban_seconds")]
    pub ban_seconds: f64,
}

/// One user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub password_hash: String,
}

/// Which part of a worker name is the user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MatchBy {
    #[default]
    Account,
    Worker,
}

fn default_max_failures() -> u32 {
    5
}
fn default_ban_seconds() -> f64 {
    60.0
}

impl AuthConfig {
    /// True when the pool decides (`passthrough`).
    pub fn passthrough(&self) -> bool {
        *self == AuthConfig::Mode(AuthMode::Passthrough)
    }

    /// Problems with the configured users (unparsable hashes, no users).
    pub fn check(&self) -> Result<(), String> {
        if let AuthConfig::Users(u) = self {
            if !(u.ban_seconds.is_finite() && u.ban_seconds >= 0.0) {
                return Err("auth: ban_seconds must be a number of seconds".into());
            }
            if u.users.is_empty() {
                return Err("auth: users is empty (nobody could connect)".into());
            }
            for user in &u.users {
                PasswordHash::new(&user.password_hash).map_err(|e| {
                    format!("auth: user '{}': password_hash is not a PHC hash ({e}); make one with `fastproxy hash-password`", user.name)
                })?;
            }
        }
        Ok(())
    }
}

/// An argon2id PHC hash of `password` with a fresh salt (`fastproxy hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Why a miner was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user or wrong password.
    BadCredentials,
    /// Too many failures from this address lately.
    TooManyFailures,
}

/// Per-reactor state of `auth: { users }`: verdict cache and failure counts per address.
#[derive(Debug, Default)]
pub struct Authenticator {
    verdicts: HashMap<(String, String), bool>,
    failures: HashMap<IpAddr, (u32, Instant)>,
}

/// Verdicts remembered per reactor (bounded: a flood of random passwords cannot grow it without limit).
const MAX_CACHED: usize = 4096;

impl Authenticator {
    /// Decides whether `worker` with `password`, connecting from `ip`, may use the proxy.
    pub fn check(
        &mut self,
        cfg: &UsersConfig,
        worker: &str,
        password: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), Refusal> {
        let ban = crate::duration::secs(cfg.ban_seconds.min(86_400.0));
        if let Some(&(n, last)) = self.failures.get(&ip) {
            if now.duration_since(last) >= ban {
                self.failures.remove(&ip);
            } else if n >= cfg.max_failures {
                return Err(Refusal::TooManyFailures);
            }
        }
        let name = match cfg.match_by {
            MatchBy::Account => worker.split('.').next().unwrap_or(worker),
            MatchBy::Worker => worker,
        };
        let key = (name.to_string(), password.to_string());
        let ok = match self.verdicts.get(&key) {
            Some(&ok) => ok,
            None => {
                let ok = cfg.users.iter().any(|u| {
                    u.name == name
                        && PasswordHash::new(&u.password_hash).is_ok_and(|h| {
                            Argon2::default()
                                .verify_password(password.as_bytes(), &h)
                                .is_ok()
                        })
                });
                if self.verdicts.len() >= MAX_CACHED {
                    self.verdicts.clear();
                }
                self.verdicts.insert(key, ok);
                ok
            }
        };
        if ok {
            return Ok(());
        }
        let entry = self.failures.entry(ip).or_insert((0, now));
        *entry = (entry.0 + 1, now);
        if self.failures.len() > MAX_CACHED {
            self.failures
                .retain(|_, (_, last)| now.duration_since(*last) < ban);
        }
        Err(Refusal::BadCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_failures_are_rate_limited() {
        let cfg = UsersConfig {
            users: vec![UserEntry {
                name: "farm1".into(),
                password_hash: hash_password("s3cret").unwrap(),
            }],
            match_by: MatchBy::Account,
            max_failures: 2,
            ban_seconds: 60.0,
        };
        assert!(AuthConfig::Users(cfg.clone()).check().is_ok());
        let mut a = Authenticator::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        assert_eq!(a.check(&cfg, "farm1.rig7", "s3cret", ip, now), Ok(()));
        assert_eq!(
            a.check(&cfg, "farm2.rig7", "s3cret", ip, now),
            Err(Refusal::BadCredentials)
        );
        assert_eq!(
            a.check(&cfg, "farm1.rig7", "wrong", ip, now),
            Err(Refusal::BadCredentials)
        );
        assert_eq!(
            a.check(&cfg, "farm1.rig7", "s3cret", ip, now),
            Err(Refusal::TooManyFailures)
        );
        let later = now + std::time::Duration::from_secs(61);
        assert_eq!(
            a.check(&cfg, "farm1.rig7", "s3cret", ip, later),
            Ok(()),
            "the ban ends"
        );
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            a.check(&cfg, "farm1.x", "s3cret", other, now),
            Ok(()),
            "other addresses unaffected"
        );
        let worker_cfg = UsersConfig {
            match_by: MatchBy::Worker,
            ..cfg
        };
        assert_eq!(
            a.check(&worker_cfg, "farm1.rig7", "s3cret", other, now),
            Err(Refusal::BadCredentials),
            "whole-name matching"
        );
    }

    #[test]
    fn the_config_forms_parse() {
        #[derive(Deserialize)]
        struct W {
            auth: AuthConfig,
        }
        let w: W = serde_saphyr::from_str("auth: none").unwrap();
        assert_eq!(w.auth, AuthConfig::Mode(AuthMode::None));
        let w: W = serde_saphyr::from_str("auth: passthrough").unwrap();
        assert!(w.auth.passthrough());
        let w: W = serde_saphyr::from_str(
            "auth:\n  users:\n    - name: a\n      password_hash: x\n  match: worker\n",
        )
        .unwrap();
        assert!(matches!(w.auth, AuthConfig::Users(ref u) if u.match_by == MatchBy::Worker));
        assert!(w.auth.check().is_err(), "x is not a PHC hash");
    }
}
