//! Equihash stratum (ZIP 301): the messages the proxy writes and the pool results it reads.
//!
//! The 32-byte header nonce is NONCE_1 || NONCE_2. The pool gives NONCE_1; the proxy gives each miner
//! NONCE_1 || P (P its prefix) and rewrites each submitted NONCE_2 X to P || X. The ~2.7 KB solution passes
//! through as the miner sent it, copied once into the pool's output queue.

use super::json::{write_str, IdBuf, Scalar};
use super::stratum::{SubmitError, AGENT};
use crate::hex;
use std::io::Write;

/// Bytes of the header nonce.
pub const NONCE_LEN: usize = 32;

/// Prefix bytes per miner: 65,536 miners per pool connection.
pub const PREFIX_LEN: usize = 2;

/// Fewest NONCE_2 bytes a miner may be left with; a pool whose NONCE_1 leaves fewer is refused.
pub const MIN_MINER_NONCE2: usize = 8;

/// What a solution must look like on the wire: its compactSize prefix (hex) and the whole hex length.
#[derive(Debug, Clone)]
pub struct SolutionShape {
    pub prefix_hex: String,
    pub hex_len: usize,
}

impl SolutionShape {
    /// The shape for Equihash parameters (n, k).
    pub fn new(params: &crate::equihash::Params) -> SolutionShape {
        SolutionShape {
            prefix_hex: hex::encode(&params.solution_prefix()),
            hex_len: params.solution_with_prefix_len() * 2,
        }
    }
}

/// Appends the miner's subscribe result `[SESSION_ID, NONCE_1 || P]`.
pub fn write_subscribe_result(
    out: &mut Vec<u8>,
    id: &IdBuf,
    session: u64,
    nonce1: &[u8],
    prefix: impl Iterator<Item = u8>,
) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.as_bytes());
    let _ = write!(out, ",\"result\":[\"{session:x}\",\"");
    hex::encode_into(nonce1, out);
    for b in prefix {
        hex::encode_into(&[b], out);
    }
    out.extend_from_slice(b"\"],\"error\":null}\n");
}

/// Appends `mining.set_extranonce [NONCE_1 || P]` for one miner.
pub fn write_set_extranonce(out: &mut Vec<u8>, nonce1: &[u8], prefix: impl Iterator<Item = u8>) {
    out.extend_from_slice(b"{\"id\":null,\"method\":\"mining.set_extranonce\",\"params\":[\"");
    hex::encode_into(nonce1, out);
    for b in prefix {
        hex::encode_into(&[b], out);
    }
    out.extend_from_slice(b"\"]}\n");
}

fn nonce1(hex_str: Option<&str>) -> Result<(Vec<u8>, usize), String> {
    let n1 = hex_str.and_then(hex::decode).ok_or("no hex NONCE_1")?;
    if n1.len() >= NONCE_LEN {
        return Err(format!("NONCE_1 of {} bytes leaves no NONCE_2", n1.len()));
    }
    let n2 = NONCE_LEN - n1.len();
    Ok((n1, n2))
}

/// The pool's subscribe result `[SESSION_ID, NONCE_1]`: NONCE_1 and the NONCE_2 size it leaves.
pub fn parse_subscribe_result(result_json: &str) -> Result<(Vec<u8>, usize), String> {
    let v: serde_json::Value = serde_json::from_str(result_json)
        .map_err(|_| "subscribe result is not JSON".to_string())?;
    let arr = v.as_array().ok_or("subscribe result is not a list")?;
    nonce1(arr.get(1).and_then(|n| n.as_str())).map_err(|e| format!("subscribe result: {e}"))
}

/// `mining.set_extranonce [NONCE_1]` from a pool.
pub fn parse_set_extranonce(param0: Option<&str>) -> Result<(Vec<u8>, usize), String> {
    nonce1(param0).map_err(|e| format!("set_extranonce: {e}"))
}

