//! The `--docker` contracts of `examples/informer.rs`, `examples/watch.rs` and
//! `examples/controller.rs`, on a private Docker daemon and a private Podman service (the
//! harness of `crates/docker/tests`), one test body per contract run against each engine:
//! tools outside the repository run `informer --docker unix:///PATH --filter label=KEY
//! --run-for SECS --dump-cache FILE --quiet` and compare the dump with the engine's own
//! list. With `CI` set these must run; elsewhere they skip when an engine, busybox or
//! root is missing.

mod common;
#[path = "../crates/docker/tests/common/mod.rs"]
mod engine;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::example;
use engine::{Engine, Kind, Seen, engine_or_skip, prepared_or_skip};
use hypersh::watch::Container;

/// How long the informer may take to show what the engine holds.
const CONVERGE: Duration = Duration::from_secs(30);

/// One private engine at a time: several would only share the machine's two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The dump `informer --dump-cache` wrote, in the form the engine's list is compared in.
/// Every container carries `"Host"`: `host`, the URL as given.
fn read_dump(path: &std::path::Path, host: &str) -> BTreeMap<String, Seen> {
    let cached: Vec<Container> = common::read_dump_of(path, host);
    cached.iter().map(engine::seen).collect()
}

/// `informer --docker URL --filter label=KEY --run-for 2 --dump-cache FILE --quiet`: the
/// dump equals `GET /containers/json?all=1&filters={"label":["KEY"]}`.
fn dump_equals_the_engine_list(kind: Kind) {
    let _serial = serial();
    let Some(engine) = engine_or_skip(kind, "informer --docker contract") else {
        return;
    };
    engine.run("ca", &["contract=1", "tier=web"], &["sleep", "600"]);
    engine.run("cb", &["contract="], &["true"]);
    engine.run("cc", &["other=1"], &["sleep", "600"]);
    engine.run("cd", &["contract=2"], &["sleep", "600"]);
    engine.must(&["pause", "ca"]);
    engine.must(&["stop", "-t", "0", "cd"]);
    let dump = engine.dir.join("dump.json");
    let out = Command::new(example("informer"))
        .args(["--docker", &engine.url()])
        .args(["--filter", "label=contract", "--run-for", "2", "--quiet"])
        .arg("--dump-cache")
        .arg(&dump)
        .stdin(Stdio::null())
        .output()
        .expect("informer runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "informer --docker failed: {stderr}");
    assert!(out.stdout.is_empty(), "--quiet prints no events");
    assert!(
        stderr.contains(&format!("connected to {}", kind.name())),
        "the engine is named: {stderr}"
    );
    let got = read_dump(&dump, &engine.url());
    let want = engine
        .containers(Some("contract"))
        .expect("the engine's list");
    assert_eq!(got, want);
    assert_eq!(got.len(), 3);
}

#[test]
fn informer_docker_dump_equals_the_engine_list() {
    dump_equals_the_engine_list(Kind::Docker);
}

#[test]
fn informer_docker_dump_equals_the_podman_list() {
    dump_equals_the_engine_list(Kind::Podman);
}

/// An informer run as the contract says, without `--run-for`: its summary lines on
/// stderr, forwarded line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(engine: &Engine, dump: &std::path::Path) -> Self {
        let mut child = Command::new(example("informer"))
            .args(["--docker", &engine.url()])
            .args(["--filter", "label=contract", "--quiet"])
            .arg("--dump-cache")
            .arg(dump)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("informer runs");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line that contains every one of `parts`.
    fn wait_for(&mut self, parts: &[&str]) {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = parts.iter().all(|p| line.contains(p));
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {parts:?} within {CONVERGE:?}:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the informer did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The summary's `N containers (state=n ...)` for `list`.
fn summary_of(list: &BTreeMap<String, Seen>) -> String {
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for c in list.values() {
        *by_state.entry(c.state.as_str()).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{s}={n}")).collect();
    format!("{} containers ({})", list.len(), states.join(" "))
}

/// The engine's list once `exiting` has exited and nothing is between two states
/// (Podman's `stopped` lasts until its cleanup).
fn settled(engine: &Engine, exiting: &str) -> BTreeMap<String, Seen> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let list = engine
            .containers(Some("contract"))
            .expect("the engine's list");
        let done = list.get(exiting).is_some_and(|c| c.state == "exited")
            && list
                .values()
                .all(|c| ["running", "paused", "exited", "created"].contains(&c.state.as_str()));
        if done {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not settle: {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Started before its engine, the informer retries (and says so), converges once the
/// engine is up, and on SIGTERM dumps what its cache holds at that moment: after changes
/// made since it synced, what the engine lists.
fn waits_for_its_engine_and_dumps_on_sigterm(kind: Kind) {
    let _serial = serial();
    let Some(mut engine) = prepared_or_skip(kind, "informer --docker boot order") else {
        return;
    };
    let dump = engine.dir.join("dump.json");
    let mut informer = Running::start(&engine, &dump);
    informer.wait_for(&["[retrying]", "failed attempt", "cannot connect"]);

    engine
        .start_prepared()
        .unwrap_or_else(|e| panic!("the private {} did not start: {e}", kind.name()));
    engine.run("ca", &["contract=1"], &["sleep", "600"]);
    engine.run("cb", &["contract=2"], &["sleep", "600"]);
    engine.run("cc", &["other=1"], &["sleep", "600"]);
    informer.wait_for(&[&format!("connected to {}", kind.name())]);
    let want = engine
        .containers(Some("contract"))
        .expect("the engine's list");
    informer.wait_for(&["[watching]", &summary_of(&want)]);

    // Changes after the sync: the dump at SIGTERM holds them.
    engine.must(&["stop", "-t", "0", "cb"]);
    engine.must(&["pause", "ca"]);
    let cd = engine.run("cd", &["contract=3"], &["true"]);
    let want = settled(&engine, &cd);
    informer.wait_for(&["[watching]", &summary_of(&want)]);
    let status = informer.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(read_dump(&dump, &engine.url()), want);
}

#[test]
fn informer_docker_waits_for_podman_and_dumps_on_sigterm() {
    waits_for_its_engine_and_dumps_on_sigterm(Kind::Podman);
}

#[test]
fn informer_docker_waits_for_dockerd_and_dumps_on_sigterm() {
    waits_for_its_engine_and_dumps_on_sigterm(Kind::Docker);
}

/// `watch --docker URL --max-events 3 --filter label=w`: each event line as the engine
/// wrote it, once the stream is open (said on stderr, with the engine).
fn watch_prints_each_event_line(kind: Kind) {
    let _serial = serial();
    let Some(engine) = engine_or_skip(kind, "watch --docker contract") else {
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
    // exits gives create, start, die (Podman: create, init, start).
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("watching") {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
    }
    assert!(
        line.contains("watching") && line.contains(kind.name()),
        "watch --docker did not open: {line}"
    );
    engine.run("w0", &["w=1"], &["true"]);
    engine.run("x0", &[], &["true"]);
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
    let expected = match kind {
        Kind::Docker => ["create", "start", "die"],
        Kind::Podman => ["create", "init", "start"],
    };
    assert_eq!(actions, expected, "{stdout}");

    // `event=die` in Docker's word: Podman's events endpoint knows it as `died`.
    let mut child = Command::new(example("watch"))
        .args(["--docker", &engine.url(), "--max-events", "1"])
        .args(["--filter", "event=die", "--filter", "label=w"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("watching") {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
    }
    engine.run("w1", &["w=2"], &["sh", "-c", "exit 3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watch --docker --filter event=die saw no die");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON line");
    assert_eq!(v["Action"], "die");
    assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
}

#[test]
fn watch_docker_prints_each_event_line() {
    watch_prints_each_event_line(Kind::Docker);
}

#[test]
fn watch_docker_prints_each_podman_event_line() {
    watch_prints_each_event_line(Kind::Podman);
}

/// `controller --docker unix:///PATH --label KEY --out-dir DIR --run-for SECS`: DIR holds
/// one file per running container carrying the label, named by its full id.
fn controller_writes_one_file_per_running_labelled_container(kind: Kind) {
    let _serial = serial();
    let Some(engine) = engine_or_skip(kind, "controller --docker contract") else {
        return;
    };
    let web = engine.run("p1", &["proxy=web"], &["sleep", "600"]);
    engine.run("p2", &["proxy=api"], &["true"]);
    engine.run("p3", &["other=1"], &["sleep", "600"]);
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
    assert_eq!(doc["Host"], engine.url());
}

#[test]
fn controller_docker_writes_one_file_per_running_labelled_container() {
    controller_writes_one_file_per_running_labelled_container(Kind::Docker);
}

#[test]
fn controller_docker_on_podman_writes_one_file_per_running_labelled_container() {
    controller_writes_one_file_per_running_labelled_container(Kind::Podman);
}

/// `informer --docker A --docker B --dump-cache FILE` and `controller --docker A --docker B
/// --label KEY --out-dir DIR` on a Docker daemon and a Podman service at once: the dump
/// holds each engine's list, each container with `"Host"` the URL given for it; DIR holds
/// one file per running labelled container of either engine, with its `"Host"`.
#[test]
fn informer_and_controller_on_two_engines_name_each_container_s_host() {
    let _serial = serial();
    let test = "informer and controller on two engines";
    let Some(docker) = engine_or_skip(Kind::Docker, test) else {
        return;
    };
    let Some(podman) = engine_or_skip(Kind::Podman, test) else {
        return;
    };
    let on_docker = docker.run("fa", &["fleet=web"], &["sleep", "600"]);
    docker.run("fb", &["fleet=done"], &["true"]);
    let on_podman = podman.run("fc", &["fleet=web"], &["sleep", "600"]);
    podman.run("fd", &["other=1"], &["sleep", "600"]);
    let (a, b) = (docker.url(), podman.url());

    let dump = docker.dir.join("fleet-dump.json");
    let out = Command::new(example("informer"))
        .args(["--docker", &a, "--docker", &b])
        .args(["--filter", "label=fleet", "--run-for", "3", "--quiet"])
        .arg("--dump-cache")
        .arg(&dump)
        .stdin(Stdio::null())
        .output()
        .expect("informer runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "informer on two engines failed: {stderr}"
    );
    assert!(stderr.contains("| hosts: "), "a part per host: {stderr}");
    let mut by_host: BTreeMap<String, BTreeMap<String, Seen>> = BTreeMap::new();
    for (host, c) in common::read_host_dump(&dump) {
        let (id, seen) = engine::seen(&c);
        by_host.entry(host).or_default().insert(id, seen);
    }
    assert_eq!(by_host.len(), 2, "{by_host:#?}");
    assert_eq!(
        by_host[&a],
        docker.containers(Some("fleet")).expect("docker's list")
    );
    assert_eq!(
        by_host[&b],
        podman.containers(Some("fleet")).expect("podman's list")
    );

    let dir = docker.dir.join("fleet-files");
    let out = Command::new(example("controller"))
        .args(["--docker", &a, "--docker", &b])
        .args(["--label", "fleet=web", "--run-for", "3"])
        .arg("--out-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("controller runs");
    assert!(
        out.status.success(),
        "controller on two engines failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("the directory exists") {
        let path = entry.expect("an entry").path();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("the file")).expect("JSON");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(doc["Id"], name.as_str());
        files.insert(name, doc["Host"].as_str().unwrap_or_default().to_owned());
    }
    let want: BTreeMap<String, String> = [
        (on_docker.trim().to_owned(), a.clone()),
        (on_podman.trim().to_owned(), b.clone()),
    ]
    .into();
    assert_eq!(files, want);
}
