//! End-to-end runs of the load generator against fastproxy started in this process: short, small, and
//! checked for sane numbers only (the performance targets live in BENCHMARKS.md, not in tests).

use super::{run, Dialect, Mode, Options};

/// One run at a time: an in-process proxy's CPU is read from this process's `reactor-*` threads, so another
/// test's proxy starting or stopping meanwhile would skew (or zero) the figure.
pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts(mode: Mode, miners: u32) -> Options {
    let mut o = Options::new(mode, miners);
    if mode != Mode::Direct {
        o.start_proxy = true;
        o.in_process = true;
    }
    o.timeout = 20.0;
    o.duration = 1.0;
    o.warmup = 0.2;
    o.notifies = 3;
    o.notify_gap_ms = 20;
    o.miners_per_source = 64;
    o
}

#[test]
fn connect_200_miners_through_the_proxy() {
    let _serial = serial();
    let r = run(&opts(Mode::Connect, 200)).unwrap();
    assert_eq!(r.connect.admitted, 200, "{:?}", r.notes);
    assert!(r.connect.time_to_admit_all_s.unwrap() > 0.0);
    assert_eq!(r.connect.admit_ms.count, 200);
    assert_eq!(r.pool_counters.working, 1);
    assert!(r.complete, "{:?}", r.notes);
}

#[test]
fn shares_flow_through_the_proxy_and_are_timed() {
    let _serial = serial();
    let r = run(&opts(Mode::Shares, 50)).unwrap();
    let s = r.shares.as_ref().unwrap();
    assert!(s.replies > 100, "{s:?}");
    assert_eq!(s.rejected, 0);
    assert_eq!(s.answered_by_proxy, 0);
    assert_eq!(s.transit_us.count, s.replies);
    assert!(s.transit_us.p50 > 0.0 && s.transit_us.p50 <= s.rtt_us.p50);
    assert!(s.proxy_cpu_per_share_us.unwrap() > 0.0);
    assert!(r.complete, "{:?}", r.notes);
}

#[test]
fn a_validating_proxy_hashes_and_forwards_every_share() {
    let _serial = serial();
    let mut o = opts(Mode::Shares, 20);
    o.validate = true;
    let r = run(&o).unwrap();
    let s = r.shares.as_ref().unwrap();
    assert!(s.replies > 100, "{s:?}");
    // The pool's difficulty makes every share meet its target: none is refused or answered locally.
    assert_eq!((s.rejected, s.answered_by_proxy), (0, 0), "{s:?}");
    let validated = r.proxy_shares_validated.expect("in-process proxy");
    assert!(
        validated >= s.replies,
        "{validated} validated, {} replies",
        s.replies
    );
    assert!(r.complete, "{:?}", r.notes);
    let plain = run(&opts(Mode::Shares, 20)).unwrap();
    assert_eq!(plain.proxy_shares_validated, Some(0));
}

#[test]
fn equihash_fanout_and_a_paced_direct_run() {
    let _serial = serial();
    let mut o = opts(Mode::Fanout, 40);
    o.protocol = Dialect::Equihash;
    let r = run(&o).unwrap();
    let f = r.fanout.as_ref().unwrap();
    assert_eq!((f.reached_all, f.arrival_ms.count), (3, 120), "{f:?}");
    // Paced at 2000/s over a 3-s window: never well above the rate asked (a pacer that lets submits run free
    // goes far past it). The floor is low (a quarter of the rate): a starved process on a busy machine falls
    // short of the rate, which is no fault of the pacer; it only shows that shares flowed all along.
    let mut d = opts(Mode::Direct, 30);
    d.rate = 2000.0;
    d.duration = 3.0;
    let r = run(&d).unwrap();
    let s = r.shares.as_ref().unwrap();
    assert!(s.shares_per_s > 500.0 && s.shares_per_s < 2500.0, "{s:?}");
    assert!(r.complete, "{:?}", r.notes);
}

#[test]
fn routes_option_gives_the_started_proxy_equal_routes_to_the_one_pool() {
    use fastproxy::config::Config;
    let (listen, pool) = (
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:9".parse().unwrap(),
    );
    let yaml =
        |routes| crate::target::config_yaml(listen, pool, 1, Dialect::Stratum, false, routes);
    let one = Config::from_yaml(&yaml(1)).unwrap();
    assert!(
        one.proxies[0].routes.is_empty(),
        "one route: the plain pools: list"
    );
    let three = Config::from_yaml(&yaml(3)).unwrap();
    let routes = three.proxies[0].route_list();
    assert_eq!(routes.len(), 3);
    for r in &routes {
        assert_eq!(r.weight, 1.0);
        assert_eq!(r.pools.len(), 1);
        assert_eq!(r.pools[0].url.value, "stratum+tcp://127.0.0.1:9");
    }
    let mut o = opts(Mode::Shares, 10);
    o.routes = 3;
    o.start_proxy = false;
    o.in_process = false;
    o.target = Some("127.0.0.1:9".parse().unwrap());
    let err = o.check().unwrap_err();
    assert!(err.contains("--routes needs --start-proxy"), "{err}");
}
