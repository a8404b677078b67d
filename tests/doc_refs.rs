//! LIFECYCLE.md names the code of every step, and README's "Adding a protocol" what a dialect touches; this
//! test fails when a name they give no longer exists where they say: `file.rs:Item`, `file.rs`: `f`, `g`
//! lists, `Type::method` / `module::f` paths and `(`f`)` asides.
//!
//! The files are the workspace's .rs files (src/, crates/*/src/, tests/), named by their path's tail.

use std::path::{Path, PathBuf};

/// Every .rs file under `dir`, as (path from the workspace root, text).
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((rel.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

fn workspace() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root, &root.join("src"), &mut files);
    rust_files(&root, &root.join("tests"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).expect("crates/") {
        rust_files(&root, &krate.expect("crate").path().join("src"), &mut files);
    }
    files
}

/// Whether `text` defines `name`: a function, type, trait or constant of that name, or a variant of an enum.
fn defines(text: &str, name: &str) -> bool {
    let ends = |rest: &str| {
        rest.chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    };
    text.lines().any(|line| {
        let l = line.trim_start();
        let l = l
            .strip_prefix("pub(crate) ")
            .or(l.strip_prefix("pub "))
            .unwrap_or(l);
        ["fn ", "struct ", "enum ", "type ", "trait ", "const ", "static ", "mod "]
            .iter()
            .any(|kw| {
                l.strip_prefix(kw)
                    .and_then(|r| r.strip_prefix(name))
                    .is_some_and(ends)
            })
            // An enum variant: `Name,` `Name(..)` `Name { .. }` at the start of a line.
            || (name.starts_with(|c: char| c.is_ascii_uppercase())
                && l.strip_prefix(name).is_some_and(|r| {
                    r.starts_with([',', '(', '{']) || r.starts_with(" {") || r.starts_with(" =")
                }))
    })
}

/// Whether `text` has an `impl` block for type `ty` (or defines the enum `ty`).
fn implements(text: &str, ty: &str) -> bool {
    text.lines().any(|line| {
        let l = line.trim_start();
        (l.starts_with("impl") && l.split([' ', '<', '>', '{']).any(|w| w == ty))
            || l.contains(&format!("enum {ty} "))
    })
}

/// Whether `item` (`f`, `Type::f`, `module::f`) exists in `text`.
fn has_item(text: &str, item: &str) -> bool {
    match item.rsplit_once("::") {
        Some((owner, name)) if owner.starts_with(|c: char| c.is_ascii_uppercase()) => {
            implements(text, owner) && defines(text, name)
        }
        Some((_, name)) => defines(text, name),
        None => defines(text, item),
    }
}

/// The files whose path ends with `file` (`miner.rs`, `session/miner.rs`).
fn files_named<'a>(files: &'a [(String, String)], file: &str) -> Vec<&'a (String, String)> {
    files
        .iter()
        .filter(|(p, _)| p == file || p.ends_with(&format!("/{file}")))
        .collect()
}

/// Checks `item` in any file named `file`: what is wrong, if anything.
fn check_in(files: &[(String, String)], file: &str, item: &str) -> Option<String> {
    let named = files_named(files, file);
    if named.is_empty() {
        return Some(format!("no file {file}"));
    }
    if named.iter().any(|(_, text)| has_item(text, item)) {
        return None;
    }
    let paths: Vec<&str> = named.iter().map(|(p, _)| p.as_str()).collect();
    Some(format!("`{item}` is not in {}", paths.join(" or ")))
}

/// Checks a path reference with no file: `Type::f` anywhere, `module::f` in module's file (or `module::sub` a
/// module file).
fn check_path(files: &[(String, String)], path: &str) -> Option<String> {
    let (owner, name) = path.rsplit_once("::")?;
    if owner.starts_with(|c: char| c.is_ascii_uppercase()) {
        if files.iter().any(|(_, t)| has_item(t, path)) {
            return None;
        }
        return Some(format!("no `impl {owner}` with `{name}`"));
    }
    let module = owner.replace("::", "/");
    let as_module = |m: &str| {
        !files_named(files, &format!("{m}.rs")).is_empty()
            || !files_named(files, &format!("{m}/mod.rs")).is_empty()
    };
    if as_module(&format!("{module}/{name}")) {
        return None;
    }
    // The module's file, or any file under its directory (a name `pub use`d from a child counts).
    let mut named = files_named(files, &format!("{module}.rs"));
    named.extend(files.iter().filter(|(p, _)| {
        p.starts_with(&format!("src/{module}/")) || p.contains(&format!("/{module}/"))
    }));
    if named.is_empty() {
        return Some(format!("no module file for `{owner}`"));
    }
    if named.iter().any(|(_, t)| defines(t, name)) {
        return None;
    }
    Some(format!("`{name}` is not in module `{owner}`"))
}

/// A backticked span of the text and what follows it up to the next one.
struct Span<'a> {
    code: &'a str,
    before: &'a str,
    after: &'a str,
}

