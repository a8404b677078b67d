//! Lower-case hex encoding and strict decoding, without allocation where the caller gives the buffer.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Value of one hex digit (either case), or `None`.
#[inline]
pub fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// True when `s` is an even-length string of hex digits.
#[inline]
pub fn is_hex(s: &[u8]) -> bool {
    s.len().is_multiple_of(2) && s.iter().all(|&c| digit(c).is_some())
}

/// Appends the lower-case hex of `bytes` to `out`.
#[inline]
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
}

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut out);
    // Only ASCII hex digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes `s` into `out` (which must be exactly half its length). False on odd length or a non-hex digit.
pub fn decode_into(s: &[u8], out: &mut [u8]) -> bool {
    if s.len() != out.len() * 2 {
        return false;
    }
    for (i, pair) in s.chunks_exact(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h << 4) | l,
            _ => return false,
        }
    }
    true
}

/// Decodes a hex string into a new vector; `None` on odd length or a non-hex digit.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; s.len() / 2];
    decode_into(s, &mut out).then_some(out)
}

/// Decodes exactly `N` bytes of hex.
pub fn decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_into(s.as_bytes(), &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(decode("0"), None);
        assert_eq!(decode("zz"), None);
        assert_eq!(decode_array::<2>("beef"), Some([0xbe, 0xef]));
        assert_eq!(decode_array::<2>("beefee"), None);
        assert!(is_hex(b"09af"));
        assert!(!is_hex(b"09a"));
        assert!(!is_hex(b"0g"));
    }
}
