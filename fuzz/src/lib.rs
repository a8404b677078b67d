//! The invariants the fuzz targets check: one public function per target, taking the fuzzer's bytes and
//! panicking when an invariant breaks (never merely "it did not panic").
//!
//! This file is also compiled into the main crate's `tests/fuzz_regressions.rs` (with `#[path]`), so that
//! every crash found here is replayed by `cargo test`: it may only use std, `fastproxy`, `serde`,
//! `serde_json` and the SV2 crates the main crate depends on (`sv2`), and must not have crate-level attributes.

mod sv2;
mod sv2_session;
pub use sv2::sv2_client;
pub use sv2_session::sv2_session;

use fastproxy::auth::{AuthConfig, Authenticator};
use fastproxy::config::{Config, PoolUrl, ProxyConfig};
use fastproxy::equihash::{EquihashJob, Params};
use fastproxy::framing::{self, Framed};
use fastproxy::hex;
use fastproxy::nonce::PrefixAllocator;
use fastproxy::protocol::equihash as eq;
use fastproxy::protocol::json::{self, IdBuf, Msg, ParseError, Parser, Scalar};
use fastproxy::protocol::{stratum, Dialect};
use fastproxy::proxy_protocol::{self as pp, Mode, Parsed};
use fastproxy::work::Job;
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// Reads the fuzzer's bytes front to back; past the end every byte is 0.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------------------
// JSON helpers

/// JSON equality where numbers compare by value (`1.0` == `1`), as JSON itself means them, floats within a
/// few ulps.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let int = |n: &serde_json::Number| {
                n.as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
            };
            match (int(x), int(y)) {
                (Some(i), Some(j)) => i == j,
                // serde_json's default float parsing (without `float_roundtrip`) may be off by an ulp.
                _ => match (x.as_f64(), y.as_f64()) {
                    (Some(a), Some(b)) => {
                        a == b || (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs())
                    }
                    _ => false,
                },
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Parses JSON text that the proxy produced (or re-encoded): it must be valid.
fn must_parse(text: &[u8], what: &str) -> Value {
    match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => panic!(
            "{what} is not valid JSON ({e}): {:?}",
            String::from_utf8_lossy(text)
        ),
    }
}

/// One written line: exactly one `\n`, at its end, and valid JSON before it.
fn must_be_line(out: &[u8], what: &str) -> Value {
    assert_eq!(
        out.last(),
        Some(&b'\n'),
        "{what} does not end with a newline"
    );
    let body = &out[..out.len() - 1];
    assert!(
        !body.contains(&b'\n'),
        "{what} holds a raw newline: {:?}",
        String::from_utf8_lossy(out)
    );
    must_parse(body, what)
}

/// The top-level keys of a JSON object in order (duplicates kept), or None when `line` is no JSON object.
fn object_keys(line: &[u8]) -> Option<Vec<String>> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(k) = map.next_key::<String>()? {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Keys>(line).ok().map(|k| k.0)
}

/// What serde_json reads from a line, when it is a JSON object: a repeated top-level key counts with its last
/// value (as serde_json reads it); and whether a top-level key repeats.
fn reference(line: &[u8]) -> Option<(serde_json::Map<String, Value>, bool)> {
    let keys = object_keys(line)?;
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    match serde_json::from_slice(line).ok()? {
        Value::Object(m) => Some((m, sorted.len() != keys.len())),
        _ => None,
    }
}

/// True when `line` holds a run of 19 or more digits: maybe an integer beyond i64/u64.
fn has_long_digit_run(line: &[u8]) -> bool {
    line.split(|b| !b.is_ascii_digit())
        .any(|run| run.len() >= 19)
}

/// True when `line` holds an exponent (after a digit, `e` or `E`, a sign) of more than 300 in magnitude.
fn has_huge_exponent(line: &[u8]) -> bool {
    line.windows(2).enumerate().any(|(i, w)| {
        if !(w[0].is_ascii_digit() && (w[1] == b'e' || w[1] == b'E')) {
            return false;
        }
        let rest = &line[i + 2..];
        let rest = rest
            .strip_prefix(b"-")
            .or(rest.strip_prefix(b"+"))
            .unwrap_or(rest);
        let digits = rest.iter().take_while(|b| b.is_ascii_digit());
        digits.fold(0u64, |v, &d| {
            v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        }) > 300
    })
}

