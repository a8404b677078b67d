//! JSON-RPC lines in and out: an in-place simd-json parse into a borrowed [`Msg`], and small writers.
//!
//! The parser keeps its simd-json buffers and tape between lines, so a steady stream of shares parses without
//! heap allocation. Strings in a [`Msg`] borrow the (unescaped in place) input line. Values that are not
//! scalars (the `error` of a reply, a complex result or param list) are re-encoded once into the parser's
//! scratch text, for the rare messages that need them.

use simd_json::prelude::*;
use simd_json::{Buffers, Tape};
use std::io::Write;

/// Most positional params a message is read with; the rest are counted but ignored.
pub const MAX_PARAMS: usize = 10;

/// A scalar JSON value borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
    /// An array or object: see [`Msg::params_json`] / [`Msg::result_json`].
    Complex,
}

impl<'a> Scalar<'a> {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as f64, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Uint(u) => Some(u as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The number as u64, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Scalar::Int(i) => u64::try_from(i).ok(),
            Scalar::Uint(u) => Some(u),
            _ => None,
        }
    }

    fn from_value(v: &simd_json::tape::Value<'_, 'a>) -> Scalar<'a> {
        if let Some(s) = (*v).into_string() {
            return Scalar::Str(s);
        }
        match v.value_type() {
            ValueType::Null => Scalar::Null,
            ValueType::Bool => v.as_bool().map_or(Scalar::Null, Scalar::Bool),
            ValueType::I64 => v.as_i64().map_or(Scalar::Null, Scalar::Int),
            ValueType::U64 => v.as_u64().map_or(Scalar::Null, Scalar::Uint),
            ValueType::F64 => v.as_f64().map_or(Scalar::Null, Scalar::Float),
            _ => Scalar::Complex,
        }
    }
}

/// The JSON text of a request id, kept inline (ids are short) so replies need no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct IdBuf {
    len: u8,
    bytes: [u8; IdBuf::CAP],
}

impl IdBuf {
    /// Longest id text kept; a longer id is refused (answered with id null).
    pub const CAP: usize = 46;

    /// `null`.
    pub fn null() -> IdBuf {
        let mut b = IdBuf {
            len: 4,
            bytes: [0; IdBuf::CAP],
        };
        b.bytes[..4].copy_from_slice(b"null");
        b
    }

    /// The JSON text of a scalar id; `None` when it is too long or not a valid id type.
    pub fn from_scalar(s: &Scalar<'_>) -> Option<IdBuf> {
        let mut text: Vec<u8> = Vec::new();
        let mut b = IdBuf {
            len: 0,
            bytes: [0; IdBuf::CAP],
        };
        let mut cur = std::io::Cursor::new(&mut b.bytes[..]);
        let ok = match *s {
            Scalar::Missing | Scalar::Null => return Some(IdBuf::null()),
            Scalar::Int(i) => write!(cur, "{i}").is_ok(),
            Scalar::Uint(u) => write!(cur, "{u}").is_ok(),
            Scalar::Float(f) if f.is_finite() => write!(cur, "{f}").is_ok(),
            Scalar::Str(st) => {
                write_str(&mut text, st);
                cur.write_all(&text).is_ok()
            }
            _ => false,
        };
        let n = cur.position() as usize;
        if !ok {
            return None;
        }
        b.len = n as u8;
        Some(b)
    }

    /// The id's JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        self.as_bytes() == b"null"
    }
}

impl std::fmt::Debug for IdBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One parsed JSON-RPC line.
#[derive(Debug)]
pub struct Msg<'a> {
    /// The id's JSON text (`null` when absent).
    pub id: IdBuf,
    /// The raw id, for the proxy's own numeric ids in replies.
    pub id_scalar: Scalar<'a>,
    pub method: Option<&'a str>,
    /// Positional params (first [`MAX_PARAMS`]).
    pub params: [Scalar<'a>; MAX_PARAMS],
    /// How many params there were; `None` when `params` is absent or not an array.
    pub params_len: Option<usize>,
    /// The params array as JSON text, when any param is complex or the caller asked for it (else empty).
    pub params_json: &'a str,
    /// True when the line has a `result` or `error` key (a reply).
    pub is_reply: bool,
    pub result: Scalar<'a>,
    /// The result as JSON text when complex (else empty).
    pub result_json: &'a str,
    /// The error as JSON text, when present and not null.
    pub error_json: Option<&'a str>,
}

impl<'a> Msg<'a> {
    /// Param `i`, or `Missing`.
    pub fn param(&self, i: usize) -> Scalar<'a> {
        self.params.get(i).copied().unwrap_or(Scalar::Missing)
    }
}

/// Why a line was not a JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON (or not UTF-8).
    InvalidJson,
    /// JSON, but not an object.
    NotAnObject,
    /// The id is neither a number, a string nor null, or too long.
    BadId,
}

