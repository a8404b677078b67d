//! The metrics endpoint (and the control API, on the same [`fastproxy::metrics::Endpoint`]) keeps answering after
//! accepting a connection failed because descriptors ran out: tiny_http's own accept thread ends at the first
//! such error and closes the port for good.
//!
//! A file of its own: the test lowers this process's descriptor limit and takes every descriptor left, which
//! would break any test running beside it.

use fastproxy::metrics::{self, MetricsOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keeps every log line, so the test knows when the endpoint has seen the accept fail.
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

fn get_status(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body)
        .unwrap_or_else(|e| panic!("no answer: {e}; log: {:?}", LOG.0.lock().unwrap()));
    body
}

#[test]
fn the_metrics_endpoint_answers_again_after_an_accept_failed_for_want_of_descriptors() {
    log::set_logger(&LOG).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let handle = metrics::serve_on(listener, Vec::new(), None, MetricsOptions::default()).unwrap();
    // No request before the descriptors run out: a connection closing meanwhile would free descriptors at a time
    // of its own.

    // A socket made while descriptors remain, connected once none do: the server's accept() gets EMFILE.
    let waiting = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
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
    waiting.connect(&addr.into()).unwrap();
    let start = Instant::now();
    while !LOG
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("metrics: ") && l.contains("accept"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no accept failed: {:?}",
            LOG.0.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A while without descriptors (restarts fail meanwhile), then they come back.
    std::thread::sleep(Duration::from_millis(600));
    drop(filler);
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);

    // A new connection is served. The one made while descriptors had run out is served too, or closed when
    // tiny_http's accept took it and then panicked for want of a descriptor; never left hanging.
    let mut after = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("{e}; log: {:?}", LOG.0.lock().unwrap()));
    assert!(get_status(&mut after).starts_with("HTTP/1.0 200"));
    let mut waiting: TcpStream = waiting.into();
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = waiting.write_all(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    if let Err(e) = waiting.read_to_end(&mut answer) {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "left hanging");
    }
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.0 200"));
    let lines = LOG.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("metrics: accepting connections again")),
        "{lines:?}"
    );
    handle.stop();
}
