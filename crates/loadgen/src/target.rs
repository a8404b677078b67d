//! The proxy under test: fastproxy started as a child process (`fastproxy -c` with a generated config) or
//! in this process, any command spawned as the proxy, or a proxy already running at an address. It knows
//! where miners connect and how to read the proxy's CPU time and memory.

use super::args::{Dialect, Mode, Options};
use super::procstat::{self, Mem, Scope};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

enum Kind {
    /// Direct mode: no proxy.
    None,
    InProcess(Box<fastproxy::proxy::RunningProxy>),
    Child {
        child: Child,
        config: Option<PathBuf>,
    },
    External,
}

/// The proxy under test.
pub struct Target {
    kind: Kind,
    /// Where the miners connect.
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    scope: Option<Scope>,
    /// Pool connections the proxy opens at start (fastproxy: one per reactor thread); 0 if unknown.
    pub expected_pool_conns: u64,
    pub description: String,
}

/// The YAML config of the started fastproxy: one `pools:` list, or `routes` (more than 1) routes of equal
/// weight, each with the one pool.
pub fn config_yaml(
    listen: SocketAddr,
    pool: SocketAddr,
    threads: usize,
    dialect: Dialect,
    validate: bool,
    routes: u32,
) -> String {
    let protocol = match dialect {
        Dialect::Stratum => "stratum",
        Dialect::Equihash => "equihash",
    };
    let upstream = if routes <= 1 {
        format!("    pools:\n      - url: stratum+tcp://{pool}\n        user: lg.proxy\n        password: x\n")
    } else {
        (1..=routes)
            .map(|i| format!("      - {{ name: r{i}, weight: 1, pools: [{{ url: stratum+tcp://{pool}, user: lg.proxy, password: x }}] }}\n"))
            .fold("    routes:\n".to_string(), |y, r| y + &r)
    };
    format!(
        "threads: {threads}\nproxies:\n  - name: loadgen\n    protocol: {protocol}\n    listen:\n      - address: {listen}\n{upstream}    validate_shares: {validate}\n"
    )
}

/// What the description of a started fastproxy adds with `--routes`.
fn routed(o: &Options) -> String {
    if o.routes > 1 {
        format!(", {} routes of equal weight", o.routes)
    } else {
        String::new()
    }
}

/// What the description of a started fastproxy adds with `--validate`.
fn validating(o: &Options) -> &'static str {
    if o.validate {
        ", validating every share"
    } else {
        ""
    }
}

fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Waits until something accepts TCP connections at `addr`.
fn wait_listening(addr: SocketAddr, secs: f64, child: Option<&mut Child>) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut child = child;
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(format!("the proxy exited at start ({status})"));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "nothing accepts connections at {addr} after {secs} s"
    ))
}

