//! `GET /metrics`: the Prometheus text format (0.0.4), encoded by prometheus-client from the stats' atomics at
//! scrape time (a [`Collector`]: nothing is registered or updated between scrapes).

use crate::stats::{PoolState, ProxyStats, Reject, UpstreamState, WorkerStats, LATENCY_BOUNDS_MS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// The `Content-Type` of the response.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The proxies to expose, by name.
pub type Proxies = Arc<Vec<(String, Arc<ProxyStats>)>>;

/// Reads every proxy's stats at scrape time.
#[derive(Debug)]
struct StatsCollector {
    proxies: Proxies,
}

/// A registry whose one collector reads `proxies` (the server adds the routes' collector to it).
pub fn registry(proxies: Proxies) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(StatsCollector { proxies }));
    r
}

/// The exposition text of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

pub(super) type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One metric family: a descriptor and its samples.
pub(super) fn family<'a, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> Result<(), Error> {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in samples {
        v.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn pl(proxy: &str) -> Labels<'_> {
    vec![("proxy", proxy)]
}

fn wl<'a>(proxy: &'a str, w: &'a WorkerStats) -> Labels<'a> {
    vec![("proxy", proxy), ("worker", w.name())]
}

fn counter(c: &AtomicU64) -> ConstCounter<u64> {
    ConstCounter::new(c.load(Relaxed))
}

fn gauge(c: &AtomicU64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(c.load(Relaxed)).unwrap_or(i64::MAX))
}

/// A pool's labels: proxy, 1-based pool number, URL.
struct PoolLabels {
    proxy: String,
    number: String,
    url: String,
}

impl PoolLabels {
    fn labels(&self) -> Labels<'_> {
        vec![
            ("proxy", self.proxy.as_str()),
            ("pool", self.number.as_str()),
            ("url", self.url.as_str()),
        ]
    }
}

/// The process's descriptor figures (see `limits`).
fn descriptors(enc: &mut DescriptorEncoder) -> Result<(), Error> {
    let d = crate::limits::descriptors();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let gauges = [
        (
            "fastproxy_descriptor_limit",
            "The soft RLIMIT_NOFILE in force (-1: unlimited).",
            d.limit.map_or(-1, as_i64),
        ),
        (
            "fastproxy_descriptors_reserved",
            "Descriptors kept for pools, listeners, metrics and reloads.",
            as_i64(d.reserved),
        ),
        (
            "fastproxy_miner_slots",
            "Miners the descriptors allow besides the reserve (-1: unlimited).",
            d.miner_slots.map_or(-1, as_i64),
        ),
        (
            "fastproxy_accept_paused",
            "Listeners waiting for a free descriptor now (1 or more: descriptors exhausted).",
            as_i64(d.paused),
        ),
    ];
    for (name, help, v) in gauges {
        family(
            enc,
            name,
            help,
            MetricType::Gauge,
            [(Labels::new(), ConstGauge::new(v))],
        )?;
    }
    let counters = [
        (
            "fastproxy_descriptor_exhaustions",
            "Episodes of new connections waiting for a free descriptor.",
            d.episodes,
        ),
        (
            "fastproxy_connections_delayed",
            "Connections accepted after waiting in the backlog for a free descriptor.",
            d.delayed,
        ),
    ];
    for (name, help, v) in counters {
        family(
            enc,
            name,
            help,
            MetricType::Counter,
            [(Labels::new(), ConstCounter::new(v))],
        )?;
    }
    Ok(())
}

impl Collector for StatsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), Error> {
        let now = Instant::now();
        let px: &[(String, Arc<ProxyStats>)] = &self.proxies;
        {
            let info = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
            let m = enc.encode_descriptor(
                "fastproxy_build",
                "fastproxy version.",
                None,
                info.metric_type(),
            )?;
            info.encode(m)?;
        }

