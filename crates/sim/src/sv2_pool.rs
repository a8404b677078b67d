//! A simulated Stratum V2 pool for tests: the reference crates' Noise NX responder (a generated authority key,
//! published base58-check) and codec, one extended channel per connection, and every share checked.
//!
//! It answers SetupConnection (mining protocol) and OpenExtendedMiningChannel, sends a future
//! NewExtendedMiningJob, SetNewPrevHash and SetTarget, and judges each SubmitSharesExtended by rebuilding the
//! coinbase (prefix ‖ channel extranonce prefix ‖ extranonce ‖ suffix), merkle root and header with the
//! submitted version, and comparing the hash with the channel's target: SubmitShares.Success (one per
//! `batch_size` valid shares) or SubmitShares.Error with the spec's codes. One thread per connection.

use binary_sv2::{GetSize, Seq0255, Serialize, Str0255, Sv2Option, B032, B064K, U256};
use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder, TransportEncryptState};
use common_messages_sv2 as common;
use fastproxy_work::work;
use framing_sv2::framing::MessageFrame;
use mining_sv2 as mining;
use noise_sv2::{Responder, ELLSWIFT_ENCODING_SIZE};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const READ_POLL: Duration = Duration::from_millis(20);
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// How the simulated SV2 pool behaves.
#[derive(Clone, Debug)]
pub struct Sv2PoolConfig {
    /// Address to bind (127.0.0.1:0: any free port).
    pub listen: SocketAddr,
    /// Bytes of the per-channel extranonce prefix the pool assigns.
    pub extranonce_prefix_size: usize,
    /// Rollable extranonce bytes granted (at least the client's `min_extranonce_size`).
    pub extranonce_size: u16,
    /// Share difficulty of every channel (the target is DIFF1 / difficulty).
    pub difficulty: f64,
    /// Merkle path entries per job.
    pub merkle_branches: usize,
    /// Header version bits a share may roll (BIP 320).
    pub version_rolling_mask: u32,
    /// Valid shares acknowledged per SubmitShares.Success.
    pub batch_size: u32,
    /// Validity of the Noise certificate the pool signs for each connection.
    pub cert_validity: Duration,
}

impl Default for Sv2PoolConfig {
    fn default() -> Self {
        Sv2PoolConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extranonce_prefix_size: 4,
            extranonce_size: 8,
            difficulty: 1.0 / 16_777_216.0,
            merkle_branches: 2,
            version_rolling_mask: 0x1fff_e000,
            batch_size: 1,
            cert_validity: Duration::from_secs(3600),
        }
    }
}

/// A share the pool accepted, with everything needed to check it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sv2AcceptedShare {
    pub channel_id: u32,
    pub sequence_number: u32,
    pub job_id: u32,
    pub extranonce_prefix: Vec<u8>,
    pub extranonce: Vec<u8>,
    pub nonce: u32,
    pub ntime: u32,
    pub version: u32,
    pub hash: [u8; 32],
}

/// Counters of a running pool (a snapshot).
#[derive(Clone, Default, Debug)]
pub struct Sv2PoolStats {
    pub connections_total: u64,
    /// The flags of each SetupConnection, in order.
    pub setup_flags: Vec<u32>,
    /// The user identity of each opened channel, in order.
    pub user_identities: Vec<String>,
    pub submits: u64,
    pub accepted: u64,
    pub rejected_by_code: BTreeMap<String, u64>,
    pub accepted_shares: Vec<Sv2AcceptedShare>,
    pub successes_sent: u64,
}