impl Target {
    /// Starts or finds the proxy that `o` names, configured against the pool at `pool`.
    pub fn start(o: &Options, pool: SocketAddr) -> Result<Target, String> {
        if o.mode == Mode::Direct {
            return Ok(Target {
                kind: Kind::None,
                addr: pool,
                pid: None,
                scope: None,
                expected_pool_conns: 0,
                description: format!("none: miners straight to the pool at {pool}"),
            });
        }
        if o.start_proxy && o.in_process {
            let listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let cfg = fastproxy::config::Config::from_yaml(&config_yaml(
                listen, pool, o.threads, o.protocol, o.validate, o.routes,
            ))
            .map_err(|p| format!("generated config: {p:?}"))?;
            let running = fastproxy::proxy::start(&cfg)
                .map_err(|e| format!("cannot start fastproxy: {e}"))?;
            let addr = running.local_addrs("loadgen")[0];
            return Ok(Target {
                kind: Kind::InProcess(Box::new(running)),
                addr,
                pid: Some(std::process::id()),
                scope: Some(Scope::OwnThreads("reactor-")),
                expected_pool_conns: o.threads as u64,
                description: format!(
                    "fastproxy in this process, {} thread(s){}{}, at {addr}",
                    o.threads,
                    validating(o),
                    routed(o)
                ),
            });
        }
        if o.start_proxy {
            let bin = match &o.proxy_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe()
                    .map_err(|e| e.to_string())?
                    .with_file_name("fastproxy"),
            };
            let listen = free_port()?;
            let path =
                std::env::temp_dir().join(format!("fastproxy-loadgen-{}.yaml", std::process::id()));
            let mut yaml = config_yaml(listen, pool, o.threads, o.protocol, o.validate, o.routes);
            if let Some((addr, key)) = &o.sv2_pool {
                let v1 = format!("url: stratum+tcp://{pool}\n");
                yaml = yaml.replace(
                    &v1,
                    &format!("url: stratum2+tcp://{addr}\n        authority_public_key: {key}\n"),
                );
            }
            std::fs::write(&path, yaml)
                .map_err(|e| format!("cannot write the proxy config: {e}"))?;
            let mut child = Command::new(&bin)
                .arg("-q")
                .arg("-c")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start {}: {e} (build it: cargo build --release)",
                        bin.display()
                    )
                })?;
            let pid = child.id();
            let ready = wait_listening(listen, o.pool_wait, Some(&mut child));
            let t = Target {
                kind: Kind::Child {
                    child,
                    config: Some(path),
                },
                addr: listen,
                pid: Some(pid),
                scope: Some(Scope::Pid(pid)),
                expected_pool_conns: o.threads as u64,
                description: format!(
                    "fastproxy child process {pid}, {} thread(s){}{}, at {listen}",
                    o.threads,
                    validating(o),
                    routed(o)
                ),
            };
            return ready.map(|_| t);
        }
        let addr = o.target.ok_or("no target")?;
        if let Some(cmd) = &o.spawn {
            let mut words = cmd.split_whitespace();
            let prog = words.next().ok_or("--spawn: empty command")?;
            let mut child = Command::new(prog)
                .args(words)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {prog}: {e}"))?;
            let pid = child.id();
            let ready = wait_listening(addr, o.pool_wait, Some(&mut child));
            let t = Target {
                kind: Kind::Child {
                    child,
                    config: None,
                },
                addr,
                pid: Some(pid),
                scope: Some(Scope::Pid(pid)),
                expected_pool_conns: 0,
                description: format!("spawned proxy process {pid} at {addr}"),
            };
            return ready.map(|_| t);
        }
        wait_listening(addr, o.pool_wait, None)?;
        Ok(Target {
            kind: Kind::External,
            addr,
            pid: o.proxy_pid,
            scope: o.proxy_pid.map(Scope::Pid),
            expected_pool_conns: 0,
            description: format!(
                "proxy at {addr}{}",
                o.proxy_pid.map_or(String::new(), |p| format!(", pid {p}"))
            ),
        })
    }

    /// What the CPU and memory figures cover.
    pub fn scope_text(&self) -> String {
        match (&self.kind, &self.scope) {
            (Kind::None, _) => "no proxy".into(),
            (Kind::InProcess(_), _) => {
                "in-process: CPU of the reactor-* threads; RSS is shared with the load generator"
                    .into()
            }
            (Kind::Child { .. }, _) => "child process (/proc/<pid>)".into(),
            (Kind::External, Some(_)) => "external process (/proc/<pid>)".into(),
            (Kind::External, None) => "external process, no --proxy-pid: not measured".into(),
        }
    }

    /// CPU nanoseconds used by the proxy so far.
    pub fn cpu_ns(&self) -> Option<u64> {
        self.scope.as_ref().and_then(procstat::cpu_ns)
    }

    /// Shares an in-process fastproxy validated and forwarded (None for the other kinds of target).
    pub fn shares_validated(&self) -> Option<u64> {
        match &self.kind {
            Kind::InProcess(r) => r
                .validation_stats("loadgen")
                .map(|v| v.forwarded.load(std::sync::atomic::Ordering::Relaxed)),
            _ => None,
        }
    }

    /// The proxy's own memory (not for an in-process proxy, whose memory is the load generator's too).
    pub fn mem(&self) -> Option<Mem> {
        match (&self.kind, &self.scope) {
            (Kind::InProcess(_), _) | (Kind::None, _) => None,
            (_, Some(Scope::Pid(p))) => procstat::mem(Some(*p)),
            _ => None,
        }
    }

    /// True while a child proxy is running (always true for the other kinds).
    pub fn alive(&mut self) -> bool {
        match &mut self.kind {
            Kind::Child { child, .. } => matches!(child.try_wait(), Ok(None)),
            _ => true,
        }
    }

    /// Stops a proxy this run started: SIGTERM (via `kill`), then SIGKILL after 5 s. Also on drop.
    pub fn stop(self) {
        drop(self);
    }

    fn shutdown(&mut self) {
        match std::mem::replace(&mut self.kind, Kind::None) {
            Kind::InProcess(r) => r.stop(),
            Kind::Child { mut child, config } => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .stderr(Stdio::null())
                    .status();
                let end = Instant::now() + Duration::from_secs(5);
                while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
                if let Some(p) = config {
                    let _ = std::fs::remove_file(p);
                }
            }
            Kind::External | Kind::None => {}
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.shutdown();
    }
}
