//! The controller example's contract (`examples/controller.rs`), run as a binary against
//! a router on port 0 under churn and dropped connections; and the controller runtime's
//! metrics in the Prometheus text format.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hypersh::Controller;
use hypersh::controller::{Action, ControllerConfig, ReconcileError, Request};
use hypersh_apirouter::{Router, RouterConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use common::{PATIENCE, TempDir, example};

/// What DIR must hold: for each running container carrying `tier=frontend`, the JSON
/// object the contract names (its addresses and ports as the router lists them, and
/// `Host`: the `--addr` given).
fn truth(router: &Router) -> BTreeMap<String, serde_json::Value> {
    router
        .runtime()
        .list(true)
        .into_iter()
        .filter(|c| {
            c.state() == hypersh::watch::ContainerState::Running
                && c.label("tier") == Some("frontend")
        })
        .map(|c| {
            let labels: serde_json::Map<String, serde_json::Value> = c
                .labels()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.into()))
                .collect();
            let networks: serde_json::Map<String, serde_json::Value> = c
                .networks()
                .iter()
                .map(|n| {
                    let addresses = serde_json::json!({
                        "IPAddress": n.ip_address(),
                        "GlobalIPv6Address": n.global_ipv6_address(),
                        "Gateway": n.gateway(),
                        "MacAddress": n.mac_address(),
                        "NetworkID": n.network_id(),
                    });
                    (n.name().to_owned(), addresses)
                })
                .collect();
            let ports: Vec<serde_json::Value> = c
                .ports()
                .iter()
                .map(|p| {
                    let mut port = serde_json::json!({
                        "PrivatePort": p.private_port(),
                        "Type": p.port_type().as_str(),
                    });
                    if let Some(ip) = p.ip() {
                        port["IP"] = ip.into();
                    }
                    if let Some(public) = p.public_port() {
                        port["PublicPort"] = public.into();
                    }
                    port
                })
                .collect();
            let doc = serde_json::json!({
                "Id": c.id(),
                "Name": c.name().unwrap_or_default(),
                "Image": c.image(),
                "Labels": labels,
                "Networks": networks,
                "Ports": ports,
                "Host": router.addr_string(),
            });
            (c.id().to_owned(), doc)
        })
        .collect()
}

