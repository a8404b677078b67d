//! Stratum V2 pool entries in the config: the `stratum2+tcp://` URL and its `authority_public_key`, their
//! checks (with lines); the reactor runs them through `session/sv2_pool.rs` and `sv2_driver.rs`.

use super::load::Problem;
use super::types::{PoolConfig, ProtocolKind, ProxyConfig, SV2_SCHEME};
use crate::protocol::sv2::common::AuthorityKey;

impl PoolConfig {
    /// The pool speaks Stratum V2 (a `stratum2+tcp://` URL).
    pub fn is_sv2(&self) -> bool {
        self.url
            .value
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme == SV2_SCHEME)
    }

    /// The pool's authority public key: None when none is configured, else the parsed key or why it is bad.
    pub fn authority_key(&self) -> Option<Result<AuthorityKey, String>> {
        let key = self.authority_public_key.as_ref()?;
        Some(AuthorityKey::parse(&key.value).map_err(|e| e.to_string()))
    }
}

/// The SV2 checks of one pool of proxy `proxy`: an SV2 URL needs a valid key on a Stratum (not Equihash)
/// entry, and a key belongs only on an SV2 URL.
pub(super) fn check_pool(proxy: &ProxyConfig, pool: &PoolConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let n = &proxy.name;
    let url_line = Some(pool.url.referenced.line());
    let mut p = |line: Option<u64>, message: String| problems.push(Problem { line, message });
    let key_line = pool
        .authority_public_key
        .as_ref()
        .map(|k| k.referenced.line());
    if !pool.is_sv2() {
        if key_line.is_some() {
            p(
                key_line,
                format!(
                    "proxy '{n}': pool {}: authority_public_key is for Stratum V2 pools ({SV2_SCHEME}:// URLs)",
                    pool.url.value
                ),
            );
        }
        return problems;
    }
    if proxy.protocol == ProtocolKind::Equihash {
        p(
            url_line,
            format!(
                "proxy '{n}': pool {}: a Stratum V2 pool needs protocol: stratum, not equihash",
                pool.url.value
            ),
        );
    }
    if proxy.auth.passthrough() {
        p(
            url_line,
            format!(
                "proxy '{n}': pool {}: auth: passthrough needs V1 pools (a Stratum V2 channel has one user identity)",
                pool.url.value
            ),
        );
    }
    match pool.authority_key() {
        None => p(
            url_line,
            format!(
                "proxy '{n}': pool {}: a Stratum V2 pool needs authority_public_key (the pool's key, base58-check)",
                pool.url.value
            ),
        ),
        Some(Err(e)) => p(key_line, format!("proxy '{n}': pool {}: {e}", pool.url.value)),
        Some(Ok(_)) => {}
    }
    problems
}
