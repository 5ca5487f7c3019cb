//! A new user's first hour with the examples (issue 18): failures say so and exit 1, a
//! closed stdout ends a run quietly, SIGTERM is Ctrl-C (and `--dump-cache` is written),
//! the status line does not collide with events, the metrics are all there from the
//! start, and mistakes in flags are pointed out. Each test runs a built example against
//! a router on port 0 and waits on its output, with a deadline.

mod common;
#[path = "../crates/docker/tests/common/skip.rs"]
mod skip;

use common::{PATIENCE, example};

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use hypersh::watch::Container;
use hypersh_apirouter::{Router, RouterConfig};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A router and its CA certificate in a file; both go on drop.
struct Fixture {
    router: Router,
    ca: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca);
    }
}

async fn fixture(tag: &str, churn: f64) -> Fixture {
    fixture_of(tag, 10, churn).await
}

async fn fixture_of(tag: &str, containers: usize, churn: f64) -> Fixture {
    let router = common::router(RouterConfig::default().containers(containers).seed(42)).await;
    if churn > 0.0 {
        drop(router.runtime().spawn_churn(churn, None));
    }
    let ca = temp_path(&format!("{tag}-ca.pem"));
    std::fs::write(&ca, router.ca_pem().expect("self-signed")).expect("write the CA");
    Fixture { router, ca }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-first-hour-{name}", std::process::id()))
}

/// The example `name` pointed at `addr` with `secret`, output piped, no HYPER_* keys
/// from the environment.
fn command_to(f: &Fixture, name: &str, addr: &str, secret: &str) -> Command {
    let mut cmd = Command::new(example(name));
    cmd.args(["--addr", addr])
        .args(["--access-key", f.router.credentials()[0].access_key()])
        .args(["--secret-key", secret])
        .arg("--ca-cert")
        .arg(&f.ca)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The example `name` pointed at the fixture's router with the right key.
fn command(f: &Fixture, name: &str) -> Command {
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    command_to(f, name, &f.router.addr_string(), &secret)
}

/// Runs `cmd` to its end, within [`PATIENCE`].
async fn output(mut cmd: Command) -> Output {
    tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("the example ends in time")
        .expect("the example runs")
}

/// Reads lines until one satisfies `want`, within [`PATIENCE`]; every line read is
/// added to `seen`.
async fn read_until(
    lines: &mut (impl AsyncBufRead + Unpin),
    seen: &mut Vec<String>,
    want: impl Fn(&str) -> bool,
) {
    let found = tokio::time::timeout(PATIENCE, async {
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {
                    let text = line.trim_end().to_owned();
                    let hit = want(&text);
                    seen.push(text);
                    if hit {
                        return true;
                    }
                }
            }
        }
    })
    .await;
    assert_eq!(found, Ok(true), "output so far: {seen:#?}");
}

/// Waits for `child` to end, within [`PATIENCE`], and reads the rest of its stderr.
async fn finish(mut child: Child, mut stderr: impl AsyncBufRead + Unpin) -> (i32, String) {
    let mut rest = String::new();
    let status = tokio::time::timeout(PATIENCE, async {
        let _ = stderr.read_to_string(&mut rest).await;
        child.wait().await
    })
    .await
    .expect("the example ends in time")
    .expect("wait for the example");
    (status.code().unwrap_or(-1), rest)
}

