//! The scheduler's unit tests, a proptest of its invariants, and a pure model simulation (seeded shares, 10
//! simulated minutes) checking that the accepted split converges to the weights within issue 15's bounds.

use super::*;
use proptest::prelude::*;

fn p(horizon: f64, dwell: f64) -> Params {
    Params {
        horizon_secs: horizon,
        min_dwell_secs: dwell,
    }
}

#[test]
fn targets_follow_weights_and_route_states() {
    let mut s = Scheduler::new(Params::default(), &[70.0, 30.0, 0.0]);
    assert_eq!(s.targets(), vec![0.7, 0.3, 0.0]);
    s.set_up(0, false);
    assert_eq!(
        s.targets(),
        vec![0.0, 1.0, 0.0],
        "a route with no pool up has weight 0"
    );
    s.set_up(0, true);
    s.set_enabled(1, false);
    assert_eq!(
        s.targets(),
        vec![1.0, 0.0, 0.0],
        "a disabled route has weight 0"
    );
    s.set_weight(0, 0.0);
    assert_eq!(
        s.targets(),
        vec![0.5, 0.0, 0.5],
        "all-zero available routes share equally"
    );
    s.set_weight(0, f64::NAN);
    s.set_weight(2, -3.0);
    assert_eq!(s.targets(), vec![0.5, 0.0, 0.5], "bad weights count as 0");
    s.set_enabled(0, false);
    s.set_enabled(2, false);
    assert_eq!(s.targets(), vec![0.0; 3]);
    assert_eq!(s.place(1, 1.0, true, 0.0), None, "nothing available");
}

#[test]
fn new_miners_are_placed_by_hashrate_gap() {
    let mut s = Scheduler::new(Params::default(), &[70.0, 30.0]);
    let placed: Vec<usize> = (0..10)
        .map(|i| s.place(i, 1.0, false, 0.0).unwrap())
        .collect();
    assert_eq!(placed.iter().filter(|&&r| r == 0).count(), 7, "{placed:?}");
    // A big miner goes where its hashrate fits best.
    let mut s = Scheduler::new(Params::default(), &[50.0, 50.0]);
    s.place(1, 10.0, false, 0.0);
    assert_eq!(s.place(2, 3.0, false, 0.0), Some(1));
    assert_eq!(s.place(3, 3.0, false, 0.0), Some(1));
}

#[test]
fn one_miner_takes_turns_after_its_dwell_and_only_when_its_route_is_ahead() {
    let mut s = Scheduler::new(p(60.0, 10.0), &[50.0, 50.0]);
    assert_eq!(s.place(7, 1.0, true, 0.0), Some(0));
    s.record_accepted(0, 5.0);
    assert_eq!(s.rebalance(5.0), vec![], "dwell not over");
    let m = s.rebalance(10.0);
    assert_eq!(
        m,
        vec![Move {
            miner: 7,
            from: 0,
            to: 1,
            forced: false
        }]
    );
    assert_eq!(s.route_of(7), Some(1));
    s.record_accepted(1, 1.0);
    assert_eq!(s.rebalance(30.0), vec![], "route 1 is still behind");
    s.record_accepted(1, 5.0);
    assert_eq!(s.rebalance(30.0).len(), 1, "route 1 is ahead now");
}

#[test]
fn miners_without_extranonce_changes_are_moved_only_when_their_route_goes() {
    let mut s = Scheduler::new(p(60.0, 0.0), &[50.0, 50.0]);
    s.place(1, 1.0, false, 0.0);
    s.record_accepted(0, 100.0);
    assert_eq!(s.rebalance(100.0), vec![], "not movable");
    s.set_up(0, false);
    let m = s.rebalance(101.0);
    assert_eq!(
        m,
        vec![Move {
            miner: 1,
            from: 0,
            to: 1,
            forced: true
        }]
    );
}

