//! The lines the load generator sends: the miners' requests and the fast pool's answers and notifications,
//! for both dialects, written into reused buffers with no JSON library in the way.

use super::args::Dialect;
use std::io::Write;
use std::sync::OnceLock;

/// Request id of a miner's mining.subscribe (authorize is 2, submits count up from 3).
pub const ID_SUBSCRIBE: u64 = 1;
/// Request id of a miner's mining.authorize.
pub const ID_AUTHORIZE: u64 = 2;
/// Header time / ntime used in every job and share.
const NTIME: &str = "665f0a1b";

/// A miner's mining.subscribe and mining.authorize, pipelined in one write.
pub fn handshake(out: &mut Vec<u8>, dialect: Dialect, miner: u32, target_port: u16) {
    let _ = match dialect {
        Dialect::Stratum => writeln!(
            out,
            r#"{{"id":{ID_SUBSCRIBE},"method":"mining.subscribe","params":["fastproxy-loadgen/0.1"]}}"#
        ),
        Dialect::Equihash => writeln!(
            out,
            r#"{{"id":{ID_SUBSCRIBE},"method":"mining.subscribe","params":["fastproxy-loadgen/0.1",null,"127.0.0.1",{target_port}]}}"#
        ),
    };
    let _ = writeln!(
        out,
        r#"{{"id":{ID_AUTHORIZE},"method":"mining.authorize","params":["lg.w{miner}","x"]}}"#
    );
}

/// The Equihash solution every share carries (n=200, k=9 size: `fd4005` and 1344 bytes); never checked.
fn solution() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| format!("fd4005{}", "00".repeat(1344)))
}

/// A job id as the miner got it: `<hex job>`, or a routing proxy's `<hex tag>.<hex job>` (`tag` is 1 + the tag;
/// 0: none). Written in place, without an allocation.
struct JobId {
    tag: u32,
    job: u32,
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tag.checked_sub(1) {
            Some(t) => write!(f, "{t:x}.{:x}", self.job),
            None => write!(f, "{:x}", self.job),
        }
    }
}

/// A miner's share. `space` is its extranonce2 size (V1) or NONCE_2 size (Equihash) in bytes. The miner's
/// number travels where a proxy passes it on untouched (V1: the nonce; Equihash: NONCE_2's last 4 bytes),
/// so the pool can tell whose share it got; `seq` makes every share distinct.
#[allow(clippy::too_many_arguments)]
pub fn submit(
    out: &mut Vec<u8>,
    dialect: Dialect,
    id: u64,
    miner: u32,
    tag: u32,
    job: u32,
    space: usize,
    seq: u32,
) {
    let job = JobId { tag, job };
    match dialect {
        Dialect::Stratum => {
            let en2 = fixed_hex(u64::from(seq), space);
            let _ = writeln!(
                out,
                r#"{{"id":{id},"method":"mining.submit","params":["lg.w{miner}","{job}","{en2}","{NTIME}","{miner:08x}"]}}"#
            );
        }
        Dialect::Equihash => {
            let head = fixed_hex(u64::from(seq), space.saturating_sub(4));
            let _ = writeln!(
                out,
                r#"{{"id":{id},"method":"mining.submit","params":["lg.w{miner}","{job}","{NTIME}","{head}{miner:08x}","{}"]}}"#,
                solution()
            );
        }
    }
}

/// `v` as exactly `bytes` bytes of hex (zero-padded, or its low bytes).
fn fixed_hex(v: u64, bytes: usize) -> String {
    let s = format!("{v:016x}");
    if bytes <= 8 {
        s[16 - 2 * bytes..].to_string()
    } else {
        format!("{}{s}", "00".repeat(bytes - 8))
    }
}