fn scalar_matches(s: &Scalar<'_>, v: Option<&Value>) -> bool {
    match (s, v) {
        (Scalar::Missing, None) => true,
        (Scalar::Null, Some(Value::Null)) => true,
        (Scalar::Bool(b), Some(Value::Bool(c))) => b == c,
        (Scalar::Int(_) | Scalar::Uint(_) | Scalar::Float(_), Some(Value::Number(n))) => {
            let mine = match *s {
                Scalar::Int(i) => json!(i),
                Scalar::Uint(u) => json!(u),
                Scalar::Float(f) => json!(f),
                _ => unreachable!(),
            };
            json_eq(&mine, &Value::Number(n.clone()))
        }
        (Scalar::Str(a), Some(Value::String(b))) => a == b,
        (Scalar::Complex, Some(Value::Array(_) | Value::Object(_))) => true,
        _ => false,
    }
}

/// Checks a parsed line against serde_json's reading of the same bytes, and every re-encoded value for
/// validity. `keep_params`: the line went through `parse_keeping_params`.
fn check_msg(original: &[u8], parsed: &Result<Msg<'_>, ParseError>, keep_params: bool) {
    let reference = reference(original);
    let m = match parsed {
        Err(e) => {
            if let Some((r, dups)) = &reference {
                // A line whose top-level keys repeat may be refused (or read with the last of each): serde_json
                // keeps the last `id`, the proxy may have judged the first.
                if *dups {
                    return;
                }
                // simd-json (without its `big-int-as-float` feature) refuses integers outside i64/u64,
                // and numbers whose exponent is out of f64's range (`0e400`), which serde_json reads.
                if *e == ParseError::InvalidJson
                    && (has_long_digit_run(original) || has_huge_exponent(original))
                {
                    return;
                }
                // serde_json reads a JSON object: the only acceptable refusal is the id.
                assert_eq!(
                    *e,
                    ParseError::BadId,
                    "valid JSON object refused: {:?}",
                    String::from_utf8_lossy(original)
                );
                let id = r.get("id").expect("BadId without an id");
                // The id's text as IdBuf writes it (floats without exponent) must be over its capacity.
                let text = match id {
                    Value::String(s) => {
                        let mut t = Vec::new();
                        json::write_str(&mut t, s);
                        t.len()
                    }
                    Value::Number(n) if n.is_f64() => {
                        format!("{}", n.as_f64().unwrap_or(0.0)).len()
                    }
                    Value::Number(n) => n.to_string().len(),
                    _ => usize::MAX,
                };
                let long = text > IdBuf::CAP;
                assert!(long, "id {id} refused");
            }
            return;
        }
        Ok(m) => m,
    };
    // Re-encoded values are valid JSON whatever the input was.
    let params =
        (!m.params_json.is_empty()).then(|| must_parse(m.params_json.as_bytes(), "params_json"));
    let result =
        (!m.result_json.is_empty()).then(|| must_parse(m.result_json.as_bytes(), "result_json"));
    let error = m.error_json.map(|e| must_parse(e.as_bytes(), "error_json"));
    if keep_params {
        assert_eq!(
            m.params_len.is_some(),
            params.is_some(),
            "params_json not kept"
        );
    }
    if let Some(p) = &params {
        assert_eq!(p.as_array().map(Vec::len), m.params_len, "params_len");
    }
    if let Some(r) = &result {
        assert!(r.is_array() || r.is_object(), "result_json of a scalar");
        assert_eq!(m.result, Scalar::Complex);
    }
    // The id's text is valid JSON and names the same id.
    let id = must_parse(m.id.as_bytes(), "IdBuf");
    assert!(m.id.as_bytes().len() <= IdBuf::CAP);
    assert_eq!(IdBuf::from_scalar(&m.id_scalar).as_ref(), Some(&m.id));
    assert!(scalar_matches(&m.id_scalar, Some(&id)) || m.id_scalar == Scalar::Missing);

    let Some((r, _)) = reference else {
        return;
    };
    let ctx = String::from_utf8_lossy(original);
    match r.get("id") {
        None => assert!(m.id.is_null(), "absent id is not null: {ctx}"),
        Some(orig) => assert!(
            json_eq(&id, orig),
            "id {orig} echoed as {}: {ctx}",
            String::from_utf8_lossy(m.id.as_bytes())
        ),
    }
    assert!(
        scalar_matches(&m.id_scalar, r.get("id")),
        "id_scalar: {ctx}"
    );
    assert_eq!(m.method, r.get("method").and_then(Value::as_str), "method");
    let arr = r.get("params").and_then(Value::as_array);
    assert_eq!(m.params_len, arr.map(Vec::len), "params_len: {ctx}");
    if let Some(arr) = arr {
        for (i, v) in arr.iter().take(json::MAX_PARAMS).enumerate() {
            assert!(
                scalar_matches(&m.param(i), Some(v)),
                "param {i}: {:?} vs {v}: {ctx}",
                m.param(i)
            );
        }
        if let Some(p) = &params {
            assert!(json_eq(p, &Value::Array(arr.clone())), "params_json: {ctx}");
        }
    }
    assert_eq!(
        m.is_reply,
        r.contains_key("result") || r.contains_key("error"),
        "is_reply"
    );
    assert!(scalar_matches(&m.result, r.get("result")), "result: {ctx}");
    if let Some(res) = &result {
        assert!(json_eq(res, &r["result"]), "result_json: {ctx}");
    }
    match (r.get("error"), &error) {
        (None | Some(Value::Null), None) => {}
        (Some(e), Some(mine)) => assert!(json_eq(e, mine), "error_json: {ctx}"),
        (e, mine) => panic!("error {e:?} read as {mine:?}: {ctx}"),
    }
}

