//! The command-line contracts of `examples/watch.rs` and `examples/informer.rs`: flags
//! and output lines that tools outside the repository rely on. `cargo test` builds the
//! examples next to the test binaries; these tests run them against a router on port 0.
//! Also: the README names every example's flags, and `controller` runs with no flags.

mod common;

use common::example;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hypersh::watch::Container;
use hypersh_apirouter::{Router, RouterConfig};

/// Runs a command on a blocking thread, so the router keeps serving meanwhile.
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.stdin(Stdio::null()).output().expect("example runs"))
        .await
        .expect("join")
}

struct Fixture {
    router: Router,
    ca: tempfile_path::TempPath,
}

mod tempfile_path {
    /// A file removed on drop (std only: no extra dependency for one file).
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        pub fn write(name: &str, contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("{}-{name}", std::process::id()));
            std::fs::write(&path, contents).expect("write temp file");
            Self(path)
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

async fn fixture(tag: &str, churn: bool) -> Fixture {
    let router = common::router(RouterConfig::default().containers(10).seed(42)).await;
    if churn {
        // Churn until the router is dropped.
        drop(router.runtime().spawn_churn(300.0, None));
    }
    let ca = tempfile_path::TempPath::write(
        &format!("{tag}-ca.pem"),
        router.ca_pem().expect("self-signed").as_bytes(),
    );
    Fixture { router, ca }
}

fn watch_cmd(f: &Fixture, secret: &str) -> Command {
    let mut cmd = Command::new(example("watch"));
    cmd.args(["--addr", &f.router.addr_string()])
        .args(["--access-key", f.router.credentials()[0].access_key()])
        .args(["--secret-key", secret])
        .arg("--ca-cert")
        .arg(&f.ca.0)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_one_json_frame_per_line_and_exits_after_max_events() {
    let f = fixture("watch-lines", true).await;
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    let mut cmd = watch_cmd(&f, &secret);
    cmd.args(["--max-events", "5"]);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(
        stderr.contains(&format!(
            "connecting to wss://{}/events/ws",
            f.router.addr_string()
        )),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(v["Type"], "container");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_count_prints_only_the_summary_line() {
    let f = fixture("watch-count", true).await;
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    let mut cmd = watch_cmd(&f, &secret);
    cmd.args([
        "--count",
        "--max-events",
        "20",
        "--filter",
        "event=start,event=die",
    ]);
    let out = run(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields.len(), 3, "{}", lines[0]);
    assert_eq!(fields[0], "events=20");
    let seconds = fields[1].strip_prefix("seconds=").expect("seconds=S");
    assert!(seconds.parse::<f64>().is_ok_and(|s| s >= 0.0), "{seconds}");
    let rate = fields[2]
        .strip_prefix("rate=")
        .and_then(|r| r.strip_suffix("/s"))
        .expect("rate=R/s");
    assert!(rate.parse::<f64>().is_ok(), "{rate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_a_wrong_key_as_authentication_failed() {
    let f = fixture("watch-auth", false).await;
    let out = run(watch_cmd(&f, "not-the-secret")).await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authentication failed (HTTP 403): "),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret leaked: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rejects_a_bad_filter_clearly() {
    let f = fixture("watch-filter", false).await;
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    let mut cmd = watch_cmd(&f, &secret);
    cmd.args(["--filter", "container"]);
    let out = run(cmd).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"bad filter "container": expected NAME=VALUE"#),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_dumps_a_cache_equal_to_the_list() {
    let f = fixture("informer-dump", false).await;
    let dump = tempfile_path::TempPath::write("informer-dump.json", b"");
    let mut cmd = Command::new(example("informer"));
    cmd.args(["--addr", &f.router.addr_string()])
        .args(["--access-key", f.router.credentials()[0].access_key()])
        .args([
            "--secret-key",
            f.router.credentials()[0].secret_key().expose(),
        ])
        .arg("--ca-cert")
        .arg(&f.ca.0)
        .args(["--run-for", "2", "--quiet", "--dump-cache"])
        .arg(&dump.0);
    let out = tokio::time::timeout(Duration::from_secs(60), run(cmd))
        .await
        .expect("stops on --run-for");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumped: Vec<Container> = common::read_dump_of(&dump.0, &f.router.addr_string());
    let mut truth = f.router.runtime().list(true);
    truth.sort_by(|a, b| a.id().cmp(b.id()));
    assert_eq!(dumped.len(), 10);
    let strip = |c: &Container| c.clone().into_builder().status("").build();
    assert_eq!(
        dumped.iter().map(strip).collect::<Vec<_>>(),
        truth.iter().map(strip).collect::<Vec<_>>()
    );
}

/// The `--flags` in `text`, leaving out those of the `cargo run ...` lines in it.
fn flags_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut flags = std::collections::BTreeSet::new();
    for (i, quoted) in text.split('`').enumerate() {
        if i % 2 == 1 && quoted.starts_with("cargo ") {
            continue;
        }
        let mut rest = quoted;
        while let Some(at) = rest.find("--") {
            rest = &rest[at + 2..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                flags.insert(format!("--{name}"));
            }
        }
    }
    flags
}

/// The README's "Examples" section names every flag an example's `--help` lists (the
/// common ones in its opening paragraph, the others in the example's own item), and
/// names no flag an example does not have; every example has an item.
#[test]
fn the_readme_names_every_flag_of_every_example_and_no_other() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Examples\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a `## Examples` section");
    let mut parts = section.split("\n- `");
    let common = flags_in(parts.next().unwrap_or_default());
    let items: Vec<(String, &str)> = parts
        .map(|item| {
            let name = item.split('`').next().unwrap_or_default().to_owned();
            (name, item)
        })
        .collect();
    let mut examples: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
            .expect("examples/")
            .filter_map(|e| {
                let path = e.expect("an entry").path();
                (path.extension()? == "rs")
                    .then(|| path.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
    examples.sort();
    let mut problems = Vec::new();
    for name in &examples {
        let Some((_, item)) = items.iter().find(|(n, _)| n == name) else {
            problems.push(format!("README.md: no item for the example `{name}`"));
            continue;
        };
        let out = Command::new(example(name))
            .arg("--help")
            .output()
            .expect("the example runs");
        assert!(out.status.success(), "{name} --help failed");
        let help: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let l = l.trim_start().trim_start_matches("-h, ");
                let flag = l.split([' ', '\t']).next()?;
                (flag.starts_with("--") && flag != "--help").then(|| flag.to_owned())
            })
            .collect();
        // The item lost its opening backtick to the split.
        let mentioned = flags_in(&format!("`{item}"));
        for flag in &help {
            if !common.contains(flag) && !mentioned.contains(flag) {
                problems.push(format!("README.md: `{name}`'s {flag} is not named"));
            }
        }
        for flag in &mentioned {
            if !help.contains(flag) {
                problems.push(format!("README.md: `{name}` has no {flag}"));
            }
        }
    }
    for flag in &common {
        if !examples.iter().all(|name| {
            let out = Command::new(example(name)).arg("--help").output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(flag.as_str()))
        }) {
            problems.push(format!(
                "README.md: {flag} is said to be common, but not every example has it"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// `controller` runs with no flags: without `--out-dir` it writes to a new directory
/// under the temporary directory and says which on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_without_out_dir_writes_to_a_temporary_directory_it_names() {
    let mut cmd = Command::new(example("controller"));
    cmd.args(["--containers", "20", "--churn", "0", "--run-for", "1.5"]);
    let out = run(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("no --out-dir given: writing the files to "))
        .unwrap_or_else(|| panic!("the directory is named on stderr: {stderr}"));
    let dir = std::path::PathBuf::from(dir);
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    let files = std::fs::read_dir(&dir)
        .expect("the directory is kept")
        .count();
    let _ = std::fs::remove_dir_all(&dir);
    // The embedded router's default seed gives some running `tier=frontend` containers.
    assert!(files > 0, "no file in {}: {stdout}", dir.display());
    assert!(
        stdout.contains(&format!("exit: {files} files")),
        "{files} files in {}: {stdout}",
        dir.display()
    );
}
