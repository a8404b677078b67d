//! Per-share audit soak: miners that really hash go through a `fastproxy` process (two reactors) to checking
//! pools at a real difficulty, while the primary pool is killed and restarted (failover, failback), every pool
//! connection drops once, miners churn, the proxy gets SIGHUP twice and finally SIGTERM. Every share is
//! followed by identity (job, full extranonce, ntime, nonce, version; tests/common/soak_miner.rs) from the
//! miner's submit to the pools' accepted and refused sets, and one line counts everything.
//!
//! Exhaustion phase: the proxy runs with RLIMIT_NOFILE at the miners plus [`NOFILE_OVER_MINERS`]; when the
//! primary is killed, idle connections hold every miner slot left and a burst more waits in the listen backlog
//! (ahead of the churning miners' new sessions) for at least [`EXHAUSTION_HOLD`], then closes. Asserted: the
//! failover to the backup happens while descriptors are exhausted and never fails for lack of one (no EMFILE
//! in the log), each episode logs one start and one end line, accepting resumes, and the sessions that waited
//! in the backlog get work.
//!
//! Asserted share by share ([`Audit::check`]): a share a miner was told is accepted is in a pool's accepted set;
//! a share a pool accepted was answered `true` to its miner, or with the error saying its verdict was lost in a
//! fault; no two miners hash the same share; no pool refuses a share except as stale (21) or as low difficulty
//! (23) after the proxy replaced the miner's extranonce1 while the share was in flight; miners see only errors a
//! fault explains, answered within [`fault_window`] after one, at most [`MAX_ERRORS_PER_MINER_SECOND`] per
//! miner and second of fault windows. And as before: every submit gets exactly one reply, no share is accepted
//! twice, no descriptor leaks, no miner is left connected, and SIGTERM exits 0.
//!
//! The short soak runs in `cargo test`; the long one (`#[ignore]`d) through scripts/soak.sh, sized by
//! SOAK_SECONDS (default 120) and SOAK_MINERS (default 2000); SOAK_VALIDATE=1 makes the proxy validate every
//! share (`validate_shares: true`), so parked shares meet the same faults.

mod common;
#[path = "common/soak_miner.rs"]
mod soak_miner;

use fastproxy_sim::pool::{PoolStats, SimPool, SimPoolConfig};
use serde_json::{json, Value};
use soak_miner::{Counts, Outcome, Plan, ShareKey, Submitted};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pools' share difficulty: a share takes about 2^32 × 2^-22 = 1,024 hashes, so thousands of shares a
/// second cost the miners a fraction of a core, and a share whose coinbase, header or hash is wrong passes
/// only about once in 1,024 (so a wrong extranonce, ntime or version shows as a low-difficulty reject).
const DIFFICULTY: f64 = 1.0 / 4_194_304.0;

/// Errors a fault explains: at most this many per miner and second of fault windows (each kind is also
/// printed). Each fault can cost every miner its share in flight and a few refusals while no pool is there;
/// a miner refused throughout gets nearly 4 a second (each refusal is followed by a 250-ms pause,
/// `PAUSE_AFTER_REFUSAL`). Counted against the time, not against the good shares: on a loaded machine miners
/// hash and get replies more slowly, so fewer good shares fit in the run, while refusals keep their pace.
const MAX_ERRORS_PER_MINER_SECOND: f64 = 2.0;

/// The proxy's descriptor limit is the number of miners plus this: its own reserve (about 75 descriptors with
/// two reactors, one listener, metrics and an upstream per reactor) and room for about 180 miners more, which
/// stays free (churning sessions overlap a little) until the exhaustion phase fills it.
const NOFILE_OVER_MINERS: u64 = 256;

/// The exhaustion phase holds every slot at least this long (several 100 ms accept retries, churning sessions
/// queueing in the backlog), and until the backup has taken shares after the primary's death.
const EXHAUSTION_HOLD: Duration = Duration::from_millis(1500);

