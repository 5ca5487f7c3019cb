//! The docs against the repository, so that they cannot drift from it: every Rust block
//! in docs/ is code that CI compiles, every path they name exists, and the README's
//! table of which tests need what names every test that can skip. (The README's own
//! Rust block is a doc test of the facade; the defaults tables are `tests/defaults.rs`'s;
//! the examples' flags are `tests/examples_cli.rs`'s.)

use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files that describe what exists: docs/ and the README (CHANGELOG.md is
/// history, and may name what is gone).
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.push(root().join("README.md"));
    pages.sort();
    pages
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The fenced blocks of `text` whose info string starts with `rust`: (line, code).
fn rust_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) if info.starts_with("rust") => open = Some((i + 1, String::new())),
            (None, Some(_)) => open = Some((0, String::new())),
            (Some(_), Some(_)) => {
                if let Some((line, code)) = open.take()
                    && line != 0
                {
                    blocks.push((line, code));
                }
            }
            (Some((_, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// docs/ has no doc tests of its own: each Rust block must be, verbatim, a file (or part
/// of one) that `cargo test` compiles: a test under tests/ (`tests/recipes/`) or an
/// example.
#[test]
fn every_rust_block_in_docs_is_compiled_code() {
    let mut sources = Vec::new();
    rust_files(&root().join("tests"), &mut sources);
    rust_files(&root().join("examples"), &mut sources);
    let this = root().join("tests/docs.rs");
    let sources: Vec<(PathBuf, String)> = sources
        .into_iter()
        .filter(|p| *p != this)
        .map(|p| {
            let text = read(&p);
            (p, text)
        })
        .collect();
    let mut loose = Vec::new();
    let mut found = 0;
    for page in pages().into_iter().filter(|p| !p.ends_with("README.md")) {
        for (line, code) in rust_blocks(&read(&page)) {
            found += 1;
            if !sources.iter().any(|(_, text)| text.contains(&code)) {
                let first = code.lines().next().unwrap_or_default();
                loose.push(format!(
                    "{}:{line}: a Rust block that no test or example holds verbatim (it starts {first:?}); put it in tests/recipes/ and paste the file back",
                    page.strip_prefix(root()).unwrap_or(&page).display()
                ));
            }
        }
    }
    assert!(
        found >= 2,
        "the recipes of docs/operations.md were not found"
    );
    assert!(loose.is_empty(), "\n{}", loose.join("\n"));
}

/// Paths named in backticks from the repository's root (`tests/…`, `crates/…`, …) exist.
#[test]
fn every_path_the_docs_name_exists() {
    const ROOTS: [&str; 10] = [
        "tests/",
        "crates/",
        "examples/",
        "scripts/",
        "perf/",
        "fuzz/",
        "docs/",
        "benches/",
        "src/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    for page in pages() {
        let text = read(&page);
        for (i, line) in text.lines().enumerate() {
            for quoted in line.split('`').skip(1).step_by(2) {
                let path = quoted.split_whitespace().next().unwrap_or_default();
                let path = path.trim_end_matches([':', ',', '.', ')']);
                if !ROOTS.iter().any(|r| path.starts_with(r)) || path.contains(['*', '<', '{', '['])
                {
                    continue;
                }
                let path = path.split("::").next().unwrap_or(path);
                if !root().join(path).exists() {
                    missing.push(format!(
                        "{}:{}: `{path}` does not exist",
                        page.strip_prefix(root()).unwrap_or(&page).display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

/// A test file that can skip (it calls a `*_or_skip` helper or `skip`) is named in the
/// README's table of which tests need what.
#[test]
fn every_test_that_can_skip_is_in_the_readme_table() {
    let readme = read(&root().join("README.md"));
    let table: String = readme
        .lines()
        .skip_while(|l| !l.starts_with("| tests | need |"))
        .take_while(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!table.is_empty(), "README.md: no `| tests | need |` table");
    let mut files = Vec::new();
    rust_files(&root().join("tests"), &mut files);
    for krate in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let tests = krate.expect("an entry").path().join("tests");
        if tests.is_dir() {
            rust_files(&tests, &mut files);
        }
    }
    let this = root().join("tests/docs.rs");
    let mut unnamed = Vec::new();
    let mut skipping = 0;
    for file in files.into_iter().filter(|f| *f != this) {
        // Test targets only: helpers in subdirectories are not run by themselves.
        let relative = file.strip_prefix(root()).expect("under the root");
        let is_target = relative.parent().is_some_and(|d| d.ends_with("tests"));
        let text = read(&file);
        let skips = text.contains("_or_skip(")
            || text.contains("_or_skip_with(")
            || text.contains("skip::skip(");
        if is_target && skips {
            skipping += 1;
            if !table.contains(&format!("`{}`", relative.display())) {
                unnamed.push(relative.display().to_string());
            }
        }
    }
    // The Docker engine, TLS, ssh, terminal and etcd tests at least.
    assert!(
        skipping >= 7,
        "only {skipping} test files found that can skip"
    );
    assert!(
        unnamed.is_empty(),
        "README.md's table of which tests need what does not name: {unnamed:?}"
    );
}

/// protocol.md names every kind of `DecodeError` (read from its definition, so a new
/// kind is a failure here until the page says what it means).
#[test]
fn protocol_md_names_every_decode_error() {
    let source = read(&root().join("crates/watch/src/event.rs"));
    let body = source
        .split("pub enum DecodeError {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("`pub enum DecodeError` in crates/watch/src/event.rs");
    let variants: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| l.split(['(', ',', ' ', '{']).next().unwrap_or(l))
        .collect();
    assert!(variants.len() >= 6, "{variants:?}");
    let page = read(&root().join("docs/protocol.md"));
    let unnamed: Vec<&&str> = variants
        .iter()
        .filter(|v| !page.contains(&format!("`{v}`")))
        .collect();
    assert!(
        unnamed.is_empty(),
        "docs/protocol.md does not name these DecodeError kinds: {unnamed:?}"
    );
}
