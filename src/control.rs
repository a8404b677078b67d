//! The runtime control state shared by the control API and the reactors (issue 15): each proxy entry's routes
//! with their weights, enabled flags, accepted difficulty and pool states, the workers, and pending commands.
//!
//! Reactors read weights and flags lock-free (atomics) and notice changes by [`Control::version`]; changes go
//! through one lock, so checks that look at several routes (never all weights 0) hold under concurrent
//! callers. Commands (kick a worker) get a sequence number, and each reactor asks for those after the last it
//! saw; the newest [`MAX_COMMANDS`] are kept.

use crate::config::Config;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Commands kept for reactors that have not picked them up yet.
pub const MAX_COMMANDS: usize = 1024;

/// An f64 in an atomic.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn new(v: f64) -> AtomicF64 {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed)
    }
    pub fn add(&self, d: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + d).to_bits())
        });
    }
}

/// One pool of a route.
#[derive(Debug)]
pub struct PoolControl {
    pub url: String,
    /// Set by the API; a disabled pool is skipped in the route's failover.
    pub enabled: AtomicBool,
    /// Set by the reactors: a session to this pool is up.
    pub up: AtomicBool,
    /// The URL in force: `url` until a reload changes it.
    current_url: Mutex<String>,
}

impl PoolControl {
    /// A pool of `url`, enabled, not up yet.
    fn new(url: &str) -> PoolControl {
        PoolControl {
            url: url.to_string(),
            enabled: AtomicBool::new(true),
            up: AtomicBool::new(false),
            current_url: Mutex::new(url.to_string()),
        }
    }

    /// The pool's URL now (a reload may have changed it since the start).
    pub fn url_now(&self) -> String {
        self.current_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One route of a proxy entry.
#[derive(Debug)]
pub struct RouteControl {
    pub name: String,
    pub weight: AtomicF64,
    pub enabled: AtomicBool,
    /// Sum of the difficulty of the shares this route's pools accepted (added by the reactors).
    pub accepted: AtomicF64,
    /// Its pools, in failover order; a reload may add or remove some (see [`RouteControl::pools`]).
    pools: std::sync::RwLock<Vec<PoolControl>>,
}

impl RouteControl {
    /// Its pools now (a read lock: held briefly, never on the share path).
    pub fn pools(&self) -> std::sync::RwLockReadGuard<'_, Vec<PoolControl>> {
        self.pools.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Enabled, with an enabled pool that is up: a route that is not counts as weight 0.
    pub fn available(&self) -> bool {
        self.enabled.load(Relaxed)
            && self
                .pools()
                .iter()
                .any(|p| p.enabled.load(Relaxed) && p.up.load(Relaxed))
    }
}

/// One proxy entry's routes.
#[derive(Debug)]
pub struct ProxyControl {
    pub name: String,
    pub routes: Vec<RouteControl>,
}

/// A pool of a [`RouteView`].
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub url: String,
    pub enabled: bool,
    pub up: bool,
}

/// One route as the API, `/metrics` and `/status` show it: its settings and the split it should and does get.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteView {
    pub name: String,
    pub weight: f64,
    pub enabled: bool,
    /// Enabled with an enabled pool that is up ([`RouteControl::available`]).
    pub available: bool,
    /// Its weight over the sum of the available routes' weights (0 when unavailable).
    pub target_split: f64,
    /// Its accepted difficulty over the entry's total (0 before any share).
    pub measured_split: f64,
    pub accepted_difficulty: f64,
    pub pools: Vec<PoolView>,
}

