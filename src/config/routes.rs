//! Weighted routes of a proxy entry: `routes: [{ name, weight, pools }]`, or `pools:` alone as one route
//! `default` of weight 100, with the checks on names, weights and pool lists (each with its line).

use super::load::Problem;
use super::types::{PoolConfig, ProxyConfig};

/// The name of the one route that a `pools:` list makes.
pub const DEFAULT_ROUTE: &str = "default";
/// The weight of the one route that a `pools:` list makes.
pub const DEFAULT_WEIGHT: f64 = 100.0;

/// One route as the runtime sees it, whichever key the file used.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub name: &'a str,
    pub weight: f64,
    pub pools: &'a [PoolConfig],
}

impl ProxyConfig {
    /// The entry's routes: those of `routes:`, or one route `default` of weight 100 with the `pools:` list.
    pub fn route_list(&self) -> Vec<Route<'_>> {
        if self.routes.is_empty() {
            return vec![Route {
                name: DEFAULT_ROUTE,
                weight: DEFAULT_WEIGHT,
                pools: &self.pools,
            }];
        }
        self.routes
            .iter()
            .map(|r| Route {
                name: &r.name.value,
                weight: r.weight.value,
                pools: &r.pools,
            })
            .collect()
    }

    /// After loading: with `routes:` and no `pools:`, `pools` becomes the first route's list, which is what
    /// the reactor serves for now (the routing integration of issue 15 will place miners on every route).
    pub(super) fn fill_pools_from_routes(&mut self) {
        if self.pools.is_empty() {
            if let Some(first) = self.routes.first() {
                self.pools = first.pools.clone();
                self.pools_from_routes = true;
            }
        }
    }
}

/// The route checks of one proxy entry: exclusive keys, names, weights, pool lists.
pub(super) fn check_routes(proxy: &ProxyConfig, problems: &mut Vec<Problem>) {
    let n = &proxy.name;
    let mut p = |line: u64, message: String| {
        problems.push(Problem {
            line: Some(line),
            message: format!("proxy '{n}': {message}"),
        })
    };
    let Some(first) = proxy.routes.first() else {
        return;
    };
    if !proxy.pools.is_empty() && !proxy.pools_from_routes {
        p(
            first.name.referenced.line(),
            "both 'pools' and 'routes' given: use 'routes' only (or 'pools' alone for one route)"
                .into(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for r in &proxy.routes {
        let (name, line) = (r.name.value.trim(), r.name.referenced.line());
        if name.is_empty() {
            p(line, "a route has an empty name".into());
        } else if !seen.insert(name) {
            p(line, format!("route name '{name}' is used twice"));
        } else if name.contains(['/', '?', '#', '%']) || name.chars().any(char::is_whitespace) {
            p(
                line,
                format!("route name '{name}' may not contain '/', '?', '#', '%' or spaces"),
            );
        }
        let w = r.weight.value;
        if !w.is_finite() || w < 0.0 {
            p(
                r.weight.referenced.line(),
                format!("route '{name}': weight {w} must be a finite number >= 0"),
            );
        }
        if r.pools.is_empty() {
            p(line, format!("route '{name}' has no pools"));
        }
    }
    if proxy.routes.iter().all(|r| r.weight.value == 0.0) {
        p(
            first.weight.referenced.line(),
            "every route has weight 0: at least one must be positive".into(),
        );
    }
}
