//! A Stratum V2 pool connection's protocol state, sans IO, beside the V1 [`super::pool::PoolSession`]: the SV2
//! client (Noise, frames), the one extended channel, its jobs as V1 work, and the shares' sequence numbers.
//!
//! The channel's extranonce space is used exactly as a V1 pool's: its `extranonce_prefix` is the miners'
//! extranonce1 and its `extranonce_size` the size the proxy splits into per-miner prefixes and extranonce2.
//! Each share sent gets the next sequence number, remembered with its id in the upstream's pending table: a
//! SubmitShares.Error answers its one share, a SubmitShares.Success every share up to its
//! `last_sequence_number` not answered yet, when their count is the pool's `new_submits_accepted_count`.

use super::pool::MAX_POOL_BAD_LINES;
use crate::protocol::pool_msg;
use crate::protocol::stratum::Submit;
use crate::protocol::sv2::messages::REQUIRES_VERSION_ROLLING;
use crate::protocol::sv2::{
    self, Event, ExtendedJob, OpenChannel, PrevHash, SetupParams, Sv2Error,
};
use crate::protocol::sv2::{AuthorityKey, Sv2Client};
use crate::validate::BookJob;
use std::collections::{BTreeMap, VecDeque};

/// The version bits V1 miners may roll under an SV2 pool (BIP 320; the pool may allow more).
pub(crate) const SV2_VERSION_MASK: u32 = 0x1fff_e000;

/// Prefix bytes the proxy asks room for beyond its miners' extranonce2 (65,536 miners per channel).
pub(crate) const PROXY_PREFIX_BYTES: u16 = 2;

/// The channel's maximum target as opened (and kept in UpdateChannel): any, the pool sets it.
const MAX_TARGET: [u8; 32] = [0xff; 32];

/// Jobs kept for shares (the activated one and those after it).
const MAX_JOBS: usize = 64;

/// The error a share gets when a SubmitShares.Success covers it but accepts fewer shares than it covers (the
/// pool did not answer one of them, or answers it later): whether the pool accepted it is unknown.
pub const UNCONFIRMED: &str =
    "unconfirmed: the pool's SubmitShares.Success left open whether it accepted this share";

/// The one extended channel of a connection.
#[derive(Debug, Clone)]
struct Channel {
    id: u32,
    group_id: u32,
    extranonce_size: usize,
    prefix: Vec<u8>,
}

/// What an SV2 message means for the upstream (the runtime applies it like a V1 pool's event).
#[derive(Debug)]
pub enum Sv2Step {
    /// Nothing beyond the session's own state.
    Nothing,
    /// The channel is open: the pool's extranonce prefix, the extranonce size, the target (big-endian) and
    /// the difficulty line for miners.
    Ready {
        e1: Vec<u8>,
        n: usize,
        target: [u8; 32],
        difficulty: f64,
        line: Vec<u8>,
    },
    /// A job activated (or a new one on the current prev hash): its notify line for miners and the job;
    /// `rolling`: whether the pool lets miners roll its version bits (NewExtendedMiningJob.version_rolling_allowed).
    Job {
        line: Vec<u8>,
        job: BookJob,
        rolling: bool,
    },
    /// A new channel target: the difficulty line for miners.
    Target {
        line: Vec<u8>,
        difficulty: f64,
        target: [u8; 32],
    },
    /// SetExtranoncePrefix: the new extranonce1 and the size.
    Extranonce { e1: Vec<u8>, n: usize },
    /// Reconnect (None: the same host / port).
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
    },
    /// The pool accepted the share sent with this pending id: one step for each share a Success covers
    /// (handed out one by one by [`Sv2Pool::next_step`], so that a verdict costs no allocation).
    Accepted(u64),
    /// The pool refused the share sent with pending id `pid`: its error code.
    Rejected { pid: u64, code: String },
    /// A message ignored, with why (logged).
    Ignored(String),
    /// The pool refused SetupConnection because it does not support the version-rolling-required flag: the
    /// connection must close and the same pool be asked again at once without it.
    RollingRefused { why: String },
    /// The connection must close; `skip_pool`: retrying this pool cannot help (wrong authority key).
    Fatal { why: String, skip_pool: bool },
}