/// Checks that a pool's NONCE_1 leaves every miner enough NONCE_2 after its prefix.
pub fn check_pool_nonce(nonce2_size: usize) -> Result<(), String> {
    let left = nonce2_size.saturating_sub(PREFIX_LEN);
    if left < MIN_MINER_NONCE2 {
        return Err(format!(
            "the pool's NONCE_1 leaves {nonce2_size} bytes of NONCE_2: after a {PREFIX_LEN}-byte prefix miners would get {left} (< {MIN_MINER_NONCE2}); pool not usable"
        ));
    }
    Ok(())
}

/// Appends the proxy's handshake to an Equihash pool: subscribe, extranonce.subscribe, authorize.
pub fn write_handshake(
    out: &mut Vec<u8>,
    ids: [u64; 3],
    user: &str,
    password: &str,
    host: &str,
    port: u16,
) {
    let [subscribe, extranonce, authorize] = ids;
    let _ = write!(
        out,
        "{{\"id\":{subscribe},\"method\":\"mining.subscribe\",\"params\":[\"{AGENT}\",null,"
    );
    write_str(out, host);
    let _ = writeln!(out, ",{port}]}}");
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

/// A miner's Equihash `mining.submit`, checked.
#[derive(Debug, Clone, Copy)]
pub struct Submit<'a> {
    pub job_id: &'a str,
    pub time: &'a str,
    pub nonce2: &'a str,
    pub solution: &'a str,
}

/// Checks submit params `[worker, job_id, time, nonce_2, solution]`: the error text goes back to the miner.
pub fn check_submit<'a>(
    params: &[Scalar<'a>],
    params_len: Option<usize>,
    nonce2_size: usize,
    shape: &SolutionShape,
) -> Result<Submit<'a>, SubmitError> {
    let n = params_len.ok_or(SubmitError::NotAList)?;
    if n != 5 {
        return Err(SubmitError::ParamCount {
            expected: "5",
            got: n,
        });
    }
    let s = |i: usize| params.get(i).and_then(|p| p.as_str());
    let (Some(_worker), Some(job_id), Some(time), Some(nonce2), Some(solution)) =
        (s(0), s(1), s(2), s(3), s(4))
    else {
        return Err(SubmitError::NotStrings);
    };
    if job_id.is_empty() || job_id.len() > 128 {
        return Err(SubmitError::JobId);
    }
    if time.len() != 8 || !hex::is_hex(time.as_bytes()) {
        return Err(SubmitError::Hex8("time"));
    }
    if nonce2.len() != nonce2_size * 2 || !hex::is_hex(nonce2.as_bytes()) {
        return Err(SubmitError::Extranonce2 {
            name: "nonce_2",
            bytes: nonce2_size,
        });
    }
    if solution.len() != shape.hex_len
        || !solution
            .get(..shape.prefix_hex.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(&shape.prefix_hex))
        || !hex::is_hex(solution.as_bytes())
    {
        return Err(SubmitError::Solution {
            hex_len: shape.hex_len,
            prefix_hex: shape.prefix_hex.as_str().into(),
        });
    }
    Ok(Submit {
        job_id,
        time,
        nonce2,
        solution,
    })
}

