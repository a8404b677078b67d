//! The configuration's types as the YAML file spells them, with their defaults, and the pool URL form.
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelt key is an error naming the key and its line, never a
//! silently ignored setting.

use serde::Deserialize;
use serde_saphyr::Spanned;
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
    /// The authenticated HTTP JSON control API (routes' weights, pools, workers).
    #[serde(default)]
    pub api: Option<ApiConfig>,
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
    /// Pools in priority order (one route `default` of weight 100). With `routes:` instead, it is filled
    /// from the first route's pools after loading (the reactors serve every route, see `route_list`).
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// Weighted routes, each with its own pool list (failover within a route as with `pools:`); exclusive
    /// with `pools:`.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `pools` was filled from the first route by loading (not written in the file).
    #[serde(skip)]
    pub pools_from_routes: bool,
    /// With several routes: seconds a miner that accepts extranonce changes stays on a route before it may
    /// be moved again, and over which a route's lag behind its weight is made up.
    #[serde(default = "default_route_switch_interval")]
    pub route_switch_interval: f64,
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
    /// Stratum V2 pools: seconds at least between two UpdateChannel messages (sent when the upstream's measured
    /// hashrate moved more than 20 % from the value the channel last got).
    #[serde(default = "default_sv2_update_interval")]
    pub sv2_update_interval: f64,
    /// Stratum V2 pools: seconds a forwarded share may wait for the pool's verdict (`share_timeout` is for V1
    /// pools). SV2 pools acknowledge shares in batches: the reference pool every 10 shares at 6 a minute.
    #[serde(default = "default_sv2_share_timeout")]
    pub sv2_share_timeout: f64,
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

/// `api: { listen: 127.0.0.1:9200, token_sha256: <64 hex digits> }`: the control API. The token itself is
/// never stored: `token_sha256` is the SHA-256 of the bearer token, e.g. from
/// `printf %s "$TOKEN" | sha256sum`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: Spanned<String>,
    pub token_sha256: Spanned<String>,
}

impl ApiConfig {
    /// The token's hash as bytes; `None` when `token_sha256` is not 64 hex digits.
    pub fn token_hash(&self) -> Option<[u8; 32]> {
        let hex = self.token_sha256.value.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(out)
    }
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
    /// For stratum2+tcp:// (Stratum V2) pools, required: the pool's authority public key, base58-check as
    /// SRI and pools publish it; the pool's Noise certificate must be signed by it.
    #[serde(default)]
    pub authority_public_key: Option<Spanned<String>>,
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
fn default_sv2_update_interval() -> f64 {
    60.0
}
fn default_sv2_share_timeout() -> f64 {
    600.0
}
fn default_route_switch_interval() -> f64 {
    10.0
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

/// `- { name: main, weight: 70, pools: [...] }`: a share of the entry's hashrate (by accepted difficulty) and
/// the pools, in priority order, that serve it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: Spanned<String>,
    /// Relative weight (any non-negative number; the split is weight / sum of the weights).
    pub weight: Spanned<f64>,
    pub pools: Vec<PoolConfig>,
}

/// A pool address from a `stratum+tcp://host:port`, `stratum+ssl://host:port` or `stratum2+tcp://host:port`
/// (Stratum V2: see [`PoolConfig::is_sv2`]) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUrl {
    pub host: String,
    pub port: u16,
    /// Connect with TLS.
    pub tls: bool,
}

/// The URL scheme of a Stratum V2 pool.
pub const SV2_SCHEME: &str = "stratum2+tcp";

impl PoolUrl {
    /// Parses `stratum+tcp://host:port`, `stratum+ssl://` or `stratum+tls://` (TLS), `tcp://`,
    /// `stratum2+tcp://` (Stratum V2, encrypted by its own Noise layer: not TLS), or a bare `host:port`.
    pub fn parse(url: &str) -> Result<PoolUrl, String> {
        let (rest, tls) = if let Some((scheme, rest)) = url.split_once("://") {
            match scheme {
                "stratum+tcp" | "tcp" | SV2_SCHEME => (rest, false),
                "stratum+ssl" | "stratum+tls" | "ssl" | "tls" => (rest, true),
                _ => {
                    return Err(format!(
                        "unknown URL scheme '{scheme}' (use stratum+tcp://, stratum+ssl:// or stratum2+tcp://)"
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
