//! Test PKI made at test time (rcgen) and TLS relays that let the plain-TCP simulated pool and miners talk
//! TLS to the proxy: a *client relay* (plain in, TLS out: miners -> proxy's TLS port) and a *server relay*
//! (TLS in, plain out: proxy -> TLS pool -> simulated pool).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use rustls_pki_types::pem::PemObject;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files in a fresh directory.
pub struct TestPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    pub fn new(tag: &str) -> TestPki {
        TestPki::with_server_params(tag, |_| {})
    }

    /// Like [`TestPki::new`], with a server certificate that expired in 2021 (valid from 2020, signed by the
    /// same kind of CA, for the same names): only its dates are wrong.
    pub fn expired(tag: &str) -> TestPki {
        TestPki::with_server_params(tag, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn with_server_params(tag: &str, adjust: impl FnOnce(&mut CertificateParams)) -> TestPki {
        let dir = std::env::temp_dir().join(format!(
            "fastproxy-pki-{}-{tag}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("fastproxy test CA {tag}"),
        );
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let pki = TestPki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        std::fs::write(&pki.ca, ca.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(&self.key).unwrap();
        Arc::new(
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A running relay; dropping it stops accepting (open relayed connections end when either side closes).
pub struct Relay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Plain TCP in, TLS (verified against the PKI's CA) out to `target`.
pub fn client_relay(target: SocketAddr, pki: &TestPki) -> Relay {
    let cfg = pki.client_config();
    relay(
        move |plain| Some(Box::new(plain) as Box<dyn Stream>),
        move || {
            let tcp = timed(TcpStream::connect(target).ok()?);
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let conn = ClientConnection::new(cfg.clone(), name).ok()?;
            Some(Box::new(StreamOwned::new(conn, tcp)) as Box<dyn Stream>)
        },
    )
}

/// TLS in (the PKI's server certificate), plain TCP out to `target`.
pub fn server_relay(target: SocketAddr, pki: &TestPki) -> Relay {
    let cfg = pki.server_config();
    relay(
        move |tcp| {
            let conn = ServerConnection::new(cfg.clone()).ok()?;
            Some(Box::new(StreamOwned::new(conn, tcp)) as Box<dyn Stream>)
        },
        move || Some(Box::new(timed(TcpStream::connect(target).ok()?)) as Box<dyn Stream>),
    )
}

fn timed(s: TcpStream) -> TcpStream {
    s.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn relay(
    wrap: impl Fn(TcpStream) -> Option<Box<dyn Stream>> + Send + 'static,
    connect: impl Fn() -> Option<Box<dyn Stream>> + Send + 'static,
) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let (Some(a), Some(b)) = (wrap(timed(s)), connect()) else {
                        continue;
                    };
                    let stop3 = stop2.clone();
                    std::thread::spawn(move || pump(a, b, stop3));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Relay { addr, stop }
}

/// Copies both ways until either side closes (at most 120 s).
fn pump(mut a: Box<dyn Stream>, mut b: Box<dyn Stream>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(120) && !stop.load(Ordering::Relaxed) {
        if !step(&mut a, &mut b, &mut buf) || !step(&mut b, &mut a, &mut buf) {
            return;
        }
    }
}

/// One read from `from` passed to `to`; false when the relay is over.
fn step(from: &mut Box<dyn Stream>, to: &mut Box<dyn Stream>, buf: &mut [u8]) -> bool {
    match from.read(buf) {
        Ok(0) => false,
        Ok(n) => pass_on(to, &buf[..n]),
        Err(e) if retry(&e) => true,
        Err(_) => false,
    }
}

/// A read timeout (the streams' 2 ms, so that one thread pumps both ways), not an error.
fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Writes and flushes all of `data` to `to`. A TLS stream still in its handshake reads before it writes, and
/// that read can time out: retried (up to 10 s) rather than taken for the end of the relay, which closed
/// a miner's connection now and then before it had subscribed.
fn pass_on(to: &mut Box<dyn Stream>, mut data: &[u8]) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let done = if data.is_empty() {
            match to.flush() {
                Ok(()) => return true,
                Err(e) => Err(e),
            }
        } else {
            to.write(data).map(|k| data = &data[k..])
        };
        match done {
            Ok(()) => {}
            Err(e) if retry(&e) => {}
            Err(_) => return false,
        }
    }
    false
}