impl ParseError {
    /// A message for the JSON-RPC error sent back.
    pub fn text(self) -> &'static str {
        match self {
            ParseError::InvalidJson => "invalid JSON",
            ParseError::NotAnObject => "request is not a JSON object",
            ParseError::BadId => "invalid request id",
        }
    }
}

/// Reusable parser state.
pub struct Parser {
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    /// Re-encoded complex values of the last message.
    scratch: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            buffers: Buffers::new(1024),
            tape: Some(Tape::null()),
            scratch: Vec::new(),
        }
    }
}

impl Parser {
    /// Parses `line` in place and hands the message to `f`. The params array is kept as JSON text when a
    /// param is complex, or always with [`Parser::parse_keeping_params`].
    pub fn parse<R>(
        &mut self,
        line: &mut [u8],
        f: impl FnOnce(Result<Msg<'_>, ParseError>) -> R,
    ) -> R {
        self.parse_inner(line, false, f)
    }

    /// Like [`Parser::parse`], with [`Msg::params_json`] always set (for messages passed on as they are).
    pub fn parse_keeping_params<R>(
        &mut self,
        line: &mut [u8],
        f: impl FnOnce(Result<Msg<'_>, ParseError>) -> R,
    ) -> R {
        self.parse_inner(line, true, f)
    }

    fn parse_inner<R>(
        &mut self,
        line: &mut [u8],
        keep_params: bool,
        f: impl FnOnce(Result<Msg<'_>, ParseError>) -> R,
    ) -> R {
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        self.scratch.clear();
        let mut ranges = ScratchRanges::default();
        let parsed = match simd_json::fill_tape(line, &mut self.buffers, &mut tape) {
            Err(_) => Err(ParseError::InvalidJson),
            Ok(()) => extract(&tape, &mut self.scratch, &mut ranges, keep_params),
        };
        // The tape borrows `line`; the message borrows `line` and `scratch`.
        let result = match parsed {
            Err(e) => f(Err(e)),
            Ok(mut m) => {
                let text = std::str::from_utf8(&self.scratch).unwrap_or("");
                m.params_json = ranges.params.map_or("", |r| text.get(r).unwrap_or(""));
                m.result_json = ranges.result.map_or("", |r| text.get(r).unwrap_or(""));
                m.error_json = ranges.error.map(|r| text.get(r).unwrap_or("null"));
                f(Ok(m))
            }
        };
        self.tape = Some(tape.reset());
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = Vec::new();
        }
        result
    }
}

#[derive(Default)]
struct ScratchRanges {
    params: Option<std::ops::Range<usize>>,
    result: Option<std::ops::Range<usize>>,
    error: Option<std::ops::Range<usize>>,
}

fn encode_into(
    v: &simd_json::tape::Value<'_, '_>,
    scratch: &mut Vec<u8>,
) -> std::ops::Range<usize> {
    let start = scratch.len();
    // Writing to a Vec cannot fail.
    let _ = v.write(scratch);
    start..scratch.len()
}

fn extract<'a>(
    tape: &Tape<'a>,
    scratch: &mut Vec<u8>,
    ranges: &mut ScratchRanges,
    keep_params: bool,
) -> Result<Msg<'a>, ParseError> {
    let root = tape.as_value();
    let obj = root.as_object().ok_or(ParseError::NotAnObject)?;
    let mut m = Msg {
        id: IdBuf::null(),
        id_scalar: Scalar::Missing,
        method: None,
        params: [Scalar::Missing; MAX_PARAMS],
        params_len: None,
        params_json: "",
        is_reply: false,
        result: Scalar::Missing,
        result_json: "",
        error_json: None,
    };
    for (k, v) in obj.iter() {
        match k {
            "id" => {
                m.id_scalar = Scalar::from_value(&v);
                m.id = IdBuf::from_scalar(&m.id_scalar).ok_or(ParseError::BadId)?;
            }
            "method" => m.method = v.into_string(),
            "params" => {
                // A repeated key: the last one wins, whole (no mix of occurrences).
                m.params = [Scalar::Missing; MAX_PARAMS];
                m.params_len = None;
                ranges.params = None;
                if let Some(arr) = v.as_array() {
                    let mut n = 0;
                    let mut complex = false;
                    for (i, p) in arr.iter().enumerate() {
                        let s = Scalar::from_value(&p);
                        complex |= s == Scalar::Complex;
                        if i < MAX_PARAMS {
                            m.params[i] = s;
                        }
                        n = i + 1;
                    }
                    m.params_len = Some(n);
                    if complex || keep_params {
                        ranges.params = Some(encode_into(&v, scratch));
                    }
                }
            }
            "result" => {
                m.is_reply = true;
                ranges.result = None;
                m.result = Scalar::from_value(&v);
                if m.result == Scalar::Complex {
                    ranges.result = Some(encode_into(&v, scratch));
                }
            }
            "error" => {
                m.is_reply = true;
                ranges.error = None;
                if v.value_type() != ValueType::Null {
                    ranges.error = Some(encode_into(&v, scratch));
                }
            }
            _ => {}
        }
    }
    Ok(m)
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{:04x}", b);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Appends a reply line `{"id":ID,"result":RESULT,"error":null}\n`, RESULT given as JSON text.
pub fn write_result(out: &mut Vec<u8>, id: &[u8], result_json: &[u8]) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result_json);
    out.extend_from_slice(b",\"error\":null}\n");
}

