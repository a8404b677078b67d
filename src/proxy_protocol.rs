//! HAProxy PROXY protocol headers, versions 1 (text) and 2 (binary), as specified by HAProxy's
//! "proxy-protocol.txt" ("The PROXY protocol, Versions 1 & 2").
//!
//! A load balancer in front of the proxy prepends one header to each connection, which carries the client's
//! real address. [`parse`] looks at the first bytes a connection sent and says whether they hold a complete
//! header (and how many bytes it takes), need more bytes, or are no header at all. It never allocates and
//! never panics, whatever the input.
//!
//! Where the spec leaves a choice, this parser decides:
//! - v1: the line ends at its first CR or LF, which must be the CRLF pair; a line that cannot end within
//!   107 bytes (the spec's maximum, CRLF included) is an error. Addresses must parse as std's
//!   [`Ipv4Addr`] / [`Ipv6Addr`] (so no leading zeros in IPv4; an IPv6 address may end in a dotted IPv4
//!   part, as `inet_ntop` prints mapped addresses); both must match the announced family. Ports are decimal,
//!   0..=65535, without leading zeros. After `UNKNOWN` anything up to the CRLF is ignored.
//! - v2: the whole header (16 fixed bytes + announced length) is capped at [`MAX_HEADER`] = 536 bytes, the
//!   spec's "smallest TCP segment that any TCP/IP host is required to support (576 - 40 = 536 bytes)" that
//!   both formats are designed to fit in. LOCAL ignores the family byte and skips the whole block. PROXY
//!   requires assigned family and protocol nibbles; TCP over IPv4/IPv6 gives the source address, the other
//!   combinations (UNSPEC, UDP, UNIX) fall back to UNSPEC as the spec allows (accepted, no address). When the
//!   family's address block size is known (12, 36 or 216 bytes) the length must cover it, and the bytes
//!   after it must be whole TLVs (type, 2-byte length, value) ending exactly at the header's end; their
//!   contents are skipped (a CRC32C TLV is not verified).
//! - Errors are reported as soon as the bytes seen cannot become a valid header: [`Parsed::Incomplete`] means
//!   some continuation of the bytes is a valid header (within the size limits).
//! - [`Mode::Optional`] commits to v1 once the 5 bytes `PROXY` are seen and to v2 once the 12-byte signature
//!   is; until then, bytes that match neither are [`Parsed::Absent`]. Note that the spec warns against
//!   guessing: a listener in this mode lets any client claim any source address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Longest header accepted, in bytes: 536, the smallest TCP segment every host must accept (576 - 40), which
/// the spec designs both formats to fit in. v2 headers (16 + announced length) are capped at this; v1 lines
/// have their own, smaller limit of [`V1_MAX`].
pub const MAX_HEADER: usize = 536;

/// Longest v1 line, CRLF included (the spec's worst case, `PROXY UNKNOWN` with two full IPv6 addresses).
pub const V1_MAX: usize = 107;

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Size of the fixed part of a v2 header: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;

/// What starts every v1 header.
const V1_SIGNATURE: &[u8] = b"PROXY";

/// What the listener expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A v1 (text) header is required.
    V1,
    /// A v2 (binary) header is required.
    V2,
    /// A v1 or v2 header, or none at all.
    Optional,
}

/// A PROXY protocol version, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// What the start of a connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Need more bytes (only ever when what was seen so far can still become a valid header).
    Incomplete,
    /// A header of `len` bytes; `source` is the client's address (None for LOCAL / UNKNOWN / UNSPEC: use the
    /// socket's peer).
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
    /// No header at all (only in Mode::Optional, when the bytes cannot start a header): the stream starts at
    /// byte 0.
    Absent,
}

