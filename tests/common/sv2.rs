//! Shared helpers of the SV2 end-to-end tests: a proxy config with V1 and SV2 pool entries, the checking SV2
//! sim pool, and sim miners run to completion.

use fastproxy_sim::sv2_pool::{Sv2PoolConfig, Sv2SimPool};
use std::net::SocketAddr;
use std::time::Duration;

/// A pool entry of the test config: a V1 pool, or an SV2 pool with its authority key.
pub enum P<'a> {
    V1(SocketAddr),
    Sv2(SocketAddr, &'a str),
}

pub fn yaml(pools: &[P<'_>], extra: &str) -> String {
    let mut y = String::from(
        "threads: 1\nproxies:\n  - name: test\n    protocol: stratum\n    listen:\n      - address: 127.0.0.1:0\n",
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        y.push_str("    ");
        y.push_str(line.trim());
        y.push('\n');
    }
    y.push_str("    pools:\n");
    for p in pools {
        match p {
            P::V1(a) => y.push_str(&format!(
                "      - url: stratum+tcp://{a}\n        user: acct.proxy\n        password: x\n"
            )),
            P::Sv2(a, key) => y.push_str(&format!(
                "      - url: stratum2+tcp://{a}\n        user: acct.sv2\n        authority_public_key: {key}\n"
            )),
        }
    }
    y
}

pub fn sv2_pool(cfg: Sv2PoolConfig) -> Sv2SimPool {
    Sv2SimPool::start(cfg).expect("start the SV2 sim pool")
}

/// Runs the fastproxy binary on `config` (its `127.0.0.1:0` listener moved to a free port, written under the
/// temp dir as `name`.yaml), stderr piped for its log; the child and its miners' address once it listens.
pub fn spawn_proxy_binary(config: &str, name: &str) -> (std::process::Child, SocketAddr) {
    let port = super::free_port();
    let config = config.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let dir = std::env::temp_dir().join(format!("fastproxy-sv2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fastproxy"))
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    super::wait_until(Duration::from_secs(20), "the proxy listens", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    (child, addr)
}

/// Accepts one connection on `listener` and answers its Noise NX handshake as the reference crates' responder
/// with the authority `(public, secret)` key (certificates valid for `validity`): the stream (reads time out
/// after 20 s) and the responder's encrypting and decrypting halves.
pub fn accept_noise(
    listener: &std::net::TcpListener,
    (public, secret): ([u8; 32], [u8; 32]),
    validity: Duration,
) -> (
    std::net::TcpStream,
    codec_sv2::TransportEncryptState,
    codec_sv2::TransportDecryptState,
) {
    use std::io::{Read, Write};
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut e = [0u8; 64];
    s.read_exact(&mut e).unwrap();
    let responder = noise_sv2::Responder::from_authority_kp(&public, &secret, validity).unwrap();
    let (reply, transport) = codec_sv2::Handshake::responder(responder)
        .step_1(e)
        .unwrap();
    s.write_all(reply.payload()).unwrap();
    let (enc, dec) = transport.split();
    (s, enc, dec)
}