/// One SV2 pool connection's protocol state.
#[derive(Debug)]
pub struct Sv2Pool {
    pub client: Sv2Client,
    user: String,
    min_extranonce_size: u16,
    channel: Option<Channel>,
    jobs: BTreeMap<u32, ExtendedJob>,
    prev: Option<PrevHash>,
    /// Shares sent and not answered by the pool, in sequence order: (sequence number, pending id). Sequence
    /// numbers wrap after 2^32 shares: they are compared as distances from the oldest one waiting.
    sent: VecDeque<(u32, u64)>,
    /// How many of `sent`'s first entries a Success accepted, still to hand out as [`Sv2Step::Accepted`].
    accepted_run: usize,
    /// How many of `sent`'s first entries a Success left unconfirmed, still to hand out as
    /// [`Sv2Step::Rejected`] with [`UNCONFIRMED`] (after any accepted run).
    unconfirmed_run: usize,
    next_seq: u32,
    /// Messages ignored in a row (as V1's unparsable lines: a pool sending only those is dropped).
    ignored: u32,
    /// SetupConnection said REQUIRES_VERSION_ROLLING.
    requires_rolling: bool,
    /// The hashrate (h/s) OpenExtendedMiningChannel says (the upstream's estimate when the connection began).
    nominal: f32,
    /// Sets this connection's V1 job ids apart from those of the upstream's earlier pool connections (SV2 pools
    /// number jobs from 1, V1 pools may too): a share still naming an old job is then unknown here, not another.
    job_tag: u32,
}

impl Sv2Pool {
    /// A connection to a pool whose certificates `authority` signs, opening one channel for `user` with room
    /// for `min_extranonce2_size` bytes of miners' extranonce2 after the proxy's prefixes.
    pub fn new(
        authority: &AuthorityKey,
        user: &str,
        host: &str,
        port: u16,
        min_extranonce2_size: usize,
    ) -> Result<Sv2Pool, Sv2Error> {
        Sv2Pool::with_rolling(authority, user, host, port, min_extranonce2_size, true)
    }

    /// As [`Sv2Pool::new`]; `require_rolling`: SetupConnection says REQUIRES_VERSION_ROLLING (V1 ASICs roll
    /// versions; off for a pool that refused the flag, which may then send jobs that fix the version).
    pub fn with_rolling(
        authority: &AuthorityKey,
        user: &str,
        host: &str,
        port: u16,
        min_extranonce2_size: usize,
        require_rolling: bool,
    ) -> Result<Sv2Pool, Sv2Error> {
        let setup = SetupParams {
            flags: if require_rolling {
                REQUIRES_VERSION_ROLLING
            } else {
                0
            },
            endpoint_host: host.to_string(),
            endpoint_port: port,
            vendor: "fastproxy".into(),
            hardware_version: String::new(),
            firmware: env!("CARGO_PKG_VERSION").into(),
            device_id: String::new(),
        };
        let min = u16::try_from(min_extranonce2_size).unwrap_or(u16::MAX);
        Ok(Sv2Pool {
            client: Sv2Client::new(authority, setup)?,
            user: user.to_string(),
            min_extranonce_size: min.saturating_add(PROXY_PREFIX_BYTES),
            channel: None,
            jobs: BTreeMap::new(),
            prev: None,
            sent: VecDeque::new(),
            accepted_run: 0,
            unconfirmed_run: 0,
            next_seq: 0,
            ignored: 0,
            requires_rolling: require_rolling,
            nominal: 0.0,
            job_tag: 0,
        })
    }

    /// The next step from the bytes fed so far, None until more come. `now_unix` checks the certificate.
    /// More than [`MAX_POOL_BAD_LINES`] ignored messages in a row are fatal; past the first three they are
    /// [`Sv2Step::Nothing`] (not logged).
    pub fn next_step(&mut self, now_unix: u32) -> Option<Sv2Step> {
        if let Some(step) = self.next_accepted() {
            return Some(step);
        }
        let step = self.step(now_unix)?;
        if !matches!(step, Sv2Step::Ignored(_)) {
            self.ignored = 0;
            return Some(step);
        }
        self.ignored += 1;
        Some(match self.ignored {
            n if n > MAX_POOL_BAD_LINES => Sv2Step::Fatal {
                why: format!("{n} unusable messages in a row"),
                skip_pool: false,
            },
            1..=3 => step,
            _ => Sv2Step::Nothing,
        })
    }

