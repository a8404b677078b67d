//! The YAML configuration: its types, defaults, loading, and the checks `--check-config` runs.
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelt key is an error naming the key and its line, never a
//! silently ignored setting. After parsing, every semantic problem (bad address, bad URL, impossible limit) is
//! collected with its line, so one run of `--check-config` lists them all.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::net::SocketAddr;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Reactor threads; 0 means one per core.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// HTTP endpoint for Prometheus metrics, the status JSON and the live page.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Seconds a shutdown (SIGTERM/SIGINT) waits for the pools' verdicts on shares in flight.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: f64,
    /// Miners held at once by all proxy entries together; past it new connections are closed at once. Without
    /// it, the descriptor limit sets the bound (past that, new connections wait in the listen backlog).
    #[serde(default)]
    pub max_miners: Option<Spanned<u64>>,
    /// Bytes queued for miners that do not read, all together; past it the largest queues are disconnected.
    #[serde(default = "default_max_queued_output")]
    pub max_queued_output: u64,
    pub proxies: Vec<ProxyConfig>,
}

/// Which Stratum dialect a proxy entry speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolKind {
    /// Bitcoin Stratum V1 (SHA256d) with its extensions.
    Stratum,
    /// Equihash stratum (ZIP 301).
    Equihash,
}

/// One proxy: listeners, the pools it serves them from, and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub name: String,
    pub protocol: ProtocolKind,
    pub listen: Vec<ListenConfig>,
    /// Bytes of extranonce2 each miner keeps at least.
    #[serde(default = "default_min_extranonce2_size")]
    pub min_extranonce2_size: usize,
    /// Pools in priority order.
    pub pools: Vec<PoolConfig>,
    /// Longest line accepted from a miner or a pool, in bytes.
    #[serde(default = "default_max_line_length")]
    pub max_line_length: usize,
    /// Shares a miner may have waiting for the pool's verdict; more are answered with an error.
    #[serde(default = "default_max_pending_shares")]
    pub max_pending_shares: u32,
    /// Bytes queued for a miner that does not read before it is disconnected.
    #[serde(default = "default_max_write_buffer")]
    pub max_write_buffer: usize,
    /// Seconds a connection may stay without subscribing and authorizing.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: f64,
    /// Seconds to wait for the pool's verdict on a share before answering the miner with an error.
    #[serde(default = "default_share_timeout")]
    pub share_timeout: f64,
    /// Seconds a miner's subscribe may wait for a pool connection before it gets an error.
    #[serde(default = "default_pool_wait")]
    pub pool_wait_timeout: f64,
    /// Seconds before the first reconnect to a pool; doubles per failure up to `retry_max`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: f64,
    #[serde(default = "default_retry_max")]
    pub retry_max: f64,
    /// Failed attempts on one pool before moving down the list.
    #[serde(default = "default_failover_after")]
    pub failover_after: u32,
    /// Return to a higher-priority pool when it is healthy again.
    #[serde(default = "default_true")]
    pub failback: bool,
    /// Seconds between checks of a higher-priority pool while on a backup.
    #[serde(default = "default_failback_interval")]
    pub failback_interval: f64,
    /// Seconds a pool connection attempt may take to resolve the pool's name, to connect to one address, and
    /// to complete the pool's handshake (each step).
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: f64,
    /// Follow a pool's `client.reconnect` to another host/port (otherwise reconnect to the same pool).
    #[serde(default)]
    pub allow_reconnect_redirect: bool,
    /// Who may use this proxy: `none` (default), `passthrough` (the pool decides), or `{ users: [...] }`.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// When the miner hears about its share: `pool` (default: the pool's verdict) or `immediate` (true at once;
    /// the pool's rejects still count in stats and logs).
    #[serde(default)]
    pub share_reply: ShareReply,
    /// Rebuild and hash every share locally: invalid, stale and duplicate shares are refused by the proxy and
    /// only shares meeting the pool's target go upstream.
    #[serde(default)]
    pub validate_shares: bool,
    /// Per-miner difficulty (Stratum V1; implies `validate_shares`).
    #[serde(default)]
    pub vardiff: Option<VardiffConfig>,
    /// Seconds a share's ntime may run ahead of its job's.
    #[serde(default = "default_max_ntime_roll")]
    pub max_ntime_roll: u32,
    /// Equihash parameters (n, k) for `protocol: equihash`: they fix the solution size checked on submit.
    #[serde(default = "default_equihash_n")]
    pub equihash_n: u32,
    #[serde(default = "default_equihash_k")]
    pub equihash_k: u32,
    /// Miners this entry holds at once; past it new connections are closed at once.
    #[serde(default)]
    pub max_miners: Option<Spanned<u64>>,
}

