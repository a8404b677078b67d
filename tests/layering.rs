//! The layers of the workspace's sources (src/ and each crate of [`MEMBERS`]) and a check that imports only go
//! down them: every module file sits in one layer of [`LAYERS`], and an import from a lower layer to a higher
//! one, or a cycle between modules, fails the test.
//!
//! Layers, lowest first (a module uses its own layer and the ones below, never one above):
//! 1. base: no crate imports: hex (crates/work), line framing, the reply-id table, the nonce split, socket io, TLS and
//!    PROXY-protocol setup, duration settings;
//! 2. hash: share math, the `fastproxy-work` crate (crates/work), which lib.rs re-exports under the old paths
//!    (`crate::work` names crates/work/src/work.rs): work (jobs, targets, the reference share hash), the
//!    SHA-256 kernels, share_hash, equihash;
//! 3. config: auth settings and checks, then the config file (above hash: it builds `equihash::Params`), and
//!    the SV2 pool's authority key it checks (protocol/sv2/common.rs: SV2 errors and the key, no crate imports);
//! 4. wire: the dialects' message formats (protocol/json, stratum, equihash, sv2, and miner_msg: miners'
//!    requests and the proxy's replies to them);
//! 5. shares: share validation and counters, the dialect enum (protocol/mod.rs parses jobs into validate's job
//!    book) and the pool side of each dialect (protocol/pool_msg.rs, a `match` on that enum);
//! 6. session: miner and pool handling without IO (the sans-IO sessions and failover state in session/, close
//!    reasons, share batching);
//! 7. runtime-state: the runtime's data (state/): a reactor's connections (`Conn`, `Miner`, `PoolConn`), its
//!    upstreams (`Upstream`, `Req`, `Lookup`) and proxy entries (`ProxyState`, `Timing`, the reload `Command`,
//!    the `Admission` counters);
//! 8. reactor: the poll loop, the slabs, output flushing and the timers (reactor.rs, which imports no handler);
//! 9. handlers: the `impl Reactor` blocks: accepting (admission), miners (downstream), pools (upstream,
//!    connect, pool_driver, upstream_miners, passthrough), a share's way to the pool (share_flow), vardiff's
//!    walks over the miners, output budgets, reload (lifecycle); they call each other's methods, which are
//!    not imports;
//! 10. runtime: starting the reactors (proxy), the service manager, the metrics server and the control API;
//! 11. tools: the simulator (crates/sim, which needs only the share math) and the load generator
//!     (crates/loadgen, which starts the proxy);
//! 12. app: the crate roots and binaries (a lib.rs holds only `mod` and `pub use` lines; an item there would
//!     be "up").
//!
//! An import is any path that names another module file: `use crate::x::...` (with `{...}` groups),
//! `crate::x::...` in code, `super::...` leaving the file's module, a child module named from its parent,
//! `fastproxy::x` in the binaries, `fastproxy_work::x` and the other workspace libraries by name. Comments, string literals and `#[cfg(test)]` modules are skipped (unit
//! tests may use anything, as dev-dependencies may). [`ALLOWED`] would list a known violation with its
//! reason; it is empty since the sans-IO redesign (issue 13), and an entry no longer needed fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every .rs file of the workspace, by layer, lowest layer first: a file of src/ by its path in src/, a file of
/// a member crate by its path in the workspace (crates/NAME/src/...).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "duration.rs",
            "framing.rs",
            "crates/work/src/hex.rs",
            "io.rs",
            "nonce.rs",
            "pending.rs",
            "proxy_protocol.rs",
            "proxy_protocol/tests.rs",
            "resolve.rs",
            "tls.rs",
        ],
    ),
    (
        "hash",
        &[
            "crates/work/src/work.rs",
            "crates/work/src/sha256x2.rs",
            "crates/work/src/sha256x16.rs",
            "crates/work/src/share_hash.rs",
            "crates/work/src/share_hash/tests.rs",
            "crates/work/src/equihash.rs",
            "crates/work/src/equihash/tests.rs",
        ],
    ),
    (
        "config",
        &[
            "auth.rs",
            "config/types.rs",
            "config/routes.rs",
            "config/load.rs",
            "config/check.rs",
            "config/tests.rs",
            "config/mod.rs",
            "config/sv2.rs",
            "protocol/sv2/common.rs",
            "limits.rs",
        ],
    ),
    (
        "wire",
        &[
            "protocol/json.rs",
            "protocol/stratum.rs",
            "protocol/equihash.rs",
            "protocol/sv2/mod.rs",
            "protocol/sv2/client.rs",
            "protocol/sv2/messages.rs",
            "protocol/sv2/job.rs",
            "protocol/miner_msg.rs",
        ],
    ),
    (
        "shares",
        &[
            "validate.rs",
            "validate/tests.rs",
            "stats/atomic.rs",
            "stats/clock.rs",
            "stats/reject.rs",
            "stats/latency.rs",
            "stats/pool.rs",
            "stats/worker.rs",
            "stats/registry.rs",
            "stats/mod.rs",
            "protocol/mod.rs",
            "protocol/pool_msg.rs",
            "routing/mod.rs",
            "routing/tests.rs",
            "control.rs",
        ],
    ),
    (
        "session",
        &[
            "session/mod.rs",
            "session/failover.rs",
            "session/pool.rs",
            "session/sv2_pool.rs",
            "session/sv2_rate.rs",
            "session/sv2_pool_tests.rs",
            "session/pool_tests.rs",
            "session/miner.rs",
            "session/miner_vardiff.rs",
            "session/miner_tests.rs",
            "share_batch.rs",
            "close.rs",
        ],
    ),
    (
        "runtime-state",
        &[
            "state/mod.rs",
            "state/conns.rs",
            "state/upstreams.rs",
            "state/proxies.rs",
            "state/routes.rs",
        ],
    ),
    ("reactor", &["reactor.rs"]),
    (
        "handlers",
        &[
            "admission.rs",
            "budget.rs",
            "connect.rs",
            "downstream.rs",
            "linger.rs",
            "upstream.rs",
            "passthrough.rs",
            "pool_driver.rs",
            "sv2_driver.rs",
            "upstream_miners.rs",
            "share_flow.rs",
            "route_driver.rs",
            "vardiff.rs",
            "lifecycle.rs",
        ],
    ),
    (
        "runtime",
        &[
            "service.rs",
            "proxy.rs",
            "metrics/endpoint.rs",
            "metrics/handle.rs",
            "metrics/mod.rs",
            "metrics/history.rs",
            "metrics/page.rs",
            "metrics/prometheus.rs",
            "metrics/routes.rs",
            "metrics/server.rs",
            "metrics/status.rs",
            "api/handler.rs",
            "api/mod.rs",
        ],
    ),
    (
        "tools",
        &[
            "crates/sim/src/lines.rs",
            "crates/sim/src/prng.rs",
            "crates/sim/src/server.rs",
            "crates/sim/src/client.rs",
            "crates/sim/src/test_client.rs",
            "crates/sim/src/pool/config.rs",
            "crates/sim/src/pool/jobs.rs",
            "crates/sim/src/pool/judge.rs",
            "crates/sim/src/pool/state.rs",
            "crates/sim/src/pool/mod.rs",
            "crates/sim/src/pool/tests.rs",
            "crates/sim/src/miner/config.rs",
            "crates/sim/src/miner/hashing.rs",
            "crates/sim/src/miner/session.rs",
            "crates/sim/src/miner/mod.rs",
            "crates/sim/src/miner/tests.rs",
            "crates/sim/src/equihash_pool/config.rs",
            "crates/sim/src/equihash_pool/judge.rs",
            "crates/sim/src/equihash_pool/state.rs",
            "crates/sim/src/equihash_pool/mod.rs",
            "crates/sim/src/equihash_pool/tests.rs",
            "crates/sim/src/equihash_miner/config.rs",
            "crates/sim/src/equihash_miner/grind.rs",
            "crates/sim/src/equihash_miner/session.rs",
            "crates/sim/src/equihash_miner/mod.rs",
            "crates/sim/src/equihash_miner/tests.rs",
            "crates/sim/src/sv2_pool.rs",
            "crates/sim/src/sv2_pool/conn.rs",
            "crates/sim/src/sv2_pool/judge.rs",
            "crates/sim/src/sv2_pool/state.rs",
            "crates/loadgen/src/args.rs",
            "crates/loadgen/src/clock.rs",
            "crates/loadgen/src/conn.rs",
            "crates/loadgen/src/hist.rs",
            "crates/loadgen/src/limits.rs",
            "crates/loadgen/src/line.rs",
            "crates/loadgen/src/miners.rs",
            "crates/loadgen/src/phases.rs",
            "crates/loadgen/src/pool.rs",
            "crates/loadgen/src/plot.rs",
            "crates/loadgen/src/procstat.rs",
            "crates/loadgen/src/reactor.rs",
            "crates/loadgen/src/report.rs",
            "crates/loadgen/src/routing_bench.rs",
            "crates/loadgen/src/sv2_upstream.rs",
            "crates/loadgen/src/target.rs",
            "crates/loadgen/src/tests.rs",
            "crates/loadgen/src/wire.rs",
        ],
    ),
    (
        "app",
        &[
            "lib.rs",
            "main.rs",
            "cli_docs.rs",
            "demo.rs",
            "demo_sv2.rs",
            "crates/work/src/lib.rs",
            "crates/sim/src/lib.rs",
            "crates/loadgen/src/lib.rs",
            "crates/loadgen/src/main.rs",
            "crates/loadgen/src/bin/routing_bench.rs",
            "crates/loadgen/src/bin/sv2_compare.rs",
        ],
    ),
];