#[test]
fn a_route_that_is_down_gets_no_target_and_no_catch_up_when_back() {
    let mut s = Scheduler::new(p(60.0, 0.0), &[50.0, 50.0]);
    s.place(1, 1.0, true, 0.0);
    s.place(2, 1.0, true, 0.0);
    assert_ne!(s.route_of(1), s.route_of(2));
    s.set_up(1, false);
    let forced = s.rebalance(1.0);
    assert_eq!(forced.len(), 1);
    assert!(forced[0].forced && forced[0].to == 0, "{forced:?}");
    for _ in 0..100 {
        s.record_accepted(0, 1.0);
    }
    assert_eq!(s.rebalance(2.0), vec![], "the only available route");
    s.set_up(1, true);
    for _ in 0..10 {
        s.record_accepted(0, 1.0);
        s.record_accepted(1, 1.0);
    }
    // Back: the split is 50/50 from now on; the 100 route 0 took alone are not owed to route 1.
    let moves = s.rebalance(3.0);
    assert_eq!(moves.len(), 1, "one of the two miners goes back: {moves:?}");
    assert_ne!(s.route_of(1), s.route_of(2));
}

fn gap(s: &Scheduler) -> f64 {
    let (mut loads, mut d) = (Vec::new(), Vec::new());
    s.loads_into(&mut loads);
    s.desired_into(loads.iter().sum(), &mut d);
    loads.iter().zip(&d).map(|(l, d)| (l - d).abs()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn rebalance_keeps_its_invariants(
        weights in prop::collection::vec(0.0f64..100.0, 1..5),
        states in prop::collection::vec((any::<bool>(), any::<bool>()), 5),
        miners in prop::collection::vec((0.0f64..100.0, any::<bool>()), 0..40),
        shares in prop::collection::vec((0usize..5, 0.0f64..50.0), 0..60),
        dwell in 0.0f64..20.0,
    ) {
        let mut s = Scheduler::new(p(60.0, dwell), &weights);
        for (i, &(h, movable)) in miners.iter().enumerate() {
            if let Some(r) = s.place(i as u64, h, movable, 0.0) {
                prop_assert!(s.targets()[r] > 0.0);
            }
        }
        for &(r, d) in &shares {
            s.record_accepted(r % weights.len(), d);
        }
        let acc: f64 = s.accepted().iter().sum();
        let tgt: f64 = s.routes.iter().map(|r| r.target).sum();
        prop_assert!((acc - tgt).abs() <= 1e-9 * acc.max(1.0), "targets accrue what is accepted");
        for (r, &(enabled, up)) in states.iter().enumerate().take(weights.len()) {
            s.set_enabled(r, enabled || r == 0);
            s.set_up(r, up || r == 0);
        }
        let before: BTreeMap<MinerId, usize> = s.miners.iter().map(|(&k, m)| (k, m.route)).collect();
        let (gap_before, stranded) = (gap(&s), s.miners.values().any(|m| !s.available(m.route)));
        let moves = s.rebalance(30.0);
        let targets = s.targets();
        for m in &moves {
            prop_assert_eq!(before[&m.miner], m.from);
            prop_assert!(targets[m.to] > 0.0, "never to a route with no target");
            prop_assert!(m.forced || s.miners[&m.miner].movable, "{:?}", m);
            prop_assert_eq!(m.forced, !s.available(m.from));
        }
        if targets.iter().any(|&t| t > 0.0) {
            prop_assert!(s.miners.values().all(|m| targets[m.route] > 0.0), "no miner left on a dead route");
        }
        if !stranded {
            prop_assert!(gap(&s) <= gap_before + 1e-9, "moves only bring the split closer");
        }
        if dwell > 0.0 {
            let again = s.rebalance(30.0);
            prop_assert!(again.iter().all(|m| !moves.iter().any(|n| n.miner == m.miner)), "dwell");
        }
    }
}

/// splitmix64: the model's seeded random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Exponential with mean `mean`.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next()).ln()
    }
}

/// What one model run gives.
struct Outcome {
    split: Vec<f64>,
    moves: usize,
    shares: u64,
}