/// Error and result replies to a parsed id are single JSON lines carrying the same id.
fn check_replies(id: &IdBuf, error_text: &str) {
    let want = must_parse(id.as_bytes(), "IdBuf");
    let mut out = Vec::new();
    json::write_error(&mut out, id.as_bytes(), 20, error_text);
    let v = must_be_line(&out, "write_error");
    assert!(json_eq(&v["id"], &want));
    assert_eq!(v["error"][1], error_text);
    out.clear();
    json::write_result(&mut out, id.as_bytes(), b"true");
    let v = must_be_line(&out, "write_result");
    assert!(json_eq(&v["id"], &want));
}

const USERS: [&str; 4] = ["acct.farm1", "", "u\"\\\n\u{1}\u{7f}é", "x"];
const PROXY_IDS: [u64; 4] = [0, 1, (1 << 53) - 1, 0x0001_0000_0002];

fn prefix_hex(prefix: &[u8]) -> String {
    hex::encode(prefix)
}

// ---------------------------------------------------------------------------------------------------------
// Target: framing

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Every line handed out; the unfinished tail kept.
    Ok(Vec<u8>),
    Stopped,
    TooLong,
}

#[derive(Debug, PartialEq, Eq)]
struct Framing {
    lines: Vec<Vec<u8>>,
    verdict: Verdict,
}

/// What framing must do: each raw line (the bytes before its `\n`, a final `\r` included) longer than
/// `max_line` ends the stream with TooLong, whether or not its `\n` has arrived; shorter ones are handed out
/// without `\r\n` unless blank; the handler's stop at line `stop_after` (1-based, 0 = never) ends it too.
fn framing_model(stream: &[u8], max_line: usize, stop_after: usize) -> Framing {
    let mut lines = Vec::new();
    let mut rest = stream;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let raw = &rest[..i];
        if raw.len() > max_line {
            return Framing {
                lines,
                verdict: Verdict::TooLong,
            };
        }
        rest = &rest[i + 1..];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines.push(line.to_vec());
        if lines.len() == stop_after {
            return Framing {
                lines,
                verdict: Verdict::Stopped,
            };
        }
    }
    let verdict = if rest.len() > max_line {
        Verdict::TooLong
    } else {
        Verdict::Ok(rest.to_vec())
    };
    Framing { lines, verdict }
}