/// The member crates (directory, library name), and the modules the root library re-exports from one of them
/// (`pub use fastproxy_work::{...}` in lib.rs: `crate::work` in src/ names crates/work's `work`).
const MEMBERS: &[(&str, &str)] = &[
    ("crates/work", "fastproxy_work"),
    ("crates/sim", "fastproxy_sim"),
    ("crates/loadgen", "fastproxy_loadgen"),
];
const REEXPORTED: &[(&str, &str)] = &[
    ("equihash", "fastproxy_work"),
    ("hex", "fastproxy_work"),
    ("sha256x16", "fastproxy_work"),
    ("sha256x2", "fastproxy_work"),
    ("share_hash", "fastproxy_work"),
    ("work", "fastproxy_work"),
];

/// An import the layers forbid that the code still has, and why.
struct Allowed {
    from: &'static str,
    to: &'static str,
    why: &'static str,
}

/// Known violations (none left since the sans-IO redesign, issue 13). Never add one to pass the test: move the
/// code instead. Remove an entry when its import is gone (the test says so).
const ALLOWED: &[Allowed] = &[];

/// A source file's tokens, as far as module paths need them.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other(char),
}

/// Splits Rust source into tokens with their line numbers, skipping comments, string and char literals.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let ident_char = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    // Skips a quoted literal whose opening quote is at `i`, closed by `quote` then `hashes` '#'s.
    let skip_quoted = |mut i: usize, quote: char, hashes: usize, raw: bool, line: &mut usize| {
        i += 1;
        while i < c.len() {
            match c[i] {
                '\\' if !raw => i += 1,
                '\n' => *line += 1,
                ch if ch == quote && (0..hashes).all(|k| at(i + 1 + k) == '#') => {
                    return i + 1 + hashes
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    // At r"...", r#"..."# or br"...": the index of the opening quote and the number of '#'s.
    let raw_open = |i: usize| {
        let r = if at(i) == 'b' { i + 1 } else { i };
        let quote = (r + 1..).find(|&k| at(k) != '#').unwrap_or(r + 1);
        (at(r) == 'r' && at(quote) == '"').then_some((quote, quote - r - 1))
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && at(j + 1) == '*' {
                    depth += 1;
                    j += 1;
                } else if c[j] == '*' && at(j + 1) == '/' {
                    depth -= 1;
                    j += 1;
                } else if c[j] == '\n' {
                    line += 1;
                }
                j += 1;
            }
            i = j;
        } else if ch == '"' {
            i = skip_quoted(i, '"', 0, false, &mut line);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                i = skip_quoted(i, '\'', 0, false, &mut line);
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1; // a lifetime: its name lexes as an identifier
            }
        } else if ch == 'b' && (at(i + 1) == '"' || at(i + 1) == '\'') {
            i += 1; // b"..." and b'x' lex as the literals they prefix
        } else if let Some((quote, hashes)) = raw_open(i) {
            i = skip_quoted(quote, '"', hashes, true, &mut line);
        } else if ident_char(ch) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // A number literal (with its suffix) is no identifier.
            let tok = if ch.is_ascii_digit() {
                Tok::Other('0')
            } else {
                Tok::Ident(word)
            };
            out.push((tok, line));
        } else {
            let tok = match ch {
                ':' if at(i + 1) == ':' => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                ch => Tok::Other(ch),
            };
            out.push((tok, line));
            i += 1;
        }
    }
    out
}

