//! The metrics endpoint (and the control API, on the same [`fastproxy::metrics::Endpoint`]) answers again once
//! descriptors are back after they ran out. tiny_http's accept thread ends for good when they run out, in one of
//! two ways, and each has a phase here:
//! - `accept()` fails with EMFILE (Linux takes the new descriptor when accept is entered, so a thread that enters
//!   it with none free): the thread reports the error and stops;
//! - the thread was already waiting in `accept()` (its descriptor taken): a connection comes, and duplicating
//!   the new stream fails, so the thread panics and says nothing.
//!
//! A file of its own, with one test: it lowers this process's descriptor limit and takes every descriptor left,
//! which would break any test running beside it.

use fastproxy::metrics::{self, MetricsOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keeps every log line, so the test knows what the endpoint saw.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

static LOG: Lines = Lines(Mutex::new(Vec::new()));

fn lines() -> Vec<String> {
    LOG.0.lock().unwrap().clone()
}

fn wait_for_line(text: &str) {
    let start = Instant::now();
    while !lines().iter().any(|l| l.contains(text)) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no log line {text:?}: {:?}",
            lines()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `GET /status` on `s` and reads one answer (by its Content-Length, so a keep-alive connection stays
/// usable); returns the status line.
fn get_status(s: &mut TcpStream, keep_alive: bool) -> String {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    r.read_line(&mut status)
        .unwrap_or_else(|e| panic!("no answer: {e}; log: {:?}", lines()));
    let mut length = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    status.trim().to_string()
}

/// The process's soft descriptor limit, lowered to what is open now plus a few, and every descriptor left taken
/// but `spare`; given back when dropped.
struct Exhausted {
    old: libc::rlimit,
    _filler: Vec<std::fs::File>,
}

fn exhaust(spare: usize) -> Exhausted {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on local structs.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as libc::rlim_t;
    let low = libc::rlimit {
        rlim_cur: (open + 16).min(old.rlim_cur),
        rlim_max: old.rlim_max,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
        assert!(filler.len() < 100_000, "the descriptor limit did not hold");
    }
    filler.truncate(filler.len() - spare);
    Exhausted {
        old,
        _filler: filler,
    }
}

impl Drop for Exhausted {
    fn drop(&mut self) {
        // SAFETY: setrlimit on a struct getrlimit filled.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.old) };
    }
}

/// Once descriptors are back: a new connection is answered, after the endpoint said it accepts again.
fn answers_again(addr: SocketAddr) {
    let mut after = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}; log: {:?}", lines()));
    assert_eq!(get_status(&mut after, false), "HTTP/1.1 200 OK");
    wait_for_line("metrics: accepting connections again");
}

#[test]
fn the_metrics_endpoint_answers_again_after_its_accept_thread_ended_for_want_of_descriptors() {
    log::set_logger(&LOG).unwrap();
    log::set_max_level(log::LevelFilter::Info);

    // Phase 1, the reported error: the server starts with one descriptor free, which its duplicate of the
    // listener takes, so its accept thread gets EMFILE at once.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = exhaust(1);
    let handle = metrics::serve_on(listener, Vec::new(), None, MetricsOptions::default()).unwrap();
    wait_for_line("metrics: accepting a connection failed");
    // A while without descriptors (restarts fail meanwhile), then they come back.
    std::thread::sleep(Duration::from_millis(600));
    drop(held);
    answers_again(addr);
    handle.stop();
    LOG.0.lock().unwrap().clear();

    // Phase 2, the silent panic: a keep-alive request answered first, so the accept thread waits in accept()
    // again, holding its descriptor; then none is left, and a connection comes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = metrics::serve_on(listener, Vec::new(), None, MetricsOptions::default()).unwrap();
    let mut kept = TcpStream::connect(addr).unwrap();
    assert_eq!(get_status(&mut kept, true), "HTTP/1.1 200 OK");
    // The thread went back to accept() microseconds after taking `kept`; this is ample.
    std::thread::sleep(Duration::from_millis(500));
    let waiting = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let held = exhaust(0);
    waiting.connect(&addr.into()).unwrap();
    wait_for_line("metrics: its accept thread ended");
    std::thread::sleep(Duration::from_millis(600));
    drop(held);
    answers_again(addr);
    // The connection the dead thread took was closed with it: never left hanging.
    let mut waiting: TcpStream = waiting.into();
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    if let Err(e) = waiting.read_to_end(&mut rest) {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "left hanging");
    }
    // The keep-alive connection the dead server took is still answered.
    assert_eq!(get_status(&mut kept, true), "HTTP/1.1 200 OK");
    handle.stop();
}
