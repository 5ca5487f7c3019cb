//! The Docker source on real engines: a private Docker daemon and a private Podman
//! service per test (see `common`), driven with their own CLIs. Each scenario is one test
//! body run against each engine. With `CI` set these must run; elsewhere they skip (with a
//! message) when an engine, busybox or root is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Engine, Kind, Seen, cached, engine_or_skip};
use hypersh_docker::{DockerHost, DockerSource};
use hypersh_reflector::{BackoffConfig, Informer, Source};
use hypersh_watch::{Container, Filters};
use tokio::task::block_in_place;

/// One private engine at a time: two would only share the machine's two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the cache may take to match the engine after the last action.
const CONVERGE: Duration = Duration::from_secs(30);

/// What the handlers saw, and what the informer fetched.
#[derive(Debug, Default)]
struct Log {
    added: BTreeSet<String>,
    /// id -> whether the delete was a tombstone (`FinalStateUnknown`).
    deleted: BTreeMap<String, bool>,
    /// Every id the reflector fetched.
    fetched: BTreeSet<String>,
}

/// The Docker source, recording the ids it is asked to fetch.
#[derive(Clone)]
struct Recorded(DockerSource, Arc<Mutex<Log>>);

impl Source for Recorded {
    type Error = <DockerSource as Source>::Error;
    type Watch = <DockerSource as Source>::Watch;

    fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    async fn watch(&self, filters: &Filters) -> Result<Self::Watch, Self::Error> {
        self.0.watch(filters).await
    }

    async fn list(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> Result<(), Self::Error> {
        self.0.list(filters, sink).await
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<Container>, Self::Error> {
        self.1.lock().unwrap().fetched.extend(ids.iter().cloned());
        self.0.fetch(ids).await
    }

    fn server(&self) -> Option<String> {
        Source::server(&self.0)
    }
}

/// An informer on `engine` with fast liveness checks and a short backoff; ready.
async fn informer(engine: &Engine, filters: Filters) -> (Informer, Arc<Mutex<Log>>) {
    let source = DockerSource::builder(DockerHost::parse(&engine.url()).expect("socket url"))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(1))
        .build()
        .expect("the source");
    let log = Arc::new(Mutex::new(Log::default()));
    let informer = Informer::builder(Recorded(source, log.clone()))
        .filters(filters)
        .backoff(
            BackoffConfig::default()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(1)),
        )
        .build()
        .expect("informer");
    let l = log.clone();
    informer.on_add(move |c| {
        l.lock().unwrap().added.insert(c.id().to_owned());
    });
    let l = log.clone();
    informer.on_delete(move |d| {
        l.lock()
            .unwrap()
            .deleted
            .insert(d.key().to_owned(), d.is_final_state_unknown());
    });
    informer
        .wait_synced(Duration::from_secs(20))
        .await
        .expect("the informer is ready within 20 s");
    let server = informer.status().server.unwrap_or_default();
    assert!(
        server.starts_with(engine.kind.name()),
        "the status names the engine: {server:?}"
    );
    (informer, log)
}

/// The engine's CLI, without blocking the runtime's other worker.
fn sh(engine: &Engine, args: &[&str]) -> String {
    block_in_place(|| engine.must(args))
}

/// `run -d` of a labelled container running `cmd`; its id.
fn run(engine: &Engine, name: &str, labels: &[&str], cmd: &[&str]) -> String {
    block_in_place(|| engine.run(name, labels, cmd))
}

/// `create` of a labelled container running `cmd`; its id.
fn create(engine: &Engine, name: &str, labels: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["create", "--network", "none", "--name", name];
    for l in labels {
        args.extend(["--label", l]);
    }
    args.push(engine.image());
    args.extend(cmd);
    sh(engine, &args)
}

