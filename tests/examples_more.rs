//! The command-line contract of `examples/metrics.rs` (`examples/controller.rs` has its
//! own, in `tests/controller.rs`).
//! `cargo test` builds the examples next to the test binaries; these tests run them
//! against a router on port 0, trusting its certificate with `--ca-cert`.

mod common;

use common::example;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hypersh_apirouter::{Router, RouterConfig};
use tokio::process::Command;

use common::PATIENCE;

/// A router and its CA certificate in a file removed on drop.
struct Fixture {
    router: Router,
    ca: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca);
    }
}

async fn fixture(tag: &str) -> Fixture {
    let router = common::router(RouterConfig::default().containers(10).seed(42)).await;
    let ca = std::env::temp_dir().join(format!("{}-{tag}-ca.pem", std::process::id()));
    std::fs::write(&ca, router.ca_pem().expect("self-signed")).expect("write the CA");
    Fixture { router, ca }
}

/// The example `name` pointed at the fixture's router, with its output piped.
fn command(f: &Fixture, name: &str) -> Command {
    let creds = &f.router.credentials()[0];
    let mut cmd = Command::new(example(name));
    cmd.args(["--addr", &f.router.addr_string()])
        .args(["--access-key", creds.access_key()])
        .args(["--secret-key", creds.secret_key().expose()])
        .arg("--ca-cert")
        .arg(&f.ca)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_serves_the_reflector_metrics_in_prometheus_text() {
    let f = fixture("metrics").await;
    // A free port: bind port 0, note the port, release it for the example.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut cmd = command(&f, "metrics");
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--run-for", "20"]);
    let mut child = cmd.spawn().expect("the example runs");

    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = String::new();
    let body = loop {
        if let Ok(resp) = client.get(&url).send().await
            && let Ok(text) = resp.text().await
        {
            if text.contains("hypersh_reflector_relists_total")
                && text.contains("hypersh_cache_containers 10\n")
            {
                break text;
            }
            last = text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the example exited early ({status}); last scrape: {last}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reflector metrics at {url}; last scrape: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("# TYPE hypersh_reflector_relists_total counter"),
        "{body}"
    );
    assert!(body.contains("hypersh_reflector_connected 1"), "{body}");
    child.start_kill().expect("kill the example");
    let _ = child.wait().await;

    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = err.read_to_string(&mut stderr).await;
    }
    assert!(stderr.contains(&format!("metrics on {url}")), "{stderr}");
}
