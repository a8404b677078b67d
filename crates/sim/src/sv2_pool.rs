//! A simulated Stratum V2 pool for tests: the reference crates' Noise NX responder (a generated authority key,
//! published base58-check) and codec, one extended channel per connection, and every share checked.
//!
//! It answers SetupConnection (mining protocol) and OpenExtendedMiningChannel, sends a future
//! NewExtendedMiningJob, SetNewPrevHash and SetTarget, and judges each SubmitSharesExtended by rebuilding the
//! coinbase (prefix ‖ channel extranonce prefix ‖ extranonce ‖ suffix), merkle root and header with the
//! submitted version, and comparing the hash with the channel's target: SubmitShares.Success (one per
//! `batch_size` valid shares) or SubmitShares.Error with the spec's codes. One thread per connection.
//! Here: the pool handle and its accept loop; shared settings, counters and jobs in `state`, a connection in
//! `conn`, share judging in `judge`.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

mod conn;
mod judge;
mod state;

use state::{lock, make_job, new_tip, Cmd, Shared, State};
pub use state::{Sv2AcceptedShare, Sv2PoolConfig, Sv2PoolStats, SIM_REJECT};

const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// A running SV2 pool; stopped on drop.
pub struct Sv2SimPool {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// A fresh authority keypair: (x-only public key, secret key) (tests' own responders use it too).
pub fn authority_keypair() -> ([u8; 32], [u8; 32]) {
    let secp = secp256k1::Secp256k1::new();
    let (secret, _) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
    let kp = secp256k1::Keypair::from_secret_key(&secp, &secret);
    (kp.x_only_public_key().0.serialize(), secret.secret_bytes())
}

impl Sv2SimPool {
    /// Generates an authority key, binds `cfg.listen` and starts accepting connections.
    pub fn start(cfg: Sv2PoolConfig) -> io::Result<Sv2SimPool> {
        let listener = TcpListener::bind(cfg.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (authority_public, authority_secret) = cfg.authority.unwrap_or_else(authority_keypair);
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let mut state = State {
            stats: Sv2PoolStats::default(),
            tip: new_tip(instance, 1),
            jobs: BTreeMap::new(),
            job_counter: 0,
            prefix_counter: 0,
        };
        make_job(&cfg, instance, &mut state);
        let rolling_allowed = AtomicBool::new(!cfg.fixed_version_jobs);
        let shared = Arc::new(Shared {
            cfg,
            instance,
            authority_public,
            authority_secret,
            stop: AtomicBool::new(false),
            answer: AtomicBool::new(true),
            rolling_allowed,
            state: Mutex::new(state),
            forced: Mutex::new(VecDeque::new()),
            conns: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("sv2pool-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(Sv2SimPool {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The authority public key as pools publish it: base58-check of `[0x01, 0x00] ‖ x-only key`.
    pub fn authority_public_key(&self) -> String {
        let mut raw = [0u8; 34];
        raw[0] = 1;
        raw[2..].copy_from_slice(&self.shared.authority_public);
        bs58::encode(raw).with_check().into_string()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Sv2PoolStats {
        lock(&self.shared.state).stats.clone()
    }

    /// Sends every channel a new job; `clean`: on a new prev hash (a future job, then SetNewPrevHash),
    /// which makes every earlier job stale.
    pub fn new_job(&self, clean: bool) {
        let (job, tip) = {
            let mut st = lock(&self.shared.state);
            if clean {
                st.tip = new_tip(self.shared.instance, st.tip.epoch + 1);
            }
            let job = make_job(&self.shared.cfg, self.shared.instance, &mut st);
            (job, clean.then_some(st.tip))
        };
        self.broadcast(|| Cmd::Job(Arc::clone(&job), tip));
    }

    /// Sends every channel SetTarget for `difficulty` (shares are judged against it from then on).
    pub fn set_difficulty(&self, difficulty: f64) {
        self.broadcast(|| Cmd::Target(difficulty));
    }

    /// Sends every channel a SetExtranoncePrefix with a fresh prefix, then a new job under it.
    pub fn new_extranonce_prefix_all(&self) {
        self.broadcast(|| Cmd::NewPrefix);
    }

    /// Sends every connection Reconnect (empty host / port 0: the same pool).
    pub fn send_reconnect_all(&self, host: &str, port: u16) {
        self.broadcast(|| Cmd::Reconnect(host.to_string(), port));
    }

    /// Closes every connection.
    pub fn disconnect_all(&self) {
        self.broadcast(|| Cmd::Disconnect);
    }

    /// Refuses the next submitted share with `code`, whatever it is.
    pub fn reject_next(&self, code: &str) {
        lock(&self.shared.forced).push_back(code.to_string());
    }

    /// False: shares are still checked and counted, but never answered (a pool that drops them).
    pub fn set_answer_submits(&self, answer: bool) {
        self.shared.answer.store(answer, Ordering::SeqCst);
    }

    /// Whether jobs sent from now on allow version rolling (the start value is `!cfg.fixed_version_jobs`).
    pub fn set_version_rolling_allowed(&self, allowed: bool) {
        self.shared.rolling_allowed.store(allowed, Ordering::SeqCst);
    }

    fn broadcast(&self, cmd: impl Fn() -> Cmd) {
        lock(&self.shared.conns).retain(|tx| tx.send(cmd()).is_ok());
    }

    /// Stops accepting and closes every connection.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sv2SimPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut threads = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                lock(&shared.state).stats.connections_total += 1;
                let (tx, rx) = mpsc::channel();
                lock(&shared.conns).push(tx);
                let conn_shared = Arc::clone(&shared);
                threads.push(thread::spawn(move || {
                    if let Err(e) = conn::serve(stream, &conn_shared, rx) {
                        log::debug!("sv2 sim pool connection ended: {e}");
                    }
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
    for t in threads {
        let _ = t.join();
    }
}