        // Per proxy: the counters every reactor keeps.
        type Field = fn(&ProxyStats) -> &AtomicU64;
        let gauges: [(&str, &str, Field); 2] = [
            ("fastproxy_miners_connected", "Miners connected now.", |s| {
                &s.miners_connected
            }),
            (
                "fastproxy_upstreams",
                "Upstreams (pool sessions shared by miners) open now.",
                |s| &s.upstreams,
            ),
        ];
        for (name, help, f) in gauges {
            family(
                &mut enc,
                name,
                help,
                MetricType::Gauge,
                px.iter().map(|(n, s)| (pl(n), gauge(f(s)))),
            )?;
        }
        let counters: [(&str, &str, Field); 13] = [
            (
                "fastproxy_miners_accepted",
                "Miner connections accepted.",
                |s| &s.miners_total,
            ),
            (
                "fastproxy_miners_kicked",
                "Miners disconnected by the proxy.",
                |s| &s.miners_kicked,
            ),
            (
                "fastproxy_miners_refused",
                "Connections closed at once because max_miners (the entry's or the total) was reached.",
                |s| &s.miners_refused,
            ),
            (
                "fastproxy_pool_connections",
                "Pool connections opened.",
                |s| &s.pool_connections,
            ),
            (
                "fastproxy_pool_handshakes",
                "Pool connections that completed the handshake.",
                |s| &s.pool_ready,
            ),
            (
                "fastproxy_failovers",
                "Times an upstream moved to another pool of its list.",
                |s| &s.failovers,
            ),
            (
                "fastproxy_shares_submitted",
                "Shares received from miners.",
                |s| &s.shares_submitted,
            ),
            (
                "fastproxy_shares_forwarded",
                "Shares forwarded to a pool.",
                |s| &s.shares_forwarded,
            ),
            (
                "fastproxy_shares_accepted",
                "Shares the pool accepted.",
                |s| &s.shares_accepted,
            ),
            (
                "fastproxy_shares_rejected",
                "Shares the pool rejected.",
                |s| &s.shares_rejected,
            ),
            (
                "fastproxy_shares_errored",
                "Shares answered with an error by the proxy itself.",
                |s| &s.shares_errored,
            ),
            (
                "fastproxy_unknown_replies",
                "Pool replies whose id matched nothing.",
                |s| &s.unknown_replies,
            ),
            (
                "fastproxy_extranonce_updates",
                "mining.set_extranonce messages sent to miners.",
                |s| &s.extranonce_updates,
            ),
        ];
        for (name, help, f) in counters {
            family(
                &mut enc,
                name,
                help,
                MetricType::Counter,
                px.iter().map(|(n, s)| (pl(n), counter(f(s)))),
            )?;
        }
        family(
            &mut enc,
            "fastproxy_share_errors",
            "Shares answered with an error by the proxy itself, by reason.",
            MetricType::Counter,
            px.iter().flat_map(|(n, s)| {
                Reject::ALL.iter().map(move |r| {
                    (
                        vec![("proxy", n.as_str()), ("reason", r.label())],
                        ConstCounter::new(s.errors.get(*r)),
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "fastproxy_validated_shares",
            "Shares judged by local validation (validate_shares), by verdict: accepted_locally (met the miner's target only), forwarded, stale, invalid, low_difficulty, duplicate.",
            MetricType::Counter,
            px.iter().flat_map(|(n, s)| {
                s.validation.verdicts().into_iter().map(move |(verdict, c)| {
                    (vec![("proxy", n.as_str()), ("verdict", verdict)], counter(c))
                })
            }),
        )?;
        family(
            &mut enc,
            "fastproxy_vardiff_retargets",
            "Difficulty changes sent to miners by vardiff.",
            MetricType::Counter,
            px.iter()
                .map(|(n, s)| (pl(n), counter(&s.validation.retargets))),
        )?;
        family(
            &mut enc,
            "fastproxy_upstream_state",
            "State of the proxy's upstreams: 1 for the current one of connecting, subscribed (first pool), failed_over (on a backup pool).",
            MetricType::Gauge,
            px.iter().flat_map(|(n, s)| {
                let state = s.upstream_state();
                [UpstreamState::Connecting, UpstreamState::Subscribed, UpstreamState::FailedOver(1)]
                    .into_iter()
                    .map(move |st| {
                        (
                            vec![("proxy", n.as_str()), ("state", st.label())],
                            ConstGauge::new(i64::from(st.label() == state.label())),
                        )
                    })
            }),
        )?;
        family(
            &mut enc,
            "fastproxy_current_pool",
            "1-based number of the pool most upstreams use now (0: none).",
            MetricType::Gauge,
            px.iter().map(|(n, s)| {
                (
                    pl(n),
                    ConstGauge::new(s.current_pool().map_or(0, |i| i as i64 + 1)),
                )
            }),
        )?;
        family(
            &mut enc,
            "fastproxy_hashrate",
            "Estimated hashrate of the proxy's miners (H/s): accepted difficulty x 2^32 over the last 10 minutes.",
            MetricType::Gauge,
            px.iter().map(|(n, s)| (pl(n), ConstGauge::new(s.hashrate(now)))),
        )?;

        descriptors(&mut enc)?;

        // Per pool.
        let pools: Vec<(PoolLabels, &crate::stats::PoolStats)> = px
            .iter()
            .flat_map(|(n, s)| {
                s.pools.iter().map(move |p| {
                    (
                        PoolLabels {
                            proxy: n.clone(),
                            number: (p.index + 1).to_string(),
                            url: p.url.clone(),
                        },
                        p,
                    )
                })
            })
            .collect();
        family(
            &mut enc,
            "fastproxy_pool_state",
            "Pool state, one-hot: down (no connection), connecting, subscribed (a connection is ready).",
            MetricType::Gauge,
            pools.iter().flat_map(|(l, p)| {
                let state = p.state();
                PoolState::ALL.into_iter().map(move |st| {
                    let mut labels = l.labels();
                    labels.push(("state", st.label()));
                    (labels, ConstGauge::new(i64::from(st == state)))
                })
            }),
        )?;
        type PoolField = fn(&crate::stats::PoolStats) -> &AtomicU64;
        let pool_gauges: [(&str, &str, PoolField); 3] = [
            (
                "fastproxy_pool_connections_ready",
                "Connections to the pool ready now.",
                |p| &p.ready,
            ),
            (
                "fastproxy_pool_connections_connecting",
                "Connections to the pool connecting or handshaking now.",
                |p| &p.connecting,
            ),
            (
                "fastproxy_pool_upstreams",
                "Upstreams whose current pool this is.",
                |p| &p.upstreams,
            ),
        ];
        for (name, help, f) in pool_gauges {
            family(
                &mut enc,
                name,
                help,
                MetricType::Gauge,
                pools.iter().map(|(l, p)| (l.labels(), gauge(f(p)))),
            )?;
        }
        let pool_counters: [(&str, &str, PoolField); 7] = [
            (
                "fastproxy_pool_connects",
                "Connections opened to the pool.",
                |p| &p.connects,
            ),
            (
                "fastproxy_pool_reconnects",
                "Connections opened again after an earlier one.",
                |p| &p.reconnects,
            ),
            (
                "fastproxy_pool_connect_failures",
                "Connections that ended before their handshake completed.",
                |p| &p.connect_failures,
            ),
            ("fastproxy_pool_jobs", "mining.notify received.", |p| {
                &p.jobs
            }),
            (
                "fastproxy_pool_shares_accepted",
                "Shares the pool accepted.",
                |p| &p.accepted,
            ),
            (
                "fastproxy_pool_received_bytes",
                "Bytes read from the pool.",
                |p| &p.bytes_in,
            ),
            (
                "fastproxy_pool_sent_bytes",
                "Bytes sent to the pool.",
                |p| &p.bytes_out,
            ),
        ];
        for (name, help, f) in pool_counters {
            family(
                &mut enc,
                name,
                help,
                MetricType::Counter,
                pools.iter().map(|(l, p)| (l.labels(), counter(f(p)))),
            )?;
        }
        family(
            &mut enc,
            "fastproxy_pool_difficulty",
            "The latest difficulty the pool set.",
            MetricType::Gauge,
            pools
                .iter()
                .map(|(l, p)| (l.labels(), ConstGauge::new(p.difficulty()))),
        )?;
        family(
            &mut enc,
            "fastproxy_pool_accepted_difficulty",
            "Sum of the difficulty of accepted shares (rate x 2^32 = hashrate).",
            MetricType::Counter,
            pools
                .iter()
                .map(|(l, p)| (l.labels(), ConstCounter::new(p.accepted_difficulty.get()))),
        )?;
        family(
            &mut enc,
            "fastproxy_pool_shares_rejected",
            "Shares the pool rejected, by reason.",
            MetricType::Counter,
            pools.iter().flat_map(|(l, p)| {
                Reject::ALL.into_iter().map(move |r| {
                    let mut labels = l.labels();
                    labels.push(("reason", r.label()));
                    (labels, ConstCounter::new(p.rejected.get(r)))
                })
            }),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "fastproxy_pool_reply_latency_seconds",
                "Time from sending a share to the pool's verdict.",
                None,
                MetricType::Histogram,
            )?;
            for (l, p) in &pools {
                let counts = p.latency.counts();
                let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_MS
                    .iter()
                    .map(|ms| ms / 1000.0)
                    .chain([f64::INFINITY])
                    .zip(counts)
                    .collect();
                let labels = l.labels();
                m.encode_family(&labels)?.encode_histogram::<Labels>(
                    p.latency.sum_seconds(),
                    counts.iter().sum(),
                    &buckets,
                    None,
                )?;
            }
        }

        // Per worker.
        let workers: Vec<(&str, Arc<WorkerStats>)> = px
            .iter()
            .flat_map(|(n, s)| s.workers.all().into_iter().map(move |w| (n.as_str(), w)))
            .collect();
        family(
            &mut enc,
            "fastproxy_workers_tracked",
            "Distinct worker names tracked (the cap is max_workers; more go to worker=\"__other__\").",
            MetricType::Gauge,
            px.iter().map(|(n, s)| (pl(n), ConstGauge::new(s.workers.len() as i64))),
        )?;
        family(
            &mut enc,
            "fastproxy_workers_overflowed",
            "Authorizations counted under worker=\"__other__\" because max_workers names were tracked.",
            MetricType::Counter,
            px.iter().map(|(n, s)| (pl(n), counter(&s.workers.overflowed))),
        )?;
        family(
            &mut enc,
            "fastproxy_worker_miners",
            "Miners connected under this worker name.",
            MetricType::Gauge,
            workers.iter().map(|(n, w)| (wl(n, w), gauge(&w.connected))),
        )?;
        family(
            &mut enc,
            "fastproxy_worker_shares_accepted",
            "Shares of this worker the pool accepted.",
            MetricType::Counter,
            workers
                .iter()
                .map(|(n, w)| (wl(n, w), counter(&w.accepted))),
        )?;
        family(
            &mut enc,
            "fastproxy_worker_shares_rejected",
            "Shares of this worker rejected by the pool or answered with an error by the proxy.",
            MetricType::Counter,
            workers
                .iter()
                .map(|(n, w)| (wl(n, w), counter(&w.rejected))),
        )?;
        family(
            &mut enc,
            "fastproxy_worker_accepted_difficulty",
            "Sum of the difficulty of this worker's accepted shares (rate x 2^32 = hashrate).",
            MetricType::Counter,
            workers
                .iter()
                .map(|(n, w)| (wl(n, w), ConstCounter::new(w.accepted_difficulty.get()))),
        )?;
        family(
            &mut enc,
            "fastproxy_worker_hashrate",
            "Estimated hashrate of this worker (H/s) over the last 10 minutes.",
            MetricType::Gauge,
            workers
                .iter()
                .map(|(n, w)| (wl(n, w), ConstGauge::new(w.hashrate(now)))),
        )?;
        family(
            &mut enc,
            "fastproxy_worker_last_share_timestamp_seconds",
            "Unix time of this worker's last answered share (absent before the first).",
            MetricType::Gauge,
            workers
                .iter()
                .filter_map(|(n, w)| w.last_share_unix().map(|t| (wl(n, w), ConstGauge::new(t)))),
        )?;
        Ok(())
    }
}
