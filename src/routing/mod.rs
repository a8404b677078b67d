//! The weighted split scheduler (issue 15), pure (no sockets, no clocks: the caller passes the time): routes
//! with weights and states, the accepted difficulty per route, miners with their hashrate → where to place a
//! new miner and which movable miners to move now.
//!
//! Each accepted share of difficulty `d` adds `d` to its route's accepted sum and `d × target share` to every
//! available route's target sum, so a route's error (accepted − target) measures how far the split is off
//! under the weights that held when the work was done (no catch-up after a weight change or an outage). A
//! rebalance wants each route's hashrate to be its target share of the total minus its error spread over
//! `horizon_secs` (the projected error at the end of the next slice is then 0), and moves miners that accept extranonce changes (at their next job) from routes above
//! that to routes below it, each miner at most once per `min_dwell_secs`: with fewer miners than routes
//! (1 miner on 50/50) the miners take turns, a deficit-steered time slice, so the accepted split converges.
//! Routes that are disabled or have no pool up count as weight 0 until back; their miners are moved at once.

use std::collections::BTreeMap;

/// A miner, as the caller names it (e.g. reactor index and slab key).
pub type MinerId = u64;

/// How eagerly the split is steered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Seconds over which a route's error (accepted − target difficulty) is to be made up.
    pub horizon_secs: f64,
    /// Seconds a movable miner stays on a route before it may be moved again.
    pub min_dwell_secs: f64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            horizon_secs: 10.0,
            min_dwell_secs: 10.0,
        }
    }
}

/// A route's settings and books.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    weight: f64,
    enabled: bool,
    up: bool,
    accepted: f64,
    target: f64,
}

/// A miner's place and pace.
#[derive(Debug, Clone, PartialEq)]
struct Miner {
    route: usize,
    hashrate: f64,
    movable: bool,
    since: f64,
}

/// One decision of a rebalance: send miner `miner` the extranonce and job of route `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Move {
    pub miner: MinerId,
    pub from: usize,
    pub to: usize,
    /// The miner's route went away (disabled or all pools down): a miner that does not accept extranonce
    /// changes must reconnect to be moved.
    pub forced: bool,
}

/// The scheduler of one proxy entry's routes.
#[derive(Debug, Clone)]
pub struct Scheduler {
    params: Params,
    routes: Vec<Route>,
    miners: BTreeMap<MinerId, Miner>,
    /// Buffers a rebalance reuses (loads, desired hashrates, stranded miners), so that one that moves
    /// nobody allocates nothing.
    scratch: (Vec<f64>, Vec<f64>, Vec<MinerId>),
}