    fn step(&mut self, now_unix: u32) -> Option<Sv2Step> {
        match self.client.next_event(now_unix) {
            Ok(None) => None,
            Ok(Some(event)) => Some(self.on_event(event)),
            Err(Sv2Error::SetupRefused { flags, code })
                if self.requires_rolling && flags & REQUIRES_VERSION_ROLLING != 0 =>
            {
                Some(Sv2Step::RollingRefused {
                    why: format!(
                        "the pool refused SetupConnection ({code}, flags 0x{flags:08x}): it does not support requiring version rolling"
                    ),
                })
            }
            Err(e) if e.is_fatal() => Some(Sv2Step::Fatal {
                skip_pool: matches!(e, Sv2Error::WrongAuthority | Sv2Error::BadAuthorityKey(_)),
                why: e.to_string(),
            }),
            Err(e) => Some(Sv2Step::Ignored(e.to_string())),
        }
    }

    fn on_event(&mut self, event: Event) -> Sv2Step {
        match event {
            Event::SetupSuccess { .. } => {
                let open = OpenChannel {
                    request_id: 1,
                    user_identity: self.user.clone(),
                    nominal_hash_rate: self.nominal,
                    max_target: MAX_TARGET,
                    min_extranonce_size: self.min_extranonce_size,
                };
                match self.client.open_extended_channel(&open) {
                    Ok(()) => Sv2Step::Nothing,
                    Err(e) => Sv2Step::Fatal {
                        why: format!("cannot open a channel: {e}"),
                        skip_pool: false,
                    },
                }
            }
            Event::ChannelOpened {
                channel_id,
                target,
                extranonce_size,
                extranonce_prefix,
                group_channel_id,
                ..
            } => {
                if self.channel.is_some() {
                    return Sv2Step::Ignored("a second OpenExtendedMiningChannel.Success".into());
                }
                let n = usize::from(extranonce_size);
                if n < usize::from(self.min_extranonce_size) || extranonce_prefix.len() + n > 32 {
                    return Sv2Step::Fatal {
                        why: format!(
                            "the pool's channel has {n} extranonce bytes after a {}-byte prefix (asked for {})",
                            extranonce_prefix.len(),
                            self.min_extranonce_size
                        ),
                        skip_pool: true,
                    };
                }
                self.channel = Some(Channel {
                    id: channel_id,
                    group_id: group_channel_id,
                    extranonce_size: n,
                    prefix: extranonce_prefix.clone(),
                });
                let (line, difficulty, target) = difficulty_line(&target);
                Sv2Step::Ready {
                    e1: extranonce_prefix,
                    n,
                    target,
                    difficulty,
                    line,
                }
            }
            Event::ChannelRefused { code, .. } => Sv2Step::Fatal {
                why: format!("the pool refused the mining channel: {code}"),
                skip_pool: false,
            },
            Event::NewJob(job) => {
                if !self.is_ours(job.channel_id, true) {
                    return unknown_channel("NewExtendedMiningJob", job.channel_id);
                }
                let id = job.job_id;
                let active = job.min_ntime.is_some();
                self.jobs.insert(id, job);
                while self.jobs.len() > MAX_JOBS {
                    self.jobs.pop_first();
                }
                match (&self.prev, active) {
                    (Some(prev), true) => self.job_step(id, prev.clone(), false),
                    _ => Sv2Step::Nothing,
                }
            }
            Event::PrevHash(prev) => {
                if !self.is_ours(prev.channel_id, true) {
                    return unknown_channel("SetNewPrevHash", prev.channel_id);
                }
                let id = prev.job_id;
                self.prev = Some(prev.clone());
                self.jobs.retain(|&j, _| j >= id);
                if !self.jobs.contains_key(&id) {
                    return Sv2Step::Ignored(format!("SetNewPrevHash names unknown job {id}"));
                }
                self.job_step(id, prev, true)
            }
            Event::SetTarget {
                channel_id,
                maximum_target,
            } => {
                if !self.is_ours(channel_id, false) {
                    return unknown_channel("SetTarget", channel_id);
                }
                let (line, difficulty, target) = difficulty_line(&maximum_target);
                Sv2Step::Target {
                    line,
                    difficulty,
                    target,
                }
            }
            Event::SetExtranoncePrefix { channel_id, prefix } => {
                if !self.is_ours(channel_id, false) {
                    return unknown_channel("SetExtranoncePrefix", channel_id);
                }
                let Some(ch) = self.channel.as_mut() else {
                    return Sv2Step::Nothing;
                };
                if prefix.len() + ch.extranonce_size > 32 {
                    return Sv2Step::Ignored(format!(
                        "SetExtranoncePrefix of {} bytes leaves no room for {} extranonce bytes",
                        prefix.len(),
                        ch.extranonce_size
                    ));
                }
                ch.prefix.clone_from(&prefix);
                Sv2Step::Extranonce {
                    e1: prefix,
                    n: ch.extranonce_size,
                }
            }
            Event::SharesAccepted {
                channel_id,
                last_sequence_number,
                new_submits_accepted_count,
                ..
            } => {
                if !self.is_ours(channel_id, false) {
                    return unknown_channel("SubmitShares.Success", channel_id);
                }
                self.accepted(last_sequence_number, new_submits_accepted_count)
            }
            Event::ShareRejected {
                channel_id,
                sequence_number,
                code,
            } => {
                if !self.is_ours(channel_id, false) {
                    return unknown_channel("SubmitShares.Error", channel_id);
                }
                let base = self.oldest_waiting();
                let at = self
                    .sent
                    .binary_search_by_key(&sequence_number.wrapping_sub(base), |&(s, _)| {
                        s.wrapping_sub(base)
                    });
                match at {
                    Ok(i) => {
                        let (_, pid) = self.sent.remove(i).expect("found");
                        Sv2Step::Rejected { pid, code }
                    }
                    Err(_) => Sv2Step::Ignored(format!(
                        "SubmitShares.Error ({code}) for sequence number {sequence_number}, which waits for no verdict"
                    )),
                }
            }
            Event::Reconnect { host, port } => Sv2Step::Reconnect {
                host: (!host.is_empty()).then_some(host),
                port: (port != 0).then_some(port),
            },
            Event::ChannelClosed { channel_id, reason } => {
                if !self.is_ours(channel_id, true) {
                    return unknown_channel("CloseChannel", channel_id);
                }
                Sv2Step::Fatal {
                    why: format!("the pool closed the mining channel: {reason}"),
                    skip_pool: false,
                }
            }
            Event::ChannelUpdateRefused { channel_id, code } => {
                if !self.is_ours(channel_id, false) {
                    return unknown_channel("UpdateChannel.Error", channel_id);
                }
                // The channel goes on with its target as it is; the next estimate is sent as usual.
                Sv2Step::Ignored(format!("the pool refused UpdateChannel ({code})"))
            }
        }
    }