/// The size of one soak.
struct Soak {
    seconds: u64,
    miners: u64,
    validate: bool,
    /// How often the pools send a new (not clean) job.
    job_interval: Duration,
    /// Two weighted routes instead of one pool list: `main` (70) fails over from the primary to the backup,
    /// `fee` (30) is the backup alone, so the primary's death also takes `main` down for a while and its
    /// miners move to `fee` and back (set_extranonce at job boundaries, shares of the old route's jobs still
    /// going to its pool).
    routes: bool,
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn short_soak_with_faults_audits_every_share() {
    run(Soak {
        seconds: 12,
        miners: 200,
        validate: false,
        job_interval: Duration::from_secs(2),
        routes: true,
    });
}

#[test]
#[ignore = "a long soak: run scripts/soak.sh"]
fn soak_with_faults_loses_nothing() {
    run(Soak {
        seconds: env_u64("SOAK_SECONDS", 120),
        miners: env_u64("SOAK_MINERS", 2000),
        validate: env_u64("SOAK_VALIDATE", 0) == 1,
        job_interval: Duration::from_secs(5),
        routes: env_u64("SOAK_ROUTES", 0) == 1,
    });
}

fn pool_at(addr: SocketAddr, job_interval: Duration) -> SimPool {
    let start = Instant::now();
    loop {
        match SimPool::start(SimPoolConfig {
            listen: addr,
            difficulty: DIFFICULTY,
            job_interval: Some(job_interval),
            ..SimPoolConfig::default()
        }) {
            Ok(p) => return p,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("pool on {addr}: {e}"),
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The proxy's open descriptors once it has settled: as many pool connections ready as upstreams are open,
/// none connecting, and the count unchanged between two looks (so a pool connection or a reactor still
/// starting is not missed at the start, nor a probe or a draining connection counted at the end).
fn settled_fds(pid: u32, metrics: SocketAddr) -> usize {
    let mut last = None;
    let mut fds = 0;
    common::wait_until(
        Duration::from_secs(30),
        "the proxy settled: every upstream ready, descriptors steady",
        || {
            // Counted before the status request, whose connection the proxy may still hold just after.
            fds = open_fds(pid);
            let p = &status(metrics, pid)["proxies"][0];
            let pools = p["pools"].as_array().cloned().unwrap_or_default();
            let sum = |key: &str| -> u64 { pools.iter().filter_map(|x| x[key].as_u64()).sum() };
            let upstreams = p["upstreams"].as_u64().unwrap_or(0);
            let ready = upstreams > 0
                && sum("connections_ready") == upstreams
                && sum("connections_connecting") == 0;
            let steady = ready && last == Some(fds);
            last = ready.then_some(fds);
            if !steady {
                std::thread::sleep(Duration::from_millis(200));
            }
            steady
        },
    );
    fds
}

/// The `/status` of proxy `pid`; a failure says whether the proxy process still runs (its state in /proc).
fn status(metrics: SocketAddr, pid: u32) -> Value {
    let fail = |e: &dyn std::fmt::Display| -> ! {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim().chars().take(1).collect())
            })
            .unwrap_or_else(|| "gone".to_string());
        panic!(
            "the proxy's /status on {metrics}: {e} (proxy {pid} state {state}; see its log above)"
        )
    };
    let mut s = TcpStream::connect(metrics).unwrap_or_else(|e| fail(&e));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap_or_else(|e| fail(&e));
    let mut body = String::new();
    std::io::Read::read_to_string(&mut s, &mut body).unwrap_or_else(|e| fail(&e));
    let Some(at) = body.find("\r\n\r\n") else {
        fail(&format!("no HTTP answer: {body:?}"))
    };
    serde_json::from_str(&body[at + 4..]).unwrap_or_else(|e| fail(&e))
}

/// The proxy process, killed if the soak fails before stopping it.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Log lines the soak counts: exhaustion episodes and descriptors that ran out anyway.
const COUNTED: [&str; 3] = [
    "out of descriptors",
    "descriptors available again",
    "Too many open files",
];

/// Passes the proxy's log on to stderr (as it comes, not captured by the test harness) and keeps the lines
/// the soak counts ([`COUNTED`]); they are returned once the proxy has exited.
fn forward_log(child: &mut Child) -> std::thread::JoinHandle<Vec<String>> {
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(std::io::stderr(), "{line}");
            if COUNTED.iter().any(|c| line.contains(c)) {
                kept.push(line);
            }
        }
        kept
    })
}

/// What the exhaustion phase did, in time from the soak's start.
struct Exhaustion {
    /// Idle connections opened.
    idle: usize,
    /// The proxy paused accepting (just before the primary was killed).
    began: Duration,
    /// The idle connections were closed.
    released: Duration,
    /// The proxy was still out of descriptors when the backup took the failed-over shares.
    failover_while_exhausted: bool,
}

