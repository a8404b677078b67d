//! The `fastproxy` command: run proxies from a YAML file, check or generate a config, run the demo or the
//! simulated pool.

use clap::{CommandFactory, Parser, Subcommand};
use fastproxy::config::{self, Config};
use std::path::PathBuf;
use std::process::ExitCode;

mod cli_docs;
mod demo;
mod demo_sv2;
mod service;

/// A fast Stratum mining proxy: many miners, one pool connection, the nonce space split per miner.
#[derive(Parser, Debug)]
#[command(name = "fastproxy", version, about, long_about = None)]
struct Cli {
    /// The YAML config file to run.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the config file (given with -c or here) and exit: 0 when valid, else every problem is printed.
    #[arg(long = "check-config", value_name = "FILE", num_args = 0..=1)]
    check_config: Option<Option<PathBuf>>,
    /// Print a commented config template and exit.
    #[arg(long = "generate-config")]
    generate_config: bool,
    /// Pool URL for --generate-config.
    #[arg(
        long,
        default_value = "stratum+tcp://127.0.0.1:3334",
        requires = "generate_config"
    )]
    pool: String,
    /// Pool user for --generate-config.
    #[arg(long, default_value = "account.farm1", requires = "generate_config")]
    user: String,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (-q warnings, -qq errors).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy against the built-in simulated pool with a few hashing miners, print shares flowing, stop.
    Demo(demo::DemoArgs),
    /// Run only the simulated (share-checking) pool, to point the proxy and real miners at.
    SimPool(demo::SimPoolArgs),
    /// Read a password from standard input and print its argon2 hash for `auth: { users: [...] }`.
    HashPassword,
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (fastproxy.1 and one per subcommand) into DIR; used by the package build.
    #[command(hide = true)]
    GenerateMan { dir: PathBuf },
}

fn init_logging(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    if cli.generate_config {
        print!("{}", config::template(&cli.pool, &cli.user));
        return ExitCode::SUCCESS;
    }
    if let Some(check) = &cli.check_config {
        let Some(path) = check.clone().or_else(|| cli.config.clone()) else {
            eprintln!("--check-config needs a file: --check-config FILE or -c FILE");
            return ExitCode::from(2);
        };
        return match Config::load(&path) {
            Ok(c) => {
                println!(
                    "{}: OK ({} prox{})",
                    path.display(),
                    c.proxies.len(),
                    if c.proxies.len() == 1 { "y" } else { "ies" }
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in &problems {
                    eprintln!("{}: {p}", path.display());
                }
                ExitCode::FAILURE
            }
        };
    }
    match cli.command {
        Some(Command::Demo(args)) => return demo::run_demo(&args),
        Some(Command::SimPool(args)) => return demo::run_sim_pool(&args),
        Some(Command::HashPassword) => return hash_password(),
        Some(Command::Completions { shell }) => {
            cli_docs::completions(Cli::command(), shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::GenerateMan { dir }) => {
            return match cli_docs::generate_man(Cli::command(), &dir) {
                Ok(files) => {
                    files.iter().for_each(|f| println!("{}", f.display()));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot write the man pages into {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let Some(path) = cli.config else {
        eprintln!("nothing to do: give a config with -c FILE (see --generate-config), or run `fastproxy demo`");
        return ExitCode::from(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", path.display());
            }
            return ExitCode::FAILURE;
        }
    };
    // Handlers first: a SIGTERM that comes as soon as the port opens must drain and exit 0, not kill.
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(|e| log::warn!("cannot install signal handlers ({e}): running until killed"))
        .ok();
    let (running, _metrics, _api) = match start(&config) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    serve_signals(running, signals, &path)
}

/// `fastproxy hash-password`: one line from stdin in, its argon2id PHC hash out.
fn hash_password() -> ExitCode {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        eprintln!("cannot read the password from standard input");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("empty password");
        return ExitCode::FAILURE;
    }
    match fastproxy::auth::hash_password(password) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot hash: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the proxies of `config`, and its metrics endpoint and control API if it has them. Their listeners are
/// bound before the proxies take miners: a port in use stops the start before any miner connects, and both
/// answer from the moment a miner can connect.
fn start(
    config: &Config,
) -> std::io::Result<(
    fastproxy::proxy::RunningProxy,
    Option<fastproxy::metrics::MetricsHandle>,
    Option<fastproxy::api::ApiHandle>,
)> {
    use fastproxy::metrics::Endpoint;
    let metrics = match &config.metrics {
        Some(m) => {
            let addr = m
                .listen
                .value
                .parse()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 9100).into());
            Some(Endpoint::bind("metrics", addr)?)
        }
        None => None,
    };
    let api = match &config.api {
        Some(a) => {
            let (Ok(addr), Some(hash)) = (a.listen.value.parse(), a.token_hash()) else {
                return Err(std::io::Error::other(
                    "api: bad listen address or token_sha256 (run --check-config)",
                ));
            };
            Some((Endpoint::bind("api", addr)?, hash))
        }
        None => None,
    };
    let running = fastproxy::proxy::start(config)?;
    let metrics = metrics
        .map(|l| {
            let control = Some(running.control());
            fastproxy::metrics::serve_on(l, running.all_stats(), control, Default::default())
        })
        .transpose()?;
    let api = api
        .map(|(l, hash)| fastproxy::api::serve_on(l, hash, running.control()))
        .transpose()?;
    Ok((running, metrics, api))
}

/// Runs until SIGTERM/SIGINT (drain, then exit 0); SIGHUP reloads the config file. Without `signals` (the
/// handlers could not be installed) it runs until killed.
fn serve_signals(
    mut running: fastproxy::proxy::RunningProxy,
    signals: Option<signal_hook::iterator::Signals>,
    path: &std::path::Path,
) -> ExitCode {
    use signal_hook::consts::SIGHUP;
    let Some(mut signals) = signals else {
        service::ready();
        running.wait();
        return ExitCode::SUCCESS;
    };
    // Listeners are bound and the handlers installed: systemd's `start` may return, miners can connect.
    service::ready();
    for sig in signals.forever() {
        if sig == SIGHUP {
            log::info!("SIGHUP: reloading {}", path.display());
            service::reloading();
            let result = Config::load(path)
                .map_err(|p| {
                    p.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .and_then(|c| running.reload(c));
            match result {
                Ok(()) => log::info!("config reloaded"),
                Err(e) => log::error!("config NOT reloaded, the running one stays: {e}"),
            }
            service::ready();
            continue;
        }
        log::info!("signal {sig}: shutting down");
        service::stopping();
        running.request_stop();
        break;
    }
    running.wait();
    log::info!("stopped");
    ExitCode::SUCCESS
}