/// Polls until the cache equals the engine's list (ids, state, labels, name); panics at
/// the deadline with both.
async fn converge(
    engine: &Engine,
    informer: &Informer,
    label: Option<&str>,
) -> BTreeMap<String, Seen> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let want = block_in_place(|| engine.containers(label)).expect("the engine's list");
        let got = cached(informer);
        if want == got {
            return want;
        }
        assert!(
            Instant::now() < deadline,
            "{}: the cache did not converge within {CONVERGE:?}\nengine: {want:#?}\ncache: {got:#?}\nstatus: {:#?}",
            engine.kind.name(),
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every container the handlers saw added and that is gone now got a delete.
fn check_deletes(log: &Mutex<Log>, now: &BTreeMap<String, Seen>) {
    let log = log.lock().unwrap();
    for id in log.added.iter().filter(|id| !now.contains_key(*id)) {
        assert!(log.deleted.contains_key(id), "no delete for vanished {id}");
    }
}

/// Polls `f` until it holds; panics with `what` at the deadline.
async fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A health check that passes: Docker runs it every second itself; Podman runs it when
/// asked (its timers need systemd).
const HEALTH: &[&str] = &["--health-cmd", "true", "--health-interval", "1s"];

/// Waits for (Docker) or runs (Podman) one health check of `name`.
async fn health_check(engine: &Engine, name: &str) {
    match engine.kind {
        Kind::Podman => {
            sh(engine, &["healthcheck", "run", name]);
        }
        Kind::Docker => {
            eventually("a health check", Duration::from_secs(20), || {
                block_in_place(|| {
                    engine.cli(&["inspect", "--format", "{{.State.Health.Status}}", name])
                })
                .is_ok_and(|s| s == "healthy")
            })
            .await;
        }
    }
}

/// Every action of the issue, on labelled containers, with the cache compared to the
/// engine's own list at the end of the churn, before any relist; then a restart of the
/// engine (a container removed while it is down); then a frozen engine.
async fn churn_and_restart(kind: Kind) {
    let _serial = SERIAL.lock().await;
    let Some(mut engine) = block_in_place(|| engine_or_skip(kind, "churn test")) else {
        return;
    };
    let started = Instant::now();
    // Containers the informer finds in its first list.
    let pre = run(&engine, "pre0", &["hde=churn", "tier=a"], &["sleep", "600"]);
    let pre_created = create(&engine, "pre1", &["hde=churn"], &["true"]);
    let (informer, log) = informer(&engine, Filters::new()).await;
    assert_eq!(informer.store().len(), 2);
    assert!(informer.store().get(&pre).is_some());

    let mut ids = Vec::new();
    for i in 0..6 {
        let idx = format!("idx={i}");
        ids.push(run(
            &engine,
            &format!("c{i}"),
            &["hde=churn", &idx],
            &["sleep", "600"],
        ));
    }
    let k0 = create(&engine, "k0", &["hde=churn"], &["sleep", "600"]);
    sh(&engine, &["start", "k0"]);
    sh(&engine, &["stop", "-t", "0", "c0"]);
    sh(&engine, &["start", "c0"]);
    sh(&engine, &["kill", "c1"]);
    sh(&engine, &["pause", "c2"]);
    sh(&engine, &["unpause", "c2"]);
    sh(&engine, &["pause", "c2"]);
    sh(&engine, &["rename", "c3", "c3-renamed"]);
    sh(&engine, &["restart", "-t", "0", "c4"]);
    sh(&engine, &["exec", "c4", "true"]);
    if kind == Kind::Docker {
        // Podman 4.3 has no `update`.
        sh(&engine, &["update", "--restart", "no", "c4"]);
    }
    sh(&engine, &["rm", "-f", "c5"]);
    sh(&engine, &["rm", "-f", &pre_created]);
    // Restarted while stopped, and a stop that waits for the stop signal's timeout.
    sh(&engine, &["restart", "-t", "0", "c1"]);
    sh(&engine, &["stop", "-t", "1", "c1"]);
    // Exiting on their own, and one removed by the engine when it exits.
    run(&engine, "e0", &["hde=churn"], &["sh", "-c", "sleep 0.3"]);
    run(
        &engine,
        "e1",
        &["hde=churn", "exit=3"],
        &["sh", "-c", "sleep 0.2; exit 3"],
    );
    let mut rm_args = vec!["run", "--rm", "--network", "none", "--label", "hde=churn"];
    rm_args.push(engine.image());
    rm_args.push("true");
    sh(&engine, &rm_args);
    let k1 = create(&engine, "k1", &[], &["true"]);
    sh(&engine, &["rm", &k1]);
    sh(&engine, &["stop", "-t", "0", &k0]);
    sh(&engine, &["rm", &k0]);
    // A health check.
    let mut health = vec!["run", "-d", "--network", "none", "--name", "h0"];
    health.extend(HEALTH);
    health.extend([engine.image(), "sleep", "600"]);
    sh(&engine, &health);
    health_check(&engine, "h0").await;

    // The cache equals the engine's list on events alone: no relist yet.
    let now = converge(&engine, &informer, None).await;
    check_deletes(&log, &now);
    {
        let log = log.lock().unwrap();
        // Removed while watched: a delete, not a tombstone. (A container created and
        // removed at once may never reach the cache: then neither is seen.)
        for gone in [&ids[5], &pre_created, &k0, &k1] {
            let must = [&ids[5], &pre_created].contains(&gone);
            if must || log.added.contains(gone.as_str()) {
                assert_eq!(
                    log.deleted.get(gone.as_str()),
                    Some(&false),
                    "delete of {gone}"
                );
            }
        }
    }
    let status = informer.status();
    assert_eq!(status.decode_errors, 0, "{status:#?}");
    assert_eq!(
        status.relists, 1,
        "no relist without a failure: {status:#?}"
    );
    eprintln!(
        "{}: churn converged after {:.1}s",
        kind.name(),
        started.elapsed().as_secs_f64()
    );

    // The engine stops. Docker's running containers stop with it (and come back exited,
    // without events); Podman's keep running. One container is removed while it is down.
    let before = informer.status();
    let t = Instant::now();
    block_in_place(|| engine.stop());
    eprintln!(
        "{}: stopped in {:.1}s",
        kind.name(),
        t.elapsed().as_secs_f64()
    );
    let removed_while_down = ids[1].clone();
    block_in_place(|| engine.remove_while_down(&removed_while_down))
        .expect("remove a container while the engine is down");
    eventually(
        "the informer notices the engine is gone",
        Duration::from_secs(10),
        || !informer.status().connected,
    )
    .await;
    // It keeps retrying while the engine is down.
    let down = informer.status().failures;
    eventually("retries while down", Duration::from_secs(10), || {
        informer.status().failures >= down + 2
    })
    .await;
    let t = Instant::now();
    block_in_place(|| engine.launch()).expect("the engine starts again");
    eprintln!(
        "{}: started in {:.1}s",
        kind.name(),
        t.elapsed().as_secs_f64()
    );
    let after = run(&engine, "after", &["hde=churn"], &["sleep", "600"]);
    let now = converge(&engine, &informer, None).await;
    assert!(now.contains_key(&after));
    assert!(!now.contains_key(&removed_while_down));
    if kind == Kind::Podman {
        assert_eq!(now[&pre].state, "running", "Podman's containers outlive it");
    }
    check_deletes(&log, &now);
    assert_eq!(
        log.lock().unwrap().deleted.get(&removed_while_down),
        Some(&true),
        "a container removed while the engine was down reaches on_delete as a tombstone"
    );
    let status = informer.status();
    assert!(status.relists > before.relists, "{status:#?}");
    assert!(status.reconnects > before.reconnects, "{status:#?}");
    assert!(status.failures > before.failures, "{status:#?}");
    assert!(
        status
            .server
            .as_deref()
            .is_some_and(|s| s.starts_with(kind.name())),
        "{status:#?}"
    );
    eprintln!(
        "{}: restart converged after {:.1}s",
        kind.name(),
        started.elapsed().as_secs_f64()
    );

    // A frozen engine keeps its sockets open but answers nothing: the idle events stream
    // looks fine, the /_ping on a second connection does not.
    let before = informer.status();
    engine.signal("STOP");
    eventually(
        "the informer notices the engine is frozen",
        Duration::from_secs(10),
        || informer.status().failures > before.failures,
    )
    .await;
    engine.signal("CONT");
    let last_error = informer.status().last_error.unwrap_or_default();
    assert!(last_error.contains("/_ping"), "{last_error}");
    sh(&engine, &["stop", "-t", "0", &after]);
    let now = converge(&engine, &informer, None).await;
    check_deletes(&log, &now);
    assert_eq!(informer.status().decode_errors, 0);
    informer.shutdown().await;
    eprintln!(
        "{}: done after {:.1}s",
        kind.name(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_converges_under_churn_and_across_a_restart() {
    churn_and_restart(Kind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_converges_under_churn_and_across_a_restart() {
    churn_and_restart(Kind::Podman).await;
}

/// An informer filtered by `filter` (`sel` or `sel=yes`) caches exactly what the engine
/// lists with it, through churn, and pays no fetch for containers outside it.
async fn label_filter(kind: Kind, filter: &str) {
    let _serial = SERIAL.lock().await;
    let Some(engine) = block_in_place(|| engine_or_skip(kind, "label filter test")) else {
        return;
    };
    run(&engine, "in0", &["sel=yes"], &["sleep", "600"]);
    run(&engine, "out0", &["other=1"], &["sleep", "600"]);
    run(&engine, "out1", &[], &["sleep", "600"]);
    // Inside a key-only filter, outside `sel=yes`.
    run(&engine, "no0", &["sel=no"], &["sleep", "600"]);
    let (informer, log) = informer(&engine, Filters::new().label(filter)).await;
    let first = if filter.contains('=') { 1 } else { 2 };
    assert_eq!(informer.store().len(), first);

    let in1 = run(
        &engine,
        "in1",
        &["sel=yes", "x=y"],
        &["sh", "-c", "sleep 0.2"],
    );
    run(&engine, "out2", &["x=y"], &["sh", "-c", "sleep 0.2"]);
    run(&engine, "no1", &["sel=no"], &["true"]);
    sh(&engine, &["pause", "out0"]);
    sh(&engine, &["rm", "-f", "out1"]);
    sh(&engine, &["stop", "-t", "0", "in0"]);
    sh(&engine, &["rename", "out2", "out2b"]);
    sh(&engine, &["restart", "-t", "0", "in0"]);
    sh(&engine, &["exec", "in0", "true"]);
    sh(&engine, &["kill", "no0"]);
    let in2 = create(&engine, "in2", &["sel=yes"], &["true"]);
    sh(&engine, &["rm", &in2]);

    let now = converge(&engine, &informer, Some(filter)).await;
    assert_eq!(
        now.len(),
        if filter.contains('=') { 2 } else { 4 },
        "{now:#?}"
    );
    let all = block_in_place(|| engine.containers(None)).expect("the engine's list");
    assert_eq!(all.len(), 6, "{all:#?}");
    let status = informer.status();
    {
        // Nothing outside the filter reached the handlers, nor was fetched (Podman was
        // asked for less: its events are checked on this side first).
        let log = log.lock().unwrap();
        let inside: BTreeSet<&String> = now.keys().chain([&in2]).collect();
        assert!(log.added.iter().all(|id| inside.contains(id)), "{log:?}");
        assert!(log.fetched.iter().all(|id| inside.contains(id)), "{log:?}");
        assert!(log.added.contains(&in1));
        // in2, created and removed at once, may never reach the cache; nothing else goes.
        let deleted: Vec<&String> = log.deleted.keys().collect();
        let expected: Vec<&String> = if log.added.contains(&in2) {
            vec![&in2]
        } else {
            vec![]
        };
        assert_eq!(deleted, expected, "{log:?}");
    }
    assert_eq!(status.relists, 1, "{status:#?}");
    assert_eq!(status.decode_errors, 0, "{status:#?}");
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_key_only_label_filter() {
    label_filter(Kind::Docker, "sel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_key_only_label_filter() {
    label_filter(Kind::Podman, "sel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_key_value_label_filter() {
    label_filter(Kind::Docker, "sel=yes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_key_value_label_filter() {
    label_filter(Kind::Podman, "sel=yes").await;
}

/// Two private Podman services at once (as when other tests run beside these): each
/// informer hears of its own service's containers only, through a private event log,
/// locks and temporary directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_podman_services_side_by_side_keep_to_themselves() {
    let _serial = SERIAL.lock().await;
    let Some(a) = block_in_place(|| engine_or_skip(Kind::Podman, "side by side (a)")) else {
        return;
    };
    let Some(b) = block_in_place(|| engine_or_skip(Kind::Podman, "side by side (b)")) else {
        return;
    };
    let (informer_a, log_a) = informer(&a, Filters::new()).await;
    let (informer_b, log_b) = informer(&b, Filters::new()).await;
    for (engine, name) in [(&a, "a"), (&b, "b")] {
        run(engine, &format!("{name}0"), &["side=1"], &["sleep", "600"]);
        run(engine, &format!("{name}1"), &["side=1"], &["true"]);
        sh(engine, &["stop", "-t", "0", &format!("{name}0")]);
        let gone = create(engine, &format!("{name}2"), &[], &["true"]);
        sh(engine, &["rm", &gone]);
    }
    let now_a = converge(&a, &informer_a, None).await;
    let now_b = converge(&b, &informer_b, None).await;
    assert_eq!(now_a.len(), 2);
    assert!(now_a.keys().all(|id| !now_b.contains_key(id)));
    for (log, own, other) in [(&log_a, &now_a, &now_b), (&log_b, &now_b, &now_a)] {
        let log = log.lock().unwrap();
        assert!(
            log.fetched.iter().all(|id| !other.contains_key(id)),
            "an informer fetched the other service's container: {log:?}"
        );
        assert!(
            log.added.iter().all(|id| !other.contains_key(id)),
            "{log:?}"
        );
        assert!(own.keys().all(|id| log.added.contains(id)), "{log:?}");
    }
    assert_ne!(
        std::fs::read_to_string(a.dir.join("events.log")).unwrap_or_default(),
        String::new(),
        "events go to each service's own log"
    );
    informer_a.shutdown().await;
    informer_b.shutdown().await;
}