/// Why the start of a connection is not an acceptable header. The connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The listener requires a header of this version and the bytes are no PROXY header at all.
    Missing { expected: Version },
    /// The listener requires one version and the bytes start like the other one.
    WrongVersion { expected: Version, found: Version },
    /// A v1 line that breaks the spec; the text says how.
    MalformedV1(&'static str),
    /// A v2 header that breaks the spec; the text says how.
    MalformedV2(&'static str),
    /// v1: the line cannot end with CRLF within [`V1_MAX`] bytes (`len` = bytes received so far).
    /// v2: the announced header size `len` is over [`MAX_HEADER`].
    TooLong { version: Version, len: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing { expected } => write!(
                f,
                "PROXY protocol: expected a {expected} header, but the connection does not start with one"
            ),
            Error::WrongVersion { expected, found } => write!(
                f,
                "PROXY protocol: expected a {expected} header, but the connection starts like a {found} header"
            ),
            Error::MalformedV1(why) => write!(f, "PROXY protocol: malformed v1 header: {why}"),
            Error::MalformedV2(why) => write!(f, "PROXY protocol: malformed v2 header: {why}"),
            Error::TooLong {
                version: Version::V1,
                len,
            } => write!(
                f,
                "PROXY protocol: v1 header does not end with CRLF within {V1_MAX} bytes ({len} bytes received)"
            ),
            Error::TooLong {
                version: Version::V2,
                len,
            } => write!(
                f,
                "PROXY protocol: v2 header of {len} bytes is over the {MAX_HEADER}-byte limit"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Parses the PROXY protocol header at the start of `buf` (everything the connection sent so far).
///
/// On [`Parsed::Header`] the application stream starts at `buf[len..]`; on [`Parsed::Absent`] at `buf[0..]`;
/// on [`Parsed::Incomplete`] call again when more bytes arrived. An empty `buf` is `Incomplete`.
pub fn parse(buf: &[u8], mode: Mode) -> Result<Parsed, Error> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    let v1 = starts_like(buf, V1_SIGNATURE);
    let v2 = starts_like(buf, &V2_SIGNATURE);
    match mode {
        Mode::V1 if v1 => parse_v1(buf),
        Mode::V1 if v2 => Err(Error::WrongVersion {
            expected: Version::V1,
            found: Version::V2,
        }),
        Mode::V1 => Err(Error::Missing {
            expected: Version::V1,
        }),
        Mode::V2 if v2 => parse_v2(buf),
        Mode::V2 if v1 => Err(Error::WrongVersion {
            expected: Version::V2,
            found: Version::V1,
        }),
        Mode::V2 => Err(Error::Missing {
            expected: Version::V2,
        }),
        Mode::Optional if v1 => parse_v1(buf),
        Mode::Optional if v2 => parse_v2(buf),
        Mode::Optional => Ok(Parsed::Absent),
    }
}

/// True when `buf` and `sig` agree on their common length.
fn starts_like(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

// ---------------------------------------------------------------------------------------------------------
// Version 1

const V1_HEAD: &[u8] = b"PROXY ";
const E_HEAD: &str = "expected \"PROXY\" followed by one space";
const E_PROTO: &str = "unknown protocol (expected TCP4, TCP6 or UNKNOWN)";
const E_SPACING: &str = "fields must be separated by exactly one space";
const E_MISSING: &str = "missing fields (expected source and destination addresses and ports)";
const E_EXTRA: &str = "extra field after the destination port";
const E_BARE_LF: &str = "line ends with LF without CR";
const E_BARE_CR: &str = "CR not followed by LF";

/// The address family a v1 line announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// The fields after the protocol of a TCP4/TCP6 line, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Src,
    Dst,
    SrcPort,
    DstPort,
}

const FIELDS: [Field; 4] = [Field::Src, Field::Dst, Field::SrcPort, Field::DstPort];

impl Field {
    fn bad(self) -> Error {
        Error::MalformedV1(match self {
            Field::Src => "bad source address",
            Field::Dst => "bad destination address",
            Field::SrcPort => "bad source port",
            Field::DstPort => "bad destination port",
        })
    }

    /// True when `f`, the whole field, is valid.
    fn valid(self, f: &[u8], family: Family) -> bool {
        match self {
            Field::Src | Field::Dst => v1_addr(f, family).is_some(),
            Field::SrcPort | Field::DstPort => v1_port(f).is_some(),
        }
    }

    /// Fewest bytes that complete the partial field `f`, or None when nothing can.
    fn rest(self, f: &[u8], family: Family) -> Option<usize> {
        match (self, family) {
            (Field::SrcPort | Field::DstPort, _) => port_rest(f),
            (_, Family::V4) => dotted_rest(f, 0),
            (_, Family::V6) => ipv6_rest(f),
        }
    }

    /// Length of the shortest valid field: `0`, `0.0.0.0` or `::`.
    fn min_len(self, family: Family) -> usize {
        match (self, family) {
            (Field::SrcPort | Field::DstPort, _) => 1,
            (_, Family::V4) => 7,
            (_, Family::V6) => 2,
        }
    }
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, Error> {
    let window = &buf[..buf.len().min(V1_MAX)];
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) if window[i] == b'\n' => Err(Error::MalformedV1(E_BARE_LF)),
        // A CR as the 107th byte leaves no room for the LF.
        Some(i) if i + 2 > V1_MAX => Err(Error::TooLong {
            version: Version::V1,
            len: buf.len(),
        }),
        Some(i) => match buf.get(i + 1) {
            Some(b'\n') => v1_line(&buf[..i]).map(|source| Parsed::Header { len: i + 2, source }),
            Some(_) => Err(Error::MalformedV1(E_BARE_CR)),
            // Only the LF is missing: the line must already be complete and valid.
            None => v1_line(&buf[..i]).map(|_| Parsed::Incomplete),
        },
        None if buf.len() >= V1_MAX => Err(Error::TooLong {
            version: Version::V1,
            len: buf.len(),
        }),
        None => v1_partial(buf).map(|()| Parsed::Incomplete),
    }
}

/// Parses a complete v1 line (without its CRLF); the source address, None for UNKNOWN.
fn v1_line(line: &[u8]) -> Result<Option<SocketAddr>, Error> {
    let rest = line
        .strip_prefix(V1_HEAD)
        .ok_or(Error::MalformedV1(E_HEAD))?;
    let mut fields = rest.split(|&b| b == b' ');
    let family = match fields.next() {
        Some(b"TCP4") => Family::V4,
        Some(b"TCP6") => Family::V6,
        // The receiver must ignore anything after UNKNOWN.
        Some(b"UNKNOWN") => return Ok(None),
        _ => return Err(Error::MalformedV1(E_PROTO)),
    };
    let mut take = || match fields.next() {
        None => Err(Error::MalformedV1(E_MISSING)),
        Some([]) => Err(Error::MalformedV1(E_SPACING)),
        Some(f) => Ok(f),
    };
    let src = take()?;
    let src = v1_addr(src, family).ok_or(Field::Src.bad())?;
    let dst = take()?;
    v1_addr(dst, family).ok_or(Field::Dst.bad())?;
    let sport = take()?;
    let sport = v1_port(sport).ok_or(Field::SrcPort.bad())?;
    let dport = take()?;
    v1_port(dport).ok_or(Field::DstPort.bad())?;
    if fields.next().is_some() {
        return Err(Error::MalformedV1(E_EXTRA));
    }
    Ok(Some(SocketAddr::new(src, sport)))
}

/// Checks that `p` (no CR or LF, shorter than [`V1_MAX`]) can still be completed into a valid line that ends
/// within [`V1_MAX`] bytes.
fn v1_partial(p: &[u8]) -> Result<(), Error> {
    let Some(rest) = p.strip_prefix(V1_HEAD) else {
        return if V1_HEAD.starts_with(p) {
            Ok(())
        } else {
            Err(Error::MalformedV1(E_HEAD))
        };
    };
    let fits = |need: usize| {
        if p.len() + need <= V1_MAX {
            Ok(())
        } else {
            Err(Error::TooLong {
                version: Version::V1,
                len: p.len(),
            })
        }
    };
    let mut family = Family::V4;
    let mut fields = rest.split(|&b| b == b' ').enumerate().peekable();
    while let Some((idx, field)) = fields.next() {
        let last = fields.peek().is_none();
        if idx == 0 {
            if last {
                // Still reading the protocol (at most 13 bytes in: any completion fits).
                let known = [&b"TCP4"[..], b"TCP6", b"UNKNOWN"];
                return if known.iter().any(|k| k.starts_with(field)) {
                    Ok(())
                } else {
                    Err(Error::MalformedV1(E_PROTO))
                };
            }
            family = match field {
                b"TCP4" => Family::V4,
                b"TCP6" => Family::V6,
                b"UNKNOWN" => return fits(2),
                _ => return Err(Error::MalformedV1(E_PROTO)),
            };
            continue;
        }
        let Some(&which) = FIELDS.get(idx - 1) else {
            return Err(Error::MalformedV1(E_EXTRA));
        };
        if last {
            let need = which.rest(field, family).ok_or(which.bad())?;
            let after: usize = FIELDS.iter().skip(idx).map(|f| 1 + f.min_len(family)).sum();
            return fits(need + after + 2);
        }
        if field.is_empty() {
            return Err(Error::MalformedV1(E_SPACING));
        }
        if !which.valid(field, family) {
            return Err(which.bad());
        }
    }
    Ok(())
}

fn v1_addr(f: &[u8], family: Family) -> Option<IpAddr> {
    let s = std::str::from_utf8(f).ok()?;
    match family {
        Family::V4 => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        Family::V6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// A decimal port 0..=65535 without leading zeros.
fn v1_port(f: &[u8]) -> Option<u16> {
    match port_rest(f) {
        Some(0) => {
            let value = f.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
            u16::try_from(value).ok()
        }
        _ => None,
    }
}

/// Fewest bytes that complete the partial port `f` (0 when it is already a valid port), or None.
fn port_rest(f: &[u8]) -> Option<usize> {
    if f.is_empty() {
        return Some(1);
    }
    if f.len() > 5 || !f.iter().all(u8::is_ascii_digit) || (f.len() > 1 && f[0] == b'0') {
        return None;
    }
    let value = f.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
    (value <= 65535).then_some(0)
}

/// True when `f` is one dotted-quad octet as std reads it: 1 to 3 digits, no leading zero, at most 255.
fn octet(f: &[u8]) -> bool {
    port_rest(f) == Some(0) && f.len() <= 3 && {
        let value = f.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        value <= 255
    }
}

/// Fewest bytes that complete the partial dotted quad `f` (which follows `dots` dots already read) into a
/// valid IPv4 address as std's `Ipv4Addr` reads it, or None when nothing can.
fn dotted_rest(f: &[u8], mut dots: usize) -> Option<usize> {
    let mut digits = 0usize;
    let mut value = 0u32;
    for &b in f {
        match b {
            b'0'..=b'9' => {
                if digits > 0 && value == 0 {
                    return None; // leading zero
                }
                digits += 1;
                value = value * 10 + u32::from(b - b'0');
                if digits > 3 || value > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && dots < 3 => {
                dots += 1;
                digits = 0;
                value = 0;
            }
            _ => return None,
        }
    }
    let left = 3 - dots; // octets after the current one
    Some(if digits == 0 { 1 + 2 * left } else { 2 * left })
}

/// Fewest bytes that complete the partial IPv6 address `f` into one std's `Ipv6Addr` accepts, or None when
/// nothing can. std's grammar: up to 8 groups of 1 to 4 hex digits separated by `:`; at most one `::`
/// standing for at least one zero group (so at most 7 written groups with it); a dotted IPv4 address may
/// take the place of the last two groups (after exactly 6 groups, or after `::` within the 7).
fn ipv6_rest(f: &[u8]) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum St {
        Start,
        /// A `:` at the very start (must become `::`).
        Lead,
        /// Inside a group.
        Group,
        /// A single `:` after a group.
        Colon,
        /// Just after `::`.
        Double,
    }
    let mut st = St::Start;
    let mut groups = 0usize; // groups finished by a `:`
    let mut double = false;
    let mut item = 0usize; // where the current group starts
    let mut digits = 0usize;
    for (i, &b) in f.iter().enumerate() {
        let max_groups = if double { 7 } else { 8 };
        st = match (st, b) {
            (St::Start | St::Colon | St::Double, _) if b.is_ascii_hexdigit() => {
                if groups + 1 > max_groups {
                    return None;
                }
                item = i;
                digits = 1;
                St::Group
            }
            (St::Group, _) if b.is_ascii_hexdigit() => {
                digits += 1;
                if digits > 4 {
                    return None;
                }
                St::Group
            }
            (St::Group, b':') => {
                groups += 1;
                // Another group or a `::` must still fit.
                if groups >= max_groups {
                    return None;
                }
                St::Colon
            }
            (St::Group, b'.') => {
                let room = if double { groups + 2 <= 7 } else { groups == 6 };
                if !room || !octet(&f[item..i]) {
                    return None;
                }
                return dotted_rest(f.get(i + 1..).unwrap_or_default(), 1);
            }
            (St::Start, b':') => St::Lead,
            (St::Lead, b':') | (St::Colon, b':') if !double => {
                double = true;
                St::Double
            }
            _ => return None,
        };
    }
    Some(match st {
        St::Start => 2,
        St::Lead | St::Colon => 1,
        St::Group if double || groups + 1 == 8 => 0,
        St::Group => 2,
        St::Double => 0,
    })
}

// ---------------------------------------------------------------------------------------------------------
// Version 2

const E_VERSION: &str = "version is not 2 (high nibble of byte 13)";
const E_COMMAND: &str = "command is neither LOCAL nor PROXY (low nibble of byte 13)";
const E_FAMILY: &str = "unassigned address family (high nibble of byte 14)";
const E_PROTOCOL: &str = "unassigned transport protocol (low nibble of byte 14)";
const E_SHORT: &str = "address length too short for the address family";
const E_TLV: &str = "TLVs do not end exactly at the end of the header";

fn parse_v2(buf: &[u8]) -> Result<Parsed, Error> {
    // The caller checked the signature as far as `buf` goes.
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(Parsed::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(Error::MalformedV2(E_VERSION));
    }
    let proxy = match ver_cmd & 0x0f {
        0 => false,
        1 => true,
        _ => return Err(Error::MalformedV2(E_COMMAND)),
    };
    let Some(&fam) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    // (address block size, whether it holds a TCP source address); None = ignore the whole block.
    let block = if proxy {
        let (family, protocol) = (fam >> 4, fam & 0x0f);
        if family > 3 {
            return Err(Error::MalformedV2(E_FAMILY));
        }
        if protocol > 2 {
            return Err(Error::MalformedV2(E_PROTOCOL));
        }
        match (family, protocol) {
            (0, _) | (_, 0) => None,
            (1, p) => Some((12, p == 1)),
            (2, p) => Some((36, p == 1)),
            _ => Some((216, false)),
        }
    } else {
        // LOCAL: "discard the protocol block including the family which is ignored".
        None
    };
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Ok(Parsed::Incomplete);
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_HEADER {
        return Err(Error::TooLong {
            version: Version::V2,
            len,
        });
    }
    let Some((size, tcp)) = block else {
        return Ok(if buf.len() < len {
            Parsed::Incomplete
        } else {
            Parsed::Header { len, source: None }
        });
    };
    let mut pos = V2_FIXED + size;
    if pos > len {
        return Err(Error::MalformedV2(E_SHORT));
    }
    // Walk the TLVs as far as they are here: each must end within the header.
    while pos < len {
        if len - pos < 3 {
            return Err(Error::MalformedV2(E_TLV));
        }
        let (Some(&hi), Some(&lo)) = (buf.get(pos + 1), buf.get(pos + 2)) else {
            break;
        };
        pos += 3 + usize::from(u16::from_be_bytes([hi, lo]));
        if pos > len {
            return Err(Error::MalformedV2(E_TLV));
        }
    }
    let Some(header) = buf.get(..len) else {
        return Ok(Parsed::Incomplete);
    };
    let source = if tcp { v2_source(header) } else { None };
    Ok(Parsed::Header { len, source })
}

/// The source address of a complete TCP over IPv4 or IPv6 v2 header.
fn v2_source(h: &[u8]) -> Option<SocketAddr> {
    let port = |at: usize| Some(u16::from_be_bytes(h.get(at..at + 2)?.try_into().ok()?));
    match h.get(13)? >> 4 {
        1 => {
            let ip: [u8; 4] = h.get(16..20)?.try_into().ok()?;
            Some(SocketAddrV4::new(ip.into(), port(24)?).into())
        }
        2 => {
            let ip: [u8; 16] = h.get(16..32)?.try_into().ok()?;
            Some(SocketAddrV6::new(ip.into(), port(48)?, 0, 0).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn header(len: usize, source: Option<&str>) -> Result<Parsed, Error> {
        Ok(Parsed::Header {
            len,
            source: source.map(sa),
        })
    }

    fn with_payload(h: &[u8]) -> Vec<u8> {
        [h, PAYLOAD].concat()
    }

    fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(fam);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        t.extend_from_slice(value);
        t
    }

    fn block4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        [&src[..], &dst, &sport.to_be_bytes(), &dport.to_be_bytes()].concat()
    }

    fn block6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
        [
            &src.octets()[..],
            &dst.octets(),
            &sport.to_be_bytes(),
            &dport.to_be_bytes(),
        ]
        .concat()
    }

    /// Checks `h` (a valid header) in `modes`: every prefix is Incomplete, the whole and the whole plus a
    /// payload give `want`.
    fn check_valid(h: &[u8], modes: &[Mode], want: &Result<Parsed, Error>) {
        for &mode in modes {
            for k in 0..h.len() {
                assert_eq!(
                    parse(&h[..k], mode),
                    Ok(Parsed::Incomplete),
                    "{mode:?} prefix {k} of {:?}",
                    String::from_utf8_lossy(h)
                );
            }
            assert_eq!(
                &parse(h, mode),
                want,
                "{mode:?} {:?}",
                String::from_utf8_lossy(h)
            );
            assert_eq!(&parse(&with_payload(h), mode), want, "{mode:?} + payload");
        }
    }

    const V1_MODES: &[Mode] = &[Mode::V1, Mode::Optional];
    const V2_MODES: &[Mode] = &[Mode::V2, Mode::Optional];

    #[test]
    fn v1_tcp4() {
        let h = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        check_valid(h, V1_MODES, &header(h.len(), Some("192.168.0.1:56324")));
        let h = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert_eq!(h.len(), 56);
        check_valid(h, V1_MODES, &header(56, Some("255.255.255.255:65535")));
        let h = b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n";
        check_valid(h, V1_MODES, &header(h.len(), Some("0.0.0.0:0")));
    }

    #[test]
    fn v1_tcp6() {
        let h = b"PROXY TCP6 2001:db8::1 2001:DB8::2 4000 3333\r\n";
        check_valid(h, V1_MODES, &header(h.len(), Some("[2001:db8::1]:4000")));
        let h = b"PROXY TCP6 ::ffff:10.0.0.1 :: 1 2\r\n";
        check_valid(h, V1_MODES, &header(h.len(), Some("[::ffff:10.0.0.1]:1")));
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let h = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
        assert_eq!(h.len(), 104);
        check_valid(
            h.as_bytes(),
            V1_MODES,
            &header(104, Some(&format!("[{full}]:65535"))),
        );
    }

    #[test]
    fn v1_unknown() {
        check_valid(b"PROXY UNKNOWN\r\n", V1_MODES, &header(15, None));
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let h = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
        assert_eq!(h.len(), V1_MAX);
        check_valid(h.as_bytes(), V1_MODES, &header(V1_MAX, None));
        // Anything after UNKNOWN is ignored.
        let h = b"PROXY UNKNOWN whatever  \x01\xff\r\n";
        check_valid(h, V1_MODES, &header(h.len(), None));
    }

    #[test]
    fn v2_tcp4() {
        let body = block4([10, 1, 2, 3], [192, 168, 0, 1], 45000, 3333);
        let h = v2(0x21, 0x11, &body);
        assert_eq!(h.len(), 28);
        check_valid(&h, V2_MODES, &header(28, Some("10.1.2.3:45000")));
        let tlvs = [
            tlv(0x01, b"h2"),
            tlv(0x04, &[]),
            tlv(0x02, b"pool.example"),
            tlv(0x20, &[1, 0, 0, 0, 0]),
        ]
        .concat();
        let h = v2(0x21, 0x11, &[&body[..], &tlvs].concat());
        check_valid(
            &h,
            V2_MODES,
            &header(28 + tlvs.len(), Some("10.1.2.3:45000")),
        );
    }

    #[test]
    fn v2_tcp6() {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let body = block6(src, Ipv6Addr::LOCALHOST, 1, 65535);
        let h = v2(0x21, 0x21, &body);
        assert_eq!(h.len(), 52);
        check_valid(&h, V2_MODES, &header(52, Some("[2001:db8::7]:1")));
        let tlvs = [tlv(0x05, &[9; 128]), tlv(0xe0, b"x")].concat();
        let h = v2(0x21, 0x21, &[&body[..], &tlvs].concat());
        check_valid(
            &h,
            V2_MODES,
            &header(52 + tlvs.len(), Some("[2001:db8::7]:1")),
        );
    }

    #[test]
    fn v2_local_unspec_and_others() {
        // LOCAL: no address, whatever the block holds, even an unassigned family.
        check_valid(&v2(0x20, 0x00, &[]), V2_MODES, &header(16, None));
        let body = block4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        check_valid(&v2(0x20, 0x11, &body), V2_MODES, &header(28, None));
        check_valid(&v2(0x20, 0xff, &[7; 5]), V2_MODES, &header(21, None));
        // PROXY with UNSPEC: accepted, no address, block ignored.
        check_valid(&v2(0x21, 0x00, &[]), V2_MODES, &header(16, None));
        check_valid(&v2(0x21, 0x00, &[1, 2]), V2_MODES, &header(18, None));
        // UDP and UNIX fall back to UNSPEC, but their blocks are still sized and TLVs still checked.
        check_valid(&v2(0x21, 0x12, &body), V2_MODES, &header(28, None));
        let h = v2(0x21, 0x32, &[&[0; 216][..], &tlv(4, b"ab")].concat());
        check_valid(&h, V2_MODES, &header(16 + 216 + 5, None));
        assert_eq!(
            parse(&v2(0x21, 0x31, &[0; 215]), Mode::V2),
            Err(Error::MalformedV2(E_SHORT))
        );
    }

    #[test]
    fn optional_absent() {
        let bufs: [&[u8]; 7] = [
            PAYLOAD,
            b"{",
            b"GET / HTTP/1.1\r\n",
            b"\r\n{\"id\":1}\n",
            b"PROX{",
            b"\r\n\r\n\0\r\nQUIX\n\x21\x11\0\x0c",
            b"\n",
        ];
        for buf in bufs {
            assert_eq!(parse(buf, Mode::Optional), Ok(Parsed::Absent), "{buf:?}");
        }
        // Prefixes of either signature wait.
        for k in 1..=6 {
            assert_eq!(
                parse(&b"PROXY "[..k], Mode::Optional),
                Ok(Parsed::Incomplete)
            );
        }
        for k in 1..=12 {
            assert_eq!(
                parse(&V2_SIGNATURE[..k], Mode::Optional),
                Ok(Parsed::Incomplete)
            );
        }
        for mode in [Mode::V1, Mode::V2, Mode::Optional] {
            assert_eq!(parse(b"", mode), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn required_and_wrong_version() {
        let missing1 = Err(Error::Missing {
            expected: Version::V1,
        });
        let missing2 = Err(Error::Missing {
            expected: Version::V2,
        });
        assert_eq!(parse(PAYLOAD, Mode::V1), missing1);
        assert_eq!(parse(PAYLOAD, Mode::V2), missing2);
        assert_eq!(parse(b"proxy TCP4", Mode::V1), missing1);
        let h2 = v2(0x20, 0, &[]);
        let wrong = Err(Error::WrongVersion {
            expected: Version::V1,
            found: Version::V2,
        });
        assert_eq!(parse(&h2, Mode::V1), wrong);
        assert_eq!(parse(&h2[..3], Mode::V1), wrong);
        let wrong = Err(Error::WrongVersion {
            expected: Version::V2,
            found: Version::V1,
        });
        assert_eq!(parse(b"PROXY UNKNOWN\r\n", Mode::V2), wrong);
        assert_eq!(parse(b"PRO", Mode::V2), wrong);
    }

    fn v1_err(line: &[u8]) -> Error {
        let r1 = parse(line, Mode::V1);
        assert_eq!(
            r1,
            parse(line, Mode::Optional),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        r1.expect_err(&String::from_utf8_lossy(line))
    }

    #[test]
    fn v1_malformed() {
        let m = Error::MalformedV1;
        let cases: &[(&[u8], Error)] = &[
            (
                b"PROXY TCP4 256.1.1.1 1.1.1.1 1 2\r\n",
                m("bad source address"),
            ),
            (
                b"PROXY TCP4 01.1.1.1 1.1.1.1 1 2\r\n",
                m("bad source address"),
            ),
            (b"PROXY TCP4 1.1.1 1.1.1.1 1 2\r\n", m("bad source address")),
            (
                b"PROXY TCP4 1.1.1.1 ::1 1 2\r\n",
                m("bad destination address"),
            ),
            (
                b"PROXY TCP6 ::1 1.1.1.1 1 2\r\n",
                m("bad destination address"),
            ),
            (
                b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
                m("bad source address"),
            ),
            (
                b"PROXY TCP4 1.1.1.1 1.1.1.1 65536 2\r\n",
                m("bad source port"),
            ),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 01 2\r\n", m("bad source port")),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 +1 2\r\n", m("bad source port")),
            (
                b"PROXY TCP4 1.1.1.1 1.1.1.1 1 -2\r\n",
                m("bad destination port"),
            ),
            (
                b"PROXY TCP4 1.1.1.1 1.1.1.1 1 99999\r\n",
                m("bad destination port"),
            ),
            (b"PROXY TCP4 1.1.1.1  1.1.1.1 1 2\r\n", m(E_SPACING)),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 2 \r\n", m(E_EXTRA)),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 2 3\r\n", m(E_EXTRA)),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n", m(E_MISSING)),
            (b"PROXY TCP4\r\n", m(E_MISSING)),
            (b"PROXY TCP5 1.1.1.1 1.1.1.1 1 2\r\n", m(E_PROTO)),
            (b"PROXY tcp4 1.1.1.1 1.1.1.1 1 2\r\n", m(E_PROTO)),
            (b"PROXY UNKNOWNX\r\n", m(E_PROTO)),
            (b"PROXY  TCP4 1.1.1.1 1.1.1.1 1 2\r\n", m(E_PROTO)),
            (b"PROXY\r\n", m(E_HEAD)),
            (b"PROXYTCP4", m(E_HEAD)),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 2\n", m(E_BARE_LF)),
            (b"PROXY UNKNOWN\n", m(E_BARE_LF)),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 2\rX", m(E_BARE_CR)),
            (b"PROXY UNKNOWN \r\r\n", m(E_BARE_CR)),
            // Errors show before the line is complete.
            (b"PROXY TCP4 1.2.3.4.", m("bad source address")),
            (b"PROXY TCP4 1.2.3.4 1.2.3.x", m("bad destination address")),
            (b"PROXY TCP6 1:2:3:4:5:6:7:8:", m("bad source address")),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 65536", m("bad source port")),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 ", m(E_EXTRA)),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1  ", m(E_SPACING)),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.4 1 x\r",
                m("bad destination port"),
            ),
            (b"PROXY TC6", m(E_PROTO)),
        ];
        for (line, want) in cases {
            assert_eq!(&v1_err(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn v1_too_long() {
        let too_long = |len| Error::TooLong {
            version: Version::V1,
            len,
        };
        // The CRLF must end by byte 107.
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX - 2, b'x');
        assert_eq!(parse(&line, Mode::V1), Ok(Parsed::Incomplete));
        line.push(b'\r');
        assert_eq!(parse(&line, Mode::V1), Ok(Parsed::Incomplete));
        line.push(b'\n');
        assert_eq!(parse(&line, Mode::V1), header(V1_MAX, None));
        // 106 bytes without CR cannot end in time, nor can a CR as the 107th byte.
        line.truncate(V1_MAX - 2);
        line.push(b'x');
        assert_eq!(v1_err(&line), too_long(V1_MAX - 1));
        line.push(b'\r');
        assert_eq!(v1_err(&line), too_long(V1_MAX));
        line.push(b'\n');
        assert_eq!(v1_err(&line), too_long(V1_MAX + 1));
        // No CR or LF at all within 107 bytes.
        line.truncate(V1_MAX - 1);
        line.push(b'x');
        assert_eq!(v1_err(&line), too_long(V1_MAX));
        line.extend_from_slice(b"\r\n");
        assert_eq!(v1_err(&line), too_long(V1_MAX + 2));
        // Two 45-character IPv6 addresses (valid each) make a TCP6 line of 116 bytes: an error as soon as
        // the line cannot end within 107 bytes.
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        let line = format!("PROXY TCP6 {a} {a} 1 2\r\n");
        assert_eq!(line.len(), 108);
        let line = line.as_bytes();
        let first_bad = (0..line.len())
            .find(|&k| parse(&line[..k], Mode::V1).is_err())
            .unwrap();
        // Fine up to 44 characters of the second address (then " 0 0\r\n" would end at byte 107); the 45th
        // character completes an address that leaves no room for the rest.
        assert_eq!(first_bad, 11 + 45 + 1 + 45);
        assert_eq!(v1_err(&line[..first_bad]), too_long(first_bad));
        assert_eq!(v1_err(line), too_long(line.len()));
    }

    #[test]
    fn v2_malformed() {
        let body = block4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        let good = v2(0x21, 0x11, &body);
        // Any wrong signature byte: no header at all.
        for i in 0..12 {
            let mut h = good.clone();
            h[i] ^= 0x40;
            assert!(parse(&h, Mode::V2).is_err(), "byte {i}");
            assert!(parse(&h, Mode::V1).is_err(), "byte {i}");
            assert_eq!(parse(&h, Mode::Optional), Ok(Parsed::Absent), "byte {i}");
        }
        let mal = |ver_cmd, fam, body: &[u8]| parse(&v2(ver_cmd, fam, body), Mode::V2);
        for ver in [0x01, 0x11, 0x31, 0xf1] {
            assert_eq!(mal(ver, 0x11, &body), Err(Error::MalformedV2(E_VERSION)));
        }
        assert_eq!(mal(0x22, 0x11, &body), Err(Error::MalformedV2(E_COMMAND)));
        assert_eq!(mal(0x2f, 0x11, &body), Err(Error::MalformedV2(E_COMMAND)));
        assert_eq!(mal(0x21, 0x41, &body), Err(Error::MalformedV2(E_FAMILY)));
        assert_eq!(mal(0x21, 0x13, &body), Err(Error::MalformedV2(E_PROTOCOL)));
        // Length too short for the family.
        assert_eq!(
            mal(0x21, 0x11, &body[..11]),
            Err(Error::MalformedV2(E_SHORT))
        );
        assert_eq!(mal(0x21, 0x21, &[0; 35]), Err(Error::MalformedV2(E_SHORT)));
        assert_eq!(mal(0x21, 0x11, &[]), Err(Error::MalformedV2(E_SHORT)));
        // TLVs that overrun the header or leave 1-2 stray bytes.
        let bad_tlvs: [&[u8]; 4] = [&[1, 0, 5, 0], &[1], &[4, 0, 0, 9, 9], &[1, 0, 1]];
        for tlvs in bad_tlvs {
            let h = v2(0x21, 0x11, &[&body[..], tlvs].concat());
            assert_eq!(
                parse(&h, Mode::V2),
                Err(Error::MalformedV2(E_TLV)),
                "{tlvs:?}"
            );
        }
        // Over MAX_HEADER, reported from the 16 fixed bytes alone.
        let h = v2(
            0x21,
            0x11,
            &[&body[..], &tlv(4, &[0; MAX_HEADER - 16 - 12 - 3])].concat(),
        );
        assert_eq!(h.len(), MAX_HEADER);
        assert_eq!(parse(&h, Mode::V2), header(MAX_HEADER, Some("1.2.3.4:1")));
        let h = v2(
            0x21,
            0x11,
            &[&body[..], &tlv(4, &[0; MAX_HEADER - 16 - 12 - 2])].concat(),
        );
        let too_long = Err(Error::TooLong {
            version: Version::V2,
            len: MAX_HEADER + 1,
        });
        assert_eq!(parse(&h, Mode::V2), too_long);
        assert_eq!(parse(&h[..16], Mode::V2), too_long);
        assert_eq!(parse(&h[..16], Mode::Optional), too_long);
        let max = v2(0x20, 0, &[]);
        let mut max = max[..14].to_vec();
        max.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(
            parse(&max, Mode::V2),
            Err(Error::TooLong {
                version: Version::V2,
                len: 16 + 65535
            })
        );
        // Errors show as soon as the offending byte arrives.
        assert_eq!(
            parse(&v2(0x21, 0x11, &[])[..13], Mode::Optional),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(
            parse(&v2(0x11, 0x11, &[])[..13], Mode::Optional),
            Err(Error::MalformedV2(E_VERSION))
        );
        assert_eq!(
            parse(&v2(0x21, 0x51, &[])[..14], Mode::Optional),
            Err(Error::MalformedV2(E_FAMILY))
        );
        let h = v2(0x21, 0x11, &[&body[..], &[1, 0, 9, 0, 0]].concat());
        assert_eq!(parse(&h[..31], Mode::V2), Err(Error::MalformedV2(E_TLV)));
        assert_eq!(parse(&h[..30], Mode::V2), Ok(Parsed::Incomplete));
    }

    #[test]
    fn display_and_config() {
        let e = Error::MalformedV1("bad source port");
        assert_eq!(
            e.to_string(),
            "PROXY protocol: malformed v1 header: bad source port"
        );
        let e = Error::TooLong {
            version: Version::V2,
            len: 600,
        };
        assert_eq!(
            e.to_string(),
            "PROXY protocol: v2 header of 600 bytes is over the 536-byte limit"
        );
        let e = Error::WrongVersion {
            expected: Version::V1,
            found: Version::V2,
        };
        assert!(e.to_string().contains("expected a v1 header"), "{e}");
        for (text, mode) in [
            ("\"v1\"", Mode::V1),
            ("\"v2\"", Mode::V2),
            ("\"optional\"", Mode::Optional),
        ] {
            assert_eq!(serde_json::from_str::<Mode>(text).unwrap(), mode);
        }
    }

    // --- Address automata against std's parsers ------------------------------------------------------

    /// Small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.byte()).collect()
        }
        /// Up to `max - 1` random bytes.
        fn junk(&mut self, max: usize) -> Vec<u8> {
            let n = self.below(max);
            self.bytes(n)
        }
    }

    fn std_v6(s: &[u8]) -> bool {
        std::str::from_utf8(s).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
    }

    fn std_v4(s: &[u8]) -> bool {
        std::str::from_utf8(s).is_ok_and(|s| s.parse::<Ipv4Addr>().is_ok())
    }

    /// All strings of exactly `n` bytes over `alphabet`.
    fn words(alphabet: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new()];
        for _ in 0..n {
            out = out
                .iter()
                .flat_map(|w| alphabet.iter().map(move |&c| [&w[..], &[c]].concat()))
                .collect();
        }
        out
    }

    /// `rest` says `s` can be completed with `need` more bytes: check a completion of exactly that length
    /// exists; and `rest` is 0 exactly when `s` itself is valid.
    fn check_automaton(
        s: &[u8],
        rest: fn(&[u8]) -> Option<usize>,
        valid: fn(&[u8]) -> bool,
        fill: &[u8],
    ) {
        let r = rest(s);
        assert_eq!(
            r == Some(0),
            valid(s),
            "{:?} -> {r:?}",
            String::from_utf8_lossy(s)
        );
        if let Some(need) = r {
            assert!(
                words(fill, need).iter().any(|t| valid(&[s, t].concat())),
                "{:?} claims completion in {need}",
                String::from_utf8_lossy(s)
            );
        }
    }

    fn random_v6(rng: &mut Rng) -> Ipv6Addr {
        let mut g = [0u16; 8];
        for x in &mut g {
            *x = match rng.below(3) {
                0 => 0,
                1 => rng.below(0x100) as u16,
                _ => rng.next() as u16,
            };
        }
        if rng.below(6) == 0 {
            g = [0, 0, 0, 0, 0, 0xffff, g[6], g[7]];
        }
        Ipv6Addr::from(g)
    }

    /// One of the many text forms std accepts for `ip`.
    fn text_v6(rng: &mut Rng, ip: Ipv6Addr) -> String {
        let g = ip.segments();
        let o = ip.octets();
        let s = match rng.below(5) {
            0 => ip.to_string(),
            1 => g
                .iter()
                .map(|x| format!("{x:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
            2 => g
                .iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":"),
            3 => {
                let head: Vec<_> = g[..6].iter().map(|x| format!("{x:x}")).collect();
                format!("{}:{}.{}.{}.{}", head.join(":"), o[12], o[13], o[14], o[15])
            }
            _ => {
                // Compress a random run of groups (at least one, not all eight written).
                let a = rng.below(8);
                let b = a + 1 + rng.below(8 - a);
                let part = |r: &[u16]| {
                    r.iter()
                        .map(|x| format!("{x:X}"))
                        .collect::<Vec<_>>()
                        .join(":")
                };
                let z = if g[a..b].iter().all(|&x| x == 0) {
                    "::"
                } else {
                    ""
                };
                if z.is_empty() {
                    return ip.to_string();
                }
                format!("{}{z}{}", part(&g[..a]), part(&g[b..]))
            }
        };
        if rng.below(2) == 0 {
            s.to_uppercase()
        } else {
            s
        }
    }

    #[test]
    fn ipv6_automaton_matches_std() {
        let fill = b"0:.";
        // Every short string over a small alphabet.
        for n in 0..=6 {
            for s in words(b"01a:.", n) {
                check_automaton(&s, ipv6_rest, std_v6, fill);
            }
        }
        // Every prefix of many valid addresses, and single-byte mutations of them.
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for _ in 0..3000 {
            let ip = random_v6(&mut rng);
            let s = text_v6(&mut rng, ip);
            assert_eq!(s.parse::<Ipv6Addr>(), Ok(ip), "{s}");
            let s = s.as_bytes();
            for k in 0..=s.len() {
                let need = ipv6_rest(&s[..k]);
                assert!(
                    need.is_some_and(|n| k + n <= s.len()),
                    "{:?}",
                    String::from_utf8_lossy(&s[..k])
                );
            }
            let mut m = s.to_vec();
            let i = rng.below(m.len());
            match rng.below(3) {
                0 => m[i] = b"0fF9:.x"[rng.below(7)],
                1 => {
                    m.remove(i);
                }
                _ => m.insert(i, b"0f:."[rng.below(4)]),
            }
            check_automaton(&m, ipv6_rest, std_v6, fill);
            check_automaton(&m[..rng.below(m.len() + 1)], ipv6_rest, std_v6, fill);
        }
    }

    #[test]
    fn ipv4_and_port_automata_match_std() {
        let rest4: fn(&[u8]) -> Option<usize> = |s| dotted_rest(s, 0);
        for n in 0..=6 {
            for s in words(b"0125.x", n) {
                check_automaton(&s, rest4, std_v4, b"0.");
            }
        }
        let mut rng = Rng(77);
        for _ in 0..3000 {
            let ip = Ipv4Addr::from(rng.next() as u32 >> (rng.below(4) * 8));
            let s = ip.to_string();
            for k in 0..=s.len() {
                let need = rest4(&s.as_bytes()[..k]);
                assert!(need.is_some_and(|n| k + n <= s.len()), "{s} {k}");
            }
            assert_eq!(rest4(s.as_bytes()), Some(0));
        }
        for p in 0..=70_000u32 {
            let s = p.to_string();
            assert_eq!(v1_port(s.as_bytes()), u16::try_from(p).ok(), "{s}");
            assert_eq!(v1_port(format!("0{s}").as_bytes()), None);
        }
        for s in [&b""[..], b"+1", b"-0", b" 1", b"1 ", b"0x1", b"000000"] {
            assert_eq!(v1_port(s), None, "{s:?}");
        }
    }

    // --- Generated headers -----------------------------------------------------------------------------

    /// An address whose dotted form takes the full 45 characters.
    fn long_v6(rng: &mut Rng) -> Ipv6Addr {
        let mut o = [0u8; 16];
        for (i, x) in o.iter_mut().enumerate() {
            *x = if i % 2 == 0 && i < 12 { 0x10 } else { 100 } + (rng.byte() % 100);
        }
        Ipv6Addr::from(o)
    }

    fn long_text_v6(ip: Ipv6Addr) -> String {
        let g = ip.segments();
        let o = ip.octets();
        let head: Vec<_> = g[..6].iter().map(|x| format!("{x:x}")).collect();
        let s = format!("{}:{}.{}.{}.{}", head.join(":"), o[12], o[13], o[14], o[15]);
        assert_eq!(s.len(), 45, "{s}");
        s
    }

    /// A random valid header (or, for v1 TCP6 lines over 107 bytes, an invalid one), with the result
    /// `parse` must give for it in `modes`.
    fn random_header(rng: &mut Rng) -> (Vec<u8>, &'static [Mode], Result<Parsed, Error>) {
        let port = |rng: &mut Rng| rng.next() as u16 >> (rng.below(4) * 4);
        if rng.below(2) == 0 {
            let (line, source) = match rng.below(3) {
                0 => {
                    let src = Ipv4Addr::from(rng.next() as u32);
                    let dst = Ipv4Addr::from(rng.next() as u32);
                    let sport = port(rng);
                    let line = format!("PROXY TCP4 {src} {dst} {sport} {}\r\n", port(rng));
                    (line.into_bytes(), Some(SocketAddr::new(src.into(), sport)))
                }
                1 => {
                    let sport = port(rng);
                    let (src, a, b) = if rng.below(10) == 0 {
                        // Two 45-character addresses: a line over 107 bytes.
                        let (src, dst) = (long_v6(rng), long_v6(rng));
                        (src, long_text_v6(src), long_text_v6(dst))
                    } else {
                        let (src, dst) = (random_v6(rng), random_v6(rng));
                        (src, text_v6(rng, src), text_v6(rng, dst))
                    };
                    let line = format!("PROXY TCP6 {a} {b} {sport} {}\r\n", port(rng));
                    (line.into_bytes(), Some(SocketAddr::new(src.into(), sport)))
                }
                _ => {
                    let mut line = b"PROXY UNKNOWN".to_vec();
                    if rng.below(2) == 0 {
                        line.push(b' ');
                        for _ in 0..rng.below(V1_MAX - 16) {
                            line.push(loop {
                                let b = rng.byte();
                                if b != b'\r' && b != b'\n' {
                                    break b;
                                }
                            });
                        }
                    }
                    line.extend_from_slice(b"\r\n");
                    (line, None)
                }
            };
            let want = if line.len() <= V1_MAX {
                Ok(Parsed::Header {
                    len: line.len(),
                    source,
                })
            } else {
                Err(Error::TooLong {
                    version: Version::V1,
                    len: 0,
                })
            };
            return (line, V1_MODES, want);
        }
        let proxy = rng.below(4) != 0;
        let fams = [0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32, 0x01, 0x10, 0x20];
        let fam = if proxy {
            fams[rng.below(fams.len())]
        } else {
            rng.byte()
        };
        let mut body = match (proxy, fam) {
            (true, 0x11 | 0x12) => rng.bytes(12),
            (true, 0x21 | 0x22) => rng.bytes(36),
            (true, 0x31 | 0x32) => rng.bytes(216),
            _ => rng.junk(40),
        };
        let source = match (proxy, fam) {
            (true, 0x11) => Some(SocketAddr::new(
                <[u8; 4]>::try_from(&body[..4]).unwrap().into(),
                u16::from_be_bytes([body[8], body[9]]),
            )),
            (true, 0x21) => Some(SocketAddr::new(
                <[u8; 16]>::try_from(&body[..16]).unwrap().into(),
                u16::from_be_bytes([body[32], body[33]]),
            )),
            _ => None,
        };
        if proxy && fam & 0xf0 != 0 && fam & 0x0f != 0 {
            for _ in 0..rng.below(5) {
                let room = MAX_HEADER - 16 - body.len();
                if room < 3 {
                    break;
                }
                let value = rng.junk((room - 3).min(200) + 1);
                body.extend_from_slice(&tlv(rng.byte(), &value));
            }
        }
        let h = v2(if proxy { 0x21 } else { 0x20 }, fam, &body);
        let len = h.len();
        (h, V2_MODES, Ok(Parsed::Header { len, source }))
    }

    #[test]
    fn generated_headers_len_points_at_payload() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut seen = [0usize; 2];
        for round in 0..4000 {
            let (h, modes, want) = random_header(&mut rng);
            let payload = match rng.below(3) {
                0 => PAYLOAD.to_vec(),
                1 => b"\r\n\r\n\0\r\nQUIT\nPROXY TCP4 \r\n".to_vec(),
                _ => rng.junk(600),
            };
            let buf = [&h[..], &payload].concat();
            for &mode in modes {
                let got = parse(&buf, mode);
                match (&got, &want) {
                    (Ok(Parsed::Header { len, .. }), Ok(_)) => {
                        assert_eq!(got, want, "{mode:?} {:?}", String::from_utf8_lossy(&h));
                        assert_eq!(&buf[*len..], &payload[..]);
                        seen[0] += 1;
                    }
                    (Err(Error::TooLong { .. }), Err(Error::TooLong { .. })) => seen[1] += 1,
                    _ => panic!(
                        "{mode:?} {:?}: {got:?}, want {want:?}",
                        String::from_utf8_lossy(&h)
                    ),
                }
                if want.is_ok() && round % 8 == 0 {
                    for k in 0..h.len() {
                        assert_eq!(
                            parse(&buf[..k], mode),
                            Ok(Parsed::Incomplete),
                            "{mode:?} {k}"
                        );
                    }
                }
            }
        }
        assert!(seen[0] > 6000 && seen[1] > 0, "{seen:?}");
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let mut buf = match rng.below(4) {
                0 => random_header(&mut rng).0,
                1 => [&b"PROXY "[..], &rng.junk(120)].concat(),
                2 => [&V2_SIGNATURE[..], &rng.junk(600)].concat(),
                _ => rng.junk(700),
            };
            for _ in 0..rng.below(4) {
                if !buf.is_empty() {
                    let i = rng.below(buf.len());
                    buf[i] = b"0:. \r\n\x00\x11\x21\xff"[rng.below(10)];
                }
            }
            buf.truncate(rng.below(buf.len() + 1));
            for mode in [Mode::V1, Mode::V2, Mode::Optional] {
                match parse(&buf, mode) {
                    Ok(Parsed::Header { len, .. }) => {
                        assert!(len <= buf.len() && len <= MAX_HEADER);
                        assert_eq!(parse(&buf[..len], mode), parse(&buf, mode));
                        if buf[0] == b'P' {
                            assert!(len <= V1_MAX && buf[..len].ends_with(b"\r\n"));
                        }
                    }
                    Ok(Parsed::Absent) => assert_eq!(mode, Mode::Optional),
                    Ok(Parsed::Incomplete) => assert!(buf.len() < MAX_HEADER),
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
            }
        }
    }
}