    /// A Success: the shares up to `last` still waiting are accepted when they are exactly the `count` the
    /// pool says it accepted; otherwise some of them may be refused later, so none is answered `true` (they
    /// get the pool's Errors, or an error at the share timeout).
    fn accepted(&mut self, last: u32, count: u32) -> Sv2Step {
        // Distances from the oldest share waiting (or the next to send): the shares sent since it are the
        // `span` numbers after it, wrapping past u32::MAX.
        let base = self.oldest_waiting();
        let (ahead, span) = (last.wrapping_sub(base), self.next_seq.wrapping_sub(base));
        if ahead >= span && ahead < 1 << 31 {
            return Sv2Step::Ignored(format!(
                "SubmitShares.Success up to sequence number {last}, which was never sent"
            ));
        }
        let covered = if ahead >= span {
            0
        } else {
            self.sent
                .partition_point(|&(s, _)| s.wrapping_sub(base) <= ahead)
        };
        if covered == 0 {
            return Sv2Step::Ignored(format!(
                "SubmitShares.Success up to {last} ({count} shares) for shares already answered"
            ));
        }
        if covered as u64 > u64::from(count) {
            // Which ones it accepted is unknown, so none is `true`. They are answered with an error now and
            // leave the queue: a share the pool never answered would otherwise stay in front of every later
            // Success and make it ambiguous too. (An Error still to come for one of them finds nothing waiting.)
            self.unconfirmed_run = covered;
            return Sv2Step::Ignored(format!(
                "SubmitShares.Success up to {last} accepts {count} of the {covered} shares waiting: which ones is unknown, each is answered as unconfirmed"
            ));
        }
        self.accepted_run = covered;
        self.next_accepted().unwrap_or(Sv2Step::Nothing)
    }

