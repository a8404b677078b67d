//! Zero heap allocations per forwarded share in steady state, shown with a counting global allocator.
//!
//! The test thread plays both the miner and the pool over real sockets, from buffers built before the measured
//! window, so during it the only code that could allocate is the proxy's reactor thread.

mod common;

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
    assert_accepted(line, id);
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

/// The pool side of an SV2 connection, on the reference crates (Noise responder, codec), over a blocking
/// socket of the test thread.
struct Sv2Pool {
    s: TcpStream,
    enc: codec_sv2::TransportEncryptState,
    dec: Option<codec_sv2::TransportDecryptState>,
    decoder: codec_sv2::NoiseDecoder,
    encoder: codec_sv2::NoiseEncoder,
}

/// The channel the test pool opens (in group 1).
const SV2_CHANNEL: u32 = 2;

impl Sv2Pool {
    /// Accepts the proxy's connection and answers its Noise handshake.
    fn accept(listener: &TcpListener, keys: ([u8; 32], [u8; 32])) -> Sv2Pool {
        let (s, enc, dec) = common::sv2::accept_noise(listener, keys, Duration::from_secs(600));
        Sv2Pool {
            s,
            enc,
            dec: Some(dec),
            decoder: codec_sv2::NoiseDecoder::new(),
            encoder: codec_sv2::NoiseEncoder::new(),
        }
    }

    /// Decrypts the next frame from `src` (reading more as the decoder asks): its type and payload.
    fn next_from(&mut self, mut src: impl FnMut(&mut [u8])) -> (u8, Vec<u8>) {
        loop {
            src(self.decoder.writable());
            let state = self.dec.take().unwrap();
            match self.decoder.next_transport_frame(state).unwrap() {
                codec_sv2::Decrypted::Incomplete(_, st) => self.dec = Some(st),
                codec_sv2::Decrypted::Frame(mut frame, st) => {
                    self.dec = Some(st);
                    let ty = frame.header().msg_type();
                    return (ty, frame.payload().to_vec());
                }
            }
        }
    }

    /// The next frame from the socket.
    fn next(&mut self) -> (u8, Vec<u8>) {
        let mut s = self.s.try_clone().unwrap();
        self.next_from(|buf| s.read_exact(buf).unwrap())
    }

    /// One message, encrypted (the encryption state moves on: frames must be sent in this order).
    fn encrypt<T: binary_sv2::Serialize + binary_sv2::GetSize>(
        &mut self,
        msg: T,
        ty: u8,
        channel: bool,
    ) -> Vec<u8> {
        let frame = framing_sv2::framing::MessageFrame::from_message(msg, ty, 0, channel).unwrap();
        let out = self.encoder.encode_transport(frame, &mut self.enc).unwrap();
        let out: &[u8] = out.as_ref();
        out.to_vec()
    }

    fn send<T: binary_sv2::Serialize + binary_sv2::GetSize>(&mut self, msg: T, ty: u8, ch: bool) {
        let bytes = self.encrypt(msg, ty, ch);
        self.s.write_all(&bytes).unwrap();
    }

    /// SetupConnection.Success, OpenExtendedMiningChannel.Success (prefix 01020304, 8 extranonce bytes, any
    /// hash a share), job 5 and the prev hash that activates it.
    fn open_channel_with_job(&mut self) {
        assert_eq!(self.next().0, 0x00, "SetupConnection");
        let ok = common_messages_sv2::SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        };
        self.send(ok, 0x01, false);
        assert_eq!(self.next().0, 0x13, "OpenExtendedMiningChannel");
        self.send(common::sv2_msgs::channel_opened(), 0x14, false);
        self.send(common::sv2_msgs::job(5, None, true), 0x1f, true);
        self.send(common::sv2_msgs::prev_hash(5), 0x20, true);
    }

    /// SubmitShares.Success for the one share with sequence number `seq`, encrypted.
    fn success(&mut self, seq: u32) -> Vec<u8> {
        let ok = mining_sv2::SubmitSharesSuccess {
            channel_id: SV2_CHANNEL,
            last_sequence_number: seq,
            new_submits_accepted_count: 1,
            new_shares_sum: 1,
        };
        self.encrypt(
            ok,
            mining_sv2::MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
            mining_sv2::CHANNEL_BIT_SUBMIT_SHARES_SUCCESS,
        )
    }
}