/// Reads a path or `use` tree starting at `toks[i]` (`a::b::{c, d::e as f, *}`), pushing each full path.
fn path_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut segs = prefix;
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                segs.push(s.clone());
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::PathSep) {
                    i += 1;
                    continue;
                }
                if toks.get(i).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                    i += 2;
                }
            }
            Some(Tok::Open) => {
                i += 1;
                while i < toks.len() && toks[i].0 != Tok::Close {
                    i = path_tree(toks, i, segs.clone(), out);
                    if toks.get(i).map(|t| &t.0) == Some(&Tok::Comma) {
                        i += 1;
                    }
                }
                return i + 1;
            }
            Some(Tok::Star) => i += 1,
            _ => {}
        }
        out.push(segs);
        return i;
    }
}

/// One compiled crate (a library or a binary): its library name (None for a binary) and its modules' files
/// by module path.
struct Crate {
    lib: Option<&'static str>,
    modules: BTreeMap<Vec<String>, String>,
}

/// A path found in a file: the module path it starts from (after `crate`/`super`/`self`/a child name), its
/// remaining segments, which crate it names (None: its own; else a workspace library), and where it is.
struct Found {
    from_module: Vec<String>,
    segs: Vec<String>,
    to_lib: Option<String>,
    line: usize,
    text: String,
}