/// What DIR holds: file name -> parsed JSON (a file that does not parse fails the test).
fn files(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| {
            let e = e.expect("a directory entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path())
                .unwrap_or_else(|err| panic!("{name} is not a readable file: {err}"));
            let doc = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{name} is not JSON ({err}): {text}"));
            (name, doc)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_equals_the_router_s_truth_after_churn_drops_and_a_failing_write() {
    let router = common::router(
        RouterConfig::default()
            .containers(40)
            .seed(17)
            .churn(40.0)
            .churn_for(Duration::from_secs(3)),
    )
    .await;
    let out = TempDir::new("controller-out");
    let ca = out.0.with_extension("ca.pem");
    std::fs::write(&ca, router.ca_pem().expect("self-signed")).expect("write the CA");
    // Left by an earlier run: a file for a container that no longer exists.
    let stale = "f".repeat(64);
    std::fs::write(out.0.join(&stale), "{}").expect("write a stale file");

    let creds = &router.credentials()[0];
    let mut child = Command::new(example("controller"))
        .args(["--addr", &router.addr_string()])
        .args(["--access-key", creds.access_key()])
        .args(["--secret-key", creds.secret_key().expose()])
        .arg("--ca-cert")
        .arg(&ca)
        .args(["--label", "tier=frontend", "--run-for", "9"])
        .arg("--out-dir")
        .arg(&out.0)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example runs");
    let started = tokio::time::Instant::now();
    // stderr is read as it comes, so the test can wait for what the example logged.
    let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr_task = {
        let logged = logged.clone();
        let mut err = BufReader::new(child.stderr.take().expect("piped")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let mut all = logged.lock().expect("not poisoned");
                all.push_str(&line);
                all.push('\n');
            }
        })
    };
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let synced = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a first line in time")
        .expect("read stdout")
        .unwrap_or_default();
    assert!(synced.starts_with("synced: "), "{synced}");

    // Connections cut during the churn: the informer relists, the files follow.
    tokio::time::sleep_until(started + Duration::from_millis(1500)).await;
    router.faults().drop_connections();
    tokio::time::sleep_until(started + Duration::from_millis(2500)).await;
    router.faults().close_connections();

    // After the churn: a container whose file cannot be written for a while (a
    // directory sits where the temporary file goes).
    tokio::time::sleep_until(started + Duration::from_secs(4)).await;
    let labels = [("tier".to_owned(), "frontend".to_owned())].into();
    let id = router.runtime().create("blocked-1", "nginx", labels);
    let block = out.0.join(format!(".{id}.tmp"));
    std::fs::create_dir(&block).expect("block the write");
    router.runtime().start(&id).expect("starts");
    // The controller has seen the container and tried its write: it logged the failure.
    common::eventually("the blocked write's failure in the log", || {
        let all = logged.lock().expect("not poisoned");
        all.lines()
            .any(|l| l.contains("reconcile failed; retrying") && l.contains(&id))
            .then_some(())
            .ok_or_else(|| "not logged yet".to_owned())
    })
    .await;
    assert!(!out.0.join(&id).exists(), "the write is blocked");
    std::fs::remove_dir(&block).expect("unblock");

    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("stops on --run-for")
        .expect("the example ran");
    tokio::time::timeout(PATIENCE, stderr_task)
        .await
        .expect("stderr ends with the example")
        .expect("the reader ran");
    let stderr = logged.lock().expect("not poisoned").clone();
    let mut rest = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push(line);
    }
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(
        rest.iter().any(|l| l.starts_with("exit: ")),
        "{rest:?} {stderr}"
    );
    assert!(
        stderr.contains("reconcile failed; retrying") && stderr.contains(&id),
        "the blocked write failed and was retried: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let want = truth(&router);
    let have = files(&out.0);
    assert!(want.contains_key(&id), "the blocked container still runs");
    assert!(!have.contains_key(&stale), "the stale file is gone");
    assert_eq!(
        have.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "one file per running container carrying the label, no temporary file"
    );
    assert_eq!(have, want);
    // Started after the list, under churn: their addresses reached the files.
    let addressed = have
        .values()
        .filter(|doc| {
            doc["Networks"]
                .as_object()
                .is_some_and(|n| n.values().any(|a| a["IPAddress"] != ""))
        })
        .count();
    assert!(addressed > 0, "no file with an address: {have:?}");
    assert!(
        have[&id]["Networks"]["bridge"]["IPAddress"] != "",
        "the container started after the list has its address: {}",
        have[&id]
    );
    let _ = std::fs::remove_file(&ca);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_embedded_router_and_a_closed_stdout_it_exits_cleanly() {
    let out = TempDir::new("controller-closed-stdout");
    let mut child = Command::new(example("controller"))
        .args(["--run-for", "2", "--containers", "10"])
        .arg("--out-dir")
        .arg(&out.0)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example runs");
    // Nobody reads stdout: the example's writes fail with a broken pipe.
    drop(child.stdout.take());
    let out_put = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("stops on --run-for")
        .expect("the example ran");
    let stderr = String::from_utf8_lossy(&out_put.stderr);
    assert!(
        out_put.status.success(),
        "exit {:?}: {stderr}",
        out_put.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The runtime's metrics, as a Prometheus scrape shows them after a short run against
/// the router (printed: `cargo test --test controller metrics -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_metrics_in_prometheus_text() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let scrape = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this binary");

    let router = common::router(
        RouterConfig::default()
            .containers(20)
            .seed(3)
            .churn(20.0)
            .churn_for(Duration::from_secs(1)),
    )
    .await;
    let informer = hypersh::Informer::builder(common::client_for(&router))
        .name("test-region")
        .build()
        .expect("builds");
    informer
        .wait_synced(PATIENCE)
        .await
        .expect("the informer syncs");
    let controller = Controller::new(&informer, ControllerConfig::new("demo").concurrency(2))
        .expect("a controller");
    let handle = controller.handle();
    // What the reconciler saw, counted by the test itself: the scrape must say the same.
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let task = {
        let (calls, failures, retried) = (calls.clone(), failures.clone(), retried.clone());
        let reconcile = move |req: Request, _: Arc<()>| {
            let (calls, failures, retried) = (calls.clone(), failures.clone(), retried.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                calls.fetch_add(1, Ordering::SeqCst);
                // Fails once for every exited container: the error and retry counters.
                let exited = req
                    .container()
                    .is_some_and(|c| c.state() == hypersh::watch::ContainerState::Exited);
                if exited && req.attempt() == 1 {
                    failures.fetch_add(1, Ordering::SeqCst);
                    return Err(ReconcileError::new(
                        "exited containers fail their first try",
                    ));
                }
                if req.attempt() > 1 {
                    retried.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Action::Done)
            }
        };
        tokio::spawn(controller.run(reconcile, Arc::new(())))
    };
    // Some reconciles failed, every failure was retried, and the queue is empty.
    common::eventually("failures, each retried, and an empty queue", || {
        let (f, r, depth) = (
            failures.load(Ordering::SeqCst),
            retried.load(Ordering::SeqCst),
            handle.depth(),
        );
        (f > 0 && r >= f && depth == 0)
            .then_some(())
            .ok_or_else(|| format!("failures {f}, retried {r}, depth {depth}"))
    })
    .await;
    handle.shutdown();
    let report = task.await.expect("run returns");
    informer.shutdown().await;
    router.shutdown().await;

    let text = scrape.render();
    println!("{text}");
    println!("{report:?}");
    let (calls, failures) = (
        calls.load(Ordering::SeqCst),
        failures.load(Ordering::SeqCst),
    );
    let series = |name: &str| -> f64 {
        let head = format!("{name}{{controller=\"demo\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(head.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} has no value in\n{text}"))
    };
    assert_eq!(
        series("hypersh_controller_reconciles_total"),
        calls as f64,
        "one reconcile counted per call that ended"
    );
    assert_eq!(
        series("hypersh_controller_reconcile_errors_total"),
        failures as f64,
        "one error per failure the reconciler returned"
    );
    assert_eq!(
        series("hypersh_controller_retries_total"),
        failures as f64,
        "one retry scheduled per failure"
    );
    for want in [
        "hypersh_controller_reconciles_total{controller=\"demo\"}",
        "hypersh_controller_reconcile_errors_total{controller=\"demo\"}",
        "hypersh_controller_terminal_errors_total{controller=\"demo\"}",
        "hypersh_controller_retries_total{controller=\"demo\"}",
        "hypersh_controller_queue_depth{controller=\"demo\"}",
        "hypersh_controller_oldest_item_age_seconds{controller=\"demo\"}",
        "hypersh_controller_reconcile_duration_seconds",
        "hypersh_reflector_relists_total{informer=\"test-region\"}",
        "# HELP hypersh_controller_reconciles_total",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
}

/// Without the `etcd` feature, `--elect` is refused with how to build it, before anything
/// is written. (`cargo test` builds the example as this test is built; `tests/ha.rs`
/// rebuilds it with `--features etcd`, so a later `cargo test --test controller` alone
/// may find that build: outside CI the test then says so and returns.)
#[cfg(not(feature = "etcd"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_without_the_etcd_feature_says_how_to_build_it() {
    let out = TempDir::new("controller-elect-no-etcd");
    let output = Command::new(example("controller"))
        .args([
            "--elect",
            "http://127.0.0.1:9",
            "--containers",
            "5",
            "--run-for",
            "3",
        ])
        .arg("--out-dir")
        .arg(&out.0)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .expect("exits")
        .expect("the example ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("standby: ") && std::env::var_os("CI").is_none() {
        eprintln!("skipping: the example was last built with --features etcd (by tests/ha.rs)");
        return;
    }
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("--features etcd"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_dir(&out.0).expect("the dir").count(), 0);
}
