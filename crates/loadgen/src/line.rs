//! Just enough JSON reading for the hot path: top-level fields of one Stratum line, found by scanning
//! (no allocation, no full parse). The load generator trusts the shape of what its own pool and a proxy
//! send; anything it cannot read is counted as unreadable, never guessed.

use memchr::memmem;

/// The text right after `"key":` (whitespace skipped), or `None`.
pub fn field<'a>(line: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut pat = Vec::with_capacity(key.len() + 2);
    pat.push(b'"');
    pat.extend_from_slice(key.as_bytes());
    pat.push(b'"');
    let mut from = 0;
    while let Some(i) = memmem::find(&line[from..], &pat) {
        let rest = skip_ws(&line[from + i + pat.len()..]);
        if let Some(r) = rest.strip_prefix(b":") {
            return Some(skip_ws(r));
        }
        from += i + pat.len();
    }
    None
}

fn skip_ws(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    &s[n..]
}

/// The raw JSON scalar at the start of `s`: a string with its quotes, a number, `null`, `true` or `false`.
pub fn scalar(s: &[u8]) -> Option<&[u8]> {
    if s.first() == Some(&b'"') {
        let mut i = 1;
        while i < s.len() {
            match s[i] {
                b'\\' => i += 2,
                b'"' => return Some(&s[..=i]),
                _ => i += 1,
            }
        }
        return None;
    }
    let n = s
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
        .count();
    (n > 0).then(|| &s[..n])
}

/// The string at the start of `s`, without its quotes (escapes are not decoded).
pub fn string(s: &[u8]) -> Option<&[u8]> {
    let v = scalar(s)?;
    (v.len() >= 2 && v[0] == b'"').then(|| &v[1..v.len() - 1])
}

/// An unsigned decimal number at the start of `s`.
pub fn number(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&s[..digits]).ok()?.parse().ok()
}

/// The strings of a flat array at the start of `s` (`["a","b",...]`), up to `max` of them; a non-string
/// element ends the list.
pub fn strings(s: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let Some(mut rest) = s.strip_prefix(b"[") else {
        return out;
    };
    while out.len() < max {
        rest = skip_ws(rest);
        let Some(v) = string(rest) else { break };
        out.push(v);
        rest = skip_ws(&rest[v.len() + 2..]);
        match rest.strip_prefix(b",") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// The n-th element (0-based) of the array at the start of `s`, when elements 0..n are scalars.
pub fn nth_scalar(s: &[u8], n: usize) -> Option<&[u8]> {
    let mut rest = s.strip_prefix(b"[")?;
    for i in 0..=n {
        rest = skip_ws(rest);
        let v = scalar(rest)?;
        if i == n {
            return Some(v);
        }
        rest = skip_ws(&rest[v.len()..]).strip_prefix(b",")?;
    }
    None
}

/// Parses hex digits (at most 16) as a number.
pub fn hex_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_with_or_without_spaces() {
        let l = br#"{"id": 17, "result" : true, "error": null}"#;
        assert_eq!(number(field(l, "id").unwrap()), Some(17));
        assert!(field(l, "result").unwrap().starts_with(b"true"));
        assert_eq!(scalar(field(l, "error").unwrap()), Some(&b"null"[..]));
        let n = br#"{"id":null,"method":"mining.notify","params":["1f","00ff",["ab"],true]}"#;
        assert_eq!(
            string(field(n, "method").unwrap()),
            Some(&b"mining.notify"[..])
        );
        assert_eq!(
            strings(field(n, "params").unwrap(), 9),
            vec![&b"1f"[..], b"00ff"]
        );
        assert_eq!(
            nth_scalar(field(n, "params").unwrap(), 1),
            Some(&b"\"00ff\""[..])
        );
        assert_eq!(scalar(br#""a\"b" "#), Some(&br#""a\"b""#[..]));
        assert_eq!(hex_u64(b"1f"), Some(31));
    }
}