impl Found {
    /// The item path it names from the crate root (`super` and `self` applied).
    fn absolute(&self) -> Vec<String> {
        let mut path = self.from_module.clone();
        for seg in &self.segs {
            match seg.as_str() {
                "super" => {
                    path.pop();
                }
                "self" => {}
                s => path.push(s.to_string()),
            }
        }
        path
    }
}

/// Whether `#[cfg(test)]` starts at `toks[i]`.
fn cfg_test_at(toks: &[(Tok, usize)], i: usize) -> bool {
    let want = [
        Tok::Other('#'),
        Tok::Other('['),
        Tok::Ident("cfg".into()),
        Tok::Other('('),
        Tok::Ident("test".into()),
        Tok::Other(')'),
        Tok::Other(']'),
    ];
    toks.len() >= i + want.len() && toks[i..i + want.len()].iter().map(|t| &t.0).eq(want.iter())
}

/// What one file declares and uses: its file children (`mod x;`, with whether they are `#[cfg(test)]`)
/// and the module paths its non-test code names. `own_lib`: the library the file belongs to (None in a binary).
fn scan(src: &str, module: &[String], own_lib: Option<&str>) -> (Vec<(String, bool)>, Vec<Found>) {
    let workspace_lib =
        |s: &str| (s == "fastproxy" || MEMBERS.iter().any(|m| m.1 == s)) && own_lib != Some(s);
    let toks = tokenize(src);
    let tok = |i: usize| toks.get(i).map(|t| &t.0);
    let ident = |i: usize| match tok(i) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let mut children = Vec::new();
    let mut found = Vec::new();
    let mut depth = 0usize;
    // Inline modules open around the current token: name, brace depth outside it, whether it is test code.
    let mut inline: Vec<(String, usize, bool)> = Vec::new();
    // A `#[cfg(test)]` was seen and the item it applies to has not started yet.
    let mut cfg_test = false;
    let mut i = 0;
    while i < toks.len() {
        if cfg_test_at(&toks, i) {
            cfg_test = true;
            i += 7;
            continue;
        }
        match &toks[i].0 {
            Tok::Ident(s) if s == "mod" && tok(i + 2) == Some(&Tok::Semi) => {
                if depth == 0 {
                    children.push((ident(i + 1).unwrap_or("").to_string(), cfg_test));
                }
                cfg_test = false;
                i += 3;
                continue;
            }
            Tok::Ident(s) if s == "mod" && tok(i + 2) == Some(&Tok::Open) => {
                let test = cfg_test || inline.last().is_some_and(|m| m.2);
                inline.push((ident(i + 1).unwrap_or("").to_string(), depth, test));
                cfg_test = false;
                depth += 1;
                i += 3;
                continue;
            }
            Tok::Open | Tok::Semi => {
                cfg_test = false;
                depth += usize::from(toks[i].0 == Tok::Open);
            }
            Tok::Close => {
                cfg_test = false;
                depth -= 1;
                if inline.last().is_some_and(|m| m.1 == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(s)
                if tok(i + 1) == Some(&Tok::PathSep)
                    && (i == 0 || toks[i - 1].0 != Tok::PathSep)
                    && (matches!(s.as_str(), "crate" | "super" | "self")
                        || workspace_lib(s)
                        || (inline.is_empty() && children.iter().any(|c| c.0 == *s))) =>
            {
                let line = toks[i].1;
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|m| m.0.clone()));
                let mut paths = Vec::new();
                let next = path_tree(&toks, i, Vec::new(), &mut paths);
                if !inline.last().is_some_and(|m| m.2) {
                    for segs in paths {
                        let text = segs.join("::").trim_end_matches("::self").to_string();
                        let (from_module, rest, to_lib) = match segs[0].as_str() {
                            "crate" => (Vec::new(), segs[1..].to_vec(), None),
                            "self" | "super" => (here.clone(), segs, None),
                            lib if workspace_lib(lib) => {
                                (Vec::new(), segs[1..].to_vec(), Some(lib.to_string()))
                            }
                            _ => (module.to_vec(), segs, None),
                        };
                        found.push(Found {
                            from_module,
                            segs: rest,
                            to_lib,
                            line,
                            text,
                        });
                    }
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (children, found)
}

/// Walks `mod x;` declarations from a crate root, returning the crate's modules; collects each non-test
/// file's paths into `uses`.
/// `src` is the crate's src/ directory and `prefix` what goes in front of a path in it to name the file.
fn load_crate(
    src: &Path,
    prefix: &str,
    root: &str,
    lib: Option<&'static str>,
    uses: &mut Vec<(String, Found)>,
) -> Crate {
    let mut modules = BTreeMap::new();
    let mut todo = vec![(Vec::<String>::new(), root.to_string(), false)];
    while let Some((module, file, test)) = todo.pop() {
        let text =
            std::fs::read_to_string(src.join(&file)).unwrap_or_else(|e| panic!("src/{file}: {e}"));
        let (children, found) = scan(&text, &module, lib);
        let dir = if module.is_empty() || file.ends_with("mod.rs") {
            file.rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"))
        } else {
            format!("{}/", file.trim_end_matches(".rs"))
        };
        for (child, child_test) in children {
            let flat = format!("{dir}{child}.rs");
            let nested = format!("{dir}{child}/mod.rs");
            let path = if src.join(&flat).exists() {
                flat
            } else {
                nested
            };
            let mut m = module.clone();
            m.push(child);
            todo.push((m, path, test || child_test));
        }
        let name = format!("{prefix}{file}");
        if !test {
            uses.extend(found.into_iter().map(|f| (name.clone(), f)));
        }
        modules.insert(module, name);
    }
    Crate { lib, modules }
}

/// Every .rs file under `dir`, relative to `base`.
fn rust_files(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(base).expect("under src/");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The module graph of the workspace: every .rs file, and for each (from, to) file pair the places that make
/// the edge.
struct Graph {
    files: Vec<String>,
    edges: BTreeMap<(String, String), Vec<String>>,
}

/// A file's path from the workspace root, for messages.
fn at(file: &str) -> String {
    if file.starts_with("crates/") {
        file.to_string()
    } else {
        format!("src/{file}")
    }
}

fn graph() -> Graph {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut uses = Vec::new();
    let mut crates = Vec::new();
    let roots = [("", "fastproxy")].iter().chain(MEMBERS);
    for &(dir, lib) in roots {
        let src = workspace.join(dir).join("src");
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/src/")
        };
        let mut own = Vec::new();
        rust_files(&src, &src, &mut own);
        crates.push(load_crate(&src, &prefix, "lib.rs", Some(lib), &mut uses));
        for f in own
            .iter()
            .filter(|f| *f == "main.rs" || f.starts_with("bin/"))
        {
            crates.push(load_crate(&src, &prefix, f, None, &mut uses));
        }
        files.extend(own.into_iter().map(|f| format!("{prefix}{f}")));
    }
    files.sort();
    let lib_crate = |name: &str| {
        crates
            .iter()
            .find(|c| c.lib == Some(name))
            .unwrap_or_else(|| panic!("no workspace library {name}"))
    };
    let crate_of: BTreeMap<&str, &Crate> = crates
        .iter()
        .flat_map(|c| c.modules.values().map(move |f| (f.as_str(), c)))
        .collect();
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (file, found) in uses {
        let mut target = match &found.to_lib {
            Some(lib) => lib_crate(lib),
            None => crate_of[file.as_str()],
        };
        let mut module = found.absolute();
        let first = module.first().map(String::as_str);
        if target.lib == Some("fastproxy") {
            if let Some(r) = REEXPORTED.iter().find(|r| Some(r.0) == first) {
                target = lib_crate(r.1);
            }
        }
        while !target.modules.contains_key(&module) {
            module.pop();
        }
        let to = &target.modules[&module];
        if *to != file {
            let place = format!("{}:{} `{}`", at(&file), found.line, found.text);
            edges
                .entry((file.clone(), to.clone()))
                .or_default()
                .push(place);
        }
    }
    Graph { files, edges }
}

/// Each file's layer index in [`LAYERS`].
fn layer_of() -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (i, (_, files)) in LAYERS.iter().enumerate() {
        for f in *files {
            assert!(
                out.insert(*f, i).is_none(),
                "{f} is in two layers of LAYERS"
            );
        }
    }
    out
}

fn is_allowed(from: &str, to: &str) -> bool {
    ALLOWED.iter().any(|a| a.from == from && a.to == to)
}

/// The strongly connected components of more than one file (Tarjan), over the edges `keep` accepts.
fn cycles(g: &Graph, keep: impl Fn(&str, &str) -> bool) -> Vec<Vec<String>> {
    struct State<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.next.get(v).cloned().unwrap_or_default() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for (a, b) in g.edges.keys().filter(|(a, b)| keep(a, b)) {
        s.next.entry(a.as_str()).or_default().push(b.as_str());
    }
    for f in &g.files {
        if !s.index.contains_key(f.as_str()) {
            visit(&mut s, f.as_str());
        }
    }
    s.out
}

/// The first few places of an edge, for a failure message.
fn shown(places: &[String]) -> String {
    let mut out = places
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if places.len() > 3 {
        out += &format!(" and {} more", places.len() - 3);
    }
    out
}

#[test]
fn every_module_file_has_one_layer() {
    let g = graph();
    let layers = layer_of();
    let mut problems = Vec::new();
    for f in &g.files {
        if !layers.contains_key(f.as_str()) {
            problems.push(format!(
                "{} has no layer: add it to the layer it belongs to in LAYERS (tests/layering.rs)",
                at(f)
            ));
        }
    }
    for f in layers.keys() {
        if !g.files.iter().any(|g| g == f) {
            problems.push(format!(
                "LAYERS names {f}, which is not a file of the workspace: remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn imports_never_go_up_a_layer() {
    let g = graph();
    let layers = layer_of();
    let mut problems = Vec::new();
    for ((from, to), places) in &g.edges {
        let (Some(&lf), Some(&lt)) = (layers.get(from.as_str()), layers.get(to.as_str())) else {
            continue; // reported by every_module_file_has_one_layer
        };
        if lf < lt && !is_allowed(from, to) {
            problems.push(format!(
                "{} (layer {}) imports {} (layer {}), a higher layer: {}",
                at(from),
                LAYERS[lf].0,
                at(to),
                LAYERS[lt].0,
                shown(places)
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// A shortest cycle through the files of `scc`, over the edges not allowed: `[a, b, ..., a]`.
fn shortest_cycle(g: &Graph, scc: &[String]) -> Vec<String> {
    let next = |f: &str| -> Vec<String> {
        g.edges
            .keys()
            .filter(|(a, b)| a == f && scc.contains(b) && !is_allowed(a, b))
            .map(|(_, b)| b.clone())
            .collect()
    };
    let mut best: Option<Vec<String>> = None;
    for start in scc {
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        'bfs: while let Some(f) = queue.pop_front() {
            for n in next(&f) {
                if n == *start {
                    let mut path = vec![start.clone(), f.clone()];
                    while let Some(p) = parent.get(path.last().unwrap()) {
                        path.push(p.clone());
                    }
                    if path.last() != Some(start) {
                        path.push(start.clone());
                    }
                    path.reverse();
                    if best.as_ref().is_none_or(|b| path.len() < b.len()) {
                        best = Some(path);
                    }
                    break 'bfs;
                }
                if !parent.contains_key(&n) && n != *start {
                    parent.insert(n.clone(), f.clone());
                    queue.push_back(n);
                }
            }
        }
    }
    best.unwrap_or_default()
}

#[test]
fn no_import_cycles() {
    let g = graph();
    let mut problems = Vec::new();
    for scc in cycles(&g, |a, b| !is_allowed(a, b)) {
        let cycle = shortest_cycle(&g, &scc);
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let places = &g.edges[&(w[0].clone(), w[1].clone())];
                format!("  {} -> {}: {}", at(&w[0]), at(&w[1]), shown(places))
            })
            .collect();
        problems.push(format!(
            "import cycle among {} (break it by moving the shared piece down), e.g.:\n{}",
            scc.join(", "),
            steps.join("\n")
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_allowed_violation_is_still_needed() {
    let g = graph();
    let layers = layer_of();
    let mut problems = Vec::new();
    for a in ALLOWED {
        assert!(
            !a.why.is_empty(),
            "ALLOWED {} -> {} needs its reason",
            a.from,
            a.to
        );
        let exists = g
            .edges
            .contains_key(&(a.from.to_string(), a.to.to_string()));
        let upward = layers.get(a.from) < layers.get(a.to);
        // A same-layer entry is needed while it closes a cycle with the imports that are not allowed.
        let closes = |x: &str, y: &str| !is_allowed(x, y) || (x == a.from && y == a.to);
        let in_cycle = cycles(&g, closes)
            .iter()
            .any(|c| c.iter().any(|f| f == a.from) && c.iter().any(|f| f == a.to));
        if !exists || !(upward || in_cycle) {
            problems.push(format!(
                "ALLOWED {} -> {} is no longer needed ({}): remove it from ALLOWED in tests/layering.rs",
                a.from,
                a.to,
                if exists { "neither upward nor in a cycle" } else { "no such import" }
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_scanner_reads_paths_and_skips_comments_literals_and_test_modules() {
    let src = r####"//! [`crate::doc_link`]
use crate::a::{b::{self, C}, d as e, *};
use super::sibling::X;
mod child;
/* crate::in_block /* nested */ crate::still_in_block */
fn f<'a>(x: &'a str) -> char {
    let _ = ("crate::s \" crate::s2", r##"crate::raw "# crate::raw2"##, b'\'', '"', 1u8);
    child::g(crate::h::i(x));
    '\''
}
#[cfg(test)]
pub(crate) mod tests {
    use crate::only_in_tests;
}
mod inline {
    use super::super::up::Y;
}
"####;
    let (children, found) = scan(src, &["m".into(), "n".into()], Some("fastproxy"));
    assert_eq!(children, [("child".to_string(), false)]);
    let got: Vec<String> = found
        .iter()
        .map(|f| format!("{} {} -> {}", f.line, f.text, f.absolute().join("::")))
        .collect();
    let want = [
        "2 crate::a::b -> a::b",
        "2 crate::a::b::C -> a::b::C",
        "2 crate::a::d -> a::d",
        "2 crate::a -> a",
        "3 super::sibling::X -> m::sibling::X",
        "8 child::g -> m::n::child::g",
        "8 crate::h::i -> h::i",
        "16 super::super::up::Y -> m::up::Y",
    ];
    assert_eq!(got, want);
}
