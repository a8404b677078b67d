//! The metrics endpoint over real sockets on 127.0.0.1: `/metrics` must be valid Prometheus text exposition whose
//! values are the stats' atomics, `/status` the same as JSON, the worker series bounded, and the server gone
//! once stopped.

mod common;
#[path = "common/prom.rs"]
mod prom;

use common::*;
use fastproxy::metrics::{self, MetricsOptions};
use fastproxy::stats::{ProxyStats, Reject, WorkerRegistry};
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use prom::*;
use serde_json::Value;
use std::collections::HashSet;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn v(c: &AtomicU64) -> f64 {
    c.load(Relaxed) as f64
}

const HOSTILE: &str = "evil\"name\\with\nnewline {} ,=";

/// Stats with every kind of counter moved by hand.
fn filled() -> Arc<ProxyStats> {
    let s = Arc::new(ProxyStats::new(
        [
            "stratum+tcp://pool-a.example:3333",
            "stratum+ssl://pool-b.example:443",
        ],
        100,
    ));
    let set = |c: &AtomicU64, n: u64| c.store(n, Relaxed);
    set(&s.miners_connected, 7);
    set(&s.miners_total, 12);
    set(&s.upstreams, 1);
    set(&s.pool_connections, 3);
    set(&s.pool_ready, 2);
    set(&s.failovers, 1);
    set(&s.shares_submitted, 101);
    set(&s.shares_forwarded, 96);
    set(&s.shares_accepted, 90);
    set(&s.shares_rejected, 4);
    set(&s.shares_errored, 5);
    set(&s.unknown_replies, 1);
    set(&s.extranonce_updates, 2);
    set(&s.miners_kicked, 3);
    for (i, (_, c)) in s.validation.verdicts().into_iter().enumerate() {
        set(c, 10 + i as u64);
    }
    set(&s.validation.retargets, 7);
    for _ in 0..3 {
        s.on_share_error(Reject::PoolUnavailable);
    }
    s.on_share_error(Reject::Timeout);
    s.on_share_error(Reject::NotSubscribed);

    s.upstream_moved(None, Some(0));
    let a = s.pool(0);
    a.on_connecting(false);
    a.on_ready();
    a.set_difficulty(16384.0);
    for _ in 0..5 {
        a.on_job();
    }
    for _ in 0..90 {
        a.on_accepted(16384.0);
    }
    for r in [
        Reject::Stale,
        Reject::Stale,
        Reject::Stale,
        Reject::Duplicate,
    ] {
        a.on_rejected(r);
    }
    for ms in [0.3, 0.7, 4.0, 30.0, 30.0, 2000.0] {
        a.on_reply(Duration::from_secs_f64(ms / 1000.0));
    }
    a.on_bytes_in(12_345);
    a.on_bytes_out(6_789);
    let b = s.pool(1);
    b.on_connecting(true);
    b.on_closed(false);

    let now = Instant::now();
    let rig1 = s.workers.attach("farm.rig1", now);
    for _ in 0..3 {
        rig1.on_accepted(16384.0, now);
    }
    let rig2 = s.workers.attach("farm.rig2", now);
    rig2.on_rejected(now);
    s.workers.attach(HOSTILE, now).on_accepted(1.0, now);
    // Keep them "connected".
    std::mem::forget((rig1, rig2));
    s
}