/// `metrics: { listen: 127.0.0.1:9100, max_workers: 1000 }`: GET /metrics (Prometheus), /status (JSON), / (page).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: Spanned<String>,
    /// Worker names tracked per proxy entry; more are counted together as `__other__`.
    #[serde(default = "default_max_workers")]
    pub max_workers: usize,
}

fn default_max_workers() -> usize {
    1000
}

/// When a miner gets the answer to its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ShareReply {
    #[default]
    Pool,
    Immediate,
}

/// Per-miner difficulty targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VardiffConfig {
    /// Shares per minute each miner is steered to.
    #[serde(default = "default_shares_per_minute")]
    pub shares_per_minute: f64,
    /// Seconds between retargets of a miner.
    #[serde(default = "default_retarget_interval")]
    pub retarget_interval: f64,
    /// First difficulty of a miner (default: the pool's); `mining.suggest_difficulty` overrides it.
    #[serde(default)]
    pub start_difficulty: Option<f64>,
    /// Lowest difficulty a miner is given.
    #[serde(default = "default_min_difficulty")]
    pub min_difficulty: f64,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    pub address: Spanned<String>,
    /// Serve miners over TLS on this address.
    #[serde(default)]
    pub tls: Option<TlsListenConfig>,
    /// Expect a HAProxy PROXY protocol header (v1, v2, or optional) before anything else; the miner's address
    /// is then the one it names.
    #[serde(default)]
    pub proxy_protocol: Option<crate::proxy_protocol::Mode>,
}

/// A listener's certificate chain and key (PEM files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListenConfig {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// One pool account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub url: Spanned<String>,
    pub user: String,
    #[serde(default = "default_password")]
    pub password: String,
    /// For stratum+ssl:// pools: a PEM file of the CA that signed the pool's certificate (default: the
    /// public Web PKI roots).
    #[serde(default)]
    pub ca: Option<Spanned<String>>,
    /// For stratum+ssl:// pools with self-signed certificates: accept any certificate. Logged loudly.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_max_queued_output() -> u64 {
    1 << 30
}
fn default_threads() -> usize {
    0
}
fn default_drain_timeout() -> f64 {
    5.0
}
fn default_min_extranonce2_size() -> usize {
    4
}
fn default_max_line_length() -> usize {
    16 * 1024
}
fn default_max_pending_shares() -> u32 {
    64
}
fn default_max_write_buffer() -> usize {
    256 * 1024
}
fn default_idle_timeout() -> f64 {
    60.0
}
fn default_share_timeout() -> f64 {
    30.0
}
fn default_pool_wait() -> f64 {
    30.0
}
fn default_retry_initial() -> f64 {
    0.5
}
fn default_retry_max() -> f64 {
    30.0
}
fn default_failover_after() -> u32 {
    2
}
fn default_failback_interval() -> f64 {
    30.0
}
fn default_handshake_timeout() -> f64 {
    10.0
}
fn default_max_ntime_roll() -> u32 {
    7200
}
fn default_shares_per_minute() -> f64 {
    20.0
}
fn default_retarget_interval() -> f64 {
    30.0
}
fn default_min_difficulty() -> f64 {
    1e-9
}
fn default_equihash_n() -> u32 {
    200
}
fn default_equihash_k() -> u32 {
    9
}
fn default_true() -> bool {
    true
}
fn default_password() -> String {
    "x".to_string()
}

