//! `fastproxy-loadgen`: load generator for Stratum proxies (see this crate's library, src/lib.rs). Prints the
//! report as a table (and as JSON with --json FILE); exits 0 when every phase ran to its end, 1 when the run
//! was incomplete, 2 when it could not run.

use clap::Parser;
use fastproxy_loadgen::{self as loadgen, Options};
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    let opts = Options::parse();
    let report = match loadgen::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fastproxy-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = report.print(&mut std::io::stdout().lock());
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("fastproxy-loadgen: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
