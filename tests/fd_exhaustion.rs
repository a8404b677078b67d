//! Running out of file descriptors: the `fastproxy` binary under a lowered RLIMIT_NOFILE, filled with plain
//! connections; the backlog is served once descriptors free up, pools reconnect and fail over, `max_miners`
//! refuses at once, each episode is logged once, and a paused proxy does not spin. And memory: miners that do
//! not read during a burst of jobs cannot take more than `max_queued_output`.

mod common;

use common::*;
use fastproxy_sim::miner::{spawn_miner, SimMinerConfig};
use fastproxy_sim::pool::SimPoolConfig;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The proxy binary running under a descriptor limit, its stderr collected line by line.
struct Proxy {
    child: Child,
    config: std::path::PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    miners: SocketAddr,
    metrics: SocketAddr,
    /// Miners the descriptors allow, from the start line.
    room: usize,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
        if std::thread::panicking() {
            eprintln!("fastproxy's log:\n{}", self.log.lock().unwrap().join("\n"));
        }
    }
}

impl Proxy {
    /// Starts `fastproxy -c` on `yaml` with RLIMIT_NOFILE soft `soft` and hard `hard`.
    fn start(name: &str, yaml: &str, soft: u64, hard: u64) -> Proxy {
        let dir = std::env::temp_dir().join(format!("fastproxy-fdx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastproxy"));
        cmd.arg("-c")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn fastproxy");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut p = Proxy {
            child,
            config: path,
            log,
            miners: "0.0.0.0:0".parse().unwrap(),
            metrics: "0.0.0.0:0".parse().unwrap(),
            room: 0,
        };
        let find = |p: &Proxy, key: &str| -> Option<String> {
            let log = p.log.lock().unwrap();
            let line = log.iter().find(|l| l.contains(key))?;
            let rest = &line[line.find(key)? + key.len()..];
            Some(rest.split([' ', '/']).next()?.to_string())
        };
        wait_until(Duration::from_secs(20), "the proxy listening", || {
            if let Ok(Some(s)) = p.child.try_wait() {
                panic!(
                    "fastproxy exited: {s}\n{}",
                    p.log.lock().unwrap().join("\n")
                );
            }
            find(&p, "listening on ").is_some() && find(&p, "metrics on http://").is_some()
        });
        p.miners = find(&p, "listening on ").unwrap().parse().unwrap();
        p.metrics = find(&p, "metrics on http://").unwrap().parse().unwrap();
        p.room = find(&p, "room for ").unwrap().parse().unwrap();
        p
    }

    fn lines_with(&self, text: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(text)).cloned().collect()
    }

    fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.metrics).expect("connect to metrics");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).expect("metrics response");
        body.split_once("\r\n\r\n")
            .map_or(body.clone(), |(_, b)| b.to_string())
    }

    fn descriptors(&self) -> Value {
        let doc: Value = serde_json::from_str(&self.get("/status")).expect("status JSON");
        doc["descriptors"].clone()
    }

    /// The value of the sample `name` (with its labels, if any) in /metrics.
    fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
    }

    /// Resident memory of the process now, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    /// Descriptors the process holds now.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// CPU time (user + system) the process used so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    /// Opens plain connections until every miner slot is held and `extra` more wait in the backlog.
    fn fill(&self, extra: usize) -> Vec<TcpStream> {
        let conns: Vec<TcpStream> = (0..self.room + extra)
            .map(|_| TcpStream::connect(self.miners).expect("connect (the backlog has room)"))
            .collect();
        wait_until(Duration::from_secs(20), "every miner slot taken", || {
            let d = self.descriptors();
            d["miners"] == json!(self.room) && d["exhausted"] == json!(true)
        });
        conns
    }
}

/// A proxy YAML with the metrics endpoint.
fn yaml(pools: &[SocketAddr], extra: &str) -> String {
    proxy_yaml(pools, extra).replacen(
        "threads: 1\n",
        "threads: 1\nmetrics: { listen: 127.0.0.1:0 }\n",
        1,
    )
}

