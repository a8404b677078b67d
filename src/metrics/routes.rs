//! The weighted routes (issue 15) in `/metrics` and `/status`: each route's weight, target and measured split
//! of accepted difficulty, accepted difficulty, availability and pools, read from the shared [`Control`].

use super::prometheus::{family, Labels};
use crate::control::{Control, RouteView};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use serde_json::{json, Value};
use std::fmt::Error;
use std::sync::Arc;

/// The `routes` array of proxy entry `proxy` in `/status` (empty when `control` has no such entry).
pub fn status(control: &Control, proxy: &str) -> Value {
    let Some(p) = control.proxies.iter().find(|p| p.name == proxy) else {
        return json!([]);
    };
    let routes: Vec<Value> = p
        .views()
        .into_iter()
        .map(|r| {
            let pools: Vec<Value> = r
                .pools
                .iter()
                .enumerate()
                .map(|(i, q)| json!({ "index": i, "url": q.url, "enabled": q.enabled, "up": q.up }))
                .collect();
            json!({
                "name": r.name,
                "weight": r.weight,
                "enabled": r.enabled,
                "available": r.available,
                "target_split": r.target_split,
                "measured_split": r.measured_split,
                "accepted_difficulty": r.accepted_difficulty,
                "pools": pools,
            })
        })
        .collect();
    Value::Array(routes)
}

/// Reads the routes at scrape time.
#[derive(Debug)]
pub struct RouteCollector {
    pub control: Arc<Control>,
}

type Gauge = fn(&RouteView) -> f64;

fn labels<'a>(proxy: &'a str, r: &'a RouteView) -> Labels<'a> {
    vec![("proxy", proxy), ("route", r.name.as_str())]
}

impl Collector for RouteCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), Error> {
        let views: Vec<(&str, Vec<RouteView>)> = self
            .control
            .proxies
            .iter()
            .map(|p| (p.name.as_str(), p.views()))
            .collect();
        let each = || {
            views
                .iter()
                .flat_map(|(p, rs)| rs.iter().map(move |r| (*p, r)))
        };
        let gauges: [(&str, &str, Gauge); 5] = [
            (
                "fastproxy_route_weight",
                "The route's weight now (the config's, or as the control API set it).",
                |r| r.weight,
            ),
            (
                "fastproxy_route_target_split",
                "The route's share of accepted difficulty by weight, among the available routes (0 to 1).",
                |r| r.target_split,
            ),
            (
                "fastproxy_route_measured_split",
                "The route's share of the entry's accepted difficulty so far (0 to 1).",
                |r| r.measured_split,
            ),
            (
                "fastproxy_route_available",
                "1 when the route is enabled and has an enabled pool that is up, else 0 (its weight goes to the others).",
                |r| f64::from(u8::from(r.available)),
            ),
            (
                "fastproxy_route_enabled",
                "1 when the route is enabled (the config, or the control API), else 0.",
                |r| f64::from(u8::from(r.enabled)),
            ),
        ];
        for (name, help, f) in gauges {
            family(
                &mut enc,
                name,
                help,
                MetricType::Gauge,
                each().map(|(p, r)| (labels(p, r), ConstGauge::new(f(r)))),
            )?;
        }
        family(
            &mut enc,
            "fastproxy_route_accepted_difficulty",
            "Sum of the difficulty of the shares the route's pools accepted.",
            MetricType::Counter,
            each().map(|(p, r)| (labels(p, r), ConstCounter::new(r.accepted_difficulty))),
        )?;
        let indexes: Vec<String> = (0..each().map(|(_, r)| r.pools.len()).max().unwrap_or(0))
            .map(|i| i.to_string())
            .collect();
        let pools = || {
            each().flat_map(|(p, r)| {
                r.pools
                    .iter()
                    .enumerate()
                    .map(move |(i, q)| (p, r.name.as_str(), i, q))
            })
        };
        for (name, help, up) in [
            (
                "fastproxy_route_pool_up",
                "1 when a session to this pool of the route is up (index: 0-based, as in the API's paths).",
                true,
            ),
            (
                "fastproxy_route_pool_enabled",
                "1 when this pool of the route is enabled (the control API may disable it).",
                false,
            ),
        ] {
            family(
                &mut enc,
                name,
                help,
                MetricType::Gauge,
                pools().map(|(p, r, i, q)| {
                    (
                        vec![
                            ("proxy", p),
                            ("route", r),
                            ("index", indexes[i].as_str()),
                            ("url", q.url.as_str()),
                        ],
                        ConstGauge::new(i64::from(if up { q.up } else { q.enabled })),
                    )
                }),
            )?;
        }
        Ok(())
    }
}