fn spans(text: &str) -> Vec<Span<'_>> {
    let parts: Vec<&str> = text.split('`').collect();
    (1..parts.len())
        .step_by(2)
        .map(|i| Span {
            code: parts[i],
            before: parts[i - 1],
            after: parts.get(i + 1).copied().unwrap_or(""),
        })
        .collect()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.split("::").all(|p| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Every reference of `doc` checked against `files`: (reference, problem).
fn check_doc(doc: &str, files: &[(String, String)]) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut report = |what: String, problem: Option<String>| {
        checked += 1;
        if let Some(p) = problem {
            problems.push(format!("{what}: {p}"));
        }
    };
    // Paragraphs join their lines, so a list may wrap.
    let text = doc.replace('\n', " ");
    let s = spans(&text);
    // The file whose list the current span continues.
    let mut list: Option<&str> = None;
    for (i, sp) in s.iter().enumerate() {
        let code = sp.code;
        if let Some((file, item)) = code.split_once(".rs:") {
            report(
                format!("`{code}`"),
                check_in(files, &format!("{file}.rs"), item),
            );
            list = None;
            continue;
        }
        if code.ends_with(".rs")
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_/.-".contains(c))
        {
            report(
                format!("`{code}`"),
                files_named(files, code)
                    .is_empty()
                    .then(|| format!("no file {code}")),
            );
            list = (sp.after.trim() == ":").then_some(code);
            continue;
        }
        if let Some(file) = list {
            if is_name(code) {
                report(format!("`{file}`: `{code}`"), check_in(files, file, code));
            }
            let sep = sp.after.trim();
            let goes_on = sep == "," || sep == "and" || sep == ", and";
            if !goes_on {
                list = None;
            }
            continue;
        }
        if code.contains("::") && is_name(code) {
            report(format!("`{code}`"), check_path(files, code));
            continue;
        }
        // An aside of names alone: (`f`) or (`f`, `g`): the group of spans joined by commas around this one
        // opens with '(' and closes with ')'.
        let mut first = i;
        while first > 0 && s[first].before.trim() == "," {
            first -= 1;
        }
        let mut last = i;
        while last + 1 < s.len() && s[last].after.trim() == "," {
            last += 1;
        }
        let aside = s[first].before.trim_end().ends_with('(')
            && s[last].after.trim_start().starts_with(')');
        if aside && is_name(code) {
            let found = files.iter().any(|(_, t)| defines(t, code));
            report(
                format!("(`{code}`)"),
                (!found).then(|| "no such function or type in the workspace".to_string()),
            );
        }
    }
    (checked, problems)
}

#[test]
fn lifecycle_names_code_that_exists() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("LIFECYCLE.md")).expect("LIFECYCLE.md");
    let (checked, problems) = check_doc(&doc, &workspace());
    assert!(
        checked >= 40,
        "only {checked} references found in LIFECYCLE.md"
    );
    assert!(
        problems.is_empty(),
        "\nLIFECYCLE.md names code that is not there (fix the doc or the name):\n{}\n",
        problems.join("\n")
    );
}

#[test]
fn readme_adding_a_protocol_names_code_that_exists() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme
        .find("## Adding a protocol")
        .expect("README has an 'Adding a protocol' section");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 3 + e);
    let (checked, problems) = check_doc(&readme[start..end], &workspace());
    assert!(
        checked >= 10,
        "only {checked} references found in 'Adding a protocol'"
    );
    assert!(
        problems.is_empty(),
        "\nREADME's 'Adding a protocol' names code that is not there:\n{}\n",
        problems.join("\n")
    );
}

#[test]
fn the_checker_reads_each_kind_of_reference() {
    let files = vec![
        (
            "src/a.rs".to_string(),
            "pub enum Close {\n    PeerClosed,\n}\nimpl Close {\n    pub fn is_kick(&self) {}\n}\npub(crate) fn go() {}\n"
                .to_string(),
        ),
        ("src/m/b.rs".to_string(), "fn run() {}\nstruct B;\n".to_string()),
    ];
    let doc = "**Step** (`go`). See `a.rs:Close`, (`m/b.rs`: `run`, `B` and `gone`; `a.rs`: `Close::is_kick`)\n\
               then `Close::PeerClosed`, `b::run`, `Close::nope`, `a::missing`, (`absent`) and `x.rs`.\n\
               Not checked: `idle_timeout` in prose, `mining.notify`.";
    let (checked, problems) = check_doc(doc, &files);
    assert_eq!(
        problems,
        [
            "`m/b.rs`: `gone`: `gone` is not in src/m/b.rs",
            "`Close::nope`: no `impl Close` with `nope`",
            "`a::missing`: `missing` is not in module `a`",
            "(`absent`): no such function or type in the workspace",
            "`x.rs`: no file x.rs",
        ]
    );
    assert_eq!(checked, 14);
}