    /// The next share of the accepted run, else of the unconfirmed run, if any.
    fn next_accepted(&mut self) -> Option<Sv2Step> {
        if let Some(left) = self.accepted_run.checked_sub(1) {
            self.accepted_run = left;
            let (_, pid) = self.sent.pop_front()?;
            return Some(Sv2Step::Accepted(pid));
        }
        self.unconfirmed_run = self.unconfirmed_run.checked_sub(1)?;
        let (_, pid) = self.sent.pop_front()?;
        Some(Sv2Step::Rejected {
            pid,
            code: UNCONFIRMED.to_string(),
        })
    }

    /// The sequence number of the oldest share waiting for a verdict, else the next one to send.
    fn oldest_waiting(&self) -> u32 {
        self.sent.front().map_or(self.next_seq, |&(s, _)| s)
    }

    /// Starts the sequence numbers at `seq` (tests of the wrap past u32::MAX), before any share is sent.
    #[cfg(test)]
    pub(crate) fn start_sequence_at(&mut self, seq: u32) {
        assert!(self.sent.is_empty(), "shares were sent already");
        self.next_seq = seq;
    }

    /// Whether `channel_id` is this connection's channel (or, for jobs and prev hashes, its group).
    fn is_ours(&self, channel_id: u32, group_too: bool) -> bool {
        self.channel
            .as_ref()
            .is_some_and(|c| c.id == channel_id || (group_too && c.group_id == channel_id))
    }

    fn job_step(&self, id: u32, prev: PrevHash, clean: bool) -> Sv2Step {
        let Some(job) = self.jobs.get(&id) else {
            return Sv2Step::Nothing;
        };
        let mut v1 = sv2::v1_job(job, &prev, clean);
        if self.job_tag != 0 {
            v1.job_id = format!("{id}.{:x}", self.job_tag);
        }
        let mut line = Vec::with_capacity(512);
        pool_msg::write_job_notify(&mut line, &v1);
        Sv2Step::Job {
            line,
            job: BookJob::Stratum(v1),
            rolling: job.version_rolling_allowed,
        }
    }

    /// The hashrate (h/s) the channel is to be opened with (before SetupConnection.Success; 0 by default).
    pub fn set_nominal_hash_rate(&mut self, rate: f32) {
        if rate.is_finite() && rate >= 0.0 {
            self.nominal = rate;
        }
    }

    /// The hashrate (h/s) the channel was (or will be) opened with.
    pub fn nominal_hash_rate(&self) -> f32 {
        self.nominal
    }

    /// Queues an UpdateChannel with `rate` (h/s) and the maximum target as opened. Err: no channel open, or
    /// it cannot be encoded.
    pub fn update_channel(&mut self, rate: f32) -> Result<(), String> {
        let ch = self.channel.as_ref().ok_or("no channel open")?;
        let update = sv2::ChannelUpdate {
            channel_id: ch.id,
            nominal_hash_rate: rate,
            maximum_target: MAX_TARGET,
        };
        self.client
            .update_channel(&update)
            .map_err(|e| e.to_string())?;
        self.nominal = rate;
        Ok(())
    }

    /// Whether SetupConnection required version rolling on this connection.
    pub fn requires_rolling(&self) -> bool {
        self.requires_rolling
    }

