//! Starting and stopping a configured set of proxies: binds every listener (one per reactor thread, with
//! SO_REUSEPORT, so the kernel spreads miners over the reactors), starts the reactor threads, and hands back a
//! handle with the bound addresses and the counters.

use crate::config::{Config, ProxyConfig};
use crate::protocol::Dialect;
use crate::reactor::Reactor;
use crate::state::{timing, Admission, Command, Listening, ProxyState};
use crate::stats::ProxyStats;
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Listen backlog: farms reconnect thousands of miners at once.
const BACKLOG: i32 = 4096;

/// Running proxies.
pub struct RunningProxy {
    threads: Vec<JoinHandle<()>>,
    wakers: Vec<Arc<Waker>>,
    commands: Vec<std::sync::mpsc::Sender<Command>>,
    config: Config,
    shutdown: Arc<AtomicBool>,
    addrs: Vec<(String, Vec<SocketAddr>)>,
    stats: Vec<(String, Arc<ProxyStats>)>,
    validation: Vec<Arc<crate::validate::ValidationStats>>,
    admission: Arc<Admission>,
    /// Route weights, pool switches, workers and kicks shared with the reactors and the control API.
    control: Arc<crate::control::Control>,
    /// The descriptors kept for the proxy's own use (given back when it stops).
    _reserve: crate::limits::Reservation,
}

impl RunningProxy {
    /// The addresses proxy `name` listens on (port 0 in the config resolved to the real port).
    pub fn local_addrs(&self, name: &str) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    /// The first address of the first proxy.
    pub fn first_addr(&self) -> Option<SocketAddr> {
        self.addrs.first().and_then(|(_, a)| a.first().copied())
    }

    /// Counters of proxy `name`.
    pub fn stats(&self, name: &str) -> Option<Arc<ProxyStats>> {
        self.stats
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    /// The counters of every proxy entry, for the metrics endpoint.
    pub fn all_stats(&self) -> Vec<(String, Arc<ProxyStats>)> {
        self.stats.clone()
    }

    /// Local-validation counters of proxy `name`.
    pub fn validation_stats(&self, name: &str) -> Option<Arc<crate::validate::ValidationStats>> {
        let i = self.stats.iter().position(|(n, _)| n == name)?;
        self.validation.get(i).cloned()
    }

    /// The runtime control state (routes, pools, workers, kicks) that the control API changes.
    pub fn control(&self) -> Arc<crate::control::Control> {
        self.control.clone()
    }

    /// The flag that stops the reactors when set (e.g. from a signal handler).
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }

    /// Applies a new config to the running reactors: pool lists, accounts and limits change without dropping
    /// miners. A config that is invalid, or that changes what needs a restart (threads, proxies, listeners,
    /// protocols, route names or their order), is refused and the running one stays. Route
    /// weights and the route and pool switches go back to the file's values ([`Control::apply_config`]: the
    /// API's runtime changes end at a reload); accepted difficulty is kept.
    ///
    /// [`Control::apply_config`]: crate::control::Control::apply_config
    pub fn reload(&mut self, new: Config) -> Result<(), String> {
        let problems = new.check();
        if !problems.is_empty() {
            let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(format!("invalid config: {}", all.join("; ")));
        }
        if let Some(why) = crate::lifecycle::incompatible(&self.config, &new) {
            return Err(format!("{why}: restart fastproxy to apply it"));
        }
        if let Some(why) = self.control.layout_differs(&new) {
            return Err(format!("{why}: restart fastproxy to apply it"));
        }
        let updates = Arc::new(crate::lifecycle::updates(&new)?);
        for (tx, waker) in self.commands.iter().zip(&self.wakers) {
            tx.send(Command::Reload(updates.clone()))
                .map_err(|_| "a reactor has stopped".to_string())?;
            let _ = waker.wake();
        }
        let max_total = new.max_miners.as_ref().map_or(u64::MAX, |m| m.value);
        self.admission.max_total.store(max_total, Ordering::Relaxed);
        self.admission
            .max_queued_output
            .store(new.max_queued_output, Ordering::Relaxed);
        // The reactors have the update: the file's weights and switches replace the API's runtime changes.
        self.control.apply_config(&new);
        self.config = new;
        Ok(())
    }

    /// Asks every reactor to stop: listeners close at once, pending shares get up to `drain_timeout` for the
    /// pools' verdicts (then an error), and the threads end. Returns at once; see [`RunningProxy::wait`].
    pub fn request_stop(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for w in &self.wakers {
            let _ = w.wake();
        }
    }