/// The subscribe of a miner that connected behind the backlog is answered once descriptors free up.
#[test]
fn a_miner_waiting_in_the_backlog_is_served_when_descriptors_free_up() {
    let pool = pool(SimPoolConfig::default());
    let proxy = Proxy::start("backlog", &yaml(&[pool.addr()], ""), 100, 100);
    let mut plain = proxy.fill(10);
    let mut miner = Client::connect(proxy.miners);
    let id = miner.request("mining.subscribe", json!(["test/1"]));
    assert!(
        miner.read(Duration::from_millis(500)).is_none(),
        "the miner waits in the backlog while every slot is held"
    );
    // Twenty slots free: the ten connections ahead of the miner and the miner itself are accepted, in order.
    plain.drain(..20);
    let (reply, _) = miner.reply(id, Duration::from_secs(10));
    assert_eq!(
        reply["result"][1].as_str().map(str::len),
        Some(12),
        "{reply}"
    );
    let auth = miner.request("mining.authorize", json!(["rig.1", "x"]));
    let (reply, _) = miner.reply(auth, Duration::from_secs(10));
    assert_eq!(reply["result"], json!(true), "{reply}");
    wait_until(Duration::from_secs(10), "the episode over", || {
        proxy.descriptors()["exhausted"] == json!(false)
    });
    let d = proxy.descriptors();
    assert_eq!(d["connections_delayed"], json!(11), "{d}");
    assert_eq!(proxy.metric("fastproxy_connections_delayed_total"), 11.0);
    assert_eq!(proxy.metric("fastproxy_descriptor_exhaustions_total"), 1.0);
}

/// When the descriptors are really gone (EMFILE, here taken by idle metrics connections the reserve did not plan
/// for), accept pauses; it resumes on the timer when they come back, though no miner left.
#[test]
fn after_emfile_accept_resumes_on_the_timer_without_a_new_event() {
    let pool = pool(SimPoolConfig::default());
    let proxy = Proxy::start("emfile", &yaml(&[pool.addr()], ""), 100, 100);
    // Idle HTTP connections: each holds two of the proxy's descriptors, more than the metrics reserve, so that
    // accept runs out while the proxy counts miner slots free (but the HTTP server itself does not).
    let free = 100 - proxy.open_fds();
    let waiting = proxy.room - 10;
    let k = (free - waiting) / 2 + 3;
    assert!(
        2 * k + 2 < free,
        "{free} descriptors free, room for {}",
        proxy.room
    );
    let idle: Vec<TcpStream> = (0..k)
        .map(|_| TcpStream::connect(proxy.metrics).unwrap())
        .collect();
    wait_until(Duration::from_secs(10), "the HTTP connections held", || {
        proxy.open_fds() >= 100 - free + 2 * k
    });
    let plain: Vec<TcpStream> = (0..waiting)
        .map(|_| TcpStream::connect(proxy.miners).unwrap())
        .collect();
    wait_until(
        Duration::from_secs(20),
        "accept failing with EMFILE",
        || !proxy.lines_with("accept: Too many open files").is_empty(),
    );
    let mut miner = Client::connect(proxy.miners);
    let id = miner.request("mining.subscribe", json!(["test/1"]));
    assert!(miner.read(Duration::from_millis(500)).is_none());
    drop(idle);
    let (reply, _) = miner.reply(id, Duration::from_secs(10));
    assert_eq!(
        reply["result"][1].as_str().map(str::len),
        Some(12),
        "{reply}"
    );
    drop(plain);
}