    /// Tags this connection's V1 job ids: the pool's job id, then `.` and `tag` in hex (none for tag 0). The
    /// driver's tag is the count of pool connections the upstream opened before this one.
    pub fn set_job_tag(&mut self, tag: u32) {
        self.job_tag = tag;
    }

    /// The pool's id of the job a V1 job id names, and the job, when it is this connection's (tagged with its
    /// tag).
    fn job_of(&self, v1_id: &str) -> Option<(u32, &ExtendedJob)> {
        let (id, tag) = match v1_id.split_once('.') {
            Some((id, tag)) if tag.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (id, u32::from_str_radix(tag, 16).ok()?)
            }
            Some(_) => return None,
            None => (v1_id, 0),
        };
        if tag != self.job_tag || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: u32 = id.parse().ok()?;
        self.jobs.get(&id).map(|job| (id, job))
    }

    /// Whether the job a V1 share names lets miners roll version bits (None: no such job on this connection).
    pub fn job_allows_rolling(&self, job_id: &str) -> Option<bool> {
        self.job_of(job_id)
            .map(|(_, job)| job.version_rolling_allowed)
    }

    /// Sends a V1 miner's share (its `prefix` bytes in front of its extranonce2) as SubmitSharesExtended with
    /// the next sequence number, remembered with `pid`. `mask`: the version bits miners may roll. Err: why
    /// it cannot be sent (nothing was sent).
    pub fn submit(
        &mut self,
        pid: u64,
        share: &Submit<'_>,
        prefix: &[u8],
        mask: u32,
    ) -> Result<(), String> {
        let ch = self.channel.as_ref().ok_or("no channel open")?;
        let (job_id, job) = self.job_of(share.job_id).ok_or("job not found")?;
        let (hex, mut e2) = (share.extranonce2.as_bytes(), [0u8; 32]);
        let e2 = e2
            .get_mut(..hex.len() / 2)
            .ok_or("extranonce2 of the wrong size")?;
        if !crate::hex::decode_into(hex, e2) {
            return Err("bad extranonce2".into());
        }
        let extranonce = sv2::share_extranonce(prefix, e2, ch.extranonce_size)
            .ok_or("extranonce2 of the wrong size")?;
        let nonce = crate::work::u32_from_hex(share.nonce).ok_or("bad nonce")?;
        let ntime = crate::work::u32_from_hex(share.ntime).ok_or("bad ntime")?;
        let bits = match share.version_bits {
            Some(b) => crate::work::u32_from_hex(b).ok_or("bad version bits")?,
            None => 0,
        };
        let seq = self.next_seq;
        let submit = sv2::ShareSubmit {
            channel_id: ch.id,
            sequence_number: seq,
            job_id,
            nonce,
            ntime,
            version: sv2::submit_version(job, mask, bits),
            extranonce,
        };
        self.client
            .submit_shares_extended(&submit)
            .map_err(|e| e.to_string())?;
        self.next_seq = seq.wrapping_add(1);
        // Shares answered otherwise (timeout) leave their entry until a Success passes them; keep it bounded.
        if self.sent.len() >= 1 << 20 {
            self.sent.pop_front();
            if self.accepted_run > 0 {
                self.accepted_run -= 1;
            } else {
                self.unconfirmed_run = self.unconfirmed_run.saturating_sub(1);
            }
        }
        self.sent.push_back((seq, pid));
        Ok(())
    }
}

fn unknown_channel(what: &str, channel_id: u32) -> Sv2Step {
    Sv2Step::Ignored(format!("{what} for unknown channel {channel_id}"))
}

/// The `mining.set_difficulty` line, difficulty and big-endian target for a little-endian SV2 target.
fn difficulty_line(target_le: &[u8; 32]) -> (Vec<u8>, f64, [u8; 32]) {
    let target = sv2::target_to_be(target_le);
    let difficulty = sv2::difficulty_for_target(&target);
    let mut line = Vec::with_capacity(64);
    pool_msg::write_difficulty(&mut line, difficulty);
    (line, difficulty, target)
}
