//! Bitcoin Stratum V1: the messages the proxy writes and the pool results it reads.
//!
//! Writers append one complete line to a caller's buffer, so replies cost no allocation. See
//! `shared/specs/stratum.md` (in the project's shared folder) for the wire format.

use super::json::{write_str, IdBuf};
use crate::hex;
use std::io::Write;

/// The agent string the proxy subscribes with.
pub const AGENT: &str = concat!("fastproxy/", env!("CARGO_PKG_VERSION"));

/// Appends the miner's subscribe result: its extranonce1 is the pool's `e1` followed by its `prefix`.
pub fn write_subscribe_result(
    out: &mut Vec<u8>,
    id: &IdBuf,
    subscription: u64,
    e1: &[u8],
    prefix: impl Iterator<Item = u8>,
    extranonce2_size: usize,
) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.as_bytes());
    let _ = write!(
        out,
        ",\"result\":[[[\"mining.set_difficulty\",\"{subscription:x}\"],[\"mining.notify\",\"{subscription:x}\"]],\""
    );
    hex::encode_into(e1, out);
    for b in prefix {
        hex::encode_into(&[b], out);
    }
    let _ = writeln!(out, "\",{extranonce2_size}],\"error\":null}}");
}

/// Appends `mining.set_extranonce` for one miner.
pub fn write_set_extranonce(
    out: &mut Vec<u8>,
    e1: &[u8],
    prefix: impl Iterator<Item = u8>,
    extranonce2_size: usize,
) {
    out.extend_from_slice(b"{\"id\":null,\"method\":\"mining.set_extranonce\",\"params\":[\"");
    hex::encode_into(e1, out);
    for b in prefix {
        hex::encode_into(&[b], out);
    }
    let _ = writeln!(out, "\",{extranonce2_size}]}}");
}

/// Appends the answer to a miner's `mining.configure`: version rolling with `mask` (or refused when `None`),
/// every other extension it asked for answered `false`.
pub fn write_configure_result(
    out: &mut Vec<u8>,
    id: &IdBuf,
    version_rolling: Option<Option<u32>>,
    others: &[String],
) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b",\"result\":{");
    let mut first = true;
    match version_rolling {
        Some(Some(mask)) => {
            let _ = write!(
                out,
                "\"version-rolling\":true,\"version-rolling.mask\":\"{mask:08x}\""
            );
            first = false;
        }
        Some(None) => {
            out.extend_from_slice(b"\"version-rolling\":false");
            first = false;
        }
        None => {}
    }
    for name in others {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, name);
        out.extend_from_slice(b":false");
    }
    out.extend_from_slice(b"},\"error\":null}\n");
}

/// What a miner asked for in `mining.configure`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfigureRequest {
    /// The mask asked for, when version rolling was asked for.
    pub version_rolling: Option<u32>,
    /// Other extensions named (answered `false`).
    pub others: Vec<String>,
}

/// Reads `mining.configure` params `[[names...], {options}]` given as JSON text.
pub fn parse_configure(params_json: &str) -> Result<ConfigureRequest, &'static str> {
    let v: serde_json::Value =
        serde_json::from_str(params_json).map_err(|_| "invalid configure params")?;
    let names = v
        .get(0)
        .and_then(|n| n.as_array())
        .ok_or("configure params must start with a list of extensions")?;
    let opts = v.get(1);
    let mut req = ConfigureRequest::default();
    for n in names.iter().take(16) {
        let Some(name) = n.as_str() else {
            return Err("extension names must be strings");
        };
        if name == "version-rolling" {
            let mask = opts
                .and_then(|o| o.get("version-rolling.mask"))
                .and_then(|m| m.as_str())
                .map_or(Some(u32::MAX), |m| u32::from_str_radix(m, 16).ok())
                .ok_or("version-rolling.mask must be 8 hex digits")?;
            req.version_rolling = Some(mask);
        } else if name.len() <= 64 {
            req.others.push(name.to_string());
        }
    }
    Ok(req)
}

/// The pool's answer to the proxy's `mining.configure`: the mask it grants, or `None`.
pub fn parse_configure_result(result_json: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(result_json).ok()?;
    if v.get("version-rolling")?.as_bool()? {
        u32::from_str_radix(v.get("version-rolling.mask")?.as_str()?, 16).ok()
    } else {
        None
    }
}