/// Opens idle connections for every miner slot the proxy has left and `extra` more, which wait in the listen
/// backlog; returns them once the proxy has paused accepting.
fn exhaust(addr: SocketAddr, metrics: SocketAddr, pid: u32, extra: u64) -> Vec<TcpStream> {
    let d = status(metrics, pid)["descriptors"].clone();
    let slots = d["miner_slots"].as_u64().expect("a descriptor limit");
    let free = slots.saturating_sub(d["miners"].as_u64().unwrap_or(0));
    let idle: Vec<TcpStream> = (0..free + extra)
        .map(|_| TcpStream::connect(addr).expect("the listen backlog takes it"))
        .collect();
    common::wait_until(
        Duration::from_secs(30),
        "the proxy out of descriptors",
        || status(metrics, pid)["descriptors"]["exhausted"] == json!(true),
    );
    idle
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Runs one soak and checks everything (see the module doc and [`audit`]).
fn run(soak: Soak) {
    let Soak {
        seconds, miners, ..
    } = soak;
    let (p1, p2) = (common::free_port(), common::free_port());
    let (a1, a2): (SocketAddr, SocketAddr) =
        (([127, 0, 0, 1], p1).into(), ([127, 0, 0, 1], p2).into());
    let mut primary = Some(pool_at(a1, soak.job_interval));
    let backup = pool_at(a2, soak.job_interval);
    let (listen, metrics_port) = (common::free_port(), common::free_port());
    let dir = std::env::temp_dir().join(format!("fastproxy-soak-{}-{listen}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("soak.yaml");
    let (validate, routes) = (soak.validate, soak.routes);
    let yaml = |first: SocketAddr, second: SocketAddr| {
        let head = format!(
            "threads: 2\ndrain_timeout: 5\nmetrics: {{ listen: 127.0.0.1:{metrics_port} }}\nproxies:\n  - name: soak\n    protocol: stratum\n    validate_shares: {validate}\n    retry_initial: 0.2\n    retry_max: 1\n    failback_interval: 3\n    share_timeout: 10\n    idle_timeout: 30\n    listen:\n      - address: 127.0.0.1:{listen}\n"
        );
        let pools = format!(
            "      - url: stratum+tcp://{first}\n        user: acct.soak\n      - url: stratum+tcp://{second}\n        user: acct.soak\n"
        );
        if routes {
            format!(
                "{head}    route_switch_interval: 1\n    routes:\n      - name: main\n        weight: 70\n        pools:\n{}      - name: fee\n        weight: 30\n        pools:\n          - url: stratum+tcp://{second}\n            user: acct.fee\n",
                pools.replace("      ", "          ")
            )
        } else {
            format!("{head}    pools:\n{pools}")
        }
    };
    std::fs::write(&cfg, yaml(a1, a2)).unwrap();
    let limit = miners + NOFILE_OVER_MINERS;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastproxy"));
    cmd.arg("-c")
        .arg(&cfg)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut proxy = Proxy(cmd.spawn().unwrap());
    let proxy_log = forward_log(&mut proxy.0);
    let pid = proxy.0.id();
    let addr: SocketAddr = ([127, 0, 0, 1], listen).into();
    let metrics: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    common::wait_until(Duration::from_secs(20), "proxy up", || {
        TcpStream::connect(addr).is_ok()
    });
    let fds_idle = settled_fds(pid, metrics);

    let counts = Arc::new(Counts::default());
    let shares = Arc::new(Mutex::new(Vec::<Submitted>::new()));
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..miners)
        .map(|i| {
            let (c, shares) = (counts.clone(), shares.clone());
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut log = Vec::new();
                    // Churn: a tenth of the miners reconnect every few seconds, the rest stay.
                    while Instant::now() < end {
                        let until = if i % 10 == 0 {
                            Instant::now() + Duration::from_millis(2000 + (i % 7) * 500)
                        } else {
                            end
                        };
                        let plan = Plan {
                            addr,
                            until: until.min(end),
                            // Every third session rolls version bits.
                            version_rolling: i % 3 == 0,
                            started,
                        };
                        if !soak_miner::session(&plan, &c, &mut log) {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                    shares.lock().unwrap().append(&mut log);
                })
                .unwrap()
        })
        .collect();

    // The fault schedule, scaled to the run's length.
    let at = |f: f64| started + Duration::from_secs_f64(seconds as f64 * f);
    let wait_for = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    let mut faults: Vec<(&str, Duration)> = Vec::new();
    let mut fault = |what| faults.push((what, started.elapsed()));
    wait_for(at(0.2));
    // Descriptors run out: idle connections take every miner slot left, and a burst more waits in the backlog
    // ahead of the new sessions of churning miners (more than leave during the phase).
    let idle = exhaust(addr, metrics, pid, miners / 5 + 20);
    let began = started.elapsed();
    // Meanwhile the primary dies (failover to the backup). Its counts are read once it has stopped (its
    // listener would take the proxy's reconnects until then), so they are complete.
    fault("primary killed (descriptors exhausted)");
    let on_backup = backup.stats().accepted;
    let first_primary = primary.take().map(SimPool::stop_with_stats);
    common::wait_until(
        Duration::from_secs(30),
        "shares on the backup after the primary's death",
        || backup.stats().accepted >= on_backup + 5,
    );
    let failover_while_exhausted = status(metrics, pid)["descriptors"]["exhausted"] == json!(true);
    wait_for(started + began + EXHAUSTION_HOLD);
    let exhaustion = Exhaustion {
        idle: idle.len(),
        began,
        released: started.elapsed(),
        failover_while_exhausted,
    };
    drop(idle);
    common::wait_until(Duration::from_secs(20), "accepting again", || {
        status(metrics, pid)["descriptors"]["exhausted"] == json!(false)
    });
    wait_for(at(0.35));
    fault("primary back");
    primary = Some(pool_at(a1, soak.job_interval)); // primary back: failback
    wait_for(at(0.5));
    fault("all pool connections dropped");
    backup.disconnect_all(); // a blip on whichever connections the backup holds
    primary.as_ref().unwrap().disconnect_all(); // and the primary drops everyone once
    wait_for(at(0.6));
    fault("SIGHUP (backup first)");
    std::fs::write(&cfg, yaml(a2, a1)).unwrap(); // reload: the backup becomes the first pool
    signal(pid, "-HUP");
    wait_for(at(0.75));
    fault("SIGHUP (primary first)");
    std::fs::write(&cfg, yaml(a1, a2)).unwrap(); // and back
    signal(pid, "-HUP");

    for t in threads {
        t.join().expect("miner thread");
    }
    // Every miner left: nothing may be left behind in the proxy.
    common::wait_until(Duration::from_secs(15), "all miners gone", || {
        status(metrics, pid)["proxies"][0]["miners_connected"] == json!(0)
    });
    let fds_after = settled_fds(pid, metrics);
    let st = status(metrics, pid);
    signal(pid, "-TERM");
    let code = proxy.0.wait().unwrap();
    let proxy_log = proxy_log.join().expect("log thread");
    let _ = std::fs::remove_dir_all(&dir);

    let pools = [
        first_primary.unwrap(),
        primary.take().unwrap().stop_with_stats(),
        backup.stop_with_stats(),
    ];
    let shares = std::mem::take(&mut *shares.lock().unwrap());
    let a = audit(&shares, &pools, &faults, Duration::from_secs(seconds));
    let mut waits: Vec<Duration> = shares.iter().map(|s| s.rtt).collect();
    waits.sort();
    let wait = |q: usize| {
        waits
            .get(waits.len() * q / 100)
            .copied()
            .unwrap_or_default()
    };
    let c = &counts;
    let elapsed = seconds.max(1) as f64;
    println!(
        "soak {seconds}s, {miners} miners, validate {validate}, routes {routes}, {} sessions ({} rolling versions): submitted {} ({:.0}/s, {:.1} MH hashed) | replies {} | told accepted {} | pools accepted {} | verdict lost in a fault {} | pool unavailable {} | stale {} | timeouts {} | extranonce replaced in flight {} ({} shares saw several) | unexpected errors {} | pool rejects {:?} | told true not accepted {} | accepted not told true {} | accepted twice {} | accepted under a replaced extranonce {} | unanswered {} | duplicate replies {} | reply p50 {:.0?} p99 {:.0?} | fds idle {fds_idle} after {fds_after}",
        c.sessions.load(Relaxed),
        c.rolling_sessions.load(Relaxed),
        c.submitted.load(Relaxed),
        c.submitted.load(Relaxed) as f64 / elapsed,
        c.hashes.load(Relaxed) as f64 / 1e6,
        c.replies.load(Relaxed),
        a.told_accepted,
        a.pool_accepted,
        a.errors.verdict_lost,
        a.errors.pool_away,
        a.errors.stale,
        a.errors.timeout,
        a.errors.replaced_in_flight,
        shares
            .iter()
            .filter(|s| s.replaced_extranonce1.len() > 1)
            .count(),
        a.errors.unexpected,
        a.pool_rejects,
        a.told_true_not_accepted.len(),
        a.accepted_not_told_true.len(),
        a.accepted_twice,
        a.accepted_as_rewritten,
        c.unanswered.load(Relaxed),
        c.duplicate_replies.load(Relaxed),
        wait(50),
        wait(99),
    );
    let schedule: Vec<String> = faults
        .iter()
        .map(|(what, at)| format!("{what} at {:.1}s", at.as_secs_f64()))
        .collect();
    println!(
        "soak faults: {} | window {:.1?}, open {:.1?} of the run | {:.2} errors per miner and second in it, {:.1} % of submits",
        schedule.join(", "),
        a.window,
        a.fault_time,
        a.error_rate(miners),
        a.errors.explained() as f64 * 100.0 / (c.submitted.load(Relaxed).max(1)) as f64
    );
    let sessions = std::mem::take(&mut *c.session_times.lock().unwrap());
    let ex = exhaustion.outcome(&st["descriptors"], &proxy_log, &sessions);
    println!(
        "soak exhaustion: descriptor limit {limit}, {} idle connections held from {:.1}s to {:.1}s | episodes {} (log lines: {} start, {} end) | connections delayed {} | failover while exhausted {} | EMFILE lines {} | sessions that queued {}: served {}, after the release {}",
        exhaustion.idle,
        exhaustion.began.as_secs_f64(),
        exhaustion.released.as_secs_f64(),
        ex.episodes,
        ex.start_lines,
        ex.end_lines,
        ex.delayed,
        exhaustion.failover_while_exhausted,
        ex.emfile,
        ex.queued,
        ex.served,
        ex.served_after_release,
    );

    assert!(code.success(), "SIGTERM: exit 0, got {code}");
    let submitted = c.submitted.load(Relaxed);
    assert_eq!(submitted, shares.len() as u64, "every submit was logged");
    assert_eq!(
        submitted,
        c.replies.load(Relaxed),
        "every submit got a reply"
    );
    assert_eq!(
        c.unanswered.load(Relaxed),
        0,
        "no submit left without a reply"
    );
    assert_eq!(
        c.duplicate_replies.load(Relaxed),
        0,
        "no submit answered twice"
    );
    a.check(submitted, miners);
    assert!(
        fds_after <= fds_idle + 2,
        "no leaked descriptors: {fds_idle} idle, {fds_after} after"
    );
    assert_eq!(st["proxies"][0]["miners_connected"], json!(0));
    assert!(a.told_accepted > miners, "shares flowed");
    assert!(
        a.rolled_accepted > 0,
        "shares with rolled version bits were accepted"
    );
    ex.check(&exhaustion);
}

/// A session that connected during the phase and was still waiting, unserved, this long after it ended counts
/// as not served (a session whose handshake is unanswered waits [`soak_miner::HANDSHAKE_GRACE`] past its time).
const SERVED_MARGIN: Duration = Duration::from_secs(5);

/// What the proxy and the miners made of the exhaustion phase.
struct ExhaustionOutcome {
    /// The proxy's count of episodes, and its log lines that start and end one.
    episodes: u64,
    start_lines: usize,
    end_lines: usize,
    /// Connections accepted after waiting in a paused backlog.
    delayed: u64,
    /// Still paused at the end.
    paused_at_end: Value,
    /// Lines saying a descriptor ran out anyway (EMFILE), and the first few.
    emfile: usize,
    emfile_lines: Vec<String>,
    /// Sessions that connected during the phase and were served, closed by the proxy, or still waiting
    /// [`SERVED_MARGIN`] after it; those that got work, and those that got it only after the idle connections
    /// closed (they waited in the backlog).
    queued: usize,
    served: usize,
    served_after_release: usize,
}

impl Exhaustion {
    /// `descriptors`: the status page's, at the end; `log`: the proxy's counted lines; `sessions`: every session.
    fn outcome(
        &self,
        descriptors: &Value,
        log: &[String],
        sessions: &[soak_miner::SessionTimes],
    ) -> ExhaustionOutcome {
        let lines = |text: &str| log.iter().filter(|l| l.contains(text)).count();
        let queued: Vec<_> = sessions
            .iter()
            .filter(|t| t.connected >= self.began && t.connected <= self.released)
            .filter(|t| {
                t.ready.is_some() || t.ended_early || t.left >= self.released + SERVED_MARGIN
            })
            .collect();
        ExhaustionOutcome {
            episodes: descriptors["exhaustions"].as_u64().unwrap_or(0),
            start_lines: lines(COUNTED[0]),
            end_lines: lines(COUNTED[1]),
            delayed: descriptors["connections_delayed"].as_u64().unwrap_or(0),
            paused_at_end: descriptors["paused_listeners"].clone(),
            emfile: lines(COUNTED[2]),
            emfile_lines: log
                .iter()
                .filter(|l| l.contains(COUNTED[2]))
                .take(5)
                .cloned()
                .collect(),
            queued: queued.len(),
            served: queued.iter().filter(|t| t.ready.is_some()).count(),
            served_after_release: queued
                .iter()
                .filter(|t| t.ready.is_some_and(|r| r > self.released))
                .count(),
        }
    }
}

impl ExhaustionOutcome {
    fn check(&self, phase: &Exhaustion) {
        assert!(
            self.episodes >= 1,
            "the proxy ran out of descriptors (status: {} episodes)",
            self.episodes
        );
        assert_eq!(
            (self.start_lines, self.end_lines),
            (self.episodes as usize, self.episodes as usize),
            "one log line starts and one ends each of the {} episodes",
            self.episodes
        );
        assert_eq!(self.paused_at_end, json!(0), "accepting again at the end");
        assert!(
            self.delayed >= 1,
            "connections waited in the backlog and were accepted"
        );
        assert!(
            phase.failover_while_exhausted,
            "the backup took over while every descriptor was held"
        );
        assert!(
            self.emfile == 0,
            "the reserve kept descriptors for the pools: no accept or connect ran out, e.g. {:?}",
            self.emfile_lines
        );
        assert!(
            self.served_after_release >= 1,
            "churning miners' sessions queued in the backlog during the phase ({} connected then)",
            self.queued
        );
        assert_eq!(
            self.served, self.queued,
            "every session that waited in the backlog was served: got extranonce, target, job and authorization"
        );
    }
}

/// The miner-visible errors, by the fault that explains them.
#[derive(Default, Debug)]
struct Errors {
    /// The pool connection went (kill, blip, reload) after the share was forwarded: its verdict was lost.
    verdict_lost: u64,
    /// No pool connection when the share came: not forwarded.
    pool_away: u64,
    /// The job was gone (a pool switch or a clean job came while the share was on its way): code 21.
    stale: u64,
    /// The pool did not answer within `share_timeout`.
    timeout: u64,
    /// The pool connection changed while the share was on its way: the proxy gave the miner a new extranonce1
    /// (`mining.set_extranonce`) after the share was hashed with the old one, and the share was refused as low
    /// difficulty (code 23) under the new one, by the proxy (validating) or by the pool (pools often send
    /// the same job id again on a new connection, so the share is not stale by its job id).
    replaced_in_flight: u64,
    /// Anything else: no fault explains it.
    unexpected: u64,
    unexpected_examples: Vec<String>,
}

impl Errors {
    /// The errors a fault explains, of every kind.
    fn explained(&self) -> u64 {
        self.verdict_lost + self.pool_away + self.stale + self.timeout + self.replaced_in_flight
    }
}

/// Which fault explains a miner's error reply, if any.
fn explained_by(code: i64, message: &str) -> Option<&'static str> {
    let lost = [
        "pool connection lost before the pool answered",
        "upstream closed",
        "proxy is shutting down",
    ];
    match code {
        20 if lost.iter().any(|m| message.starts_with(m)) => Some("verdict lost"),
        20 if message.starts_with("pool unavailable") => Some("pool unavailable"),
        20 if message.starts_with("the pool did not answer within") => Some("timeout"),
        21 => Some("stale"),
        _ => None,
    }
}

/// A refused share as the pool saw it, without the version: (job id, full extranonce, ntime, nonce).
type SeenKey = (String, Vec<u8>, u32, u32);

fn seen_key(s: &Submitted, full: Vec<u8>) -> SeenKey {
    (s.key.0.clone(), full, s.key.2, s.key.3)
}

/// The share-by-share comparison of what miners were told with what the pools did.
#[derive(Default, Debug)]
struct Audit {
    told_accepted: u64,
    pool_accepted: u64,
    rolled_accepted: u64,
    accepted_twice: u64,
    /// Shares whose extranonce1 was replaced in flight that met the target anyway under the new one.
    accepted_as_rewritten: u64,
    same_share_submitted_twice: u64,
    /// Shares a miner was told were accepted that no pool accepted.
    told_true_not_accepted: Vec<String>,
    /// Shares a pool accepted whose miner was not told `true` and no lost verdict explains it.
    accepted_not_told_true: Vec<String>,
    /// Pool rejects by code.
    pool_rejects: BTreeMap<i64, u64>,
    /// Pool rejects no fault explains (anything but a stale job, code 21, or a share whose extranonce1 was
    /// replaced in flight, 23), and the first few.
    bad_pool_rejects: u64,
    bad_pool_examples: Vec<String>,
    errors: Errors,
    /// The fault window, and how long some fault's window was open during the run.
    window: Duration,
    fault_time: Duration,
}

fn key_text(k: &ShareKey) -> String {
    format!(
        "job {} extranonce {} ntime {:08x} nonce {:08x} version {:08x}",
        k.0,
        fastproxy::hex::encode(&k.1),
        k.2,
        k.3,
        k.4
    )
}

/// An error is explained by a fault only if it is answered from the fault to [`fault_window`] after it: long
/// enough for a failover (retries, a new handshake) and for a failback (`failback_interval` 3 s, then a probe)
/// on a loaded machine. At least this long, and 15 % of the run (9 s in the 60-s soak).
const FAULT_WINDOW: Duration = Duration::from_secs(6);

/// The fault window of a run of `run` (see [`FAULT_WINDOW`]). Windows of successive faults may overlap (6-9 s
/// apart in the 60-s soak): an error needs one fault at most a window before it, whichever.
fn fault_window(run: Duration) -> Duration {
    FAULT_WINDOW.max(run.mul_f64(0.15))
}

/// How long, within the first `run` of the soak, some fault's window was open.
fn fault_time(faults: &[(&str, Duration)], window: Duration, run: Duration) -> Duration {
    let mut spans: Vec<(Duration, Duration)> = faults
        .iter()
        .map(|(_, f)| (*f, (*f + window).min(run)))
        .collect();
    spans.sort();
    let (mut total, mut reach) = (Duration::ZERO, Duration::ZERO);
    for (from, to) in spans {
        let from = from.max(reach);
        if to > from {
            total += to - from;
            reach = to;
        }
    }
    total
}

fn audit(
    shares: &[Submitted],
    pools: &[PoolStats],
    faults: &[(&str, Duration)],
    run: Duration,
) -> Audit {
    let window = fault_window(run);
    // Faults are timed just before they happen; an error reply comes after its fault.
    let near_fault = |s: &Submitted| {
        let answered = s.at + s.rtt;
        faults
            .iter()
            .any(|(_, f)| answered >= *f && answered <= *f + window)
    };
    let mut a = Audit {
        window,
        fault_time: fault_time(faults, window, run),
        ..Audit::default()
    };
    // The shares whose extranonce1 was replaced in flight, under each extranonce the proxy gave them then.
    let rewritten: HashSet<SeenKey> = shares
        .iter()
        .flat_map(|s| s.as_rewritten().map(|full| seen_key(s, full)))
        .collect();
    let mut accepted: HashMap<ShareKey, u64> = HashMap::new();
    for p in pools {
        for s in &p.accepted_shares {
            a.pool_accepted += 1;
            a.rolled_accepted += u64::from(s.version_bits.is_some());
            let key = (
                s.job_id.clone(),
                s.full_extranonce(),
                s.ntime,
                s.nonce,
                s.version,
            );
            *accepted.entry(key).or_default() += 1;
        }
        for r in &p.rejected_shares {
            *a.pool_rejects.entry(r.code).or_default() += 1;
            let param = |i: usize| r.params.get(i).map_or("", String::as_str);
            let e2 = fastproxy::hex::decode(param(2)).unwrap_or_default();
            let key = (
                param(1).to_string(),
                [&r.extranonce1[..], &e2[..]].concat(),
                fastproxy::work::u32_from_hex(param(3)).unwrap_or(0),
                fastproxy::work::u32_from_hex(param(4)).unwrap_or(0),
            );
            let explained = r.code == 21 || (r.code == 23 && rewritten.contains(&key));
            if explained {
                continue;
            }
            a.bad_pool_rejects += 1;
            if a.bad_pool_examples.len() < 5 {
                // The miner's side of it: the share with this job, ntime and nonce, as hashed and as told.
                let mine: Vec<String> = shares
                    .iter()
                    .filter(|s| s.key.0 == key.0 && s.key.2 == key.2 && s.key.3 == key.3)
                    .map(|s| {
                        format!(
                            "hashed with extranonce {} at {:.2?}, answered after {:.2?} with {:?}, extranonce1 replaced in flight by {:?}",
                            fastproxy::hex::encode(&s.key.1),
                            s.at,
                            s.rtt,
                            s.outcome,
                            s.replaced_extranonce1
                                .iter()
                                .map(|e| fastproxy::hex::encode(e))
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect();
                a.bad_pool_examples.push(format!(
                    "{} {:?}: extranonce1 {} params {:?}; the miner's share: {mine:?}",
                    r.code,
                    r.reason,
                    fastproxy::hex::encode(&r.extranonce1),
                    r.params
                ));
            }
        }
    }
    a.accepted_twice = accepted.values().map(|n| n - 1).sum();
    // Each share by the key it was hashed with and, when its extranonce1 was replaced in flight, by the key
    // the pool saw (at this difficulty about one such share in 1,024 still meets the target, and is accepted).
    let mut told: HashMap<ShareKey, &Submitted> = HashMap::new();
    for s in shares {
        if told.insert(s.key.clone(), s).is_some() {
            a.same_share_submitted_twice += 1;
        }
        let as_rewritten: Vec<ShareKey> = s
            .as_rewritten()
            .map(|full| (s.key.0.clone(), full, s.key.2, s.key.3, s.key.4))
            .collect();
        for k in &as_rewritten {
            told.insert(k.clone(), s);
        }
        match &s.outcome {
            Outcome::Accepted => {
                a.told_accepted += 1;
                if as_rewritten.iter().any(|k| accepted.contains_key(k)) {
                    a.accepted_as_rewritten += 1;
                } else if !accepted.contains_key(&s.key) {
                    a.told_true_not_accepted.push(format!(
                        "{} (submitted at {:.2?})",
                        key_text(&s.key),
                        s.at
                    ));
                }
            }
            Outcome::Refused(23, _) if !s.replaced_extranonce1.is_empty() && near_fault(s) => {
                a.errors.replaced_in_flight += 1
            }
            Outcome::Refused(code, message) => {
                match explained_by(*code, message).filter(|_| near_fault(s)) {
                    Some("verdict lost") => a.errors.verdict_lost += 1,
                    Some("pool unavailable") => a.errors.pool_away += 1,
                    Some("timeout") => a.errors.timeout += 1,
                    Some(_) => a.errors.stale += 1,
                    None => {
                        a.errors.unexpected += 1;
                        if a.errors.unexpected_examples.len() < 5 {
                            a.errors.unexpected_examples.push(format!(
                                "[{code}, {message:?}] for {} at {:.2?}",
                                key_text(&s.key),
                                s.at
                            ));
                        }
                    }
                }
            }
            Outcome::Unanswered => {}
        }
    }
    for key in accepted.keys() {
        let fine = match told.get(key).map(|s| &s.outcome) {
            Some(Outcome::Accepted) => true,
            // The pool's verdict was lost with its connection (or the wait for it timed out): the miner got
            // the error that says so. Counted and bounded in `check`.
            Some(Outcome::Refused(code, message)) => {
                matches!(
                    explained_by(*code, message),
                    Some("verdict lost" | "timeout")
                )
            }
            Some(Outcome::Unanswered) | None => false,
        };
        if !fine {
            let why = match told.get(key) {
                None => "no miner submitted it".to_string(),
                Some(s) => format!("its miner got {:?} (submitted at {:.2?})", s.outcome, s.at),
            };
            a.accepted_not_told_true
                .push(format!("{}: {why}", key_text(key)));
        }
    }
    a
}

impl Audit {
    /// Errors a fault explains per miner and second of fault windows.
    fn error_rate(&self, miners: u64) -> f64 {
        let miner_secs = self.fault_time.as_secs_f64() * miners as f64;
        self.errors.explained() as f64 / miner_secs.max(1e-9)
    }

    /// The audit's assertions, each with the shares that break it.
    fn check(&self, submitted: u64, miners: u64) {
        let first = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>().join("\n  ");
        // Each session counts its extranonce2 from the start: only two sessions given the same extranonce1
        // (pool extranonce1 and prefix) at once can hash the same share.
        assert_eq!(
            self.same_share_submitted_twice, 0,
            "two miners hashed the same share: the proxy gave them the same extranonce1 (pool rejects: {:?})",
            self.pool_rejects
        );
        assert!(
            self.told_true_not_accepted.is_empty(),
            "{} shares were answered true to their miner but no pool accepted them, e.g.\n  {}",
            self.told_true_not_accepted.len(),
            first(&self.told_true_not_accepted)
        );
        assert!(
            self.accepted_not_told_true.is_empty(),
            "{} shares a pool accepted were not answered true to their miner, e.g.\n  {}",
            self.accepted_not_told_true.len(),
            first(&self.accepted_not_told_true)
        );
        assert_eq!(
            self.accepted_twice, 0,
            "no share accepted twice by the pools"
        );
        assert_eq!(
            self.bad_pool_rejects,
            0,
            "the pools refused shares for a reason no fault explains (all rejects by code: {:?}), e.g.\n  {}",
            self.pool_rejects,
            first(&self.bad_pool_examples)
        );
        assert_eq!(
            self.errors.unexpected,
            0,
            "miners got errors no fault explains, e.g.\n  {}",
            first(&self.errors.unexpected_examples)
        );
        let e = &self.errors;
        assert!(
            self.error_rate(miners) <= MAX_ERRORS_PER_MINER_SECOND,
            "errors during faults are bounded: {:.2} per miner and second of fault windows ({} errors, {} \
             miners, windows open {:.1?}; {submitted} submits in all; {e:?})",
            self.error_rate(miners),
            e.explained(),
            miners,
            self.fault_time,
        );
    }
}