fn clean(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

impl Scheduler {
    /// Routes with these weights, all enabled and up, nothing accepted yet.
    pub fn new(params: Params, weights: &[f64]) -> Scheduler {
        let routes = weights
            .iter()
            .map(|&w| Route {
                weight: clean(w),
                enabled: true,
                up: true,
                accepted: 0.0,
                target: 0.0,
            })
            .collect();
        Scheduler {
            params,
            routes,
            miners: BTreeMap::new(),
            scratch: Default::default(),
        }
    }

    /// Number of routes.
    pub fn routes(&self) -> usize {
        self.routes.len()
    }

    /// Sets a route's weight (from the API); negative or non-finite counts as 0.
    pub fn set_weight(&mut self, route: usize, weight: f64) {
        if let Some(r) = self.routes.get_mut(route) {
            r.weight = clean(weight);
        }
    }

    /// Enables or disables a route (from the API).
    pub fn set_enabled(&mut self, route: usize, enabled: bool) {
        if let Some(r) = self.routes.get_mut(route) {
            r.enabled = enabled;
        }
    }

    /// Whether any of the route's pools is up (and enabled).
    pub fn set_up(&mut self, route: usize, up: bool) {
        if let Some(r) = self.routes.get_mut(route) {
            r.up = up;
        }
    }

    fn available(&self, route: usize) -> bool {
        self.routes.get(route).is_some_and(|r| r.enabled && r.up)
    }

    /// Each route's target share of the hashrate now: its weight over the sum of the available routes'
    /// weights; 0 for unavailable routes. When every available route has weight 0 they share equally; when
    /// none is available, all are 0.
    pub fn targets(&self) -> Vec<f64> {
        let in_force = self.in_force();
        (0..self.routes.len())
            .map(|i| self.target_of(i, in_force))
            .collect()
    }

    /// The sum of the available routes' weights, and how many are available.
    fn in_force(&self) -> (f64, usize) {
        (0..self.routes.len())
            .filter(|&i| self.available(i))
            .fold((0.0, 0), |(sum, n), i| (sum + self.routes[i].weight, n + 1))
    }

    /// Route `i`'s entry of [`Scheduler::targets`], given [`Scheduler::in_force`] (no allocation).
    fn target_of(&self, i: usize, (sum, n): (f64, usize)) -> f64 {
        if !self.available(i) {
            0.0
        } else if sum > 0.0 {
            self.routes[i].weight / sum
        } else {
            1.0 / n as f64
        }
    }

    /// A route's pool accepted a share of difficulty `difficulty`.
    pub fn record_accepted(&mut self, route: usize, difficulty: f64) {
        let d = clean(difficulty);
        if d == 0.0 || route >= self.routes.len() {
            return;
        }
        let in_force = self.in_force();
        for i in 0..self.routes.len() {
            let t = self.target_of(i, in_force);
            self.routes[i].target += d * t;
        }
        self.routes[route].accepted += d;
    }

    /// The accepted difficulty of each route so far.
    pub fn accepted(&self) -> Vec<f64> {
        self.routes.iter().map(|r| r.accepted).collect()
    }

    /// Each route's share of the accepted difficulty so far (all 0 before the first share).
    pub fn split(&self) -> Vec<f64> {
        let total: f64 = self.routes.iter().map(|r| r.accepted).sum();
        self.routes
            .iter()
            .map(|r| if total > 0.0 { r.accepted / total } else { 0.0 })
            .collect()
    }

    /// The route of a miner.
    pub fn route_of(&self, miner: MinerId) -> Option<usize> {
        self.miners.get(&miner).map(|m| m.route)
    }

    /// Updates a miner's measured hashrate (difficulty per second).
    pub fn set_hashrate(&mut self, miner: MinerId, hashrate: f64) {
        if let Some(m) = self.miners.get_mut(&miner) {
            m.hashrate = clean(hashrate);
        }
    }

    /// Updates whether a miner accepts extranonce changes (it may subscribe to them after it was placed).
    pub fn set_movable(&mut self, miner: MinerId, movable: bool) {
        if let Some(m) = self.miners.get_mut(&miner) {
            m.movable = movable;
        }
    }

    /// Puts a miner back on `route` (a move the caller could not make now), keeping its dwell time.
    pub fn set_route(&mut self, miner: MinerId, route: usize) {
        if let Some(m) = self.miners.get_mut(&miner) {
            m.route = route;
        }
    }

    /// A miner left.
    pub fn remove(&mut self, miner: MinerId) {
        self.miners.remove(&miner);
    }

    /// The hashrate on each route, into `h`.
    fn loads_into(&self, h: &mut Vec<f64>) {
        h.clear();
        h.resize(self.routes.len(), 0.0);
        for m in self.miners.values() {
            if let Some(x) = h.get_mut(m.route) {
                *x += m.hashrate;
            }
        }
    }

    /// The hashrate each route should carry over the next `horizon_secs` so that its error (accepted −
    /// target) is made up by then: its target share of `total` minus the error over the horizon (the
    /// correction bounded by `total`), into `out`. It may be negative (the route is ahead: carry nothing);
    /// the sum is `total`, since the errors sum to 0. 0 for routes with no target.
    fn desired_into(&self, total: f64, out: &mut Vec<f64>) {
        let in_force = self.in_force();
        let horizon = self.params.horizon_secs.max(1e-9);
        out.clear();
        out.extend(self.routes.iter().enumerate().map(|(i, r)| {
            let t = self.target_of(i, in_force);
            if t == 0.0 {
                return 0.0;
            }
            t * total - ((r.accepted - r.target) / horizon).clamp(-total, total)
        }));
    }

    /// The available route with the largest gap between desired and carried hashrate (lowest index on ties).
    fn neediest(&self, desired: &[f64], loads: &[f64]) -> Option<usize> {
        let in_force = self.in_force();
        (0..self.routes.len())
            .filter(|&i| self.target_of(i, in_force) > 0.0)
            .max_by(|&a, &b| {
                (desired[a] - loads[a])
                    .total_cmp(&(desired[b] - loads[b]))
                    .then(b.cmp(&a))
            })
    }

    /// Places a new miner (hashrate 0 when unknown) on the route that needs hashrate most; `None` (not
    /// placed) when no route is available.
    pub fn place(
        &mut self,
        miner: MinerId,
        hashrate: f64,
        movable: bool,
        now: f64,
    ) -> Option<usize> {
        self.miners.remove(&miner);
        let hashrate = clean(hashrate);
        let (mut loads, mut desired, stranded) = std::mem::take(&mut self.scratch);
        self.loads_into(&mut loads);
        let total: f64 = loads.iter().sum::<f64>() + hashrate;
        self.desired_into(total, &mut desired);
        let route = self.neediest(&desired, &loads);
        self.scratch = (loads, desired, stranded);
        let route = route?;
        self.miners.insert(
            miner,
            Miner {
                route,
                hashrate,
                movable,
                since: now,
            },
        );
        Some(route)
    }

    /// The moves to make now: every miner of an unavailable route (forced), then movable miners that have
    /// stayed `min_dwell_secs`, one at a time, each the move that brings the routes' hashrate closest to the
    /// desired split, while one does.
    pub fn rebalance(&mut self, now: f64) -> Vec<Move> {
        let (mut loads, mut desired, mut stranded) = std::mem::take(&mut self.scratch);
        let moves = self.rebalance_with(now, &mut loads, &mut desired, &mut stranded);
        self.scratch = (loads, desired, stranded);
        moves
    }

    /// [`Scheduler::rebalance`] with its buffers (no allocation unless a miner moves).
    fn rebalance_with(
        &mut self,
        now: f64,
        loads: &mut Vec<f64>,
        desired: &mut Vec<f64>,
        stranded: &mut Vec<MinerId>,
    ) -> Vec<Move> {
        let mut moves = Vec::new();
        self.loads_into(loads);
        let total: f64 = loads.iter().sum();
        self.desired_into(total, desired);
        stranded.clear();
        stranded.extend(
            self.miners
                .iter()
                .filter(|(_, m)| !self.available(m.route))
                .map(|(&id, _)| id),
        );
        for &id in stranded.iter() {
            let Some(to) = self.neediest(desired, loads) else {
                return moves;
            };
            let m = self.miners.get_mut(&id).expect("listed above");
            if let Some(x) = loads.get_mut(m.route) {
                *x -= m.hashrate;
            }
            loads[to] += m.hashrate;
            moves.push(Move {
                miner: id,
                from: m.route,
                to,
                forced: true,
            });
            (m.route, m.since) = (to, now);
        }
        let eps = 1e-9 * total.max(1e-300);
        for _ in 0..self.miners.len() {
            let Some(to) = self.neediest(desired, loads) else {
                break;
            };
            let need = desired[to] - loads[to];
            if need <= 0.0 {
                break;
            }
            let mut best: Option<(f64, MinerId)> = None;
            for (&id, m) in &self.miners {
                let extra = loads[m.route] - desired[m.route];
                if !m.movable || m.route == to || extra <= 0.0 || m.hashrate <= 0.0 {
                    continue;
                }
                if now - m.since < self.params.min_dwell_secs {
                    continue;
                }
                let h = m.hashrate;
                let gain = extra + need - (extra - h).abs() - (need - h).abs();
                if gain > eps && best.is_none_or(|(g, _)| gain > g) {
                    best = Some((gain, id));
                }
            }
            let Some((_, id)) = best else {
                break;
            };
            let m = self.miners.get_mut(&id).expect("found above");
            loads[m.route] -= m.hashrate;
            loads[to] += m.hashrate;
            moves.push(Move {
                miner: id,
                from: m.route,
                to,
                forced: false,
            });
            (m.route, m.since) = (to, now);
        }
        moves
    }
}

#[cfg(test)]
mod tests;
