//! The wire modules own the wire: a Stratum method name as a string literal (exactly `mining.xxx` or
//! `client.xxx`) or a hand-written JSON-RPC literal (one holding `{"id"` or `"method":`) in src/ outside
//! src/protocol/ fails the test (comments, `#[cfg(test)]` items and unit-test files are skipped).
//!
//! Adding a dialect must not need the runtime or the sessions to learn method names (issue 13 item 2): they
//! `match` on typed requests and messages, and protocol/ turns those into bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A string literal's value and the line it starts on.
#[derive(Debug, PartialEq)]
struct Lit {
    value: String,
    line: usize,
}

/// A token: enough to find `#[cfg(test)]` items and their extent.
#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    Str(Lit),
}

/// Reads the escape after a backslash at `c[i]` (`i` points at the backslash) into `out`; returns the index after.
fn unescape(c: &[char], mut i: usize, out: &mut String, line: &mut usize) -> usize {
    i += 1;
    let Some(&e) = c.get(i) else { return i };
    match e {
        'n' => out.push('\n'),
        't' => out.push('\t'),
        'r' => out.push('\r'),
        '0' => out.push('\0'),
        '\\' | '"' | '\'' => out.push(e),
        'x' => {
            let hex: String = c.iter().skip(i + 1).take(2).collect();
            if let Ok(b) = u8::from_str_radix(&hex, 16) {
                out.push(b as char);
            }
            return i + 3;
        }
        'u' => {
            let close = (i..c.len()).find(|&k| c[k] == '}').unwrap_or(c.len() - 1);
            let hex: String = c[i + 2..close].iter().collect();
            if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                out.push(ch);
            }
            return close + 1;
        }
        '\n' => {
            // A line continuation: the newline and the next line's leading whitespace are not part of the value.
            *line += 1;
            i += 1;
            while c.get(i).is_some_and(|ch| ch.is_whitespace()) {
                if c[i] == '\n' {
                    *line += 1;
                }
                i += 1;
            }
            return i;
        }
        other => out.push(other),
    }
    i + 1
}

