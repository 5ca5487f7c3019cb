//! The `--docker` contracts of `examples/informer.rs` and `examples/watch.rs`, on a
//! private Docker daemon (the harness of `crates/docker/tests`): tools outside the
//! repository run `informer --docker unix:///PATH --filter label=KEY --run-for SECS
//! --dump-cache FILE --quiet` and compare the dump with the engine's own list. With `CI`
//! set these must run; elsewhere they skip when dockerd, docker, busybox or root is
//! missing.

mod common;
#[path = "../crates/docker/tests/common/mod.rs"]
mod engine;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::example;
use engine::{Seen, engine_or_skip};
use hypersh::watch::Container;

/// `docker run -d` of a labelled container running `cmd`; its id.
fn run(engine: &engine::Engine, name: &str, labels: &[&str], cmd: &[&str]) -> String {
    engine.must(&engine::run_args(name, labels, cmd))
}

#[test]
fn informer_docker_dump_equals_the_engine_list() {
    let Some(engine) = engine_or_skip("informer --docker contract") else {
        return;
    };
    run(
        &engine,
        "ca",
        &["contract=1", "tier=web"],
        &["sleep", "600"],
    );
    run(&engine, "cb", &["contract="], &["true"]);
    run(&engine, "cc", &["other=1"], &["sleep", "600"]);
    engine.must(&["pause", "ca"]);
    let dump = engine.dir.join("dump.json");
    let out = Command::new(example("informer"))
        .args(["--docker", &engine.url()])
        .args(["--filter", "label=contract", "--run-for", "2", "--quiet"])
        .arg("--dump-cache")
        .arg(&dump)
        .stdin(Stdio::null())
        .output()
        .expect("informer runs");
    assert!(
        out.status.success(),
        "informer --docker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--quiet prints no events");
    let cached: Vec<Container> =
        serde_json::from_slice(&std::fs::read(&dump).expect("the dump is written"))
            .expect("a list");
    let got: BTreeMap<String, Seen> = cached.iter().map(engine::seen).collect();
    let want = engine.containers(Some("contract")).expect("docker inspect");
    assert_eq!(got, want);
    assert_eq!(got.len(), 2);
}

#[test]
fn watch_docker_prints_each_event_line() {
    let Some(engine) = engine_or_skip("watch --docker contract") else {
        return;
    };
    let mut child = Command::new(example("watch"))
        .args(["--docker", &engine.url(), "--max-events", "3"])
        .args(["--filter", "label=w"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch runs");
    // The watch is open once it says so on stderr; a created and started container that
    // exits gives create, start, die.
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("watching") {
        line.clear();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap_or(0) == 0 {
            break;
        }
    }
    assert!(
        line.contains("watching"),
        "watch --docker did not open: {line}"
    );
    run(&engine, "w0", &["w=1"], &["true"]);
    run(&engine, "x0", &[], &["true"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watch --docker did not stop after 3 events");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "watch --docker failed");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let actions: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("each line is JSON");
            assert_eq!(v["Type"], "container");
            assert_eq!(v["Actor"]["Attributes"]["w"], "1");
            v["Action"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(actions, ["create", "start", "die"], "{stdout}");
}

/// `controller --docker unix:///PATH --label KEY --out-dir DIR --run-for SECS`: DIR holds
/// one file per running container carrying the label, named by its full id.
#[test]
fn controller_docker_writes_one_file_per_running_labelled_container() {
    let Some(engine) = engine_or_skip("controller --docker contract") else {
        return;
    };
    let web = run(&engine, "p1", &["proxy=web"], &["sleep", "600"]);
    run(&engine, "p2", &["proxy=api"], &["true"]);
    run(&engine, "p3", &["other=1"], &["sleep", "600"]);
    let dir = engine.dir.join("proxy-files");
    let out = Command::new(example("controller"))
        .args(["--docker", &engine.url()])
        .args(["--label", "proxy", "--run-for", "2"])
        .arg("--out-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("controller runs");
    assert!(
        out.status.success(),
        "controller --docker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("the directory exists")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    // p2 exited at once: only p1 runs with the label.
    assert_eq!(files, [web.trim().to_owned()]);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(web.trim())).expect("the file"))
            .expect("JSON");
    assert_eq!(doc["Name"], "p1");
    assert_eq!(doc["Labels"]["proxy"], "web");
}