/// Appends the upstream form of a share: the pool account as worker, the miner's prefix before its NONCE_2.
pub fn write_submit_upstream(
    out: &mut Vec<u8>,
    id: u64,
    user: &str,
    share: &Submit<'_>,
    prefix: impl Iterator<Item = u8>,
) {
    out.reserve(share.solution.len() + 160);
    let _ = write!(
        out,
        "{{\"id\":{id},\"method\":\"mining.submit\",\"params\":["
    );
    write_str(out, user);
    out.push(b',');
    write_str(out, share.job_id);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(share.time.as_bytes());
    out.extend_from_slice(b"\",\"");
    for b in prefix {
        hex::encode_into(&[b], out);
    }
    out.extend_from_slice(share.nonce2.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(share.solution.as_bytes());
    out.extend_from_slice(b"\"]}\n");
}

#[cfg(test)]
mod tests {
    use super::super::json::Parser;
    use super::*;
    use crate::equihash::Params;

    #[test]
    fn subscribe_and_set_extranonce_carry_nonce1_and_prefix() {
        let mut out = Vec::new();
        let id = IdBuf::from_scalar(&Scalar::Int(2)).unwrap();
        write_subscribe_result(&mut out, &id, 0xab, &[1, 2, 3, 4], [9u8, 8].into_iter());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"], serde_json::json!(["ab", "010203040908"]));
        out.clear();
        write_set_extranonce(&mut out, &[1], [2u8, 3].into_iter());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["params"], serde_json::json!(["010203"]));
    }

    #[test]
    fn pool_nonce1_is_parsed_and_checked() {
        assert_eq!(
            parse_subscribe_result(r#"["sess", "0a0b0c0d"]"#),
            Ok((vec![10, 11, 12, 13], 28))
        );
        assert!(parse_subscribe_result(r#"["sess", 5]"#).is_err());
        assert!(parse_subscribe_result(&format!(r#"[null, "{}"]"#, "00".repeat(32))).is_err());
        assert!(check_pool_nonce(10).is_ok());
        assert!(check_pool_nonce(9).is_err());
    }

    #[test]
    fn submit_is_checked_and_rewritten_with_the_prefix() {
        let shape = SolutionShape::new(&Params::default());
        assert_eq!(shape.prefix_hex, "fd4005");
        assert_eq!(shape.hex_len, 2 * 1347);
        let solution = format!("fd4005{}", "ab".repeat(1344));
        let line = format!(
            r#"{{"id":5,"method":"mining.submit","params":["w","j1","5e0fa21c","{}","{solution}"]}}"#,
            "00".repeat(26)
        );
        let mut bytes = line.into_bytes();
        let mut p = Parser::default();
        let mut out = Vec::new();
        p.parse(&mut bytes, |m| {
            let m = m.unwrap();
            let s = check_submit(&m.params, m.params_len, 26, &shape).unwrap();
            write_submit_upstream(&mut out, 7, "acct", &s, [0x12, 0x34].into_iter());
            assert!(check_submit(&m.params, m.params_len, 27, &shape).is_err());
        });
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["params"][3].as_str().unwrap(),
            format!("1234{}", "00".repeat(26))
        );
        assert_eq!(v["params"][4].as_str().unwrap(), solution);
        let bad = SolutionShape {
            prefix_hex: "fd4005".into(),
            hex_len: 10,
        };
        let mut bytes =
            br#"{"id":1,"method":"mining.submit","params":["w","j","5e0fa21c","00","fd400500zz"]}"#
                .to_vec();
        p.parse(&mut bytes, |m| {
            let m = m.unwrap();
            assert!(
                check_submit(&m.params, m.params_len, 1, &bad).is_err(),
                "not hex"
            );
        });
    }

    #[test]
    fn submit_errors_read_as_the_texts_miners_always_got() {
        let mut p = Parser::default();
        let shape = SolutionShape {
            prefix_hex: "fd4005".into(),
            hex_len: 10,
        };
        let cases: [(&str, &str); 4] = [
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","5e0fa21c","00"]}"#,
                "submit takes 5 params, got 4",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","5e0fa21","00","fd40050000"]}"#,
                "time must be 8 hex digits",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","5e0fa21c","0","fd40050000"]}"#,
                "nonce_2 must be 1 bytes of hex",
            ),
            (
                r#"{"id":1,"method":"mining.submit","params":["w","j","5e0fa21c","00","fd40060000"]}"#,
                "solution must be 10 hex digits starting with fd4005",
            ),
        ];
        for (line, want) in cases {
            let mut bytes = line.as_bytes().to_vec();
            p.parse(&mut bytes, |m| {
                let m = m.unwrap();
                let e = check_submit(&m.params, m.params_len, 1, &shape).unwrap_err();
                assert_eq!(e.to_string(), want, "{line}");
            });
        }
    }
}