/// One job as the pool made it, and the prev-hash epoch it belongs to.
#[derive(Debug)]
struct SimJob {
    job_id: u32,
    epoch: u64,
    version: u32,
    merkle_path: Vec<[u8; 32]>,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

/// The chain tip the pool's jobs build on.
#[derive(Clone, Copy, Debug)]
struct Tip {
    epoch: u64,
    prev_hash: [u8; 32],
    nbits: u32,
    min_ntime: u32,
}

/// What the test side asks connection threads to do.
enum Cmd {
    Job(Arc<SimJob>, Option<Tip>),
    Target(f64),
    Reconnect(String, u16),
    NewPrefix,
    Disconnect,
}

struct State {
    stats: Sv2PoolStats,
    tip: Tip,
    jobs: BTreeMap<u32, Arc<SimJob>>,
    job_counter: u32,
    prefix_counter: u64,
}

struct Shared {
    cfg: Sv2PoolConfig,
    instance: u64,
    authority_public: [u8; 32],
    authority_secret: [u8; 32],
    stop: AtomicBool,
    answer: AtomicBool,
    state: Mutex<State>,
    forced: Mutex<VecDeque<String>>,
    conns: Mutex<Vec<Sender<Cmd>>>,
}

/// A running SV2 pool; stopped on drop.
pub struct Sv2SimPool {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

fn other(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

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
        let (authority_public, authority_secret) = authority_keypair();
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let mut state = State {
            stats: Sv2PoolStats::default(),
            tip: new_tip(instance, 1),
            jobs: BTreeMap::new(),
            job_counter: 0,
            prefix_counter: 0,
        };
        make_job(&cfg, instance, &mut state);
        let shared = Arc::new(Shared {
            cfg,
            instance,
            authority_public,
            authority_secret,
            stop: AtomicBool::new(false),
            answer: AtomicBool::new(true),
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

fn new_tip(instance: u64, epoch: u64) -> Tip {
    let seed = [instance.to_le_bytes(), epoch.to_le_bytes()].concat();
    Tip {
        epoch,
        prev_hash: work::sha256d(&seed),
        nbits: 0x1d00_ffff,
        min_ntime: unix_now(),
    }
}

/// A new job on the current tip: a plausible coinbase split around the extranonce, a random-looking path.
fn make_job(cfg: &Sv2PoolConfig, instance: u64, st: &mut State) -> Arc<SimJob> {
    st.job_counter += 1;
    let id = st.job_counter;
    let extranonce_len = cfg.extranonce_prefix_size + usize::from(cfg.extranonce_size);
    let mut prefix = vec![1, 0, 0, 0, 1];
    prefix.extend_from_slice(&[0; 32]);
    prefix.extend_from_slice(&[0xff; 4]);
    prefix.push((1 + 8 + extranonce_len) as u8); // script: push of 8 bytes (instance, job) then extranonce
    prefix.push(8);
    prefix.extend_from_slice(&(instance << 32 | u64::from(id)).to_le_bytes());
    let mut suffix = vec![0xff; 4];
    suffix.push(1);
    suffix.extend_from_slice(&5_000_000_000u64.to_le_bytes());
    suffix.extend_from_slice(&[0x16, 0x00, 0x14]);
    suffix.extend_from_slice(&work::sha256d(&prefix)[..20]);
    suffix.extend_from_slice(&[0; 4]);
    let merkle_path = (0..cfg.merkle_branches)
        .map(|i| work::sha256d(&[&prefix[..], &[i as u8]].concat()))
        .collect();
    let job = Arc::new(SimJob {
        job_id: id,
        epoch: st.tip.epoch,
        version: 0x2000_0000,
        merkle_path,
        prefix,
        suffix,
    });
    st.jobs.insert(id, Arc::clone(&job));
    while st.jobs.len() > 16 {
        st.jobs.pop_first();
    }
    job
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
                    if let Err(e) = serve(stream, &conn_shared, rx) {
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

/// The one extended channel of a connection.
struct Channel {
    id: u32,
    prefix: Vec<u8>,
    extranonce_size: usize,
    target_be: [u8; 32],
    /// Jobs sent on this channel, with the extranonce prefix in effect when each was sent.
    sent: HashMap<u32, (Arc<SimJob>, Vec<u8>)>,
    seen: HashSet<(u32, Vec<u8>, u32, u32, u32)>,
    unacked: u32,
    unacked_sum: u64,
}

/// One connection after the handshake.
struct Conn<'a> {
    shared: &'a Shared,
    stream: TcpStream,
    encrypt: TransportEncryptState,
    encoder: NoiseEncoder,
    channel: Option<Channel>,
}

impl Conn<'_> {
    fn send<T: Serialize + GetSize>(&mut self, msg: T, ty: u8, channel: bool) -> io::Result<()> {
        let frame = MessageFrame::from_message(msg, ty, 0, channel).map_err(other)?;
        let bytes = self
            .encoder
            .encode_transport(frame, &mut self.encrypt)
            .map_err(other)?;
        self.stream.write_all(&bytes)
    }

    fn send_job(&mut self, job: &Arc<SimJob>, tip: Option<Tip>) -> io::Result<()> {
        let Some(ch) = self.channel.as_mut() else {
            return Ok(());
        };
        let id = ch.id;
        ch.sent
            .insert(job.job_id, (Arc::clone(job), ch.prefix.clone()));
        let path: Vec<U256<'_>> = job.merkle_path.iter().map(U256::from).collect();
        let msg = mining::NewExtendedMiningJob {
            channel_id: id,
            job_id: job.job_id,
            // A job with a new tip is a future job; one on the current tip can start now.
            min_ntime: Sv2Option::new(
                tip.is_none()
                    .then(|| lock(&self.shared.state).tip.min_ntime),
            ),
            version: job.version,
            version_rolling_allowed: true,
            merkle_path: Seq0255::new(path).map_err(other)?,
            coinbase_tx_prefix: B064K::try_from(&job.prefix[..]).map_err(other)?,
            coinbase_tx_suffix: B064K::try_from(&job.suffix[..]).map_err(other)?,
        };
        self.send(msg, mining::MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, true)?;
        if let Some(tip) = tip {
            let msg = mining::SetNewPrevHash {
                channel_id: id,
                job_id: job.job_id,
                prev_hash: U256::from(&tip.prev_hash),
                min_ntime: tip.min_ntime,
                nbits: tip.nbits,
            };
            self.send(msg, mining::MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH, true)?;
        }
        Ok(())
    }

    fn set_target(&mut self, difficulty: f64) -> io::Result<()> {
        let Some(ch) = self.channel.as_mut() else {
            return Ok(());
        };
        ch.target_be = work::target_from_difficulty(difficulty);
        let mut le = ch.target_be;
        le.reverse();
        let msg = mining::SetTarget {
            channel_id: ch.id,
            maximum_target: U256::from(&le),
        };
        self.send(msg, mining::MESSAGE_TYPE_SET_TARGET, true)
    }

    fn command(&mut self, cmd: Cmd) -> io::Result<bool> {
        match cmd {
            Cmd::Job(job, tip) => self.send_job(&job, tip)?,
            Cmd::Target(d) => self.set_target(d)?,
            Cmd::Reconnect(host, port) => {
                let msg = common::Reconnect {
                    new_host: Str0255::try_from(host.as_str()).map_err(other)?,
                    new_port: port,
                };
                self.send(msg, common::MESSAGE_TYPE_RECONNECT, false)?;
            }
            Cmd::NewPrefix => {
                let prefix = next_prefix(self.shared);
                let Some(ch) = self.channel.as_mut() else {
                    return Ok(true);
                };
                ch.prefix = prefix.clone();
                let msg = mining::SetExtranoncePrefix {
                    channel_id: ch.id,
                    extranonce_prefix: B032::try_from(&prefix[..]).map_err(other)?,
                };
                self.send(msg, mining::MESSAGE_TYPE_SET_EXTRANONCE_PREFIX, true)?;
                let (job, tip) = {
                    let mut st = lock(&self.shared.state);
                    let job = make_job(&self.shared.cfg, self.shared.instance, &mut st);
                    (job, st.tip)
                };
                self.send_job(&job, Some(tip))?;
            }
            Cmd::Disconnect => return Ok(false),
        }
        Ok(true)
    }

    /// Handles one frame from the client.
    fn on_frame(&mut self, ty: u8, payload: &mut [u8]) -> io::Result<()> {
        match ty {
            common::MESSAGE_TYPE_SETUP_CONNECTION => {
                let m: common::SetupConnection = binary_sv2::from_bytes(payload).map_err(other)?;
                lock(&self.shared.state).stats.setup_flags.push(m.flags);
                if m.protocol != common::Protocol::MiningProtocol || m.min_version > 2 {
                    let msg = common::SetupConnectionError {
                        flags: 0,
                        error_code: Str0255::try_from("unsupported-protocol").map_err(other)?,
                    };
                    return self.send(msg, common::MESSAGE_TYPE_SETUP_CONNECTION_ERROR, false);
                }
                let msg = common::SetupConnectionSuccess {
                    used_version: 2,
                    flags: 0,
                };
                self.send(msg, common::MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS, false)
            }
            mining::MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL => {
                let m: mining::OpenExtendedMiningChannel =
                    binary_sv2::from_bytes(payload).map_err(other)?;
                self.open_channel(m)
            }
            mining::MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED => {
                let m: mining::SubmitSharesExtended =
                    binary_sv2::from_bytes(payload).map_err(other)?;
                self.submit(m)
            }
            _ => Ok(()), // UpdateChannel and the rest: ignored
        }
    }

    fn open_channel(&mut self, m: mining::OpenExtendedMiningChannel<'_>) -> io::Result<()> {
        let cfg = &self.shared.cfg;
        let size = cfg.extranonce_size.max(m.min_extranonce_size);
        if self.channel.is_some() || cfg.extranonce_prefix_size + usize::from(size) > 32 {
            let msg = mining::OpenMiningChannelError {
                request_id: m.request_id,
                error_code: Str0255::try_from("min-extranonce-size-too-large").map_err(other)?,
            };
            return self.send(msg, mining::MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR, false);
        }
        lock(&self.shared.state)
            .stats
            .user_identities
            .push(m.user_identity.as_utf8_or_hex());
        let prefix = next_prefix(self.shared);
        let target_be = work::target_from_difficulty(cfg.difficulty);
        let mut target_le = target_be;
        target_le.reverse();
        let msg = mining::OpenExtendedMiningChannelSuccess {
            request_id: m.request_id,
            channel_id: 2,
            target: U256::from(&target_le),
            extranonce_size: size,
            extranonce_prefix: B032::try_from(&prefix[..]).map_err(other)?,
            group_channel_id: 1,
        };
        self.send(
            msg,
            mining::MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
            false,
        )?;
        self.channel = Some(Channel {
            id: 2,
            prefix,
            extranonce_size: usize::from(size),
            target_be,
            sent: HashMap::new(),
            seen: HashSet::new(),
            unacked: 0,
            unacked_sum: 0,
        });
        let (job, tip) = {
            let st = lock(&self.shared.state);
            let last = st.jobs.values().next_back().cloned();
            (last, st.tip)
        };
        if let Some(job) = job {
            self.send_job(&job, Some(tip))?;
        }
        self.set_target(cfg.difficulty)
    }

    fn submit(&mut self, m: mining::SubmitSharesExtended<'_>) -> io::Result<()> {
        let verdict = self.judge(&m);
        let seq = m.sequence_number;
        let mut st = lock(&self.shared.state);
        st.stats.submits += 1;
        let answer = self.shared.answer.load(Ordering::SeqCst);
        let ch_id = m.channel_id;
        match verdict {
            Ok(share) => {
                st.stats.accepted += 1;
                st.stats.accepted_shares.push(share);
                drop(st);
                let Some(ch) = self.channel.as_mut() else {
                    return Ok(());
                };
                ch.unacked += 1;
                ch.unacked_sum += 1;
                if answer && ch.unacked >= self.shared.cfg.batch_size.max(1) {
                    let msg = mining::SubmitSharesSuccess {
                        channel_id: ch_id,
                        last_sequence_number: seq,
                        new_submits_accepted_count: ch.unacked,
                        new_shares_sum: ch.unacked_sum,
                    };
                    ch.unacked = 0;
                    ch.unacked_sum = 0;
                    lock(&self.shared.state).stats.successes_sent += 1;
                    self.send(msg, mining::MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS, true)?;
                }
                Ok(())
            }
            Err(code) => {
                *st.stats.rejected_by_code.entry(code.clone()).or_default() += 1;
                drop(st);
                if !answer {
                    return Ok(());
                }
                let msg = mining::SubmitSharesError {
                    channel_id: ch_id,
                    sequence_number: seq,
                    error_code: Str0255::try_from(code.as_str()).map_err(other)?,
                };
                self.send(msg, mining::MESSAGE_TYPE_SUBMIT_SHARES_ERROR, true)
            }
        }
    }

    /// Checks a share: channel, forced rejection, job, staleness, extranonce size, version bits, duplicate,
    /// then the hash of the rebuilt header against the channel's target.
    fn judge(&mut self, m: &mining::SubmitSharesExtended<'_>) -> Result<Sv2AcceptedShare, String> {
        let Some(ch) = self.channel.as_mut().filter(|c| c.id == m.channel_id) else {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_INVALID_CHANNEL_ID.into());
        };
        if let Some(code) = lock(&self.shared.forced).pop_front() {
            return Err(code);
        }
        let Some((job, prefix)) = ch.sent.get(&m.job_id) else {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_INVALID_JOB_ID.into());
        };
        let tip = lock(&self.shared.state).tip;
        if job.epoch != tip.epoch {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_STALE_SHARE.into());
        }
        let extranonce = m.extranonce.as_bytes();
        if extranonce.len() != ch.extranonce_size {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_BAD_EXTRANONCE_SIZE.into());
        }
        let mask = self.shared.cfg.version_rolling_mask;
        if m.version & !mask != job.version & !mask {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_INVALID_NON_ROLLABLE_VERSION_BIT.into());
        }
        let key = (m.job_id, extranonce.to_vec(), m.nonce, m.ntime, m.version);
        if !ch.seen.insert(key) {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_DUPLICATE_SHARE.into());
        }
        let coinbase = [&job.prefix[..], prefix, extranonce, &job.suffix].concat();
        let root = work::merkle_root_with_branch(work::sha256d(&coinbase), &job.merkle_path);
        let header = work::block_header(
            m.version,
            &tip.prev_hash,
            &root,
            m.ntime,
            tip.nbits,
            m.nonce,
        );
        let hash = work::sha256d(&header);
        if !work::hash_meets_target(&hash, &ch.target_be) {
            return Err(mining::ERROR_CODE_SUBMIT_SHARES_DIFFICULTY_TOO_LOW.into());
        }
        Ok(Sv2AcceptedShare {
            channel_id: m.channel_id,
            sequence_number: m.sequence_number,
            job_id: m.job_id,
            extranonce_prefix: prefix.clone(),
            extranonce: extranonce.to_vec(),
            nonce: m.nonce,
            ntime: m.ntime,
            version: m.version,
            hash,
        })
    }
}

