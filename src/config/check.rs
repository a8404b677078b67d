//! The checks `--check-config` runs after parsing: addresses, URLs, TLS files, limits and durations, each
//! problem with its line when known, all collected so that one run lists them all.

use super::load::Problem;
use super::routes::check_routes;
use super::types::{Config, PoolUrl, ProtocolKind};
use std::net::SocketAddr;

impl Config {
    /// The semantic checks that serde cannot do.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut p = |line: Option<u64>, message: String| problems.push(Problem { line, message });
        if self.proxies.is_empty() {
            p(None, "no proxies configured".into());
        }
        if let Some(m) = &self.metrics {
            if m.listen.value.parse::<SocketAddr>().is_err() {
                p(
                    Some(m.listen.referenced.line()),
                    format!("metrics listen '{}' is not IP:PORT", m.listen.value),
                );
            }
            if m.max_workers == 0 {
                p(None, "metrics max_workers must be at least 1".into());
            }
        }
        if !(self.drain_timeout.is_finite() && (0.0..=3600.0).contains(&self.drain_timeout)) {
            p(None, "drain_timeout must be 0..=3600 seconds".into());
        }
        if self.max_queued_output < 1 << 20 {
            p(
                None,
                "max_queued_output must be at least 1048576 (1 MiB)".into(),
            );
        }
        if let Some(m) = self.max_miners.as_ref().filter(|m| m.value == 0) {
            p(
                Some(m.referenced.line()),
                "max_miners must be at least 1".into(),
            );
        }
        if let Some(api) = &self.api {
            if api.listen.value.parse::<SocketAddr>().is_err() {
                p(
                    Some(api.listen.referenced.line()),
                    format!("api listen '{}' is not IP:PORT", api.listen.value),
                );
            }
            if api.token_hash().is_none() {
                p(
                    Some(api.token_sha256.referenced.line()),
                    "api token_sha256 must be 64 hex digits (printf %s \"$TOKEN\" | sha256sum)"
                        .into(),
                );
            }
        }
        let mut names = std::collections::HashSet::new();
        for proxy in &self.proxies {
            let n = &proxy.name;
            if !names.insert(n.clone()) {
                p(None, format!("proxy name '{n}' is used twice"));
            }
            if proxy.listen.is_empty() {
                p(None, format!("proxy '{n}': no listen address"));
            }
            for l in &proxy.listen {
                if let Some(tls) = &l.tls {
                    let (cert, key) = (&tls.cert, &tls.key);
                    if let Err(e) = crate::tls::server_config(
                        std::path::Path::new(&cert.value),
                        std::path::Path::new(&key.value),
                    ) {
                        p(
                            Some(cert.referenced.line()),
                            format!("proxy '{n}': tls: {e}"),
                        );
                    }
                }
                if l.address.value.parse::<SocketAddr>().is_err() {
                    p(
                        Some(l.address.referenced.line()),
                        format!(
                            "proxy '{n}': listen address '{}' is not IP:PORT",
                            l.address.value
                        ),
                    );
                }
            }
            if proxy.pools.is_empty() && proxy.routes.is_empty() {
                p(None, format!("proxy '{n}': no pools"));
            }
            let routes = proxy.route_list();
            for pool in routes.iter().flat_map(|r| r.pools) {
                for sv2 in super::sv2::check_pool(proxy, pool) {
                    p(sv2.line, sv2.message);
                }
                let line = Some(pool.url.referenced.line());
                match PoolUrl::parse(&pool.url.value) {
                    Err(e) => p(line, format!("proxy '{n}': pool url: {e}")),
                    Ok(url) if url.tls => {
                        if let Err(e) = pool.client_tls() {
                            p(line, format!("proxy '{n}': pool {}: {e}", pool.url.value));
                        }
                        if let Err(e) = crate::tls::server_name(&url.host) {
                            p(line, format!("proxy '{n}': {e}"));
                        }
                    }
                    Ok(_) => {
                        if pool.ca.is_some() || pool.insecure_skip_verify {
                            p(
                                line,
                                format!("proxy '{n}': 'ca' and 'insecure_skip_verify' need a stratum+ssl:// URL"),
                            );
                        }
                    }
                }
            }
            if proxy.protocol == ProtocolKind::Equihash {
                if let Err(e) = proxy.equihash_params().check() {
                    p(None, format!("proxy '{n}': equihash_n/equihash_k: {e}"));
                }
                if proxy.vardiff.is_some() {
                    p(
                        None,
                        format!("proxy '{n}': vardiff is for protocol: stratum only"),
                    );
                }
            }
            if let Err(e) = proxy.auth.check() {
                p(None, format!("proxy '{n}': {e}"));
            }
            if let Some(v) = &proxy.vardiff {
                let pos = |x: f64| x.is_finite() && x > 0.0 && x < 1e7;
                if !pos(v.shares_per_minute)
                    || !pos(v.retarget_interval)
                    || !pos(v.min_difficulty)
                    || v.start_difficulty.is_some_and(|d| !pos(d))
                {
                    p(
                        None,
                        format!("proxy '{n}': vardiff values must be positive numbers"),
                    );
                }
            }
            if !(1..=8).contains(&proxy.min_extranonce2_size) {
                p(
                    None,
                    format!("proxy '{n}': min_extranonce2_size must be 1..=8"),
                );
            }
            if proxy.max_line_length < 512 {
                p(
                    None,
                    format!("proxy '{n}': max_line_length must be at least 512"),
                );
            }
            if proxy.max_pending_shares == 0 {
                p(
                    None,
                    format!("proxy '{n}': max_pending_shares must be at least 1"),
                );
            }
            if proxy.max_write_buffer < 4096 {
                p(
                    None,
                    format!("proxy '{n}': max_write_buffer must be at least 4096"),
                );
            }
            for (key, v) in [
                ("idle_timeout", proxy.idle_timeout),
                ("share_timeout", proxy.share_timeout),
                ("pool_wait_timeout", proxy.pool_wait_timeout),
                ("retry_initial", proxy.retry_initial),
                ("retry_max", proxy.retry_max),
                ("failback_interval", proxy.failback_interval),
                ("handshake_timeout", proxy.handshake_timeout),
                ("route_switch_interval", proxy.route_switch_interval),
                ("sv2_update_interval", proxy.sv2_update_interval),
                ("sv2_share_timeout", proxy.sv2_share_timeout),
            ] {
                if !(v.is_finite() && v > 0.0 && v < 1e7) {
                    p(
                        None,
                        format!("proxy '{n}': {key} must be a positive number of seconds"),
                    );
                }
            }
            if let Some(m) = proxy.max_miners.as_ref().filter(|m| m.value == 0) {
                p(
                    Some(m.referenced.line()),
                    format!("proxy '{n}': max_miners must be at least 1"),
                );
            }
            if proxy.failover_after == 0 {
                p(
                    None,
                    format!("proxy '{n}': failover_after must be at least 1"),
                );
            }
        }
        for proxy in &self.proxies {
            check_routes(proxy, &mut problems);
        }
        problems
    }
}