/// Sends SIGTERM to `child` (with `kill`: the tests have no libc binding).
fn sigterm(child: &Child) {
    let pid = child.id().expect("still running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}

// 1. Failures look like failures.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_with_a_wrong_key_shows_it_on_the_status_line_and_exits_1() {
    let f = fixture("wrong-key", 0.0).await;
    let mut cmd = command_to(&f, "informer", &f.router.addr_string(), "not-the-secret");
    cmd.args(["--run-for", "4", "--quiet"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    let failing = stderr
        .lines()
        .find(|l| l.starts_with("[retrying] "))
        .unwrap_or_else(|| panic!("no [retrying] status line: {stderr}"));
    assert!(
        failing.contains("failed attempt")
            && failing.contains("last error: authentication failed (HTTP 403)"),
        "{failing}"
    );
    let last = stderr.lines().rev().find(|l| !l.starts_with("hint: "));
    assert!(
        last.is_some_and(|l| l.starts_with("the cache never synced in ")
            && l.contains("last error: authentication failed (HTTP 403)")),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: the server refused the credentials"));
    assert!(!stderr.contains("[disconnected]"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret leaked: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_against_an_unreachable_address_counts_attempts_and_exits_1() {
    let f = fixture("unreachable", 0.0).await;
    // A port nothing listens on: bound, noted, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    let mut cmd = command_to(&f, "informer", &format!("127.0.0.1:{port}"), &secret);
    cmd.args(["--run-for", "4", "--quiet"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("[retrying] ")
            && l.contains(" failed attempt")
            && l.contains("last error: ")
            && l.contains("Connection refused")),
        "{stderr}"
    );
    assert!(
        stderr.contains("the cache never synced in ") && stderr.contains("hint: nothing answers"),
        "{stderr}"
    );
    assert!(!stderr.contains("watch ended; reconnecting"), "{stderr}");
    assert!(!stderr.contains("[disconnected]"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_against_a_host_name_that_does_not_resolve_says_so() {
    let f = fixture("unresolved", 0.0).await;
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    // `.invalid` never resolves (RFC 6761).
    let mut cmd = command_to(&f, "informer", "no-such-host.invalid:443", &secret);
    cmd.args(["--run-for", "8", "--quiet"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the cache never synced in ")
            && stderr.contains("\nhint: the host name in --addr does not resolve"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_that_synced_exits_0_and_says_watching() {
    let f = fixture("synced", 0.0).await;
    let mut cmd = command(&f, "informer");
    cmd.args(["--run-for", "1.5", "--quiet"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopped (--run-for) after "), "{stderr}");
    assert!(!stderr.contains("never synced"), "{stderr}");
}

// 2. A closed stdout ends the run quietly.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_piped_into_head_ends_quietly() {
    let f = fixture("head", 50.0).await;
    let mut cmd = command(&f, "informer");
    // Long enough that only the closed stdout can end the run within the patience.
    cmd.args(["--run-for", "600"]);
    let (child, mut stdout, stderr) = spawn_piped(cmd);
    let mut seen = Vec::new();
    for _ in 0..3 {
        read_until(&mut stdout, &mut seen, |_| true).await;
    }
    drop(stdout); // as `head -3` does
    ends_quietly_on_closed_stdout(child, stderr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_piped_shows_a_trickle_of_lines_promptly_and_still_notices_a_closed_stdout() {
    // Ten containers and two events a second: a few hundred bytes, far from filling the
    // buffer, and the run lasts ten minutes: only the flusher can bring these lines out
    // within the patience.
    let f = fixture("trickle", 2.0).await;
    let mut cmd = command(&f, "informer");
    cmd.args(["--run-for", "600"]);
    let (child, mut stdout, stderr) = spawn_piped(cmd);
    let mut seen = Vec::new();
    for _ in 0..10 {
        read_until(&mut stdout, &mut seen, |l| l.starts_with("ADDED     ")).await;
    }
    // Then an event on its own.
    let events = ["ADDED     ", "MODIFIED  ", "DELETED   "];
    read_until(&mut stdout, &mut seen, |l| {
        events.iter().any(|e| l.starts_with(e))
    })
    .await;
    // The reader goes away; the next event's write fails, and ends the run.
    drop(stdout);
    ends_quietly_on_closed_stdout(child, stderr).await;
}

/// Starts `cmd` with its stdout and stderr read line by line here.
fn spawn_piped(mut cmd: Command) -> (Child, BufReader<ChildStdout>, BufReader<ChildStderr>) {
    let mut child = cmd.spawn().expect("the example runs");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    (child, stdout, stderr)
}

/// The informer whose stdout reader went away: it exits 0, says it stopped for the
/// closed stdout, and neither panics nor complains of the broken pipe.
async fn ends_quietly_on_closed_stdout(child: Child, stderr: impl AsyncBufRead + Unpin) {
    let (code, stderr) = finish(child, stderr).await;
    assert_eq!(code, 0, "{stderr}");
    assert_no_panic(&stderr);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(
        stderr.contains("stopped (closed stdout) after "),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_piped_into_head_ends_quietly() {
    let f = fixture("watch-head", 50.0).await;
    let (child, mut stdout, stderr) = spawn_piped(command(&f, "watch"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        read_until(&mut stdout, &mut seen, |_| true).await;
    }
    drop(stdout);
    let (code, stderr) = finish(child, stderr).await;
    assert_eq!(code, 0, "{stderr}");
    assert_no_panic(&stderr);
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

// 3. The status line and the events do not collide.

/// Runs `args` under `script`, in a pseudo-terminal that stdout and stderr share; `None`
/// (the test skipped, or failed when `CI` is set) when `script` is not installed.
async fn in_a_terminal(f: &Fixture, test: &str, args: &str) -> Option<String> {
    let probe = std::process::Command::new("script")
        .arg("--version")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skip::skip(test, "`script --version` does not run", "bsdutils");
        return None;
    }
    let secret = f.router.credentials()[0].secret_key().expose().to_owned();
    let line = format!(
        "{} --addr {} --access-key {} --secret-key {secret} --ca-cert {} {args}",
        example("informer").display(),
        f.router.addr_string(),
        f.router.credentials()[0].access_key(),
        f.ca.display(),
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = output(cmd).await;
    let all = text(&out.stdout);
    assert!(out.status.success(), "{all}{}", text(&out.stderr));
    Some(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_in_a_terminal_prints_plain_status_lines_between_events() {
    let f = fixture("tty-events", 50.0).await;
    let test = "informer_in_a_terminal_prints_plain_status_lines_between_events";
    let Some(all) = in_a_terminal(&f, test, "--run-for 2.5").await else {
        return;
    };
    assert!(all.contains("ADDED     "), "{all}");
    assert!(all.contains("[watching] "), "{all}");
    // No in-place redraw that the next event would run into.
    assert!(!all.contains("\x1b[2K"), "{all:?}");
    for line in all.lines() {
        let line = line.trim_end_matches('\r');
        assert!(
            !(line.contains("decode_errors=") && line.contains("ADDED")),
            "status and event on one line: {line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_in_a_terminal_sums_up_a_first_list_longer_than_a_screen() {
    let f = fixture_of("tty-long", 200, 0.0).await;
    let test = "informer_in_a_terminal_sums_up_a_first_list_longer_than_a_screen";
    let Some(all) = in_a_terminal(&f, test, "--run-for 3").await else {
        return;
    };
    let lines: Vec<&str> = all.lines().map(|l| l.trim_end_matches('\r')).collect();
    let added = lines.iter().filter(|l| l.starts_with("ADDED     ")).count();
    assert_eq!(added, 50, "{all}");
    let more: Vec<&&str> = lines.iter().filter(|l| l.contains("more added")).collect();
    assert_eq!(more, [&"… and 150 more added"], "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_in_a_terminal_without_events_redraws_one_live_line() {
    let f = fixture("tty-quiet", 0.0).await;
    let test = "informer_in_a_terminal_without_events_redraws_one_live_line";
    let Some(all) = in_a_terminal(&f, test, "--run-for 2.5 --quiet").await else {
        return;
    };
    assert!(all.contains("\r\x1b[2K[watching] "), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_status_lines_are_plain_when_stderr_is_not_a_terminal() {
    let f = fixture("plain", 0.0).await;
    let mut cmd = command(&f, "informer");
    cmd.args(["--run-for", "1.5", "--quiet"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr:?}");
    assert!(stderr.lines().any(|l| l.starts_with('[')), "{stderr}");
}

// 4. SIGTERM is Ctrl-C, and the cache is dumped.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_on_sigterm_writes_its_summary_and_the_cache_dump() {
    let f = fixture("sigterm", 0.0).await;
    let dump = temp_path("sigterm-dump.json");
    let _ = std::fs::remove_file(&dump);
    let mut cmd = command(&f, "informer");
    cmd.args(["--quiet", "--dump-cache"]).arg(&dump);
    let mut child = cmd.spawn().expect("the example runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut seen = Vec::new();
    read_until(&mut stderr, &mut seen, |l| {
        l.starts_with("[watching] 10 containers")
    })
    .await;
    sigterm(&child);
    let (code, rest) = finish(child, stderr).await;
    let written = std::fs::read(&dump);
    let _ = std::fs::remove_file(&dump);
    assert_eq!(code, 0, "{seen:#?}{rest}");
    assert!(rest.contains("stopped (SIGTERM) after "), "{rest}");
    assert!(rest.contains("cache written to "), "{rest}");
    let json: serde_json::Value =
        serde_json::from_slice(&written.expect("dump written")).expect("JSON");
    let array = json.as_array().expect("a JSON array");
    assert_eq!(array.len(), 10);
    assert!(array.iter().all(|c| c["Labels"].is_object()), "{json}");
    let addr = f.router.addr_string();
    assert!(
        array.iter().all(|c| c["Host"] == addr.as_str()),
        "every container names its host, the --addr given: {json}"
    );
    let _: Vec<Container> = serde_json::from_value(json).expect("the list format");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_on_sigterm_closes_and_exits_0() {
    let f = fixture("watch-sigterm", 50.0).await;
    let (child, mut stdout, stderr) = spawn_piped(command(&f, "watch"));
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, |_| true).await;
    sigterm(&child);
    // Keep reading stdout so the example never blocks on a full pipe.
    let drain = tokio::spawn(async move {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest).await;
    });
    let (code, stderr) = finish(child, stderr).await;
    let _ = drain.await;
    assert_eq!(code, 0, "{stderr}");
    assert_no_panic(&stderr);
}

// 5. Metrics ready for alerting.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_port_0_prints_the_bound_port_and_every_metric_from_the_start() {
    use hypersh::reflector::metrics as names;

    let f = fixture("metrics-port0", 0.0).await;
    let mut cmd = command(&f, "metrics");
    cmd.args(["--listen", "127.0.0.1:0"]);
    let mut child = cmd.spawn().expect("the example runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut seen = Vec::new();
    read_until(&mut stderr, &mut seen, |l| l.starts_with("metrics on ")).await;
    let url = seen
        .last()
        .and_then(|l| l.strip_prefix("metrics on "))
        .expect("the URL")
        .to_owned();
    let port = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("not http://127.0.0.1:PORT/metrics: {url}"));
    assert_ne!(port, 0);

    // The first scrape, right after start: every metric, described, counters at 0.
    let client = reqwest::Client::new();
    let body = tokio::time::timeout(PATIENCE, async {
        client.get(&url).send().await?.text().await
    })
    .await
    .expect("the scrape answers in time")
    .expect("the scrape succeeds");
    for (name, help) in names::COUNTERS {
        assert!(
            body.contains(&format!("# HELP {name} {help}\n")),
            "{name}: {body}"
        );
        assert!(
            body.contains(&format!("# TYPE {name} counter\n")),
            "{name}: {body}"
        );
        assert!(body.contains(&format!("\n{name} ")), "{name}: {body}");
    }
    for name in [
        names::FAILURES_TOTAL,
        names::AUTH_FAILURES_TOTAL,
        names::RECONNECTS_TOTAL,
    ] {
        assert!(body.contains(&format!("\n{name} 0\n")), "{name}: {body}");
    }
    assert!(
        body.contains(&format!(
            "# HELP {} {}\n",
            names::CONNECTED,
            names::CONNECTED_HELP
        )),
        "{body}"
    );
    assert!(body.contains("# HELP hypersh_cache_containers "), "{body}");

    // Synced, then SIGTERM: a clean end.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = match client.get(&url).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("hypersh_cache_containers 10\n") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never synced: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&child);
    let (code, rest) = finish(child, stderr).await;
    assert_eq!(code, 0, "{seen:#?}{rest}");
}

// 6. Mistakes are pointed out.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_without_addr_are_said_to_be_ignored() {
    let mut cmd = Command::new(example("informer"));
    cmd.args([
        "--containers",
        "3",
        "--churn",
        "0",
        "--run-for",
        "0.5",
        "--quiet",
    ])
    .env("HYPER_ACCESS_KEY", "AK")
    .env("HYPER_SECRET_KEY", "SK")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("are ignored without --addr: the embedded router is used"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_filter_value_is_refused() {
    let f = fixture("empty-filter", 0.0).await;
    for name in ["informer", "watch"] {
        let mut cmd = command(&f, name);
        cmd.args(["--filter", "container="]);
        cmd.args(if name == "watch" {
            ["--max-events", "1"]
        } else {
            ["--run-for", "5"]
        });
        let out = output(cmd).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(r#"bad filter "container=": the value is empty"#),
            "{name}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_warns_about_an_event_docker_does_not_emit() {
    let f = fixture("unknown-event", 50.0).await;
    let mut cmd = command(&f, "watch");
    cmd.args(["--filter", "event=strat,event=start", "--max-events", "1"]);
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: --filter event=strat: Docker emits no such container event"),
        "{stderr}"
    );
    assert!(!stderr.contains("event=start:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_filter_error_lists_only_the_keys_it_accepts() {
    let f = fixture("informer-keys", 0.0).await;
    for filter in ["event=start", "type=container"] {
        let mut cmd = command(&f, "informer");
        cmd.args(["--filter", filter, "--run-for", "5"]);
        let out = output(cmd).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("expected one of container, image, label\n"),
            "{filter}: {stderr}"
        );
    }
}