impl ProxyControl {
    /// Every route of the entry with its target and measured split.
    pub fn views(&self) -> Vec<RouteView> {
        let eff: Vec<f64> = self
            .routes
            .iter()
            .map(|r| if r.available() { r.weight.get() } else { 0.0 })
            .collect();
        let eff_sum: f64 = eff.iter().sum();
        let accepted: Vec<f64> = self.routes.iter().map(|r| r.accepted.get()).collect();
        let total: f64 = accepted.iter().sum();
        self.routes
            .iter()
            .zip(eff.iter().zip(&accepted))
            .map(|(r, (e, a))| RouteView {
                name: r.name.clone(),
                weight: r.weight.get(),
                enabled: r.enabled.load(Relaxed),
                available: r.available(),
                target_split: if eff_sum > 0.0 { e / eff_sum } else { 0.0 },
                measured_split: if total > 0.0 { a / total } else { 0.0 },
                accepted_difficulty: *a,
                pools: r
                    .pools()
                    .iter()
                    .map(|p| PoolView {
                        url: p.url_now(),
                        enabled: p.enabled.load(Relaxed),
                        up: p.up.load(Relaxed),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A connected worker as the reactors report it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    pub route: String,
    /// Measured hashrate (difficulty per second).
    pub hashrate: f64,
    /// Accepts extranonce changes (can be moved between routes without reconnecting).
    pub movable: bool,
    pub connections: u32,
}

/// Something for the reactors to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Disconnect every connection of this worker on this proxy entry.
    Kick { proxy: String, worker: String },
}

/// The shared state; wrap it in an `Arc`.
#[derive(Debug)]
pub struct Control {
    pub proxies: Vec<ProxyControl>,
    changes: Mutex<()>,
    version: AtomicU64,
    workers: Mutex<BTreeMap<(String, String), WorkerInfo>>,
    commands: Mutex<VecDeque<(u64, Command)>>,
    next_command: AtomicU64,
}

/// Where a route is: (proxy index, route index).
pub type RouteAt = (usize, usize);

impl Control {
    /// The routes of every proxy entry of `config`, enabled, with their configured weights; pools start down
    /// until a reactor says otherwise.
    pub fn from_config(config: &Config) -> Control {
        let proxies = config
            .proxies
            .iter()
            .map(|p| ProxyControl {
                name: p.name.clone(),
                routes: p
                    .route_list()
                    .iter()
                    .map(|r| RouteControl {
                        name: r.name.to_string(),
                        weight: AtomicF64::new(r.weight),
                        enabled: AtomicBool::new(true),
                        accepted: AtomicF64::new(0.0),
                        pools: std::sync::RwLock::new(
                            r.pools
                                .iter()
                                .map(|pool| PoolControl {
                                    url: pool.url.value.clone(),
                                    enabled: AtomicBool::new(true),
                                    up: AtomicBool::new(false),
                                    current_url: Mutex::new(pool.url.value.clone()),
                                })
                                .collect(),
                        ),
                    })
                    .collect(),
            })
            .collect();
        Control {
            proxies,
            changes: Mutex::new(()),
            version: AtomicU64::new(0),
            workers: Mutex::new(BTreeMap::new()),
            commands: Mutex::new(VecDeque::new()),
            next_command: AtomicU64::new(1),
        }
    }

    /// Why `config` cannot be applied at runtime: a proxy entry whose routes differ in names or order (the
    /// routes are fixed for a run; their pool lists may change); `None` when it can.
    pub fn layout_differs(&self, config: &Config) -> Option<String> {
        if config.proxies.len() != self.proxies.len() {
            return Some("proxies were added or removed".into());
        }
        for (p, new) in self.proxies.iter().zip(&config.proxies) {
            let routes = new.route_list();
            let names = |r: &[&str]| r.join(", ");
            let old: Vec<&str> = p.routes.iter().map(|r| r.name.as_str()).collect();
            let now: Vec<&str> = routes.iter().map(|r| r.name).collect();
            if p.name != new.name || old != now {
                return Some(format!(
                    "proxy '{}' changed its routes ({} -> {})",
                    p.name,
                    names(&old),
                    names(&now)
                ));
            }
        }
        None
    }

    /// A reload (the config file is the source of truth): every route's weight goes back to the file's, every
    /// route and pool is enabled again, and pool URLs follow the file; each value that changes is logged and
    /// returned as one line. Accepted difficulty and the pools' up flags (the reactors' books) stay. Routes
    /// and pools are matched by name and position (a route's pool list grows or shrinks to the file's); call it
    /// only when [`Control::layout_differs`] is `None` (anything it cannot match is left alone).
    pub fn apply_config(&self, config: &Config) -> Vec<String> {
        let _guard = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let mut reset = Vec::new();
        for p in &self.proxies {
            let Some(new) = config.proxies.iter().find(|n| n.name == p.name) else {
                continue;
            };
            for n in new.route_list() {
                let Some(r) = p.routes.iter().find(|r| r.name == n.name) else {
                    continue;
                };
                let label = format!("{}/{}", p.name, r.name);
                let old = r.weight.get();
                if old != n.weight {
                    r.weight.set(n.weight);
                    reset.push(format!("route {label} weight {old} -> {}", n.weight));
                }
                if !r.enabled.swap(true, Relaxed) {
                    reset.push(format!("route {label} enabled again"));
                }
                let mut pools = r.pools.write().unwrap_or_else(|e| e.into_inner());
                if pools.len() != n.pools.len() {
                    reset.push(format!(
                        "route {label} has {} pools (was {})",
                        n.pools.len(),
                        pools.len()
                    ));
                    pools.truncate(n.pools.len());
                    for file in &n.pools[pools.len()..] {
                        pools.push(PoolControl::new(&file.url.value));
                    }
                }
                for (i, (pool, file)) in pools.iter().zip(n.pools).enumerate() {
                    if !pool.enabled.swap(true, Relaxed) {
                        reset.push(format!("route {label} pool {i} enabled again"));
                    }
                    let mut url = pool.current_url.lock().unwrap_or_else(|e| e.into_inner());
                    if *url != file.url.value {
                        reset.push(format!(
                            "route {label} pool {i} url {url} -> {}",
                            file.url.value
                        ));
                        url.clone_from(&file.url.value);
                    }
                }
            }
        }
        for line in &reset {
            log::info!("reload: {line} (the config file's value)");
        }
        self.version.fetch_add(1, Relaxed);
        reset
    }

    /// Bumped by every change of a weight or flag; a reactor re-reads the routes when it differs.
    pub fn version(&self) -> u64 {
        self.version.load(Relaxed)
    }

    /// Finds a route by `proxy/route`, or by `route` alone when one proxy entry has a route of that name.
    pub fn find_route(&self, proxy: Option<&str>, route: &str) -> Result<RouteAt, String> {
        let hits: Vec<RouteAt> = self
            .proxies
            .iter()
            .enumerate()
            .filter(|(_, p)| proxy.is_none_or(|n| n == p.name))
            .flat_map(|(i, p)| {
                p.routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.name == route)
                    .map(move |(j, _)| (i, j))
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("no route '{route}'")),
            _ => Err(format!(
                "route '{route}' is in several proxies: name it as PROXY/{route}"
            )),
        }
    }

    /// The route at `at`.
    pub fn route(&self, at: RouteAt) -> &RouteControl {
        &self.proxies[at.0].routes[at.1]
    }

    /// Whether proxy `p` keeps an enabled route of positive weight when `at` takes `weight` and `enabled`.
    fn keeps_a_route(&self, at: RouteAt, weight: f64, enabled: bool) -> bool {
        self.proxies[at.0].routes.iter().enumerate().any(|(j, r)| {
            let (w, e) = if j == at.1 {
                (weight, enabled)
            } else {
                (r.weight.get(), r.enabled.load(Relaxed))
            };
            e && w > 0.0
        })
    }

    /// Sets a route's weight; refused (with the reason) when it is not a finite number >= 0 or would leave
    /// the proxy entry with no enabled route of positive weight. Returns the old weight.
    pub fn set_weight(&self, at: RouteAt, weight: f64) -> Result<f64, String> {
        if !weight.is_finite() || weight < 0.0 {
            return Err(format!("weight must be a finite number >= 0, not {weight}"));
        }
        let _guard = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.route(at);
        if !self.keeps_a_route(at, weight, r.enabled.load(Relaxed)) {
            return Err(format!(
                "proxy '{}' would have no enabled route of positive weight",
                self.proxies[at.0].name
            ));
        }
        let old = r.weight.get();
        r.weight.set(weight);
        self.version.fetch_add(1, Relaxed);
        Ok(old)
    }

    /// Enables or disables a route; disabling the last enabled route of positive weight is refused.
    /// Returns the old flag.
    pub fn set_route_enabled(&self, at: RouteAt, enabled: bool) -> Result<bool, String> {
        let _guard = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.route(at);
        if !self.keeps_a_route(at, r.weight.get(), enabled) {
            return Err(format!(
                "proxy '{}' would have no enabled route of positive weight",
                self.proxies[at.0].name
            ));
        }
        let old = r.enabled.swap(enabled, Relaxed);
        self.version.fetch_add(1, Relaxed);
        Ok(old)
    }

    /// Enables or disables pool `index` of a route. Returns the old flag.
    pub fn set_pool_enabled(
        &self,
        at: RouteAt,
        index: usize,
        enabled: bool,
    ) -> Result<bool, String> {
        let _guard = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.route(at);
        let pools = r.pools();
        let pool = pools.get(index).ok_or_else(|| {
            format!(
                "route '{}' has {} pools (0-based index)",
                r.name,
                pools.len()
            )
        })?;
        let old = pool.enabled.swap(enabled, Relaxed);
        self.version.fetch_add(1, Relaxed);
        Ok(old)
    }

    /// A reactor reports a worker (or its new state).
    pub fn set_worker(&self, proxy: &str, worker: &str, info: WorkerInfo) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.insert((proxy.to_string(), worker.to_string()), info);
    }

    /// A reactor reports `delta` connections more (or fewer) of a worker, with its state (`info.connections`
    /// is ignored: the reactors' deltas add up, so a worker with connections on several reactors stays
    /// listed until its last one leaves; a negative delta keeps the state). Returns its connections now.
    pub fn worker_connections(
        &self,
        proxy: &str,
        worker: &str,
        info: WorkerInfo,
        delta: i32,
    ) -> u32 {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let key = (proxy.to_string(), worker.to_string());
        let had = w.get(&key).map_or(0, |i| i.connections);
        let connections = had.saturating_add_signed(delta);
        match w.get_mut(&key) {
            _ if connections == 0 => {
                w.remove(&key);
            }
            // A connection left: the worker's state stays as its others reported it.
            Some(old) if delta < 0 => old.connections = connections,
            _ => {
                w.insert(
                    key,
                    WorkerInfo {
                        connections,
                        ..info
                    },
                );
            }
        }
        connections
    }

    /// A reactor reports that a worker's last connection left.
    pub fn remove_worker(&self, proxy: &str, worker: &str) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.remove(&(proxy.to_string(), worker.to_string()));
    }

    /// Every worker: (proxy, worker, info).
    pub fn workers(&self) -> Vec<(String, String, WorkerInfo)> {
        let w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.iter()
            .map(|((p, n), i)| (p.clone(), n.clone(), i.clone()))
            .collect()
    }

    /// Queues a kick of a connected worker (by `proxy/worker`, or `worker` when one proxy entry has it);
    /// returns (proxy, sequence number).
    pub fn kick(&self, proxy: Option<&str>, worker: &str) -> Result<(String, u64), String> {
        let hits: Vec<String> = self
            .workers()
            .into_iter()
            .filter(|(p, n, _)| n == worker && proxy.is_none_or(|x| x == p))
            .map(|(p, _, _)| p)
            .collect();
        let proxy = match hits.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("no connected worker '{worker}'")),
            _ => {
                return Err(format!(
                    "worker '{worker}' is on several proxies: name it as PROXY/{worker}"
                ))
            }
        };
        let mut q = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.next_command.fetch_add(1, Relaxed);
        q.push_back((
            seq,
            Command::Kick {
                proxy: proxy.clone(),
                worker: worker.to_string(),
            },
        ));
        while q.len() > MAX_COMMANDS {
            q.pop_front();
        }
        Ok((proxy, seq))
    }

    /// The commands after sequence number `after` (0: all kept), oldest first.
    pub fn commands_since(&self, after: u64) -> Vec<(u64, Command)> {
        let q = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().filter(|(s, _)| *s > after).cloned().collect()
    }
}