/// A pool address from a `stratum+tcp://host:port` or `stratum+ssl://host:port` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUrl {
    pub host: String,
    pub port: u16,
    /// Connect with TLS.
    pub tls: bool,
}

impl PoolUrl {
    /// Parses `stratum+tcp://host:port`, `stratum+ssl://` or `stratum+tls://` (TLS), `tcp://`, or a bare
    /// `host:port`.
    pub fn parse(url: &str) -> Result<PoolUrl, String> {
        let (rest, tls) = if let Some((scheme, rest)) = url.split_once("://") {
            match scheme {
                "stratum+tcp" | "tcp" => (rest, false),
                "stratum+ssl" | "stratum+tls" | "ssl" | "tls" => (rest, true),
                _ => {
                    return Err(format!(
                        "unknown URL scheme '{scheme}' (use stratum+tcp:// or stratum+ssl://)"
                    ))
                }
            }
        } else {
            (url, false)
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("'{url}' has no port (stratum+tcp://host:port)"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{url}' has an invalid port '{port}'"))?;
        if port == 0 {
            return Err(format!("'{url}' has port 0"));
        }
        Ok(PoolUrl {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl Config {
    /// Parses and checks a config text; every problem found is returned.
    pub fn from_yaml(text: &str) -> Result<Config, Vec<Problem>> {
        let config: Config = serde_saphyr::from_str(text).map_err(|e| {
            vec![Problem {
                line: e.location().map(|l| l.line()),
                message: first_line(&e.to_string()),
            }]
        })?;
        let problems = config.check();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Reads and checks a config file.
    pub fn load(path: &std::path::Path) -> Result<Config, Vec<Problem>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Problem {
                line: None,
                message: format!("cannot read {}: {e}", path.display()),
            }]
        })?;
        Config::from_yaml(&text)
    }

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
            if proxy.pools.is_empty() {
                p(None, format!("proxy '{n}': no pools"));
            }
            for pool in &proxy.pools {
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
        problems
    }
}

impl PoolConfig {
    /// The TLS client config for this pool (its CA, or the public roots, or no verification).
    pub fn client_tls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
        let ca = self.ca.as_ref().map(|c| std::path::Path::new(&c.value));
        crate::tls::client_config(ca, self.insecure_skip_verify)
    }
}

impl ProxyConfig {
    /// Shares are judged by the proxy.
    pub fn validates(&self) -> bool {
        self.validate_shares || self.vardiff.is_some()
    }

    /// The Equihash parameters of this proxy.
    pub fn equihash_params(&self) -> crate::equihash::Params {
        crate::equihash::Params {
            n: self.equihash_n,
            k: self.equihash_k,
        }
    }

    /// A duration setting in seconds as a `Duration`.
    pub fn secs(v: f64) -> Duration {
        crate::duration::secs(v)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// The commented template that `--generate-config` prints.
pub fn template(pool_url: &str, user: &str) -> String {
    format!(
        r#"# fastproxy configuration. Check it with: fastproxy --check-config -c proxy.yaml
# Durations are in seconds (fractions allowed). Unknown keys are errors.

threads: 0                    # reactor threads: 0 = one per core, each with its own pool connection
drain_timeout: 5              # on SIGTERM/SIGINT, seconds to wait for the pools' verdicts on shares in flight
# SIGHUP reloads this file: pool lists and limits apply without dropping miners; listeners need a restart.
# metrics: {{ listen: 127.0.0.1:9100, max_workers: 1000 }}   # GET /metrics (Prometheus), /status, / (live page)
# At start the descriptor limit is raised to the hard limit and the room for miners is logged; the proxy keeps
# descriptors for its pools, listeners, metrics and reloads. Past that room new connections wait in the listen
# backlog and are accepted in order as soon as a miner leaves.
# max_miners: 10000           # miners of all proxies together; past it new connections are closed at once
# max_queued_output: 1073741824  # bytes queued for miners that do not read, all together; past it the largest
#                                # queues (the slowest readers) are disconnected first

proxies:
  - name: btc-farm
    protocol: stratum         # stratum (Bitcoin Stratum V1) | equihash (ZIP 301)
    listen:
      - address: 0.0.0.0:3333 # miners connect here
    # Each miner keeps at least this many bytes of extranonce2; with the pool's extranonce2_size this sets how
    # many miners share one pool connection (8 from the pool and 4 here: 65,536 miners per connection).
    min_extranonce2_size: 4
    pools:                    # in priority order; the first healthy one is used
      - url: {pool_url}
        user: {user}
        password: x
      # - url: stratum+tcp://backup.example.com:3333
      #   user: account.farm1
      #   password: x
    # Limits (defaults shown):
    # max_line_length: 16384        # bytes per JSON line from a miner or pool
    # max_pending_shares: 64        # shares per miner waiting for the pool's verdict
    # max_write_buffer: 262144      # bytes queued for a miner that does not read
    # idle_timeout: 60              # a connection must subscribe and authorize within this
    # share_timeout: 30             # the miner gets an error if the pool has not answered by then
    # pool_wait_timeout: 30         # a subscribe waits this long for a pool connection
    # max_miners: 5000              # miners of this entry; past it new connections are closed at once
    # Pool failover (defaults shown):
    # retry_initial: 0.5            # first reconnect delay, doubling per failure
    # retry_max: 30
    # failover_after: 2             # failed attempts before moving down the pool list
    # failback: true                # go back to a higher-priority pool when it is healthy
    # failback_interval: 30
    # handshake_timeout: 10         # per pool attempt: name lookup, connect to each address, handshake
    # Who may connect: none | passthrough (the pool checks each worker; submits carry its own name) |
    # {{ users: [{{ name: farm1, password_hash: "<from fastproxy hash-password>" }}], match: account }}
    # auth: none
    # share_reply: pool               # pool (wait for the pool's verdict) | immediate (answer true at once)
    # Local share validation: rebuild and hash every share; only shares meeting the pool's target go up.
    # validate_shares: false
    # max_ntime_roll: 7200              # seconds a share's ntime may run ahead of its job's
    # Per-miner difficulty (stratum only; implies validate_shares):
    # vardiff: {{ shares_per_minute: 20, retarget_interval: 30, min_difficulty: 0.000000001 }}
    # equihash_n: 200                 # protocol: equihash only: the solution size follows from (n, k)
    # equihash_k: 9
    # allow_reconnect_redirect: false  # follow client.reconnect to another host
    #
    # TLS towards miners: add to a listen entry (a proxy may listen on a plain and a TLS port at once):
    #   - address: 0.0.0.0:3443
    #     tls: {{ cert: /etc/fastproxy/cert.pem, key: /etc/fastproxy/key.pem }}
    # Behind HAProxy (send-proxy / send-proxy-v2), add to a listen entry: proxy_protocol: v1 | v2 | optional
    # TLS towards a pool: a stratum+ssl:// (or stratum+tls://) URL. The pool's certificate is checked against
    # the public Web PKI roots, or against a private CA with `ca: /path/ca.pem`; `insecure_skip_verify: true`
    # accepts any certificate (self-signed pools; logged as a warning at start).
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_checks() {
        let c = Config::from_yaml(&template("stratum+tcp://127.0.0.1:3334", "acct.w")).unwrap();
        assert_eq!(c.proxies.len(), 1);
        assert_eq!(c.proxies[0].min_extranonce2_size, 4);
        assert_eq!(c.proxies[0].pools[0].password, "x");
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let y = "proxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    pools: []\n    min_extranonce_size: 4\n";
        let e = Config::from_yaml(y).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(6), "{e:?}");
        assert!(e[0].message.contains("min_extranonce_size"), "{e:?}");
    }

    #[test]
    fn every_semantic_problem_is_listed_with_lines() {
        let y = "proxies:\n  - name: a\n    protocol: stratum\n    listen:\n      - address: nothere\n    pools:\n      - url: http://x:1\n        user: u\n      - url: stratum+tcp://host\n        user: u\n";
        let e = Config::from_yaml(y).unwrap_err();
        let lines: Vec<_> = e.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(5), Some(7), Some(9)], "{e:?}");
    }

    #[test]
    fn max_miners_top_level_and_per_entry_with_lines() {
        let y = "max_miners: 10\nproxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    max_miners: 3\n    pools: [{url: stratum+tcp://h:1, user: u}]\n";
        let c = Config::from_yaml(y).unwrap();
        assert_eq!(c.max_miners.as_ref().map(|m| m.value), Some(10));
        assert_eq!(c.proxies[0].max_miners.as_ref().map(|m| m.value), Some(3));
        let e = Config::from_yaml(&y.replace(": 10", ": 0").replace(": 3", ": 0")).unwrap_err();
        let lines: Vec<_> = e.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(1), Some(6)], "{e:?}");
        let e = Config::from_yaml(&y.replace("max_miners: 3", "max_miner: 3")).unwrap_err();
        assert_eq!(e[0].line, Some(6), "{e:?}");
        let e = Config::from_yaml(&format!("max_queued_output: 1000\n{y}")).unwrap_err();
        assert!(e[0].message.contains("max_queued_output"), "{e:?}");
    }

