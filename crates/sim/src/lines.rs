//! JSON lines, as the simulated pools and miners read and write them: a line reader with a length bound,
//! the parse of one line into a message, and the shapes of Stratum notifications, replies and errors.

use serde_json::{json, Value};
use std::fmt::Display;
use std::io::{self, BufRead, Read};

/// Longest accepted JSON line (bytes, without the newline); a longer one closes the connection.
pub const MAX_LINE: usize = 64 * 1024;

/// Why a submit was refused: a conventional Stratum error code and message.
pub(crate) type Reject = (i64, &'static str);

/// Result of [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// `buf` holds a complete line ending in `\n`.
    Line,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
    /// More than `max` bytes without a newline.
    TooLong,
}

/// Reads into `buf` up to and including the next `\n`, never letting `buf` grow past `max + 1` bytes. On a
/// timeout the error is returned and the partial line stays in `buf`: call again with the same `buf`.
pub(crate) fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let room = (max + 1).saturating_sub(buf.len()) as u64;
    reader.by_ref().take(room).read_until(b'\n', buf)?;
    if buf.last() == Some(&b'\n') {
        Ok(LineRead::Line)
    } else if buf.len() > max {
        Ok(LineRead::TooLong)
    } else {
        Ok(LineRead::Eof)
    }
}

/// True for the errors a read timeout or a non-blocking socket produce.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// One line as a JSON message; `None` for a blank line or invalid JSON (logged with `who`).
pub(crate) fn parse_line(line: &[u8], who: impl Display) -> Option<Value> {
    let text = line.trim_ascii();
    if text.is_empty() {
        return None;
    }
    serde_json::from_slice(text)
        .map_err(|e| log::debug!("{who}: ignoring invalid JSON: {e}"))
        .ok()
}

/// A request or notification's `(method, id, params)` (`null` for a missing id or params); `None` for a
/// reply or anything else without a method.
pub(crate) fn request_parts(msg: &Value) -> Option<(&str, Value, Value)> {
    let method = msg.get("method").and_then(Value::as_str)?;
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    Some((method, id, params))
}

/// A notification: `{"id": null, "method", "params"}`.
pub(crate) fn notification(method: &str, params: Value) -> Value {
    json!({"id": null, "method": method, "params": params})
}

/// A successful reply to request `id`.
pub(crate) fn ok_reply(id: &Value, result: Value) -> Value {
    json!({"id": id, "result": result, "error": null})
}

/// An error reply to request `id`: `[code, message, null]`.
pub(crate) fn error_reply(id: &Value, (code, message): Reject) -> Value {
    json!({"id": id, "result": null, "error": [code, message, null]})
}

/// The params of `client.reconnect`: `[host, port, wait]` (`null` for a missing host or port), `[]` when
/// all three are empty/zero.
pub(crate) fn reconnect_params(host: Option<&str>, port: Option<u16>, wait: u32) -> Value {
    if host.is_none() && port.is_none() && wait == 0 {
        json!([])
    } else {
        json!([host, port, wait])
    }
}

/// Code and message of an error as pools send it: `[code, msg, ..]`, `{code, message}`, a string, or
/// nothing (a plain `false` result: code 0).
pub(crate) fn describe_error(error: &Value) -> (i64, String) {
    match error {
        Value::Array(a) => (
            a.first().and_then(Value::as_i64).unwrap_or(-1),
            a.get(1).and_then(Value::as_str).unwrap_or("").to_string(),
        ),
        Value::Object(o) => (
            o.get("code").and_then(Value::as_i64).unwrap_or(-1),
            o.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        Value::String(s) => (-1, s.clone()),
        Value::Null => (0, "false".into()),
        other => (-1, other.to_string()),
    }
}