/// Plays `hashrates` (difficulty per second; `movable[i]`: accepts extranonce changes) on routes of `weights`
/// for `secs` seconds, one rebalance per second. Each miner finds shares of difficulty hashrate × 3 s (20 a
/// minute, as vardiff steers) at exponential intervals; a share counts for the route the miner is on when it
/// is found (the pool accepts it). The scheduler sees each miner's measured hashrate (its accepted difficulty
/// over its time), and a new miner is placed with the mean measured hashrate.
fn model(seed: u64, weights: &[f64], hashrates: &[f64], movable: &[bool], secs: u32) -> Outcome {
    let mut rng = Rng(seed);
    let mut s = Scheduler::new(Params::default(), weights);
    let n = hashrates.len();
    let diff: Vec<f64> = hashrates.iter().map(|h| h * 3.0).collect();
    let mut next: Vec<f64> = diff
        .iter()
        .zip(hashrates)
        .map(|(d, h)| rng.exp(d / h))
        .collect();
    let mut found = vec![0.0; n];
    let (mut moves, mut shares) = (0, 0);
    let measured = |s: &Scheduler, found: &[f64], t: f64| -> f64 {
        let known: Vec<f64> = (0..n)
            .filter(|&i| s.route_of(i as u64).is_some() && found[i] > 0.0)
            .map(|i| found[i] / t.max(1.0))
            .collect();
        if known.is_empty() {
            1.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        }
    };
    for t in 0..secs {
        let now = f64::from(t);
        // Miners connect over the first 20 seconds.
        for i in (0..n).filter(|&i| (i * 20 / n) as u32 == t) {
            let est = measured(&s, &found, now);
            s.place(i as u64, est, movable[i], now);
        }
        for i in 0..n {
            let Some(route) = s.route_of(i as u64) else {
                continue;
            };
            while next[i] < now + 1.0 {
                s.record_accepted(route, diff[i]);
                found[i] += diff[i];
                shares += 1;
                next[i] += rng.exp(diff[i] / hashrates[i]);
            }
            let joined = (i * 20 / n) as f64;
            if found[i] > 0.0 {
                s.set_hashrate(i as u64, found[i] / (now + 1.0 - joined).max(1.0));
            }
        }
        moves += s.rebalance(now + 1.0).len();
    }
    Outcome {
        split: s.split(),
        moves,
        shares,
    }
}

fn assert_split(name: &str, o: &Outcome, weights: &[f64], bound_pp: f64) {
    let sum: f64 = weights.iter().sum();
    let pp: Vec<f64> = o.split.iter().map(|x| 100.0 * x).collect();
    println!(
        "{name}: split {pp:.2?} % for weights {weights:?}, {} shares, {} moves",
        o.shares, o.moves
    );
    for (x, w) in pp.iter().zip(weights) {
        let want = 100.0 * w / sum;
        assert!(
            (x - want).abs() <= bound_pp,
            "{name}: {x:.2} % against weight {want:.1} % (bound ±{bound_pp} points): {pp:.2?}"
        );
    }
}

#[test]
fn model_split_converges_to_the_weights_within_issue_15_bounds() {
    for seed in [1, 2, 3] {
        let mut rng = Rng(seed * 7919);
        // 200 miners, hashrates spread 1:100 (log-uniform), one in five without extranonce changes.
        let h: Vec<f64> = (0..200).map(|_| 100f64.powf(rng.next())).collect();
        let movable: Vec<bool> = (0..200).map(|i| i % 5 != 0).collect();
        let w = [50.0, 30.0, 20.0];
        assert_split("200 miners", &model(seed, &w, &h, &movable, 600), &w, 1.0);
        let w = [70.0, 30.0];
        let three = model(seed, &w, &[1.0, 3.0, 10.0], &[true; 3], 600);
        assert_split("3 miners", &three, &w, 2.0);
        let w = [50.0, 50.0];
        assert_split("1 miner", &model(seed, &w, &[5.0], &[true], 600), &w, 3.0);
    }
}
