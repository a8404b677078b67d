//! The systemd readiness protocol without systemd: the test listens on a unix datagram socket as systemd's
//! NOTIFY_SOCKET and runs the `fastproxy` binary against it and the simulated pool.

mod common;

use fastproxy_sim::miner::{run_miner, SimMinerConfig};
use fastproxy_sim::pool::{SimPool, SimPoolConfig};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Kills the child when dropped, so a failing test leaves nothing running.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next datagram, within a generous bound; `None` if none came.
fn next_message(sock: &UnixDatagram, limit: Duration) -> Option<String> {
    sock.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            None
        }
        Err(e) => panic!("notify socket: {e}"),
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

#[test]
fn ready_only_once_miners_can_connect_then_reloading_and_stopping() {
    let dir = std::env::temp_dir().join(format!("fastproxy-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let notify = UnixDatagram::bind(&sock_path).unwrap();

    let pool = SimPool::start(SimPoolConfig::default()).unwrap();
    let proxy_port = common::free_port();
    let cfg = dir.join("proxy.yaml");
    std::fs::write(
        &cfg,
        format!(
            "proxies:\n  - name: notify\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:{proxy_port}\n    pools:\n      - url: stratum+tcp://{}\n        user: acct.notify\n",
            pool.addr()
        ),
    )
    .unwrap();
    let mut proxy = Running(
        Command::new(env!("CARGO_BIN_EXE_fastproxy"))
            .arg("-c")
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    // The first message is READY=1, and at that moment the miner port already accepts: one connect, no retry.
    let first = next_message(&notify, Duration::from_secs(20)).expect("no READY=1 from the proxy");
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    let connected = TcpStream::connect(proxy_addr);
    assert_eq!(first, "READY=1");
    assert!(
        connected.is_ok(),
        "READY=1 came before {proxy_addr} accepted connections: {connected:?}"
    );
    drop(connected);
    // And the proxy behind it serves: a hashing miner's share is checked and accepted by the pool.
    let report = run_miner(
        &SimMinerConfig {
            addr: proxy_addr,
            max_shares: Some(1),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(report.accepted, 1, "{report:?}");

    // SIGHUP: RELOADING=1 with the monotonic timestamp systemd asks for, then READY=1 when the reload is done.
    signal(&proxy.0, libc::SIGHUP);
    let reloading = next_message(&notify, Duration::from_secs(20)).expect("no RELOADING=1");
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading}");
    let usec = lines.next().and_then(|l| l.strip_prefix("MONOTONIC_USEC="));
    assert!(
        usec.is_some_and(|u| u.parse::<u64>().is_ok_and(|u| u > 0)),
        "{reloading}"
    );
    assert_eq!(
        next_message(&notify, Duration::from_secs(20)).as_deref(),
        Some("READY=1")
    );

    // SIGTERM: STOPPING=1, then a clean exit with nothing more sent.
    signal(&proxy.0, libc::SIGTERM);
    assert_eq!(
        next_message(&notify, Duration::from_secs(20)).as_deref(),
        Some("STOPPING=1")
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = proxy.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(next_message(&notify, Duration::from_millis(200)), None);
    pool.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_notify_socket_the_proxy_runs_as_before() {
    let pool = SimPool::start(SimPoolConfig::default()).unwrap();
    let proxy_port = common::free_port();
    let dir = std::env::temp_dir().join(format!("fastproxy-nonotify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("proxy.yaml");
    std::fs::write(
        &cfg,
        format!(
            "proxies:\n  - name: plain\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:{proxy_port}\n    pools:\n      - url: stratum+tcp://{}\n        user: acct.plain\n",
            pool.addr()
        ),
    )
    .unwrap();
    let mut proxy = Running(
        Command::new(env!("CARGO_BIN_EXE_fastproxy"))
            .arg("-c")
            .arg(&cfg)
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    let start = Instant::now();
    while TcpStream::connect(proxy_addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = run_miner(
        &SimMinerConfig {
            addr: proxy_addr,
            max_shares: Some(1),
            duration: Duration::from_secs(30),
            ..SimMinerConfig::default()
        },
        &AtomicBool::new(false),
    );
    assert_eq!(report.accepted, 1, "{report:?}");
    let (status, log) = common::terminate(&mut proxy.0, Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("NOTIFY_SOCKET"), "{log}");
    pool.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