/// The pool's subscribe result: extranonce1 and extranonce2_size. Accepts a list of pairs, a single pair or null
/// as the first element.
pub fn parse_subscribe_result(result_json: &str) -> Result<(Vec<u8>, usize), String> {
    let v: serde_json::Value = serde_json::from_str(result_json)
        .map_err(|_| "subscribe result is not JSON".to_string())?;
    let arr = v.as_array().ok_or("subscribe result is not a list")?;
    let e1 = arr
        .get(1)
        .and_then(|e| e.as_str())
        .and_then(hex::decode)
        .ok_or("subscribe result has no hex extranonce1")?;
    let n = arr
        .get(2)
        .and_then(|n| n.as_u64())
        .ok_or("subscribe result has no integer extranonce2_size")?;
    if e1.len() > 32 {
        return Err(format!("extranonce1 of {} bytes is too long", e1.len()));
    }
    if !(1..=32).contains(&n) {
        return Err(format!("extranonce2_size {n} is out of range"));
    }
    Ok((e1, n as usize))
}

/// Reads `mining.set_extranonce` params `[E1_HEX, N]`.
pub fn parse_set_extranonce(e1: Option<&str>, n: Option<u64>) -> Result<(Vec<u8>, usize), String> {
    let e1 = e1
        .and_then(hex::decode)
        .ok_or("set_extranonce without a hex extranonce1")?;
    let n = n.ok_or("set_extranonce without an integer extranonce2_size")?;
    if e1.len() > 32 || !(1..=32).contains(&n) {
        return Err("set_extranonce values out of range".into());
    }
    Ok((e1, n as usize))
}

/// Appends the proxy's handshake to a pool: configure, subscribe, extranonce.subscribe, authorize, with the
/// given ids.
pub fn write_handshake(out: &mut Vec<u8>, ids: [u64; 4], user: &str, password: &str) {
    let [configure, subscribe, extranonce, authorize] = ids;
    let _ = writeln!(
        out,
        "{{\"id\":{configure},\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{{\"version-rolling.mask\":\"ffffffff\",\"version-rolling.min-bit-count\":2}}]}}"
    );
    let _ = writeln!(
        out,
        "{{\"id\":{subscribe},\"method\":\"mining.subscribe\",\"params\":[\"{AGENT}\"]}}"
    );
    let _ = writeln!(
        out,
        "{{\"id\":{extranonce},\"method\":\"mining.extranonce.subscribe\",\"params\":[]}}"
    );
    let _ = write!(
        out,
        "{{\"id\":{authorize},\"method\":\"mining.authorize\",\"params\":["
    );
    write_str(out, user);
    out.push(b',');
    write_str(out, password);
    out.extend_from_slice(b"]}\n");
}

/// A miner's `mining.submit`, checked.
#[derive(Debug, Clone, Copy)]
pub struct Submit<'a> {
    pub job_id: &'a str,
    pub extranonce2: &'a str,
    pub ntime: &'a str,
    pub nonce: &'a str,
    pub version_bits: Option<&'a str>,
}

fn is_hex_of(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2 && hex::is_hex(s.as_bytes())
}

/// Why a miner's submit is refused before any share math; its text is the JSON-RPC error message the miner
/// gets (code 20), for both dialects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The params are not a JSON list.
    NotAList,
    /// Wrong number of params (`expected` as the miner reads it, e.g. "5 or 6").
    ParamCount { expected: &'static str, got: usize },
    /// A param is not a string.
    NotStrings,
    /// Empty or longer than 128 bytes.
    JobId,
    /// The miner's extranonce2 (Equihash: NONCE_2, named by `name`) is not `bytes` bytes of hex.
    Extranonce2 { name: &'static str, bytes: usize },
    /// This field (ntime, nonce, version bits, time) is not 8 hex digits.
    Hex8(&'static str),
    /// Version bits outside the mask negotiated with the miner.
    OutsideMask,
    /// Equihash: the solution has the wrong length or prefix.
    Solution {
        hex_len: usize,
        prefix_hex: Box<str>,
    },
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::NotAList => f.write_str("submit params must be a list"),
            SubmitError::ParamCount { expected, got } => {
                write!(f, "submit takes {expected} params, got {got}")
            }
            SubmitError::NotStrings => f.write_str("submit params must be strings"),
            SubmitError::JobId => f.write_str("invalid job id"),
            SubmitError::Extranonce2 { name, bytes } => {
                write!(f, "{name} must be {bytes} bytes of hex")
            }
            SubmitError::Hex8(field) => write!(f, "{field} must be 8 hex digits"),
            SubmitError::OutsideMask => f.write_str("version bits outside the negotiated mask"),
            SubmitError::Solution {
                hex_len,
                prefix_hex,
            } => write!(
                f,
                "solution must be {hex_len} hex digits starting with {prefix_hex}"
            ),
        }
    }
}

