//! Judging the shares of the simulated SV2 pool: each SubmitSharesExtended rebuilt (coinbase, merkle root,
//! header with the submitted version) and hashed against the channel's target, then answered per the spec.

use super::conn::Conn;
use super::state::{lock, other, Sv2AcceptedShare};
use binary_sv2::Str0255;
use fastproxy_work::work;
use mining_sv2 as mining;
use std::io;
use std::sync::atomic::Ordering;

impl Conn<'_> {
    /// Judges a share and answers it: an Error at once, a Success per `batch_size` valid shares.
    pub(super) fn submit(&mut self, m: mining::SubmitSharesExtended<'_>) -> io::Result<()> {
        let verdict = self.judge(&m);
        let seq = m.sequence_number;
        let mut st = lock(&self.shared.state);
        st.stats.submits += 1;
        let every = self.shared.cfg.reject_every;
        let verdict = match verdict {
            Ok(_) if every > 0 && st.stats.submits.is_multiple_of(every) => {
                Err(super::state::SIM_REJECT.into())
            }
            v => v,
        };
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
        let mask = if ch.fixed.contains(&m.job_id) {
            0
        } else {
            self.shared.cfg.version_rolling_mask
        };
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
