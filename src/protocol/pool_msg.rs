//! The pool side of each dialect: what a pool sends, parsed into a typed [`PoolMessage`] by a `match` on the
//! [`Dialect`], and the lines the proxy writes to pools (handshake, submit, authorize) or relays to miners.

use super::json::{self, Msg, Scalar};
use super::{equihash, stratum, Dialect, Share};

/// A notification or request from a pool, typed. Values are borrowed from the parsed line.
#[derive(Debug)]
pub enum PoolMessage<'a> {
    /// `mining.notify`: a job, its params kept as JSON text (relayed as received).
    Notify { params_json: &'a str },
    /// `mining.set_difficulty` (both dialects): the share difficulty as sent.
    SetDifficulty(Scalar<'a>),
    /// `mining.set_target` (Equihash): the share target as sent.
    SetTarget(Scalar<'a>),
    /// `mining.set_version_mask` (V1): the mask, when it parses as hex.
    SetVersionMask(Option<u32>),
    /// `mining.set_extranonce`: extranonce1 / NONCE_1 and the size it leaves, or why it is unusable.
    SetExtranonce(Result<(Vec<u8>, usize), String>),
    /// `client.reconnect [host, port, wait]`.
    Reconnect {
        host: Option<&'a str>,
        port: Option<u16>,
        /// Seconds, clamped to 0..=600.
        wait: f64,
    },
    /// `client.show_message [text]`.
    ShowMessage(&'a str),
    /// `client.get_version`.
    GetVersion,
    /// `mining.ping`.
    Ping,
    /// Anything else (logged and ignored).
    Unknown(&'a str),
}

/// Parses the method `method` of pool message `msg` in `dialect`.
pub fn parse<'a>(dialect: Dialect, method: &'a str, msg: &Msg<'a>) -> PoolMessage<'a> {
    match method {
        "mining.notify" => PoolMessage::Notify {
            params_json: msg.params_json,
        },
        "mining.set_difficulty" => PoolMessage::SetDifficulty(msg.param(0)),
        "mining.set_target" => match dialect {
            Dialect::Equihash => PoolMessage::SetTarget(msg.param(0)),
            Dialect::Stratum => PoolMessage::Unknown(method),
        },
        "mining.set_version_mask" => PoolMessage::SetVersionMask(
            msg.param(0)
                .as_str()
                .and_then(|m| u32::from_str_radix(m, 16).ok()),
        ),
        "mining.set_extranonce" => PoolMessage::SetExtranonce(match dialect {
            Dialect::Stratum => {
                stratum::parse_set_extranonce(msg.param(0).as_str(), msg.param(1).as_u64())
            }
            Dialect::Equihash => equihash::parse_set_extranonce(msg.param(0).as_str()),
        }),
        "client.reconnect" => PoolMessage::Reconnect {
            host: msg.param(0).as_str().filter(|h| !h.is_empty()),
            port: match msg.param(1) {
                Scalar::Str(s) => s.parse::<u16>().ok(),
                p => p.as_u64().and_then(|p| u16::try_from(p).ok()),
            },
            wait: msg.param(2).as_f64().unwrap_or(0.0).clamp(0.0, 600.0),
        },
        "client.show_message" => PoolMessage::ShowMessage(msg.param(0).as_str().unwrap_or("")),
        "client.get_version" => PoolMessage::GetVersion,
        "mining.ping" => PoolMessage::Ping,
        other => PoolMessage::Unknown(other),
    }
}

/// What a handshake request sent to a pool was (its reply is matched by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeReq {
    Configure,
    Subscribe,
    ExtranonceSubscribe,
    Authorize,
}

/// Appends the proxy's handshake in `dialect`, taking each request's id from `id` in the order sent.
pub fn write_handshake(
    dialect: Dialect,
    out: &mut Vec<u8>,
    mut id: impl FnMut(HandshakeReq) -> u64,
    user: &str,
    password: &str,
    host: &str,
    port: u16,
) {
    use HandshakeReq::*;
    match dialect {
        Dialect::Stratum => {
            let ids = [Configure, Subscribe, ExtranonceSubscribe, Authorize].map(&mut id);
            stratum::write_handshake(out, ids, user, password);
        }
        Dialect::Equihash => {
            let ids = [Subscribe, ExtranonceSubscribe, Authorize].map(&mut id);
            equihash::write_handshake(out, ids, user, password, host, port);
        }
    }
}

/// Appends a miner's share as the proxy's `mining.submit` (id `pid`, worker `user`, the miner's `prefix`).
pub fn write_submit(
    out: &mut Vec<u8>,
    pid: u64,
    user: &str,
    share: &Share<'_>,
    prefix: impl Iterator<Item = u8>,
) {
    match share {
        Share::Stratum(s) => stratum::write_submit_upstream(out, pid, user, s, prefix),
        Share::Equihash(s) => equihash::write_submit_upstream(out, pid, user, s, prefix),
    }
}

/// Appends a passed-through `mining.authorize` of a miner's own worker.
pub fn write_authorize(out: &mut Vec<u8>, id: u64, worker: &str, password: &str) {
    use std::io::Write;
    let _ = write!(
        out,
        "{{\"id\":{id},\"method\":\"mining.authorize\",\"params\":["
    );
    json::write_str(out, worker);
    out.push(b',');
    json::write_str(out, password);
    out.extend_from_slice(b"]}\n");
}

/// The answer to `client.get_version` or `mining.ping` (nothing for other messages or a null id).
pub fn write_answer(out: &mut Vec<u8>, msg: &PoolMessage<'_>, id: &[u8]) {
    let result: &[u8] = match msg {
        PoolMessage::Ping => b"\"pong\"",
        PoolMessage::GetVersion => {
            let mut agent = Vec::with_capacity(32);
            json::write_str(&mut agent, stratum::AGENT);
            return json::write_result(out, id, &agent);
        }
        _ => return,
    };
    json::write_result(out, id, result);
}

/// Whether a pool's reply to a request (share, authorize) is a yes.
pub fn accepted(msg: &Msg<'_>) -> bool {
    msg.error_json.is_none() && msg.result == Scalar::Bool(true)
}

/// Appends the pool's verdict on a share as the reply to the miner's request `id` (result or error passed on as
/// received).
pub fn write_share_reply(out: &mut Vec<u8>, id: &[u8], msg: &Msg<'_>) {
    match msg.error_json {
        Some(err) => json::write_error_json(out, id, err.as_bytes()),
        None => {
            out.extend_from_slice(b"{\"id\":");
            out.extend_from_slice(id);
            out.extend_from_slice(b",\"result\":");
            json::write_scalar(&msg.result, msg.result_json, out);
            out.extend_from_slice(b",\"error\":null}\n");
        }
    }
}

/// Appends the proxy's own error reply to a miner's request `id` that the pool will not answer (connection
/// lost, timed out, upstream closed).
pub fn write_failure(out: &mut Vec<u8>, id: &[u8], why: &str) {
    json::write_error(out, id, 20, why);
}

/// Appends the pool's refusal of a passed-through authorize as the reply to the miner's request `id`.
pub fn write_authorize_refusal(out: &mut Vec<u8>, id: &[u8], msg: &Msg<'_>) {
    match msg.error_json {
        Some(err) => json::write_error_json(out, id, err.as_bytes()),
        None => json::write_result(out, id, b"false"),
    }
}

/// Appends the relayed `mining.notify` for miners.
pub fn write_notify(out: &mut Vec<u8>, params_json: &str) {
    json::write_notification(out, "mining.notify", params_json.as_bytes());
}

/// A relayed `mining.notify` line (from [`write_notify`]) whose job id gets `tag` and a `.` in front (an entry
/// with several routes tells by it which upstream a share's job came from); `None` when the line has no job id.
pub fn tag_notify(line: &[u8], tag: usize) -> Option<Vec<u8>> {
    let key = b"\"params\":";
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let skip_ws = |mut i: usize| {
        while line.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let open = skip_ws(at);
    if line.get(open) != Some(&b'[') {
        return None;
    }
    let quote = skip_ws(open + 1);
    if line.get(quote) != Some(&b'"') {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + 20);
    out.extend_from_slice(&line[..=quote]);
    write_job_tag(&mut out, tag);
    out.extend_from_slice(&line[quote + 1..]);
    Some(out)
}

fn write_job_tag(out: &mut Vec<u8>, tag: usize) {
    use std::io::Write;
    let _ = write!(out, "{tag:x}.");
}

/// A tagged job id (see [`tag_notify`]) → (tag, the pool's job id); `None` when it has no tag.
pub fn split_job_tag(job_id: &str) -> Option<(usize, &str)> {
    let (tag, rest) = job_id.split_once('.')?;
    if tag.is_empty() || tag.len() > 16 {
        return None;
    }
    Some((usize::from_str_radix(tag, 16).ok()?, rest))
}

/// A relayed `mining.notify` line with its clean_jobs flag (the last param, both dialects) set: a miner moved
/// to another pool must drop the jobs it has.
pub fn notify_clean(line: &[u8]) -> Vec<u8> {
    let mut end = line.len();
    let trim = |end: &mut usize| {
        while *end > 0 && line[*end - 1].is_ascii_whitespace() {
            *end -= 1;
        }
    };
    trim(&mut end);
    if end == 0 || line[end - 1] != b'}' {
        return line.to_vec();
    }
    end -= 1;
    trim(&mut end);
    if end == 0 || line[end - 1] != b']' {
        return line.to_vec();
    }
    end -= 1;
    trim(&mut end);
    if !line[..end].ends_with(b"false") {
        return line.to_vec();
    }
    let mut out = Vec::with_capacity(line.len());
    out.extend_from_slice(&line[..end - 5]);
    out.extend_from_slice(b"true");
    out.extend_from_slice(&line[end..]);
    out
}

/// Appends the relayed `mining.set_difficulty [d]` for miners, `d` as the pool wrote it.
pub fn write_set_difficulty(out: &mut Vec<u8>, d: &Scalar<'_>) {
    let mut params = Vec::with_capacity(32);
    params.push(b'[');
    json::write_scalar(d, "", &mut params);
    params.push(b']');
    json::write_notification(out, "mining.set_difficulty", &params);
}

/// Appends the relayed Equihash `mining.set_target ["hex"]` for miners.
pub fn write_set_target(out: &mut Vec<u8>, target_hex: &str) {
    let mut params = Vec::with_capacity(70);
    params.push(b'[');
    json::write_str(&mut params, target_hex);
    params.push(b']');
    json::write_notification(out, "mining.set_target", &params);
}

/// Appends the relayed `client.show_message [text]` for miners.
pub fn write_show_message(out: &mut Vec<u8>, text: &str) {
    let mut params = b"[".to_vec();
    json::write_str(&mut params, text);
    params.push(b']');
    json::write_notification(out, "client.show_message", &params);
}

/// Appends a miner's `mining.set_extranonce` in `dialect`: the pool's extranonce1 and the miner's prefix (and,
/// in V1, the extranonce2 size left to it).
pub fn write_set_extranonce(
    dialect: Dialect,
    out: &mut Vec<u8>,
    e1: &[u8],
    prefix: impl Iterator<Item = u8>,
    miner_n2: usize,
) {
    match dialect {
        Dialect::Stratum => stratum::write_set_extranonce(out, e1, prefix, miner_n2),
        Dialect::Equihash => equihash::write_set_extranonce(out, e1, prefix),
    }
}

/// Appends the proxy's own `mining.notify` for a job it built (a Stratum V2 job as V1 work).
pub fn write_job_notify(out: &mut Vec<u8>, job: &crate::work::Job) {
    let params = job.to_notify_params().to_string();
    json::write_notification(out, "mining.notify", params.as_bytes());
}

/// Appends the proxy's own `mining.set_difficulty [d]` (a Stratum V2 channel target as a V1 difficulty).
pub fn write_difficulty(out: &mut Vec<u8>, d: f64) {
    let params = format!("[{}]", serde_json::Value::from(d));
    json::write_notification(out, "mining.set_difficulty", params.as_bytes());
}

/// Appends a share accepted by a Stratum V2 pool (a SubmitShares.Success covering it) as the reply to the
/// miner's request `id`.
pub fn write_share_accepted(out: &mut Vec<u8>, id: &[u8]) {
    json::write_result(out, id, b"true");
}

/// Appends a share refused by a Stratum V2 pool (its SubmitShares.Error) as the reply to the miner's request
/// `id`: the pool's error code is the JSON-RPC error text, under the V1 code that means the same.
pub fn write_share_refused(out: &mut Vec<u8>, id: &[u8], sv2_code: &str) {
    json::write_error(out, id, sv2_error_number(sv2_code), sv2_code);
}

/// The V1 error number for an SV2 SubmitShares.Error code: 21 stale / unknown job, 22 duplicate, 23 low
/// difficulty, 20 anything else.
pub fn sv2_error_number(sv2_code: &str) -> i32 {
    match sv2_code {
        "stale-share" | "invalid-job-id" => 21,
        "duplicate-share" => 22,
        "difficulty-too-low" => 23,
        _ => 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(params: &str) -> Vec<u8> {
        let mut line = Vec::new();
        write_notify(&mut line, params);
        line
    }

    #[test]
    fn a_tagged_job_id_splits_back_into_tag_and_the_pools_id() {
        let line = notify(
            r#"[ "ab.c", "00", "01", "02", [], "20000000", "1d00ffff", "5f5e1000", false ]"#,
        );
        let tagged = tag_notify(&line, 0x1f).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&tagged).unwrap();
        let id = v["params"][0].as_str().unwrap();
        assert_eq!(id, "1f.ab.c");
        assert_eq!(split_job_tag(id), Some((0x1f, "ab.c")));
        assert_eq!(split_job_tag("abc"), None);
        assert_eq!(split_job_tag(".abc"), None);
        assert_eq!(split_job_tag("zz.abc"), None);
        assert_eq!(tag_notify(&notify("[1, 2]"), 3), None, "no job id string");
    }

    #[test]
    fn a_clean_notify_sets_the_last_flag_only() {
        let line = notify(r#"["j", "00", false , false ]"#);
        let clean = notify_clean(&line);
        let v: serde_json::Value = serde_json::from_slice(&clean).unwrap();
        assert_eq!(v["params"], serde_json::json!(["j", "00", false, true]));
        let already = notify(r#"["j", true]"#);
        assert_eq!(notify_clean(&already), already);
    }
}