/// Checks submit params `[worker, job_id, extranonce2, ntime, nonce(, version_bits)]` against the miner's
/// extranonce2 size. The error text goes back to the miner.
pub fn check_submit<'a>(
    params: &[super::json::Scalar<'a>],
    params_len: Option<usize>,
    extranonce2_size: usize,
) -> Result<Submit<'a>, SubmitError> {
    let n = params_len.ok_or(SubmitError::NotAList)?;
    if !(5..=6).contains(&n) {
        return Err(SubmitError::ParamCount {
            expected: "5 or 6",
            got: n,
        });
    }
    let s = |i: usize| params.get(i).and_then(|p| p.as_str());
    let (Some(_worker), Some(job_id), Some(en2), Some(ntime), Some(nonce)) =
        (s(0), s(1), s(2), s(3), s(4))
    else {
        return Err(SubmitError::NotStrings);
    };
    if job_id.is_empty() || job_id.len() > 128 {
        return Err(SubmitError::JobId);
    }
    if !is_hex_of(en2, extranonce2_size) {
        return Err(SubmitError::Extranonce2 {
            name: "extranonce2",
            bytes: extranonce2_size,
        });
    }
    if !is_hex_of(ntime, 4) {
        return Err(SubmitError::Hex8("ntime"));
    }
    if !is_hex_of(nonce, 4) {
        return Err(SubmitError::Hex8("nonce"));
    }
    let version_bits = if n == 6 {
        match s(5) {
            Some(v) if is_hex_of(v, 4) => Some(v),
            _ => return Err(SubmitError::Hex8("version bits")),
        }
    } else {
        None
    };
    Ok(Submit {
        job_id,
        extranonce2: en2,
        ntime,
        nonce,
        version_bits,
    })
}