fn next_prefix(shared: &Shared) -> Vec<u8> {
    let mut st = lock(&shared.state);
    st.prefix_counter += 1;
    let n = (shared.instance << 24) | st.prefix_counter;
    let bytes = n.to_be_bytes();
    let size = shared.cfg.extranonce_prefix_size.min(8);
    bytes[8 - size..].to_vec()
}

/// Reads until `buf` holds at least `n` bytes; false when the pool stops or the peer closes first.
fn read_at_least(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    n: usize,
    stop: &AtomicBool,
) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < n {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn serve(mut stream: TcpStream, shared: &Shared, rx: Receiver<Cmd>) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_POLL))?;
    stream.set_nodelay(true)?;
    let mut input = Vec::new();
    if !read_at_least(
        &mut stream,
        &mut input,
        ELLSWIFT_ENCODING_SIZE,
        &shared.stop,
    )? {
        return Ok(());
    }
    let mut e = [0u8; ELLSWIFT_ENCODING_SIZE];
    e.copy_from_slice(&input[..ELLSWIFT_ENCODING_SIZE]);
    input.drain(..ELLSWIFT_ENCODING_SIZE);
    let responder = Responder::from_authority_kp(
        &shared.authority_public,
        &shared.authority_secret,
        shared.cfg.cert_validity,
    )
    .map_err(other)?;
    let (reply, transport) = Handshake::responder(responder).step_1(e).map_err(other)?;
    stream.write_all(reply.payload())?;
    let (encrypt, decrypt) = transport.split();
    let mut decrypt = Some(decrypt);
    let mut decoder = NoiseDecoder::new();
    let mut conn = Conn {
        shared,
        stream: stream.try_clone()?,
        encrypt,
        encoder: NoiseEncoder::new(),
        channel: None,
    };
    let mut chunk = [0u8; 16 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        while let Ok(cmd) = rx.try_recv() {
            if !conn.command(cmd)? {
                return Ok(());
            }
        }
        // Hand the decoder exactly what it asks for, as long as enough bytes are buffered.
        loop {
            let want = decoder.writable_len();
            if input.len() < want {
                break;
            }
            decoder.writable().copy_from_slice(&input[..want]);
            input.drain(..want);
            let state = decrypt.take().ok_or_else(|| other("no decrypt state"))?;
            match decoder.next_transport_frame(state).map_err(other)? {
                Decrypted::Incomplete(_, state) => decrypt = Some(state),
                Decrypted::Frame(mut frame, state) => {
                    decrypt = Some(state);
                    let ty = frame.header().msg_type();
                    conn.on_frame(ty, frame.payload())?;
                }
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(k) => input.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