/// Pool loss and failover while miners hold every slot: the proxy reconnects, fails over to the backup, and
/// the shares of a miner that stayed connected are checked and accepted there.
#[test]
fn pools_reconnect_and_fail_over_while_miners_hold_every_descriptor() {
    let primary = pool(SimPoolConfig::default());
    let backup = pool(SimPoolConfig::default());
    let extra = "retry_initial: 0.1\nretry_max: 0.5\nfailover_after: 2\nfailback: false";
    let proxy = Proxy::start(
        "failover",
        &yaml(&[primary.addr(), backup.addr()], extra),
        100,
        100,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let miner = spawn_miner(
        SimMinerConfig {
            addr: proxy.miners,
            worker: "farm.rig1".into(),
            extranonce_subscribe: true,
            duration: Duration::from_secs(90),
            ..SimMinerConfig::default()
        },
        stop.clone(),
    );
    wait_until(Duration::from_secs(20), "shares on the primary", || {
        primary.stats().accepted >= 2
    });
    // Every slot held and a long queue behind: each descriptor that frees up is wanted by the backlog. (Watched
    // in the log, not over HTTP: this must not depend on the metrics endpoint.)
    let plain: Vec<TcpStream> = (0..proxy.room + 200)
        .map(|_| TcpStream::connect(proxy.miners).unwrap())
        .collect();
    wait_until(Duration::from_secs(20), "new connections waiting", || {
        !proxy.lines_with("out of descriptors").is_empty()
    });
    primary.disconnect_all();
    wait_until(
        Duration::from_secs(20),
        "the proxy back on the primary",
        || primary.stats().connections_total >= 2,
    );
    let accepted = primary.stats().accepted;
    wait_until(
        Duration::from_secs(20),
        "shares on the primary again",
        || primary.stats().accepted >= accepted + 2,
    );
    primary.stop();
    wait_until(
        Duration::from_secs(30),
        "shares accepted by the backup",
        || backup.stats().accepted >= 3,
    );
    stop.store(true, Ordering::Relaxed);
    let r = miner.join().unwrap();
    assert!(!r.disconnected_by_peer, "{r:?}");
    assert_eq!(r.unanswered, 0, "{r:?}");
    assert_eq!(backup.stats().rejected_by_code.get(&23), None);
    assert!(
        proxy.lines_with("Too many open files").is_empty(),
        "no descriptor ever ran out"
    );
    drop(plain);
}

/// Past `max_miners` (an entry's, or all entries' together) new connections are closed at once and counted.
#[test]
fn connections_past_max_miners_are_closed_at_once_and_counted() {
    let pool = pool(SimPoolConfig::default());
    let two = yaml(&[pool.addr()], "max_miners: 2").replacen(
        "threads: 1\n",
        "threads: 1\nmax_miners: 3\n",
        1,
    );
    let other = format!(
        "  - name: other\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum+tcp://{}\n        user: acct.proxy\n",
        pool.addr()
    );
    // A soft limit below the hard one: the proxy raises it.
    let proxy = Proxy::start("limit", &(two + &other), 200, 256);
    let start = proxy.lines_with("descriptor limit");
    assert!(
        start[0].contains("descriptor limit 256 (hard 256, raised from 200)"),
        "{start:?}"
    );
    let other_addr: SocketAddr = {
        let l = proxy.lines_with("[other] listening on ");
        let rest = l[0].split("listening on ").nth(1).unwrap();
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    let mut held: Vec<Client> = (0..2).map(|_| Client::connect(proxy.miners)).collect();
    for c in &mut held {
        c.handshake();
    }
    for _ in 0..2 {
        let mut third = Client::connect(proxy.miners);
        assert!(
            third.closed_within(Duration::from_secs(5)),
            "the entry's third miner is closed at once"
        );
    }
    let mut on_other = Client::connect(other_addr);
    on_other.handshake();
    let mut fourth = Client::connect(other_addr);
    assert!(
        fourth.closed_within(Duration::from_secs(5)),
        "the fourth miner of all is closed at once"
    );
    assert_eq!(
        proxy.metric("fastproxy_miners_refused_total{proxy=\"test\"}"),
        2.0
    );
    assert_eq!(
        proxy.metric("fastproxy_miners_refused_total{proxy=\"other\"}"),
        1.0
    );
    // A place frees up: the next miner is served.
    held.pop();
    wait_until(
        Duration::from_secs(20),
        "the proxy saw the held miner go",
        || proxy.metric("fastproxy_miners_connected{proxy=\"test\"}") == 1.0,
    );
    let mut again = Client::connect(proxy.miners);
    again.handshake();
    // Each limit's refusals are logged once as they begin and once as they end, with their count.
    wait_until(
        Duration::from_secs(5),
        "the refusal episodes' end lines",
        || proxy.lines_with("were refused past it").len() == 2,
    );
    let begun = proxy.lines_with("new miners are closed at once");
    assert_eq!(begun.len(), 2, "{begun:?}");
    assert!(
        begun[0].contains("[test] max_miners 2 reached"),
        "{begun:?}"
    );
    assert!(
        begun[1].contains("max_miners 3 (all proxies) reached"),
        "{begun:?}"
    );
    let ended = proxy.lines_with("were refused past it");
    let of = |scope: &str| ended.iter().find(|l| l.contains(scope)).unwrap().clone();
    assert!(
        of("[test] max_miners 2:").contains("; 2 connection(s)"),
        "{ended:?}"
    );
    assert!(
        of("(all proxies):").contains("; 1 connection(s)"),
        "{ended:?}"
    );
}

/// One line when an exhaustion episode begins and one when it ends, however many connections wait meanwhile.
#[test]
fn each_exhaustion_episode_is_logged_once_at_each_end() {
    let pool = pool(SimPoolConfig::default());
    let proxy = Proxy::start("episodes", &yaml(&[pool.addr()], ""), 100, 100);
    for episode in 1..=2 {
        let mut plain = proxy.fill(15);
        // More arrivals and several ticks while paused.
        let late: Vec<TcpStream> = (0..5)
            .map(|_| TcpStream::connect(proxy.miners).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(600));
        plain.drain(..plain.len().min(40));
        wait_until(Duration::from_secs(10), "the episode over", || {
            proxy.descriptors()["exhausted"] == json!(false)
        });
        // (The log is read from a pipe: give the end line time to come through, then count.)
        wait_until(Duration::from_secs(5), "the end line", || {
            proxy.lines_with("descriptors available again").len() >= episode
        });
        std::thread::sleep(Duration::from_millis(300));
        let begun = proxy.lines_with("out of descriptors");
        let ended = proxy.lines_with("descriptors available again");
        assert_eq!(begun.len(), episode, "{begun:?}");
        assert_eq!(ended.len(), episode, "{ended:?}");
        assert!(
            ended[episode - 1].contains(": 20 connection(s) waited"),
            "{ended:?}"
        );
        drop((plain, late));
        wait_until(
            Duration::from_secs(10),
            "every plain connection gone",
            || proxy.descriptors()["miners"] == json!(0),
        );
    }
}

/// While new connections wait for descriptors the proxy sleeps: no busy loop.
#[test]
fn a_paused_proxy_does_not_spin() {
    let pool = pool(SimPoolConfig::default());
    let proxy = Proxy::start("cpu", &yaml(&[pool.addr()], ""), 100, 100);
    let plain = proxy.fill(20);
    let before = proxy.cpu();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = proxy.cpu() - before;
    let share = used.as_secs_f64() / start.elapsed().as_secs_f64();
    assert!(
        share < 0.2,
        "{used:?} of CPU in {:?} while paused",
        start.elapsed()
    );
    assert_eq!(proxy.descriptors()["exhausted"], json!(true));
    drop(plain);
}

/// Miners that stop reading while jobs arrive fast: past `max_queued_output` the largest queues are dropped, the
/// proxy's memory stays within the budget, and a miner that reads gets every job.
#[test]
fn miners_that_do_not_read_cannot_take_more_than_the_output_budget() {
    const JOBS: usize = 3000;
    const BUDGET: u64 = 16 << 20;
    // Big jobs (64 merkle branches: about 4.6 KB per mining.notify).
    let pool = pool(SimPoolConfig {
        merkle_branches: 64,
        ..SimPoolConfig::default()
    });
    let yaml = yaml(&[pool.addr()], "max_write_buffer: 268435456").replacen(
        "threads: 1\n",
        &format!("threads: 1\nmax_queued_output: {BUDGET}\n"),
        1,
    );
    let proxy = Proxy::start("memory", &yaml, 1024, 1024);
    // Thirty miners that subscribe, authorize and then never read again (with a small receive buffer).
    let stalled: Vec<Client> = (0..30)
        .map(|_| {
            let mut c = Client::connect(proxy.miners);
            c.handshake();
            let _ = socket2::SockRef::from(&c.stream()).set_recv_buffer_size(4096);
            c
        })
        .collect();
    // One that reads everything, counting the jobs.
    let mut reader = Client::connect(proxy.miners);
    reader.handshake();
    let stream = reader.stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let counter = std::thread::spawn(move || {
        let mut jobs = 0;
        let mut lines = BufReader::new(stream).lines();
        while jobs < JOBS {
            match lines.next() {
                Some(Ok(l)) if l.contains("mining.notify") => jobs += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        jobs
    });
    let base = proxy.rss();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), proxy.child.id());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kb) = s
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                    {
                        peak.fetch_max(kb * 1024, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    for _ in 0..JOBS {
        pool.new_job(false);
    }
    let got = counter.join().unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(got, JOBS, "the reading miner got every job");
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak < base + 3 * BUDGET,
        "peak RSS {} MiB from {} MiB at the start, with a {} MiB budget",
        peak >> 20,
        base >> 20,
        BUDGET >> 20
    );
    assert!(
        proxy.metric("fastproxy_miners_kicked_total{proxy=\"test\"}") >= 1.0,
        "miners that do not read were disconnected"
    );
    assert!(!proxy
        .lines_with("of max_queued_output: disconnected")
        .is_empty());
    drop(stalled);
}