    /// Stops every reactor (pending shares are answered with an error) and waits for them.
    pub fn stop(mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for w in &self.wakers {
            let _ = w.wake();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Waits until the reactors stop (after the shutdown flag is set).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for w in &self.wakers {
            let _ = w.wake();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Starts every proxy of a checked config.
pub fn start(config: &Config) -> io::Result<RunningProxy> {
    let problems = config.check();
    if let Some(p) = problems.first() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, p.to_string()));
    }
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let (nofile, raise_failed) = crate::limits::raise_nofile();
    if let Some(e) = raise_failed {
        log::warn!(
            "cannot raise the descriptor limit {} to the hard limit {}: {e}",
            nofile.before,
            nofile.hard
        );
    }
    let upstreams = (threads * config.proxies.len()) as u64;
    let reserve = crate::limits::reserve(
        nofile,
        crate::limits::fixed_reserve(config, threads),
        upstreams,
    )
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let admission = Arc::new(Admission::new(config, threads));
    let control = Arc::new(crate::control::Control::from_config(config));
    let max_workers = config.metrics.as_ref().map_or(1000, |m| m.max_workers);
    let stats: Vec<(String, Arc<ProxyStats>)> = config
        .proxies
        .iter()
        .map(|p| {
            let urls = p
                .route_list()
                .into_iter()
                .flat_map(|r| r.pools.iter().map(|pool| pool.url.value.clone()));
            (p.name.clone(), Arc::new(ProxyStats::new(urls, max_workers)))
        })
        .collect();
    // Bind everything first, so an address in use fails the start, not a thread.
    let mut resolved: Vec<Vec<SocketAddr>> = Vec::new();
    let validation: Vec<Arc<crate::validate::ValidationStats>> =
        stats.iter().map(|(_, s)| s.validation.clone()).collect();
    let mut listen_tls = Vec::new();
    let mut pool_tls = Vec::new();
    for p in &config.proxies {
        let mut per_listen = Vec::new();
        for l in &p.listen {
            per_listen.push(match &l.tls {
                Some(t) => Some(
                    crate::tls::server_config(Path::new(&t.cert.value), Path::new(&t.key.value))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                ),
                None => None,
            });
        }
        listen_tls.push(per_listen);
        let flat = crate::state::routes::flatten(p, |pool| {
            if pool.insecure_skip_verify {
                log::warn!(
                    "[{}] pool {}: insecure_skip_verify is on: its TLS certificate is NOT checked",
                    p.name,
                    pool.url.value
                );
            }
            pool.client_tls()
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        pool_tls.push(flat);
    }
    let mut per_thread: Vec<Vec<Listening>> = Vec::new();
    for th in 0..threads {
        let mut listeners = Vec::new();
        for (pi, p) in config.proxies.iter().enumerate() {
            if th == 0 {
                resolved.push(Vec::new());
            }
            for (li, l) in p.listen.iter().enumerate() {
                let addr = if th == 0 {
                    l.address
                        .value
                        .parse::<SocketAddr>()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
                } else {
                    resolved[pi][li]
                };
                let std_listener = bind(addr).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("[{}] cannot listen on {addr}: {e}", p.name),
                    )
                })?;
                if th == 0 {
                    resolved[pi].push(std_listener.local_addr()?);
                }
                listeners.push((
                    pi,
                    mio::net::TcpListener::from_std(std_listener),
                    listen_tls[pi][li].clone(),
                    l.proxy_protocol,
                ));
            }
        }
        per_thread.push(listeners);
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut wakers = Vec::new();
    let mut commands = Vec::new();
    let drain = ProxyConfig::secs(config.drain_timeout);
    for (th, listeners) in per_thread.into_iter().enumerate() {
        let poll = Poll::new()?;
        let waker = Arc::new(Reactor::waker(&poll)?);
        wakers.push(waker.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        commands.push(tx);
        let proxies: Vec<ProxyState> = config
            .proxies
            .iter()
            .zip(&stats)
            .zip(&pool_tls)
            .zip(&validation)
            .enumerate()
            .map(|(index, (((p, (_, s)), flat), v))| {
                let (pools, tls, accounts, routes) = flat.clone();
                ProxyState {
                    validation: v.clone(),
                    cfg: p.clone(),
                    pool_tls: tls,
                    dialect: Dialect::for_kind(p.protocol),
                    solution: crate::protocol::equihash::SolutionShape::new(&p.equihash_params()),
                    pools,
                    accounts,
                    router: (routes.len() > 1).then(|| {
                        let weights: Vec<f64> = p.route_list().iter().map(|r| r.weight).collect();
                        crate::state::Router::new(&weights, p.route_switch_interval)
                    }),
                    routes,
                    upstreams: Vec::new(),
                    control: control.clone(),
                    index,
                    command_seen: 0,
                    control_version: u64::MAX,
                    stats: s.clone(),
                    timing: timing(p),
                    sv2_rolling_refused: Default::default(),
                }
            })
            .collect();
        let resolver = crate::resolve::Resolver::new(waker);
        let reactor = Reactor::new(
            poll,
            proxies,
            listeners,
            shutdown.clone(),
            drain,
            rx,
            admission.clone(),
            resolver,
        )?;
        let handle = std::thread::Builder::new()
            .name(format!("reactor-{th}"))
            .spawn(move || reactor.run())?;
        handles.push(handle);
    }
    for (p, addrs) in config.proxies.iter().zip(&resolved) {
        for a in addrs {
            log::info!(
                "[{}] listening on {a} ({} reactor thread(s))",
                p.name,
                threads
            );
        }
    }
    Ok(RunningProxy {
        threads: handles,
        wakers,
        commands,
        config: config.clone(),
        shutdown,
        addrs: config
            .proxies
            .iter()
            .zip(resolved)
            .map(|(p, a)| (p.name.clone(), a))
            .collect(),
        stats,
        validation,
        admission,
        control,
        _reserve: reserve,
    })
}