/// Appends an error reply line with the conventional `[code, "message", null]` error.
pub fn write_error(out: &mut Vec<u8>, id: &[u8], code: i32, message: &str) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id);
    let _ = write!(out, ",\"result\":null,\"error\":[{code},");
    write_str(out, message);
    out.extend_from_slice(b",null]}\n");
}

/// Appends an error reply whose error is given as JSON text (passed on as received).
pub fn write_error_json(out: &mut Vec<u8>, id: &[u8], error_json: &[u8]) {
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":null,\"error\":");
    out.extend_from_slice(error_json);
    out.extend_from_slice(b"}\n");
}

/// Appends a notification line `{"id":null,"method":"M","params":PARAMS}\n`, PARAMS given as JSON text.
pub fn write_notification(out: &mut Vec<u8>, method: &str, params_json: &[u8]) {
    out.extend_from_slice(b"{\"id\":null,\"method\":");
    write_str(out, method);
    out.extend_from_slice(b",\"params\":");
    out.extend_from_slice(params_json);
    out.extend_from_slice(b"}\n");
}

/// Appends a scalar as JSON: a pool's result passed on to a miner (`complex` is the JSON text of an array or
/// object, which the scalar only marks).
pub fn write_scalar(s: &Scalar<'_>, complex: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    match *s {
        Scalar::Missing | Scalar::Null => out.extend_from_slice(b"null"),
        Scalar::Bool(true) => out.extend_from_slice(b"true"),
        Scalar::Bool(false) => out.extend_from_slice(b"false"),
        Scalar::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Scalar::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Scalar::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Scalar::Str(s) => write_str(out, s),
        Scalar::Complex => out.extend_from_slice(complex.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_owned(line: &str) -> Result<String, ParseError> {
        let mut p = Parser::default();
        let mut bytes = line.as_bytes().to_vec();
        p.parse(&mut bytes, |m| m.map(|m| format!("{m:?}")))
    }

    #[test]
    fn parses_a_submit_with_scalars_only() {
        let mut p = Parser::default();
        let mut line = br#"{"id": "a\"b", "method": "mining.submit", "params": ["w", "j1", "00ff", "5f5e1000", "01020304"]}"#.to_vec();
        p.parse(&mut line, |m| {
            let m = m.unwrap();
            assert_eq!(m.id.as_bytes(), br#""a\"b""#);
            assert_eq!(m.method, Some("mining.submit"));
            assert_eq!(m.params_len, Some(5));
            assert_eq!(m.param(2).as_str(), Some("00ff"));
            assert_eq!(m.params_json, "");
            assert!(!m.is_reply);
        });
    }

    #[test]
    fn keeps_complex_values_as_text() {
        let mut p = Parser::default();
        let mut line = br#"{"id":7,"result":null,"error":{"code":23,"message":"low"}}"#.to_vec();
        p.parse(&mut line, |m| {
            let m = m.unwrap();
            assert!(m.is_reply);
            assert_eq!(m.id_scalar.as_u64(), Some(7));
            assert_eq!(m.result, Scalar::Null);
            let e: serde_json::Value = serde_json::from_str(m.error_json.unwrap()).unwrap();
            assert_eq!(e["code"], 23);
        });
        let mut line =
            br#"{"id":1,"result":[[["mining.notify","x"]],"aabb",8],"error":null}"#.to_vec();
        p.parse(&mut line, |m| {
            let m = m.unwrap();
            assert_eq!(m.error_json, None);
            let r: serde_json::Value = serde_json::from_str(m.result_json).unwrap();
            assert_eq!(r[1], "aabb");
        });
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_owned("not json"), Err(ParseError::InvalidJson));
        assert_eq!(parse_owned("[1,2]"), Err(ParseError::NotAnObject));
        assert_eq!(
            parse_owned(r#"{"id":[1],"method":"x"}"#),
            Err(ParseError::BadId)
        );
        let long = format!(r#"{{"id":"{}","method":"x"}}"#, "a".repeat(100));
        assert_eq!(parse_owned(&long), Err(ParseError::BadId));
        // A raw control character inside a string is not JSON.
        assert_eq!(
            parse_owned("{\"id\":1,\"method\":\"\u{0}\"}"),
            Err(ParseError::InvalidJson)
        );
    }

    #[test]
    fn writers_escape_and_frame() {
        let mut out = Vec::new();
        write_error(&mut out, b"3", 21, "job \"x\" not found");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"id\":3,\"result\":null,\"error\":[21,\"job \\\"x\\\" not found\",null]}\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"][1], "job \"x\" not found");
    }
}
