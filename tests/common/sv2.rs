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

/// The fastproxy binary running `config` (its miner port 0, the real one read from its log).
pub struct Binary {
    child: std::process::Child,
    log: std::thread::JoinHandle<String>,
}

impl Binary {
    /// SIGTERM, then its exit status and whole log.
    pub fn terminate(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let (status, _) = super::terminate(&mut self.child, limit);
        (status, self.log.join().unwrap_or_default())
    }
}

/// Runs the fastproxy binary on `config` (written to a file named after `name`) and waits until it listens:
/// the process and the miners' address. The address comes from the log ("listening on"): a port picked here
/// and probed with connect() could be another test's listener meanwhile.
pub fn spawn_proxy_binary(config: &str, name: &str) -> (Binary, SocketAddr) {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("fastproxy-sv2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fastproxy"))
        .arg("-c")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split([' ', '/']).next().unwrap_or("").to_string());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the proxy listens within 20 s");
    (
        Binary { child, log },
        addr.parse().expect("a socket address"),
    )
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
