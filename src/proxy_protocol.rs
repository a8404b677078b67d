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
mod tests;