/// The pool's answer to mining.subscribe, with extranonce1 / NONCE_1 `e1` (4 bytes) and, for V1, an
/// extranonce2 size of 8 (65,536 miners per connection through fastproxy).
pub fn subscribe_result(out: &mut Vec<u8>, dialect: Dialect, id: &[u8], e1: u32) {
    out.extend_from_slice(br#"{"id":"#);
    out.extend_from_slice(id);
    let _ = match dialect {
        Dialect::Stratum => writeln!(
            out,
            r#","result":[[["mining.set_difficulty","1"],["mining.notify","1"]],"{e1:08x}",8],"error":null}}"#
        ),
        Dialect::Equihash => writeln!(out, r#","result":["1","{e1:08x}"],"error":null}}"#),
    };
}

/// `{"id":ID,"result":VALUE,"error":null}`.
pub fn result(out: &mut Vec<u8>, id: &[u8], value: &[u8]) {
    out.extend_from_slice(br#"{"id":"#);
    out.extend_from_slice(id);
    out.extend_from_slice(br#","result":"#);
    out.extend_from_slice(value);
    out.extend_from_slice(b",\"error\":null}\n");
}

/// An error reply with code 20.
pub fn error(out: &mut Vec<u8>, id: &[u8], message: &str) {
    out.extend_from_slice(br#"{"id":"#);
    out.extend_from_slice(id);
    let _ = writeln!(out, r#","result":null,"error":[20,"{message}",null]}}"#);
}

/// The share difficulty (V1) or target (Equihash) a pool sends before its first job: easy, never checked.
/// `every_share_meets`: a V1 difficulty so low that its target is 2^256 - 1 (for a validating proxy).
pub fn difficulty(dialect: Dialect, every_share_meets: bool) -> &'static [u8] {
    match dialect {
        Dialect::Stratum if every_share_meets => {
            b"{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1e-12]}\n"
        }
        Dialect::Stratum => b"{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[1]}\n",
        Dialect::Equihash => b"{\"id\":null,\"method\":\"mining.set_target\",\"params\":[\"00ffff0000000000000000000000000000000000000000000000000000000000\"]}\n",
    }
}

/// Job number `seq` as a mining.notify line (job id: `seq` in hex).
pub fn notify(dialect: Dialect, seq: u32, merkle_branches: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(400 + 67 * merkle_branches);
    let prev = format!("{seq:08x}{}", "5a".repeat(28));
    match dialect {
        Dialect::Stratum => {
            let _ = write!(
                out,
                r#"{{"id":null,"method":"mining.notify","params":["{seq:x}","{prev}","{}","{}",["#,
                format_args!("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20{}", "03".repeat(8)),
                format_args!("ffffffff0100f2052a010000001976a914{}88ac00000000", "89".repeat(20)),
            );
            for b in 0..merkle_branches {
                if b > 0 {
                    out.push(b',');
                }
                let _ = write!(out, r#""{b:08x}{}""#, "c3".repeat(28));
            }
            let _ = writeln!(out, r#"],"20000000","1703a30c","{NTIME}",true]}}"#);
        }
        Dialect::Equihash => {
            let _ = writeln!(
                out,
                r#"{{"id":null,"method":"mining.notify","params":["{seq:x}","04000000","{prev}","{}","{}","{NTIME}","1d00ffff",true]}}"#,
                "d4".repeat(32),
                "00".repeat(32)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json() {
        let mut out = Vec::new();
        for d in [Dialect::Stratum, Dialect::Equihash] {
            handshake(&mut out, d, 7, 3333);
            submit(&mut out, d, 3, 7, 0, 0x1f, 6, 9);
            subscribe_result(&mut out, d, b"1", 0xabcd);
            result(&mut out, b"\"x\"", b"true");
            error(&mut out, b"5", "unknown method");
            out.extend_from_slice(difficulty(d, false));
            out.extend_from_slice(difficulty(d, true));
            out.extend_from_slice(&notify(d, 3, 12));
        }
        for l in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)));
            assert!(v.is_object());
        }
        assert_eq!(fixed_hex(0x1234, 1), "34");
        assert_eq!(fixed_hex(1, 9), "000000000000000001");
    }
}