#[test]
fn metrics_are_valid_exposition_and_match_the_atomics() {
    let s = filled();
    let idle = Arc::new(ProxyStats::default());
    let m = start(vec![
        ("btc".into(), s.clone()),
        ("ltc".into(), idle.clone()),
    ]);
    let e = scrape(m.local_addr());

    // Every family has HELP and TYPE; counters end in _total.
    for (fam, kind) in &e.types {
        assert!(fam.starts_with("fastproxy_"), "{fam}");
        if kind == "counter" {
            assert!(fam.ends_with("_total"), "{fam}");
        }
    }
    assert_eq!(e.get("fastproxy_build_info", &[]), 1.0);

    let btc = [("proxy", "btc")];
    let proxy_fields: [(&str, &AtomicU64); 14] = [
        ("fastproxy_miners_connected", &s.miners_connected),
        ("fastproxy_upstreams", &s.upstreams),
        ("fastproxy_miners_accepted_total", &s.miners_total),
        ("fastproxy_miners_kicked_total", &s.miners_kicked),
        ("fastproxy_pool_connections_total", &s.pool_connections),
        ("fastproxy_pool_handshakes_total", &s.pool_ready),
        ("fastproxy_failovers_total", &s.failovers),
        ("fastproxy_shares_submitted_total", &s.shares_submitted),
        ("fastproxy_shares_forwarded_total", &s.shares_forwarded),
        ("fastproxy_shares_accepted_total", &s.shares_accepted),
        ("fastproxy_shares_rejected_total", &s.shares_rejected),
        ("fastproxy_shares_errored_total", &s.shares_errored),
        ("fastproxy_unknown_replies_total", &s.unknown_replies),
        ("fastproxy_extranonce_updates_total", &s.extranonce_updates),
    ];
    for (name, atomic) in proxy_fields {
        assert_eq!(e.get(name, &btc), v(atomic), "{name}");
        assert_eq!(e.get(name, &[("proxy", "ltc")]), 0.0, "{name} ltc");
    }
    for (verdict, c) in s.validation.verdicts() {
        let labels = [("proxy", "btc"), ("verdict", verdict)];
        assert_eq!(
            e.get("fastproxy_validated_shares_total", &labels),
            v(c),
            "{verdict}"
        );
    }
    assert_eq!(e.get("fastproxy_vardiff_retargets_total", &btc), 7.0);
    for r in Reject::ALL {
        assert_eq!(
            e.get(
                "fastproxy_share_errors_total",
                &[("proxy", "btc"), ("reason", r.label())]
            ),
            s.errors.get(r) as f64,
            "{r:?}"
        );
    }
    assert_eq!(
        e.get(
            "fastproxy_upstream_state",
            &[("proxy", "btc"), ("state", "subscribed")]
        ),
        1.0
    );
    assert_eq!(
        e.get(
            "fastproxy_upstream_state",
            &[("proxy", "ltc"), ("state", "connecting")]
        ),
        1.0
    );
    assert_eq!(e.get("fastproxy_current_pool", &btc), 1.0);
    assert_eq!(e.get("fastproxy_current_pool", &[("proxy", "ltc")]), 0.0);

    // Per pool.
    let p1 = [("proxy", "btc"), ("pool", "1")];
    let p2 = [("proxy", "btc"), ("pool", "2")];
    let a = s.pool(0);
    assert_eq!(
        e.get(
            "fastproxy_pool_state",
            &[("proxy", "btc"), ("pool", "1"), ("state", "subscribed")]
        ),
        1.0
    );
    assert_eq!(
        e.get(
            "fastproxy_pool_state",
            &[("proxy", "btc"), ("pool", "2"), ("state", "down")]
        ),
        1.0
    );
    assert_eq!(
        e.label_values("fastproxy_pool_difficulty", "url"),
        HashSet::from([
            "stratum+tcp://pool-a.example:3333".to_string(),
            "stratum+ssl://pool-b.example:443".to_string()
        ])
    );
    assert_eq!(e.get("fastproxy_pool_difficulty", &p1), 16384.0);
    assert_eq!(e.get("fastproxy_pool_jobs_total", &p1), v(&a.jobs));
    assert_eq!(e.get("fastproxy_pool_shares_accepted_total", &p1), 90.0);
    assert_eq!(
        e.get("fastproxy_pool_accepted_difficulty_total", &p1),
        a.accepted_difficulty.get()
    );
    assert_eq!(
        e.get(
            "fastproxy_pool_shares_rejected_total",
            &[("proxy", "btc"), ("pool", "1"), ("reason", "stale")]
        ),
        3.0
    );
    assert_eq!(
        e.get(
            "fastproxy_pool_shares_rejected_total",
            &[("proxy", "btc"), ("pool", "1"), ("reason", "duplicate")]
        ),
        1.0
    );
    assert_eq!(e.get("fastproxy_pool_received_bytes_total", &p1), 12_345.0);
    assert_eq!(e.get("fastproxy_pool_sent_bytes_total", &p1), 6_789.0);
    assert_eq!(e.get("fastproxy_pool_connections_ready", &p1), 1.0);
    assert_eq!(e.get("fastproxy_pool_upstreams", &p1), 1.0);
    assert_eq!(e.get("fastproxy_pool_reconnects_total", &p2), 1.0);
    assert_eq!(e.get("fastproxy_pool_connect_failures_total", &p2), 1.0);
    // The latency histogram, in seconds, cumulative.
    let lat = "fastproxy_pool_reply_latency_seconds";
    assert_eq!(e.get(&format!("{lat}_count"), &p1), 6.0);
    assert!((e.get(&format!("{lat}_sum"), &p1) - 2.0650).abs() < 1e-3);
    let bucket = |le: &str| {
        e.get(
            &format!("{lat}_bucket"),
            &[("proxy", "btc"), ("pool", "1"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.0005"), 1.0);
    assert_eq!(bucket("0.001"), 2.0);
    assert_eq!(bucket("0.005"), 3.0);
    assert_eq!(bucket("0.05"), 5.0);
    assert_eq!(bucket("1"), 5.0);
    assert_eq!(bucket("+Inf"), 6.0);

    // Per worker, the hostile name escaped and read back intact.
    fn w(name: &str) -> [(&str, &str); 2] {
        [("proxy", "btc"), ("worker", name)]
    }
    assert_eq!(
        e.get("fastproxy_worker_shares_accepted_total", &w("farm.rig1")),
        3.0
    );
    assert_eq!(
        e.get("fastproxy_worker_shares_rejected_total", &w("farm.rig2")),
        1.0
    );
    assert_eq!(e.get("fastproxy_worker_miners", &w("farm.rig1")), 1.0);
    assert_eq!(
        e.get("fastproxy_worker_shares_accepted_total", &w(HOSTILE)),
        1.0
    );
    assert_eq!(
        e.get(
            "fastproxy_worker_accepted_difficulty_total",
            &w("farm.rig1")
        ),
        3.0 * 16384.0
    );
    let hr = e.get("fastproxy_worker_hashrate", &w("farm.rig1"));
    let expect = 3.0 * 16384.0 * 4_294_967_296.0 / 60.0;
    assert!((hr / expect - 1.0).abs() < 0.01, "{hr} vs {expect}");
    let proxy_hr = e.get("fastproxy_hashrate", &btc);
    let sum = s.hashrate(Instant::now());
    assert!((proxy_hr / sum - 1.0).abs() < 0.01, "{proxy_hr} vs {sum}");
    let last = e.get(
        "fastproxy_worker_last_share_timestamp_seconds",
        &w("farm.rig1"),
    );
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((unix - last).abs() < 60.0, "{last} vs {unix}");
    assert_eq!(e.get("fastproxy_workers_tracked", &btc), 3.0);
    assert_eq!(
        e.get(
            "fastproxy_worker_shares_accepted_total",
            &w(WorkerRegistry::OTHER)
        ),
        0.0
    );

    // Counters move between scrapes: read at scrape time.
    s.shares_accepted.fetch_add(10, Relaxed);
    s.pool(0).on_rejected(Reject::LowDifficulty);
    let e2 = scrape(m.local_addr());
    assert_eq!(e2.get("fastproxy_shares_accepted_total", &btc), 100.0);
    assert_eq!(
        e2.get(
            "fastproxy_pool_shares_rejected_total",
            &[
                ("proxy", "btc"),
                ("pool", "1"),
                ("reason", "low_difficulty")
            ]
        ),
        1.0
    );
    m.stop();
}

#[test]
fn status_json_matches_the_atomics() {
    let s = filled();
    let m = start(vec![("btc".into(), s.clone())]);
    let st = status(m.local_addr());
    let p = &st["proxies"][0];
    assert_eq!(p["name"], "btc");
    assert_eq!(p["state"], "subscribed");
    assert_eq!(p["current_pool"], 1);
    assert_eq!(p["current_url"], "stratum+tcp://pool-a.example:3333");
    for (key, atomic) in [
        ("miners_connected", &s.miners_connected),
        ("miners_total", &s.miners_total),
        ("miners_kicked", &s.miners_kicked),
        ("upstreams", &s.upstreams),
        ("pool_connections", &s.pool_connections),
        ("pool_ready", &s.pool_ready),
        ("failovers", &s.failovers),
        ("shares_submitted", &s.shares_submitted),
        ("shares_forwarded", &s.shares_forwarded),
        ("shares_accepted", &s.shares_accepted),
        ("shares_rejected", &s.shares_rejected),
        ("shares_errored", &s.shares_errored),
        ("unknown_replies", &s.unknown_replies),
        ("extranonce_updates", &s.extranonce_updates),
    ] {
        assert_eq!(p[key].as_u64(), Some(atomic.load(Relaxed)), "{key}");
    }
    assert_eq!(p["errors_by_reason"]["pool_unavailable"], 3);
    assert_eq!(p["errors_by_reason"]["timeout"], 1);
    assert_eq!(p["errors_by_reason"]["not_subscribed"], 1);
    assert_eq!(st["totals"]["miners_connected"], 7);
    assert_eq!(st["totals"]["shares_accepted"], 90);

    let pool = &p["pools"][0];
    assert_eq!(pool["pool"], 1);
    assert_eq!(pool["state"], "subscribed");
    assert_eq!(pool["difficulty"], 16384.0);
    assert_eq!(pool["jobs"], 5);
    assert_eq!(pool["shares_accepted"], 90);
    assert_eq!(pool["shares_rejected"], 4);
    assert_eq!(pool["rejected_by_reason"]["stale"], 3);
    assert_eq!(pool["latency_ms"]["count"], 6);
    let p50 = pool["latency_ms"]["p50"].as_f64().unwrap();
    assert!((2.0..=25.0).contains(&p50), "{p50}");
    assert_eq!(pool["bytes_in"], 12_345);
    assert_eq!(p["pools"][1]["state"], "down");
    assert_eq!(p["pools"][1]["connect_failures"], 1);

    let workers = p["workers"].as_array().unwrap();
    let find = |n: &str| workers.iter().find(|w| w["name"] == n).unwrap().clone();
    assert_eq!(find("farm.rig1")["shares_accepted"], 3);
    assert_eq!(find("farm.rig1")["connected"], 1);
    assert_eq!(find("farm.rig2")["shares_rejected"], 1);
    assert_eq!(find(HOSTILE)["shares_accepted"], 1);
    assert!(find("farm.rig2")["last_share"].as_f64().is_some());
    assert_eq!(find(WorkerRegistry::OTHER)["other"], true);
    assert_eq!(p["workers_tracked"], 3);
    assert_eq!(p["workers_cap"], 100);
    let total: f64 = workers
        .iter()
        .map(|w| w["hashrate"].as_f64().unwrap())
        .sum();
    let hr = p["hashrate"].as_f64().unwrap();
    assert!(hr > 0.0 && (total / hr - 1.0).abs() < 1e-9);
    // The history sampled at start.
    assert_eq!(st["history"]["interval_seconds"], 10.0);
    assert!(!st["history"]["samples"].as_array().unwrap().is_empty());
    m.stop();
}

#[test]
fn five_thousand_worker_names_with_a_cap_of_100_give_at_most_101_series() {
    let s = Arc::new(ProxyStats::new(["stratum+tcp://127.0.0.1:1"], 100));
    let now = Instant::now();
    for i in 0..5000 {
        let w = s.workers.attach(&format!("hostile-{i:05}"), now);
        w.on_accepted(1.0, now);
        w.detach();
    }
    let m = start(vec![("p".into(), s.clone())]);
    let e = scrape(m.local_addr());
    for (fam, kind) in &e.types {
        if !fam.starts_with("fastproxy_worker_") {
            continue;
        }
        let name = if kind == "histogram" {
            format!("{fam}_count")
        } else {
            fam.clone()
        };
        let n = e.label_values(&name, "worker").len();
        assert!(n <= 101, "{fam}: {n} worker series");
    }
    let names = e.label_values("fastproxy_worker_shares_accepted_total", "worker");
    assert_eq!(names.len(), 101);
    assert!(names.contains(WorkerRegistry::OTHER));
    let other = [("proxy", "p"), ("worker", WorkerRegistry::OTHER)];
    assert_eq!(
        e.get("fastproxy_worker_shares_accepted_total", &other),
        4900.0
    );
    assert_eq!(
        e.get("fastproxy_workers_overflowed_total", &[("proxy", "p")]),
        4900.0
    );
    assert_eq!(e.get("fastproxy_workers_tracked", &[("proxy", "p")]), 100.0);
    let total = e.samples.len();
    assert!(total < 2000, "{total} samples in all");
    m.stop();
}

#[test]
fn a_real_proxy_with_simulated_miners_moves_the_counters() {
    let pool = pool(SimPoolConfig::default());
    let proxy = start_proxy(&proxy_yaml(&[pool.addr()], ""));
    let addr = proxy.first_addr().unwrap();
    let stats = proxy.stats("test").unwrap();
    let m = start(vec![("test".into(), stats.clone())]);
    let stop = Arc::new(AtomicBool::new(false));
    let miners: Vec<_> = (0..4)
        .map(|i| {
            spawn_miner(
                SimMinerConfig {
                    addr,
                    worker: format!("farm.rig{i}"),
                    max_shares: Some(3),
                    duration: Duration::from_secs(60),
                    ..SimMinerConfig::default()
                },
                stop.clone(),
            )
        })
        .collect();
    let reports: Vec<_> = miners.into_iter().map(|h| h.join().unwrap()).collect();
    let accepted: u64 = reports.iter().map(|r| r.accepted).sum();
    assert_eq!(accepted, 12, "{reports:?}");
    wait_until(Duration::from_secs(10), "miners gone", || {
        ProxyStats::get(&stats.miners_connected) == 0
    });
    let e = scrape(m.local_addr());
    let t = [("proxy", "test")];
    assert_eq!(e.get("fastproxy_shares_accepted_total", &t), 12.0);
    assert_eq!(
        e.get("fastproxy_shares_accepted_total", &t),
        v(&stats.shares_accepted)
    );
    assert_eq!(e.get("fastproxy_shares_submitted_total", &t), 12.0);
    assert_eq!(e.get("fastproxy_miners_accepted_total", &t), 4.0);
    assert_eq!(e.get("fastproxy_miners_connected", &t), 0.0);
    assert_eq!(e.get("fastproxy_upstreams", &t), v(&stats.upstreams));
    assert!(e.get("fastproxy_pool_handshakes_total", &t) >= 1.0);
    let st = status(m.local_addr());
    assert_eq!(st["proxies"][0]["shares_accepted"], 12);
    assert_eq!(st["proxies"][0]["miners_total"], 4);
    m.stop();
    drop(proxy);
}

#[test]
fn routes_methods_history_and_stop() {
    let s = filled();
    let m = metrics::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![("btc".into(), s)],
        MetricsOptions {
            history_interval: Duration::from_millis(50),
            history_len: 5,
        },
    )
    .unwrap();
    let addr = m.local_addr();
    assert_eq!(http(addr, "GET", "/nope").status, 404);
    assert_eq!(http(addr, "POST", "/metrics").status, 405);
    let head = http(addr, "HEAD", "/metrics");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let page = http(addr, "GET", "/");
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("<canvas") && html.contains("fetch(\"status\""));
    for external in ["http://", "https://", "//cdn", "<link", "src="] {
        assert!(
            !html.contains(external),
            "the page loads nothing: {external}"
        );
    }
    assert_eq!(http(addr, "GET", "/status?x=1").status, 200);

    // The history is sampled on schedule and bounded: it fills up to 5 samples, then the oldest make way.
    let samples = || -> Vec<Value> {
        let st = status(addr);
        let samples = st["history"]["samples"].as_array().unwrap().clone();
        assert!(samples.len() <= 5, "{samples:?}");
        samples
    };
    let time = |s: &Value| s[0].as_f64().unwrap();
    wait_until(Duration::from_secs(10), "5 history samples", || {
        samples().len() == 5
    });
    let full = samples();
    let times: Vec<f64> = full.iter().map(time).collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    assert!(full.iter().all(|s| s[1].as_f64().unwrap() > 0.0));
    wait_until(Duration::from_secs(10), "5 newer samples", || {
        samples().first().map(time) > Some(times[4])
    });
    assert_eq!(samples().len(), 5);

    // Stopping ends the server: the port no longer answers.
    let t = Instant::now();
    m.stop();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    let gone = (0..50).any(|_| {
        let refused = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err();
        if !refused {
            std::thread::sleep(Duration::from_millis(20));
        }
        refused
    });
    assert!(
        gone,
        "the metrics port still accepts connections after stop"
    );
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = metrics::start(addr, Vec::new(), MetricsOptions::default())
        .err()
        .expect("the port is in use");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// Every metric the Grafana dashboard queries is one the endpoint exposes.
#[test]
fn the_grafana_dashboard_queries_only_exposed_metrics() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/grafana-dashboard.json"
    ))
    .expect("scripts/grafana-dashboard.json");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    fn exprs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => exprs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(all.len() >= 15, "{} queries", all.len());
    let m = start(vec![("btc".into(), filled())]);
    let exposed: HashSet<String> = scrape(m.local_addr())
        .samples
        .into_iter()
        .map(|s| s.name)
        .collect();
    let mut used = HashSet::new();
    for e in &all {
        let b = e.as_bytes();
        let mut i = 0;
        while let Some(at) = e[i..].find("fastproxy_") {
            let start = i + at;
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            let name = &e[start..end];
            assert!(
                exposed.contains(name),
                "the dashboard queries {name}, which /metrics does not expose ({e})"
            );
            used.insert(name.to_string());
            i = end;
        }
    }
    for must in [
        "fastproxy_miners_connected",
        "fastproxy_worker_hashrate",
        "fastproxy_pool_shares_rejected_total",
        "fastproxy_pool_reply_latency_seconds_bucket",
        "fastproxy_pool_state",
    ] {
        assert!(used.contains(must), "the dashboard does not show {must}");
    }
    m.stop();
}