/// Splits Rust source into identifiers, punctuation and string literals (plain, byte and raw), skipping
/// comments, char literals and lifetimes.
fn tokenize(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            let mut value = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i = unescape(&c, i, &mut value, &mut line);
                    continue;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                value.push(c[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(Lit { value, line: start }));
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\''), else a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_ascii_alphanumeric() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[s..i].iter().collect();
            let mut hashes = 0;
            while (word == "r" || word == "br") && at(i + hashes) == '#' {
                hashes += 1;
            }
            if (word == "r" || word == "br") && at(i + hashes) == '"' {
                // A raw string: r"..." or r#"..."#, ended by a quote and as many '#'s.
                let start = line;
                i += hashes + 1;
                let mut value = String::new();
                while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    value.push(c[i]);
                    i += 1;
                }
                i += 1 + hashes;
                out.push(Tok::Str(Lit { value, line: start }));
            } else {
                // A raw identifier (r#type) reads as its name.
                out.push(Tok::Ident(word));
            }
        } else {
            if !ch.is_whitespace() {
                out.push(Tok::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

/// True at `#[cfg(test)]`.
fn cfg_test_at(t: &[Tok], i: usize) -> bool {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    t.len() >= i + want.len() && t[i..i + want.len()] == want
}

/// The string literals of `src` outside `#[cfg(test)]` items, and the names of the `#[cfg(test)] mod x;`
/// files it declares.
fn scan(src: &str) -> (Vec<Lit>, Vec<String>) {
    let t = tokenize(src);
    let (mut lits, mut test_mods, mut i) = (Vec::new(), Vec::new(), 0);
    while i < t.len() {
        if !cfg_test_at(&t, i) {
            if let Tok::Str(lit) = &t[i] {
                lits.push(Lit {
                    value: lit.value.clone(),
                    line: lit.line,
                });
            }
            i += 1;
            continue;
        }
        // Skip the item: up to a `;` outside braces, or to the brace closing its first `{`.
        i += 7;
        if let (Some(Tok::Ident(m)), Some(Tok::Ident(name)), Some(Tok::Punct(';'))) =
            (t.get(i), t.get(i + 1), t.get(i + 2))
        {
            if m == "mod" {
                test_mods.push(name.clone());
            }
        }
        let mut depth = 0;
        while i < t.len() {
            match t[i] {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                Tok::Punct(';') if depth == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    (lits, test_mods)
}

/// What makes a literal the wire's: a method name, or a hand-written JSON-RPC message.
fn wire_literal(v: &str) -> Option<&'static str> {
    let method = ["mining.", "client."].iter().any(|p| {
        v.strip_prefix(p).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    });
    if method {
        Some("a method name")
    } else if v.contains("{\"id\"") || v.contains("\"method\":") {
        Some("a hand-written JSON-RPC message")
    } else {
        None
    }
}

/// Every .rs file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The wire literals of src/'s production code, as `src/file:line: "literal" (what it is)`, from the files
/// `include` accepts (by path in src/); and how many files were read.
fn findings(include: impl Fn(&str) -> bool) -> (Vec<String>, usize) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rel = |p: &Path| {
        p.strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/")
    };
    // Files declared by `#[cfg(test)] mod x;` are unit tests (their children too).
    let mut tests = BTreeSet::new();
    let mut scanned = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read source");
        let (lits, test_mods) = scan(&text);
        let name = rel(f);
        let file = name.rsplit('/').next().unwrap_or_default();
        let dir = if matches!(file, "mod.rs" | "lib.rs" | "main.rs") {
            name.trim_end_matches(file).to_string()
        } else {
            format!("{}/", name.trim_end_matches(".rs"))
        };
        for m in test_mods {
            tests.insert(format!("{dir}{m}.rs"));
            tests.insert(format!("{dir}{m}/"));
        }
        scanned.push((name, lits));
    }
    let mut out = Vec::new();
    let mut read = 0;
    for (name, lits) in scanned {
        if tests
            .iter()
            .any(|t| name == *t || (t.ends_with('/') && name.starts_with(t.as_str())))
            || !include(&name)
        {
            continue;
        }
        read += 1;
        for lit in lits {
            if let Some(what) = wire_literal(&lit.value) {
                out.push(format!("src/{name}:{}: {:?} ({what})", lit.line, lit.value));
            }
        }
    }
    (out, read)
}

#[test]
fn method_names_and_json_rpc_literals_live_only_in_protocol() {
    let (found, read) = findings(|f| !f.starts_with("protocol/"));
    assert!(
        read > 30,
        "only {read} source files read outside src/protocol/"
    );
    assert!(
        found.is_empty(),
        "\nwire literals outside src/protocol/ (give the wire module a typed message or a writer for it, and \
         call that):\n{}\n",
        found.join("\n")
    );
}

#[test]
fn the_wire_modules_are_where_the_scanner_finds_them() {
    // The same scanner over src/protocol/ finds the method tables, so the test above reads real files.
    let (found, _) = findings(|f| f.starts_with("protocol/"));
    for want in [
        "\"mining.submit\"",
        "\"mining.notify\"",
        "\"client.reconnect\"",
    ] {
        assert!(
            found.iter().any(|f| f.contains(want)),
            "{want} not found in src/protocol/: {found:#?}"
        );
    }
}

#[test]
fn the_scanner_finds_literals_and_skips_comments_and_test_items() {
    let src = r####"//! "mining.in_doc"
// "mining.in_comment" /* "client.x"
/* "mining.block" /* nested */ "mining.still_block" */
fn f<'a>(x: &'a str) -> char {
    let _ = ("mining.notify", b"{\"id\":1}", r#"{"method":"x"}"#, br"client.reconnect", '"');
    let _ = "mining.with space";
    let _ = "con\
             tinued";
    '\''
}
#[cfg(test)]
mod tests {
    const T: &str = "mining.in_tests";
}
#[cfg(test)]
mod unit_tests;
const AFTER: &str = "client.show_message";
"####;
    let (lits, test_mods) = scan(src);
    let got: Vec<(usize, &str, Option<&str>)> = lits
        .iter()
        .map(|l| (l.line, l.value.as_str(), wire_literal(&l.value)))
        .collect();
    let method = Some("a method name");
    let json = Some("a hand-written JSON-RPC message");
    assert_eq!(
        got,
        [
            (5, "mining.notify", method),
            (5, "{\"id\":1}", json),
            (5, "{\"method\":\"x\"}", json),
            (5, "client.reconnect", method),
            (6, "mining.with space", None),
            (7, "continued", None),
            (17, "client.show_message", method),
        ]
    );
    assert_eq!(test_mods, ["unit_tests"]);
}