/// Feeds `stream` to `framing::feed` in chunks of the given sizes (cycled; a cycle of zeros means one chunk),
/// as a connection's reads would, until the end or the first verdict other than Ok.
fn framing_run(stream: &[u8], sizes: &[usize], max_line: usize, stop_after: usize) -> Framing {
    let mut partial = Vec::new();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    let progress = sizes.iter().any(|&s| s > 0);
    loop {
        let size = if progress {
            sizes[i % sizes.len()]
        } else {
            stream.len()
        };
        i += 1;
        let end = (pos + size).min(stream.len());
        let mut data = stream[pos..end].to_vec();
        pos = end;
        let r = framing::feed(&mut partial, &mut data, max_line, |line| {
            assert!(
                line.len() <= max_line,
                "a line of {} bytes handed out (limit {max_line})",
                line.len()
            );
            lines.push(line.to_vec());
            if lines.len() == stop_after {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match r {
            Framed::Ok => {}
            Framed::Stopped => {
                return Framing {
                    lines,
                    verdict: Verdict::Stopped,
                }
            }
            Framed::TooLong => {
                return Framing {
                    lines,
                    verdict: Verdict::TooLong,
                }
            }
        }
        assert!(
            partial.len() <= max_line,
            "kept {} bytes of an unfinished line (limit {max_line})",
            partial.len()
        );
        if pos == stream.len() {
            return Framing {
                lines,
                verdict: Verdict::Ok(partial),
            };
        }
    }
}

/// Target `framing`: the same bytes give the same lines and verdict however they are chunked, and what the
/// model says; no line over the limit is handed out or kept.
pub fn framing(data: &[u8]) {
    let mut r = Bytes(data);
    // Mostly small limits (TooLong is reached often), sometimes real-sized ones.
    let b = r.byte();
    let max_line = if b & 0x80 == 0 {
        1 + usize::from(b)
    } else {
        128 + 8 * usize::from(b & 0x7f)
    };
    let stop_after = usize::from(r.byte() % 8);
    let n = usize::from(r.byte() % 8);
    let sizes: Vec<usize> = (0..n).map(|_| usize::from(r.byte() % 80)).collect();
    let stream = r.rest();
    let want = framing_model(stream, max_line, stop_after);
    let whole = framing_run(stream, &[stream.len()], max_line, stop_after);
    assert_eq!(whole, want, "in one piece (limit {max_line})");
    let chunked = framing_run(stream, &sizes, max_line, stop_after);
    assert_eq!(chunked, want, "in chunks of {sizes:?} (limit {max_line})");
    let bytewise = framing_run(stream, &[1], max_line, stop_after);
    assert_eq!(bytewise, want, "byte by byte (limit {max_line})");
    // split_lines alone: every complete line, up to the first over the limit.
    let complete = &stream[..stream
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)];
    let want = framing_model(complete, max_line, 0);
    let mut buf = stream.to_vec();
    let mut got = Vec::new();
    let (used, stop) = framing::split_lines(&mut buf, max_line, |l| {
        got.push(l.to_vec());
        ControlFlow::Continue(())
    });
    assert_eq!(got, want.lines, "split_lines");
    match stop {
        None => {
            assert_eq!(want.verdict, Verdict::Ok(Vec::new()));
            assert_eq!(used, complete.len());
        }
        Some(Framed::TooLong) => assert_eq!(want.verdict, Verdict::TooLong),
        Some(other) => panic!("split_lines stopped with {other:?} though the handler never did"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Targets: a miner's line (both dialects)

/// Target `miner_msg_stratum`: a miner's line through the parser; an accepted `mining.submit` goes upstream
/// as valid JSON with the same fields and the prefix before extranonce2, which the pool side accepts again.
pub fn miner_msg_stratum(data: &[u8]) {
    let mut r = Bytes(data);
    let b = r.byte();
    let en2_size = 1 + usize::from(b & 7);
    let prefix: Vec<u8> = (0..usize::from(b >> 3) % 3).map(|_| r.byte()).collect();
    let sel = r.byte();
    let user = USERS[usize::from(sel & 3)];
    let proxy_id = PROXY_IDS[usize::from(sel >> 2 & 3)];
    let line = r.rest();
    let mut buf = line.to_vec();
    let mut parser = Parser::default();
    parser.parse(&mut buf, |m| {
        check_msg(line, &m, false);
        let Ok(m) = m else { return };
        let submit = stratum::check_submit(&m.params, m.params_len, en2_size);
        let refused = submit.as_ref().err().map(ToString::to_string);
        check_replies(&m.id, refused.as_deref().unwrap_or("ok"));
        let mut out = Vec::new();
        stratum::write_subscribe_result(&mut out, &m.id, 7, b"\xaa", prefix.iter().copied(), 4);
        let v = must_be_line(&out, "write_subscribe_result");
        assert_eq!(v["result"][1], format!("aa{}", prefix_hex(&prefix)));
        match m.method {
            Some("mining.submit") => {
                if let Ok(s) = submit {
                    check_stratum_upstream(&s, &m, en2_size, &prefix, user, proxy_id);
                }
            }
            Some("mining.configure") => check_configure(&m),
            _ => {}
        }
    });
}

fn check_stratum_upstream(
    s: &stratum::Submit<'_>,
    m: &Msg<'_>,
    en2_size: usize,
    prefix: &[u8],
    user: &str,
    proxy_id: u64,
) {
    assert_eq!(Some(s.job_id), m.param(1).as_str());
    assert_eq!(Some(s.extranonce2), m.param(2).as_str());
    assert_eq!(Some(s.ntime), m.param(3).as_str());
    assert_eq!(Some(s.nonce), m.param(4).as_str());
    assert_eq!(s.version_bits, m.param(5).as_str());
    let mut out = Vec::new();
    stratum::write_submit_upstream(&mut out, proxy_id, user, s, prefix.iter().copied());
    let v = must_be_line(&out, "upstream submit");
    let mut want = vec![
        json!(user),
        json!(s.job_id),
        json!(format!("{}{}", prefix_hex(prefix), s.extranonce2)),
        json!(s.ntime),
        json!(s.nonce),
    ];
    if let Some(vb) = s.version_bits {
        want.push(json!(vb));
    }
    assert_eq!(v["id"], json!(proxy_id));
    assert_eq!(v["method"], "mining.submit");
    assert_eq!(v["params"], Value::Array(want), "upstream params");
    // The pool's side of the proxy reads it back as a valid share of the full extranonce2 size.
    let mut line = out[..out.len() - 1].to_vec();
    let mut parser = Parser::default();
    parser.parse(&mut line, |up| {
        let up = up.expect("upstream submit parses");
        assert_eq!(up.id_scalar.as_u64(), Some(proxy_id));
        let s2 = stratum::check_submit(&up.params, up.params_len, en2_size + prefix.len())
            .expect("upstream submit passes the same check");
        assert_eq!(
            (s2.job_id, s2.ntime, s2.nonce, s2.version_bits),
            (s.job_id, s.ntime, s.nonce, s.version_bits)
        );
    });
}

fn check_configure(m: &Msg<'_>) {
    let Ok(req) = stratum::parse_configure(m.params_json) else {
        return;
    };
    assert!(req.others.len() <= 16);
    assert!(req
        .others
        .iter()
        .all(|n| n.len() <= 64 && n != "version-rolling"));
    let mut out = Vec::new();
    stratum::write_configure_result(&mut out, &m.id, Some(req.version_rolling), &req.others);
    let v = must_be_line(&out, "configure result");
    let result = v["result"].as_object().expect("configure result object");
    for name in &req.others {
        assert_eq!(result.get(name), Some(&json!(false)), "extension {name:?}");
    }
    if let Some(mask) = req.version_rolling {
        assert_eq!(result["version-rolling.mask"], format!("{mask:08x}"));
    }
}

/// Equihash parameters with short solutions, so that the fuzzer can build whole accepted submits.
const EQ_PARAMS: [Params; 4] = [
    Params { n: 48, k: 5 },
    Params { n: 96, k: 5 },
    Params { n: 200, k: 9 },
    Params { n: 144, k: 5 },
];

/// Target `miner_msg_equihash`: as `miner_msg_stratum` for Equihash submits: the prefix goes before NONCE_2,
/// the solution passes through unchanged.
pub fn miner_msg_equihash(data: &[u8]) {
    let mut r = Bytes(data);
    let b = r.byte();
    let nonce2_size = 1 + usize::from(b & 31);
    let params = EQ_PARAMS[usize::from(b >> 5 & 3)];
    let prefix: Vec<u8> = (0..usize::from(b >> 7) * eq::PREFIX_LEN)
        .map(|_| r.byte())
        .collect();
    let sel = r.byte();
    let user = USERS[usize::from(sel & 3)];
    let proxy_id = PROXY_IDS[usize::from(sel >> 2 & 3)];
    let shape = eq::SolutionShape::new(&params);
    let line = r.rest();
    let mut buf = line.to_vec();
    let mut parser = Parser::default();
    parser.parse(&mut buf, |m| {
        check_msg(line, &m, false);
        let Ok(m) = m else { return };
        let submit = eq::check_submit(&m.params, m.params_len, nonce2_size, &shape);
        let refused = submit.as_ref().err().map(ToString::to_string);
        check_replies(&m.id, refused.as_deref().unwrap_or("ok"));
        let mut out = Vec::new();
        eq::write_subscribe_result(&mut out, &m.id, 0xab, b"\x01\x02", prefix.iter().copied());
        let v = must_be_line(&out, "equihash subscribe result");
        assert_eq!(v["result"][1], format!("0102{}", prefix_hex(&prefix)));
        if m.method != Some("mining.submit") {
            return;
        }
        let Ok(s) = submit else { return };
        assert_eq!(Some(s.job_id), m.param(1).as_str());
        assert_eq!(Some(s.time), m.param(2).as_str());
        assert_eq!(Some(s.nonce2), m.param(3).as_str());
        assert_eq!(Some(s.solution), m.param(4).as_str());
        // The share math reads the same solution.
        let sol = fastproxy::equihash::parse_solution_hex(s.solution, &params)
            .expect("a solution check_submit accepts decodes");
        assert_eq!(sol.len(), params.solution_with_prefix_len());
        let mut out = Vec::new();
        eq::write_submit_upstream(&mut out, proxy_id, user, &s, prefix.iter().copied());
        let v = must_be_line(&out, "upstream equihash submit");
        assert_eq!(v["id"], json!(proxy_id));
        assert_eq!(
            v["params"],
            json!([
                user,
                s.job_id,
                s.time,
                format!("{}{}", prefix_hex(&prefix), s.nonce2),
                s.solution
            ]),
            "upstream params"
        );
        let mut line = out[..out.len() - 1].to_vec();
        let mut parser = Parser::default();
        parser.parse(&mut line, |up| {
            let up = up.expect("upstream submit parses");
            let s2 = eq::check_submit(
                &up.params,
                up.params_len,
                nonce2_size + prefix.len(),
                &shape,
            )
            .expect("upstream submit passes the same check");
            assert_eq!(s2.solution, s.solution);
            assert_eq!((s2.job_id, s2.time), (s.job_id, s.time));
        });
    });
}

// ---------------------------------------------------------------------------------------------------------
// Target: a pool's line

fn check_layout(dialect: Dialect, e1: &[u8], n: usize, min_keep: usize) {
    match dialect {
        Dialect::Stratum => {
            assert!(e1.len() <= 32, "extranonce1 of {} bytes", e1.len());
            assert!((1..=32).contains(&n), "extranonce2_size {n}");
        }
        Dialect::Equihash => {
            assert!(e1.len() < eq::NONCE_LEN, "NONCE_1 of {} bytes", e1.len());
            assert_eq!(e1.len() + n, eq::NONCE_LEN, "NONCE_1 + NONCE_2");
        }
    }
    let p = dialect.prefix_len(n, min_keep);
    assert!(p <= n, "prefix {p} > extranonce2 size {n}");
    let alloc = PrefixAllocator::new(p);
    // The extranonce1 a miner is told plus its extranonce2 fill exactly the pool's space.
    let miner_e1 = e1.len() + alloc.bytes(0).count();
    let miner_n = n.saturating_sub(alloc.prefix_len());
    assert_eq!(miner_e1 + miner_n, e1.len() + n);
    if dialect.check_pool(n).is_ok() && dialect == Dialect::Equihash {
        assert!(miner_n >= eq::MIN_MINER_NONCE2);
    }
    let mut out = Vec::new();
    match dialect {
        Dialect::Stratum => {
            stratum::write_set_extranonce(&mut out, e1, alloc.bytes(0), miner_n);
            let v = must_be_line(&out, "set_extranonce");
            assert_eq!(v["params"][1], json!(miner_n));
        }
        Dialect::Equihash => {
            eq::write_set_extranonce(&mut out, e1, alloc.bytes(0));
            must_be_line(&out, "set_extranonce");
        }
    }
}

/// Target `pool_msg`: a pool's line through `parse_keeping_params` and every pool-result parser and job
/// decoder of both dialects; kept params are valid JSON and forward as one valid line; accepted extranonces
/// are in range; jobs round-trip; the parser keeps no state between lines.
pub fn pool_msg(data: &[u8]) {
    let mut r = Bytes(data);
    let min_keep = 1 + usize::from(r.byte() % 8);
    let line = r.rest();
    let mut parser = Parser::default();
    let mut buf = line.to_vec();
    let first = parser.parse_keeping_params(&mut buf, |m| {
        check_msg(line, &m, true);
        let text = format!("{m:?}");
        let Ok(m) = m else { return text };
        if !m.params_json.is_empty() {
            let mut out = Vec::new();
            json::write_notification(
                &mut out,
                m.method.unwrap_or("mining.notify"),
                m.params_json.as_bytes(),
            );
            let v = must_be_line(&out, "forwarded notification");
            let params = v["params"].clone();
            if let Ok(job) = Job::from_notify_params(&params) {
                assert_eq!(
                    Job::from_notify_params(&job.to_notify_params()).as_ref(),
                    Ok(&job)
                );
            }
            if let Ok(job) = EquihashJob::from_notify_params(&params) {
                assert_eq!(
                    EquihashJob::from_notify_params(&job.to_notify_params()).as_ref(),
                    Ok(&job)
                );
            }
            if let Ok(req) = stratum::parse_configure(m.params_json) {
                assert!(req.others.len() <= 16);
            }
        }
        for dialect in [Dialect::Stratum, Dialect::Equihash] {
            // The job decoder the upstream runs on every notify.
            let _ = dialect.parse_job(m.params_json);
            if let Ok((e1, n)) = dialect.parse_subscribe_result(m.result_json) {
                check_layout(dialect, &e1, n, min_keep);
            }
        }
        if let Ok((e1, n)) = stratum::parse_set_extranonce(m.param(0).as_str(), m.param(1).as_u64())
        {
            check_layout(Dialect::Stratum, &e1, n, min_keep);
        }
        if let Ok((e1, n)) = eq::parse_set_extranonce(m.param(0).as_str()) {
            check_layout(Dialect::Equihash, &e1, n, min_keep);
        }
        let _ = stratum::parse_configure_result(m.result_json);
        text
    });
    // The parser's reused buffers leak nothing into the next line.
    let mut other =
        br#"{"id":null,"method":"mining.notify","params":["j",[1,{"a":"\n"}],2.5,true]}"#.to_vec();
    parser.parse_keeping_params(&mut other, |m| assert!(m.is_ok()));
    let mut buf = line.to_vec();
    let again = parser.parse_keeping_params(&mut buf, |m| format!("{m:?}"));
    assert_eq!(
        first, again,
        "the same line parsed differently the second time"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Target: PROXY protocol headers

/// Target `proxy_protocol`: `parse` in every mode: headers are within the bytes and [`pp::MAX_HEADER`];
/// a verdict other than Incomplete does not change when more bytes arrive; Incomplete never holds past
/// MAX_HEADER; the modes agree with each other.
pub fn proxy_protocol(data: &[u8]) {
    let mut r = Bytes(data);
    let cut = usize::from(r.u16());
    let full = r.rest();
    let buf = &full[..cut.min(full.len())];
    for mode in [Mode::V1, Mode::V2, Mode::Optional] {
        let got = pp::parse(buf, mode);
        let more = pp::parse(full, mode);
        for (bytes, res) in [(buf, &got), (full, &more)] {
            match res {
                Ok(Parsed::Header { len, .. }) => {
                    assert!(*len > 0 && *len <= bytes.len() && *len <= pp::MAX_HEADER);
                    let h = &bytes[..*len];
                    if h.starts_with(b"PROXY") {
                        assert!(*len <= pp::V1_MAX && h.ends_with(b"\r\n"));
                    } else {
                        assert!(h.starts_with(&pp::V2_SIGNATURE) && *len >= 16);
                    }
                    // The header alone is the same header.
                    assert_eq!(&pp::parse(h, mode), res, "header alone");
                }
                Ok(Parsed::Incomplete) => {
                    assert!(
                        bytes.len() <= pp::MAX_HEADER,
                        "Incomplete at {}",
                        bytes.len()
                    )
                }
                Ok(Parsed::Absent) => assert_eq!(mode, Mode::Optional),
                Err(_) => {}
            }
        }
        if buf.is_empty() {
            assert_eq!(got, Ok(Parsed::Incomplete));
        }
        // Prefix stability: only Incomplete may change with more bytes.
        match &got {
            Ok(Parsed::Incomplete) => {}
            Ok(_) => assert_eq!(got, more, "{mode:?}: verdict changed with more bytes"),
            Err(e) => assert!(
                more.is_err(),
                "{mode:?}: error {e:?} became {more:?} with more bytes"
            ),
        }
        // Every prefix of a header is Incomplete.
        if let Ok(Parsed::Header { len, .. }) = got {
            let k = usize::from(data.first().copied().unwrap_or(0)) % len;
            assert_eq!(
                pp::parse(&buf[..k], mode),
                Ok(Parsed::Incomplete),
                "prefix {k}"
            );
        }
    }
    // A header in a required mode is the same header in optional mode, and the other way round.
    let opt = pp::parse(buf, Mode::Optional);
    for mode in [Mode::V1, Mode::V2] {
        if let Ok(p @ Parsed::Header { .. }) = pp::parse(buf, mode) {
            assert_eq!(opt, Ok(p));
        }
    }
    if let Ok(p @ Parsed::Header { .. }) = opt {
        assert!([Mode::V1, Mode::V2]
            .iter()
            .any(|&m| pp::parse(buf, m) == Ok(p)));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Target: config

/// True when checking this config would read only plain relative file names (the fuzzer must not make the
/// check read devices or the machine's files).
fn safe_paths(text: &str) -> bool {
    let Ok(c) = serde_saphyr::from_str::<Config>(text) else {
        return true;
    };
    let ok = |p: &str| !p.starts_with('/') && !p.contains("..") && !p.contains('~');
    c.proxies.iter().all(|proxy| {
        proxy.listen.iter().all(|l| {
            l.tls
                .as_ref()
                .is_none_or(|t| ok(&t.cert.value) && ok(&t.key.value))
        }) && proxy
            .pools
            .iter()
            .all(|p| p.ca.as_ref().is_none_or(|ca| ok(&ca.value)))
    })
}

/// Target `config`: any UTF-8 text: `Config::from_yaml` never panics; an accepted config checks clean and
/// its values are usable as the proxy uses them; every problem's line is within the text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = PoolUrl::parse(text) {
        assert!(!url.host.is_empty() && url.port != 0);
    }
    if !safe_paths(text) {
        return;
    }
    match Config::from_yaml(text) {
        Ok(c) => {
            assert!(c.check().is_empty());
            for p in &c.proxies {
                for v in [
                    p.idle_timeout,
                    p.share_timeout,
                    p.pool_wait_timeout,
                    p.retry_initial,
                    p.retry_max,
                    p.failback_interval,
                ] {
                    let _ = ProxyConfig::secs(v);
                }
                assert!((1..=8).contains(&p.min_extranonce2_size));
                for pool in &p.pools {
                    PoolUrl::parse(&pool.url.value).expect("accepted pool URL parses");
                }
                // The proxy turns these into Durations as it runs: they must fit one.
                if let Some(v) = &p.vardiff {
                    assert!(
                        Duration::try_from_secs_f64(v.retarget_interval).is_ok(),
                        "vardiff retarget_interval {} accepted but not a Duration",
                        v.retarget_interval
                    );
                }
                if let AuthConfig::Users(u) = &p.auth {
                    // A worker no user matches: no argon2 (whose cost the hash names) is run.
                    let nobody = "fuzz-nobody";
                    if u.users.iter().all(|user| user.name != nobody) {
                        let mut auth = Authenticator::default();
                        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
                        let r = auth.check(u, nobody, "x", ip, Instant::now());
                        assert!(r.is_err());
                    }
                }
                if p.protocol == fastproxy::config::ProtocolKind::Equihash {
                    let params = p.equihash_params();
                    assert!(params.solution_len() > 0);
                    let shape = eq::SolutionShape::new(&params);
                    assert_eq!(shape.hex_len, 2 * params.solution_with_prefix_len());
                }
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            let lines = 1 + text.bytes().filter(|&b| b == b'\n' || b == b'\r').count() as u64;
            for p in &problems {
                if let Some(l) = p.line {
                    assert!(l <= lines + 1, "problem on line {l} of {lines}: {p}");
                }
            }
        }
    }
}