/// The control state of an entry `farm` with routes main (70, two pools) and fee (30, one pool).
fn two_routes() -> Arc<fastproxy::control::Control> {
    let y = "proxies:\n  - name: farm\n    protocol: stratum\n    listen: [{address: 127.0.0.1:1}]\n    routes:\n      - { name: main, weight: 70, pools: [{url: stratum+tcp://127.0.0.1:7, user: u}, {url: stratum+tcp://127.0.0.1:8, user: u}] }\n      - { name: fee, weight: 30, pools: [{url: stratum+tcp://127.0.0.1:9, user: f}] }\n";
    let c = fastproxy::config::Config::from_yaml(y).unwrap();
    Arc::new(fastproxy::control::Control::from_config(&c))
}

#[test]
fn metrics_and_status_show_the_routes_control_holds() {
    let control = two_routes();
    let m = metrics::start_with_control(
        "127.0.0.1:0".parse().unwrap(),
        vec![("farm".into(), filled())],
        Some(control.clone()),
        MetricsOptions::default(),
    )
    .unwrap();
    let addr = m.local_addr();
    let route = |r: &'static str| [("proxy", "farm"), ("route", r)];
    // No pool up yet: both routes unavailable, nothing accepted.
    let exp = scrape(addr);
    assert_eq!(exp.get("fastproxy_route_weight", &route("main")), 70.0);
    assert_eq!(exp.get("fastproxy_route_weight", &route("fee")), 30.0);
    assert_eq!(exp.get("fastproxy_route_available", &route("fee")), 0.0);
    assert_eq!(
        exp.get("fastproxy_route_accepted_difficulty_total", &route("main")),
        0.0
    );

    // The reactors' side: pools up, accepted difficulty; the API's side: a weight change.
    control.route((0, 0)).pools()[1].up.store(true, Relaxed);
    control.route((0, 1)).pools()[0].up.store(true, Relaxed);
    control.route((0, 0)).accepted.add(750.0);
    control.route((0, 1)).accepted.add(250.0);
    control.set_weight((0, 1), 10.0).unwrap();
    let exp = scrape(addr);
    assert_eq!(exp.get("fastproxy_route_weight", &route("fee")), 10.0);
    assert_eq!(exp.get("fastproxy_route_available", &route("main")), 1.0);
    assert_eq!(
        exp.get("fastproxy_route_target_split", &route("fee")),
        0.125
    );
    assert_eq!(
        exp.get("fastproxy_route_measured_split", &route("main")),
        0.75
    );
    assert_eq!(
        exp.get("fastproxy_route_accepted_difficulty_total", &route("fee")),
        250.0
    );
    let pool = |i: &'static str, url: &'static str| {
        [
            ("proxy", "farm"),
            ("route", "main"),
            ("index", i),
            ("url", url),
        ]
    };
    assert_eq!(
        exp.get(
            "fastproxy_route_pool_up",
            &pool("1", "stratum+tcp://127.0.0.1:8")
        ),
        1.0
    );
    assert_eq!(
        exp.get(
            "fastproxy_route_pool_up",
            &pool("0", "stratum+tcp://127.0.0.1:7")
        ),
        0.0
    );
    control.set_route_enabled((0, 1), false).unwrap();
    let exp = scrape(addr);
    assert_eq!(exp.get("fastproxy_route_enabled", &route("fee")), 0.0);
    assert_eq!(exp.get("fastproxy_route_target_split", &route("main")), 1.0);

    let st = status(addr);
    let routes = st["proxies"][0]["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2, "{st}");
    let fee = &routes[1];
    assert_eq!(fee["name"], "fee");
    assert_eq!(fee["weight"], 10.0);
    assert_eq!(fee["enabled"], false);
    assert_eq!(fee["available"], false);
    assert_eq!(fee["target_split"], 0.0);
    assert_eq!(fee["measured_split"], 0.25);
    assert_eq!(fee["accepted_difficulty"], 250.0);
    assert_eq!(routes[0]["pools"][1]["up"], true);
    assert_eq!(routes[0]["pools"][0]["url"], "stratum+tcp://127.0.0.1:7");
    m.stop();

    // Without the control state, /status has an empty routes list and /metrics no route series.
    let m = start(vec![("farm".into(), filled())]);
    assert_eq!(
        status(m.local_addr())["proxies"][0]["routes"],
        Value::Array(vec![])
    );
    assert!(scrape(m.local_addr())
        .label_values("fastproxy_route_weight", "route")
        .is_empty());
}
