//! Zero heap allocations per forwarded share in steady state, shown with a counting global allocator.
//!
//! The test thread plays both the miner and the pool over real sockets, from buffers built before the measured
//! window, so during it the only code that could allocate is the proxy's reactor thread.

use fastproxy::config::Config;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A line reader over a fixed buffer: no allocation after construction.
struct Lines {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Lines {
    fn new(sock: TcpStream) -> Lines {
        Lines {
            sock,
            buf: vec![0; 1 << 16],
            start: 0,
            end: 0,
        }
    }

    /// Copies the next line (without its newline) into `out`.
    fn read_line(&mut self, out: &mut Vec<u8>) {
        out.clear();
        loop {
            if let Some(i) = self.buf[self.start..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                out.extend_from_slice(&self.buf[self.start..self.start + i]);
                self.start += i + 1;
                return;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = self.sock.read(&mut self.buf[self.end..]).expect("read");
            assert!(n > 0, "peer closed");
            self.end += n;
        }
    }
}

/// The digits of the `"id":` number in a JSON line.
fn id_digits(line: &[u8]) -> &[u8] {
    let at = line
        .windows(5)
        .position(|w| w == b"\"id\":")
        .expect("an id")
        + 5;
    let end = line[at..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(line.len(), |e| at + e);
    &line[at..end]
}

/// True when `hay` contains `needle` (no allocation).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One share: the miner submits it (request id `id`), the pool answers true, the miner reads its reply.
fn share_round(
    miner: &mut Lines,
    pool: &mut Lines,
    (submit, id): (&[u8], &[u8]),
    line: &mut Vec<u8>,
    reply: &mut Vec<u8>,
) {
    miner.sock.write_all(submit).unwrap();
    pool.read_line(line);
    reply.clear();
    reply.extend_from_slice(b"{\"id\":");
    reply.extend_from_slice(id_digits(line));
    reply.extend_from_slice(b",\"result\":true,\"error\":null}\n");
    pool.sock.write_all(reply).unwrap();
    miner.read_line(line);
    // The next line the miner reads is this share's own reply (its id, not null), and it says true.
    assert!(
        id_digits(line) == id && !contains(line, b"\"method\""),
        "the reply to share {}: {}",
        String::from_utf8_lossy(id),
        String::from_utf8_lossy(line)
    );
    assert!(
        contains(line, b"\"result\":true") && contains(line, b"\"error\":null"),
        "share {} accepted: {}",
        String::from_utf8_lossy(id),
        String::from_utf8_lossy(line)
    );
}

#[test]
fn a_forwarded_share_costs_the_proxy_no_allocation_in_steady_state() {
    forwarded_shares_allocate_nothing(false);
}

/// The same with two weighted routes (issue 15): the job ids miners see carry their upstream's tag, the
/// share's tag is cut off on its way up, and the pool's `true` feeds the route's scheduler. The second
/// route's pool accepts the connection and never answers (that route stays down: nobody moves).
#[test]
fn a_forwarded_share_on_a_weighted_route_costs_no_allocation_either() {
    forwarded_shares_allocate_nothing(true);
}

/// The allocation counter is global: one measurement at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn forwarded_shares_allocate_nothing(routed: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The pool: this thread, on a socket.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let yaml = if routed {
        format!(
            "threads: 1\nproxies:\n  - name: z\n    protocol: stratum\n    handshake_timeout: 600\n    listen:\n      - address: 127.0.0.1:0\n    routes:\n      - name: main\n        weight: 90\n        pools:\n          - url: stratum+tcp://{}\n            user: acct\n      - name: fee\n        weight: 10\n        pools:\n          - url: stratum+tcp://{}\n            user: fee\n",
            listener.local_addr().unwrap(),
            silent.local_addr().unwrap()
        )
    } else {
        format!(
            "threads: 1\nproxies:\n  - name: z\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum+tcp://{}\n        user: acct\n",
            listener.local_addr().unwrap()
        )
    };
    let proxy = fastproxy::proxy::start(&Config::from_yaml(&yaml).unwrap()).unwrap();
    let (pool_sock, _) = listener.accept().unwrap();
    pool_sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut pool = pool_sock.try_clone().unwrap();
    let mut pool_lines = BufReader::new(pool_sock);
    let mut answered = 0;
    while answered < 3 {
        let mut l = String::new();
        pool_lines.read_line(&mut l).unwrap();
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let id = &v["id"];
        let reply = match v["method"].as_str().unwrap() {
            "mining.subscribe" => {
                serde_json::json!({"id": id, "result": [[["mining.notify", "1"]], "aabbccdd", 8], "error": null})
            }
            "mining.configure" => {
                serde_json::json!({"id": id, "result": {"version-rolling": false}, "error": null})
            }
            _ => serde_json::json!({"id": id, "result": true, "error": null}),
        };
        if v["method"] != "mining.configure" {
            answered += 1;
        }
        writeln!(pool, "{reply}").unwrap();
    }
    writeln!(pool, "{{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"j\",\"{}\",\"01\",\"02\",[],\"20000000\",\"1d00ffff\",\"5f5e1000\",true]}}", "00".repeat(32)).unwrap();
    assert!(pool_lines.buffer().is_empty());
    let mut pool = Lines::new(pool_lines.into_inner());

    // The miner: this thread too.
    let sock = TcpStream::connect(proxy.first_addr().unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut miner = Lines::new(sock);
    miner.sock.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"rig\",\"x\"]}\n").unwrap();
    let mut line = Vec::with_capacity(4096);
    let mut reply = Vec::with_capacity(256);
    // subscribe result, authorize result, then the job.
    for _ in 0..3 {
        miner.read_line(&mut line);
    }
    let job: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let job_id = job["params"][0].as_str().unwrap().to_string();
    assert_eq!(job_id.ends_with(".j"), routed, "job id {job_id}");
    let submits: Vec<(Vec<u8>, Vec<u8>)> = (0..6000u64)
        .map(|i| {
            let line = format!("{{\"id\":{i},\"method\":\"mining.submit\",\"params\":[\"rig\",\"{job_id}\",\"{:012x}\",\"5f5e1000\",\"00000000\"]}}\n", i);
            (line.into_bytes(), i.to_string().into_bytes())
        })
        .collect();
    // Warm up: buffers, tables and queues reach their steady sizes.
    for (s, id) in &submits[..3000] {
        share_round(&mut miner, &mut pool, (s, id), &mut line, &mut reply);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for (s, id) in &submits[3000..] {
        share_round(&mut miner, &mut pool, (s, id), &mut line, &mut reply);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    // The reactor's 100 ms tick may run a few times in the window; it allocates nothing either.
    assert_eq!(
        allocations, 0,
        "allocations during 3,000 forwarded shares (submit in, submit up, verdict back)"
    );
    drop(proxy);
    drop(silent);
}