/// The miner's reply to share `id` is its own (not a notification) and says true.
fn assert_accepted(line: &[u8], id: &[u8]) {
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

/// Issue 14's SV2 upstream: a V1 miner's share goes up as an encrypted SubmitSharesExtended and the pool's
/// encrypted SubmitShares.Success comes back as the miner's `true`, with no allocation in the proxy. The
/// test thread plays the miner and the pool (the reference crates' Noise responder and codec); during the
/// measured window it only moves bytes built before it: the pool's Successes are encrypted in advance, in
/// order (Noise nonces are sequential), and each submit's encrypted frame (a fixed size for a fixed
/// extranonce size) is read raw into a preallocated buffer, decrypted and checked after the window.
#[test]
fn a_share_forwarded_to_an_sv2_pool_costs_no_allocation_in_steady_state() {
    const WARM: usize = 2000;
    const MEASURED: usize = 2000;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let keypair = fastproxy_sim::sv2_pool::authority_keypair();
    let key = fastproxy::protocol::sv2::AuthorityKey::from_x_only(keypair.0)
        .unwrap()
        .to_base58();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // No UpdateChannel (which allocates, and is not a share) inside the measured window however slowly a loaded
    // machine gets through the warm-up: its interval far past the test's length.
    let yaml = format!(
        "threads: 1\nproxies:\n  - name: z\n    protocol: stratum\n    sv2_update_interval: 3600\n    listen:\n      - address: 127.0.0.1:0\n    pools:\n      - url: stratum2+tcp://{}\n        user: acct\n        authority_public_key: {key}\n",
        listener.local_addr().unwrap()
    );
    let proxy = fastproxy::proxy::start(&Config::from_yaml(&yaml).unwrap()).unwrap();
    let mut pool = Sv2Pool::accept(&listener, keypair);
    pool.open_channel_with_job();

    let sock = TcpStream::connect(proxy.first_addr().unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut miner = Lines::new(sock);
    miner.sock.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"rig\",\"x\"]}\n").unwrap();
    let mut line = Vec::with_capacity(4096);
    let (mut e2_size, mut job_id) = (None, None);
    while job_id.is_none() {
        miner.read_line(&mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        if v["id"] == 1 {
            e2_size = v["result"][2].as_u64();
        }
        if v["method"] == "mining.notify" {
            job_id = v["params"][0].as_str().map(str::to_string);
        }
    }
    let (e2_size, job_id) = (e2_size.unwrap() as usize, job_id.unwrap());
    assert_eq!(e2_size, 6, "8 channel bytes, 2 of them the proxy's prefix");
    let submits: Vec<(Vec<u8>, Vec<u8>)> = (0..WARM + MEASURED)
        .map(|i| {
            let line = format!("{{\"id\":{i},\"method\":\"mining.submit\",\"params\":[\"rig\",\"{job_id}\",\"{i:0w$x}\",\"6553f100\",\"{i:08x}\"]}}\n", w = 2 * e2_size);
            (line.into_bytes(), i.to_string().into_bytes())
        })
        .collect();
    let check_submit = |(ty, mut payload): (u8, Vec<u8>), i: usize| {
        assert_eq!(ty, mining_sv2::MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED);
        let m: mining_sv2::SubmitSharesExtended = binary_sv2::from_bytes(&mut payload).unwrap();
        assert_eq!(
            (m.channel_id, m.sequence_number, m.job_id, m.nonce),
            (SV2_CHANNEL, i as u32, 5, i as u32),
            "share {i}"
        );
        assert_eq!(m.extranonce.as_ref()[2..], (i as u64).to_be_bytes()[2..]);
    };

    // Warm up: the pool decrypts each submit as it comes and answers it.
    let mut frame_len = 0;
    for (i, (submit, id)) in submits[..WARM].iter().enumerate() {
        miner.sock.write_all(submit).unwrap();
        let mut s = pool.s.try_clone().unwrap();
        let mut read = 0;
        let frame = pool.next_from(|buf| {
            s.read_exact(buf).unwrap();
            read += buf.len();
        });
        check_submit(frame, i);
        assert!(
            frame_len == 0 || frame_len == read,
            "submit frames of one size"
        );
        frame_len = read;
        let ok = pool.success(i as u32);
        pool.s.write_all(&ok).unwrap();
        miner.read_line(&mut line);
        assert_accepted(&line, id);
    }

    // The measured window: only bytes built before it move.
    let successes: Vec<Vec<u8>> = (WARM..WARM + MEASURED)
        .map(|i| pool.success(i as u32))
        .collect();
    let mut raw = vec![0u8; frame_len * MEASURED];
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for (k, (submit, id)) in submits[WARM..].iter().enumerate() {
        miner.sock.write_all(submit).unwrap();
        pool.s
            .read_exact(&mut raw[k * frame_len..(k + 1) * frame_len])
            .unwrap();
        pool.s.write_all(&successes[k]).unwrap();
        miner.read_line(&mut line);
        assert_accepted(&line, id);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    // What went up in the window: each share with its own sequence number.
    let mut at = 0;
    for i in WARM..WARM + MEASURED {
        let frame = pool.next_from(|buf| {
            buf.copy_from_slice(&raw[at..at + buf.len()]);
            at += buf.len();
        });
        check_submit(frame, i);
    }
    assert_eq!(at, raw.len());
    assert_eq!(
        allocations, 0,
        "allocations during {MEASURED} shares forwarded to an SV2 pool (submit in, SubmitSharesExtended up, Success back)"
    );
    drop(proxy);
}
