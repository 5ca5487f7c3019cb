//! The command-line contracts of `examples/watch.rs` and `examples/informer.rs`: flags
//! and output lines that tools outside the repository rely on. `cargo test` builds the
//! examples next to the test binaries; these tests run them against a router on port 0.

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
