//! Unit tests of the PROXY protocol parser: valid and malformed v1 and v2 headers, both modes, the address
//! automata checked against std's parsers, and generated headers and random garbage (no panic, right length).

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