    #[test]
    fn handshake_timeout_defaults_to_10_s_and_is_checked_with_its_line() {
        let base = "proxies:\n  - name: a\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    pools: [{url: stratum+tcp://127.0.0.1:1, user: u}]\n";
        let c = Config::from_yaml(base).unwrap();
        assert_eq!(c.proxies[0].handshake_timeout, 10.0);
        let c = Config::from_yaml(&format!("{base}    handshake_timeout: 1.5\n")).unwrap();
        assert_eq!(c.proxies[0].handshake_timeout, 1.5);
        let e = Config::from_yaml(&format!("{base}    handshake_timeout: soon\n")).unwrap_err();
        assert_eq!(e[0].line, Some(6), "{e:?}");
        let e = Config::from_yaml(&format!("{base}    handshake_timeout: 0\n")).unwrap_err();
        assert!(
            e[0].message
                .contains("handshake_timeout must be a positive"),
            "{e:?}"
        );
        let t = template("stratum+tcp://127.0.0.1:3334", "acct.w");
        let line = t.lines().find(|l| l.contains("handshake_timeout"));
        let uncommented = line.unwrap().replacen("# ", "", 1);
        let c = Config::from_yaml(&t.replace(line.unwrap(), &uncommented)).unwrap();
        assert_eq!(c.proxies[0].handshake_timeout, 10.0, "{uncommented}");
    }

    #[test]
    fn pool_url_forms() {
        assert_eq!(
            PoolUrl::parse("stratum+tcp://pool.example.com:3333").unwrap(),
            PoolUrl {
                host: "pool.example.com".into(),
                port: 3333,
                tls: false
            }
        );
        assert!(
            PoolUrl::parse("stratum+ssl://pool.example.com:443")
                .unwrap()
                .tls
        );
        assert!(
            PoolUrl::parse("stratum+tls://pool.example.com:443")
                .unwrap()
                .tls
        );
        assert!(PoolUrl::parse("stratum+tcp://h:0").is_err());
        assert!(PoolUrl::parse("stratum+tcp://h:x").is_err());
        assert!(PoolUrl::parse("ftp://h:1").is_err());
    }
}
