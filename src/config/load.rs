//! Loading the YAML text into a [`Config`] (serde errors with their lines), the [`Problem`] type, and the
//! commented template that `--generate-config` prints.

use super::types::Config;

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
        let mut config: Config = serde_saphyr::from_str(text).map_err(|e| {
            vec![Problem {
                line: e.location().map(|l| l.line()),
                message: first_line(&e.to_string()),
            }]
        })?;
        for proxy in &mut config.proxies {
            proxy.fill_pools_from_routes();
        }
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
# Control API (HTTP JSON, bearer token): routes' weights, enabling pools, workers. Only the token's SHA-256 is
# stored here; make one with: TOKEN=$(head -c 32 /dev/urandom | base64); printf %s "$TOKEN" | sha256sum
# api: {{ listen: 127.0.0.1:9200, token_sha256: <the 64 hex digits sha256sum printed> }}
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
      # A Stratum V2 pool (Noise-encrypted, one extended channel shared by the miners); its key as it publishes it:
      # - url: stratum2+tcp://sv2.example.com:34254
      #   user: account.farm1
      #   authority_public_key: 9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72
    # Or split the hashrate by weight (share of accepted difficulty) between routes, each with its own pools
    # in failover order, instead of `pools:` (which is one route `default` of weight 100):
    # routes:
    #   - {{ name: main, weight: 70, pools: [{{ url: stratum+tcp://pool.example.com:3333, user: acct.farm1 }}] }}
    #   - {{ name: fee,  weight: 30, pools: [{{ url: stratum+tcp://other.example.com:3333, user: acct.fee }}] }}
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
    # route_switch_interval: 10     # with routes: a movable miner's time slice on a route
    # sv2_update_interval: 60       # SV2 pools: UpdateChannel (measured hashrate moved > 20 %) at most this often
    # sv2_share_timeout: 600        # SV2 pools: as share_timeout (they acknowledge shares in batches)
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
