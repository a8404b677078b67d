//! `GET /status`: the stats of every proxy as one JSON document (what the status page shows).
//!
//! Each proxy has a `routes` array (weights, target and measured split, pools' states; `routes`), empty when
//! the server was started without the control state. Pools are numbered from 1 in list order (`"pool": 1` is the first pool), as in the logs. Times are Unix
//! seconds; hashrates H/s; latencies ms.

use super::history::History;
use crate::control::Control;
use crate::stats::{PoolStats, ProxyStats, Reject, UpstreamState, WorkerStats};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

fn n(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}

fn reasons(get: impl Fn(Reject) -> u64) -> Value {
    let mut m = Map::new();
    for r in Reject::ALL {
        m.insert(r.label().into(), get(r).into());
    }
    Value::Object(m)
}

fn pool(p: &PoolStats) -> Value {
    let q = |x: f64| p.latency.quantile_ms(x);
    let count = p.latency.count();
    json!({
        "pool": p.index + 1,
        "url": p.url,
        "state": p.state().label(),
        "connections_ready": n(&p.ready),
        "connections_connecting": n(&p.connecting),
        "upstreams": n(&p.upstreams),
        "connects": n(&p.connects),
        "reconnects": n(&p.reconnects),
        "connect_failures": n(&p.connect_failures),
        "difficulty": p.difficulty(),
        "jobs": n(&p.jobs),
        "shares_accepted": n(&p.accepted),
        "accepted_difficulty": p.accepted_difficulty.get(),
        "shares_rejected": p.rejected.total(),
        "rejected_by_reason": reasons(|r| p.rejected.get(r)),
        "latency_ms": {
            "count": count,
            "mean": (count > 0).then(|| p.latency.sum_seconds() * 1000.0 / count as f64),
            "p50": q(0.5),
            "p90": q(0.9),
            "p99": q(0.99),
        },
        "bytes_in": n(&p.bytes_in),
        "bytes_out": n(&p.bytes_out),
    })
}

fn worker(w: &WorkerStats, now: Instant) -> Value {
    json!({
        "name": w.name(),
        "other": w.is_other(),
        "connected": n(&w.connected),
        "shares_accepted": n(&w.accepted),
        "shares_rejected": n(&w.rejected),
        "accepted_difficulty": w.accepted_difficulty.get(),
        "hashrate": w.hashrate(now),
        "last_share": w.last_share_unix(),
    })
}

fn proxy(name: &str, s: &ProxyStats, now: Instant) -> Value {
    let state = s.upstream_state();
    let current = s.current_pool();
    let workers: Vec<Arc<WorkerStats>> = s.workers.all();
    let hashrate: f64 = workers.iter().map(|w| w.hashrate(now)).sum();
    json!({
        "name": name,
        "state": state.label(),
        "failed_over_to": match state { UpstreamState::FailedOver(i) => Some(i + 1), _ => None },
        "current_pool": current.map(|i| i + 1),
        "current_url": current.map(|i| s.pool(i).url.clone()),
        "miners_connected": n(&s.miners_connected),
        "miners_total": n(&s.miners_total),
        "miners_kicked": n(&s.miners_kicked),
        "miners_refused": n(&s.miners_refused),
        "upstreams": n(&s.upstreams),
        "pool_connections": n(&s.pool_connections),
        "pool_ready": n(&s.pool_ready),
        "failovers": n(&s.failovers),
        "shares_submitted": n(&s.shares_submitted),
        "shares_forwarded": n(&s.shares_forwarded),
        "shares_accepted": n(&s.shares_accepted),
        "shares_rejected": n(&s.shares_rejected),
        "shares_errored": n(&s.shares_errored),
        "errors_by_reason": reasons(|r| s.errors.get(r)),
        "unknown_replies": n(&s.unknown_replies),
        "extranonce_updates": n(&s.extranonce_updates),
        "hashrate": hashrate,
        "pools": s.pools.iter().map(pool).collect::<Vec<_>>(),
        "workers_tracked": s.workers.len(),
        "workers_cap": s.workers.cap(),
        "workers_overflowed": n(&s.workers.overflowed),
        "workers": workers.iter().map(|w| worker(w, now)).collect::<Vec<_>>(),
    })
}

fn descriptors() -> Value {
    let d = crate::limits::descriptors();
    json!({
        "limit": d.limit,
        "reserved": d.reserved,
        "miner_slots": d.miner_slots,
        "miners": d.miners,
        "exhausted": d.paused > 0,
        "paused_listeners": d.paused,
        "exhaustions": d.episodes,
        "connections_delayed": d.delayed,
    })
}

/// The status document.
pub fn status(
    proxies: &[(String, Arc<ProxyStats>)],
    control: Option<&Control>,
    history: &History,
    started: Instant,
) -> Value {
    let now = Instant::now();
    let list: Vec<Value> = proxies
        .iter()
        .map(|(name, s)| {
            let mut p = proxy(name, s, now);
            p["routes"] = control.map_or(json!([]), |c| super::routes::status(c, name));
            p
        })
        .collect();
    let sum = |key: &str| -> f64 { list.iter().filter_map(|p| p[key].as_f64()).sum() };
    let sum_u = |key: &str| -> u64 { list.iter().filter_map(|p| p[key].as_u64()).sum() };
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "time": crate::stats::unix_now(),
        "uptime_seconds": now.duration_since(started).as_secs(),
        "totals": {
            "miners_connected": sum_u("miners_connected"),
            "hashrate": sum("hashrate"),
            "shares_accepted": sum_u("shares_accepted"),
            "shares_rejected": sum_u("shares_rejected"),
            "shares_errored": sum_u("shares_errored"),
        },
        "descriptors": descriptors(),
        "proxies": list,
        "history": {
            "interval_seconds": history.interval().as_secs_f64(),
            "samples": history.samples().map(|(t, h)| [t, h]).collect::<Vec<_>>(),
        },
    })
}