/// Appends the upstream form of a share: the pool account as worker, the miner's prefix before its extranonce2.
pub fn write_submit_upstream(
    out: &mut Vec<u8>,
    id: u64,
    user: &str,
    share: &Submit<'_>,
    prefix: impl Iterator<Item = u8>,
) {
    let _ = write!(
        out,
        "{{\"id\":{id},\"method\":\"mining.submit\",\"params\":["
    );
    write_str(out, user);
    out.push(b',');
    write_str(out, share.job_id);
    out.extend_from_slice(b",\"");
    for b in prefix {
        hex::encode_into(&[b], out);
    }
    out.extend_from_slice(share.extranonce2.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(share.ntime.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(share.nonce.as_bytes());
    out.push(b'"');
    if let Some(v) = share.version_bits {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"]}\n");
}

#[cfg(test)]
mod tests {
    use super::super::json::{Parser, Scalar};
    use super::*;

    fn json(out: &[u8]) -> serde_json::Value {
        serde_json::from_slice(out).unwrap()
    }

    #[test]
    fn subscribe_result_has_prefix_and_integer_size() {
        let mut out = Vec::new();
        let id = IdBuf::from_scalar(&Scalar::Int(3)).unwrap();
        write_subscribe_result(&mut out, &id, 0x1f, &[0xaa, 0xbb], [1u8, 2].into_iter(), 6);
        let v = json(&out);
        assert_eq!(v["id"], 3);
        assert_eq!(v["result"][1], "aabb0102");
        assert_eq!(v["result"][2], 6);
        assert_eq!(v["result"][0][1][0], "mining.notify");
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn subscribe_result_forms_from_pools() {
        assert_eq!(
            parse_subscribe_result(
                r#"[[["mining.set_difficulty","1"],["mining.notify","1"]],"08000002",4]"#
            ),
            Ok((vec![8, 0, 0, 2], 4))
        );
        assert_eq!(
            parse_subscribe_result(
                r#"[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"],"f8002c90",8]"#
            ),
            Ok((vec![0xf8, 0, 0x2c, 0x90], 8))
        );
        assert_eq!(parse_subscribe_result(r#"[null,"00",8]"#), Ok((vec![0], 8)));
        assert!(parse_subscribe_result(r#"[null,"0g",8]"#).is_err());
        assert!(parse_subscribe_result(r#"[null,"00","8"]"#).is_err());
        assert!(parse_subscribe_result(r#"[null,"00",0]"#).is_err());
    }

    #[test]
    fn configure_both_ways() {
        let req = parse_configure(
            r#"[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]"#,
        )
        .unwrap();
        assert_eq!(req.version_rolling, Some(0x1fffe000));
        assert_eq!(req.others, vec!["minimum-difficulty".to_string()]);
        let mut out = Vec::new();
        let id = IdBuf::from_scalar(&Scalar::Int(1)).unwrap();
        write_configure_result(&mut out, &id, Some(Some(0x1fffe000)), &req.others);
        let v = json(&out);
        assert_eq!(v["result"]["version-rolling"], true);
        assert_eq!(v["result"]["version-rolling.mask"], "1fffe000");
        assert_eq!(v["result"]["minimum-difficulty"], false);
        assert_eq!(
            parse_configure_result(r#"{"version-rolling":true,"version-rolling.mask":"1fffe000"}"#),
            Some(0x1fffe000)
        );
        assert_eq!(parse_configure_result(r#"{"version-rolling":false}"#), None);
        assert!(parse_configure("[1]").is_err());
    }

    #[test]
    fn submit_is_checked_and_rewritten_with_the_prefix() {
        let mut p = Parser::default();
        let mut line = br#"{"id":9,"method":"mining.submit","params":["w","j\"1","00000001","5f5e1000","0a0b0c0d","00002000"]}"#.to_vec();
        let mut out = Vec::new();
        p.parse(&mut line, |m| {
            let m = m.unwrap();
            let s = check_submit(&m.params, m.params_len, 4).unwrap();
            write_submit_upstream(&mut out, 77, "acct.w", &s, [0xbe, 0xef].into_iter());
            assert!(check_submit(&m.params, m.params_len, 5).is_err());
        });
        let v = json(&out);
        assert_eq!(v["id"], 77);
        assert_eq!(
            v["params"],
            serde_json::json!([
                "acct.w",
                "j\"1",
                "beef00000001",
                "5f5e1000",
                "0a0b0c0d",
                "00002000"
            ])
        );
    }

    #[test]
    fn handshake_lines_are_json() {
        let mut out = Vec::new();
        write_handshake(&mut out, [1, 2, 3, 4], "u\"x", "p");
        let lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3]["params"][0], "u\"x");
    }

    #[test]
    fn submit_errors_read_as_the_texts_miners_always_got() {
        let mut p = crate::protocol::json::Parser::default();
        let cases: [(&str, &str); 8] = [
            (
                r#"{"id":1,"method":"mining.submit","params":{}}"#,
                "submit params must be a list",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j"]}"#,
                "submit takes 5 or 6 params, got 2",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w",1,"00","00000000","00000000"]}"#,
                "submit params must be strings",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","","00","00000000","00000000"]}"#,
                "invalid job id",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","0","00000000","00000000"]}"#,
                "extranonce2 must be 1 bytes of hex",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","00","0000000","00000000"]}"#,
                "ntime must be 8 hex digits",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","00","00000000","0000000g"]}"#,
                "nonce must be 8 hex digits",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","00","00000000","00000000","x"]}"#,
                "version bits must be 8 hex digits",
            ),
        ];
        for (line, want) in cases {
            let mut bytes = line.as_bytes().to_vec();
            p.parse(&mut bytes, |m| {
                let m = m.unwrap();
                let e = check_submit(&m.params, m.params_len, 1).unwrap_err();
                assert_eq!(e.to_string(), want, "{line}");
            });
        }
        assert_eq!(
            SubmitError::OutsideMask.to_string(),
            "version bits outside the negotiated mask"
        );
    }
}
