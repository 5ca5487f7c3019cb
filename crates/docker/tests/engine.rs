//! The Docker source on a real engine: a private dockerd per test (see `common`), driven
//! with the `docker` CLI. With `CI` set these must run; elsewhere they skip (with a
//! message) when dockerd, docker, busybox or root is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Engine, IMAGE, Seen, cached, engine_or_skip};
use hypersh_docker::{DockerHost, DockerSource};
use hypersh_reflector::{BackoffConfig, Informer};
use hypersh_watch::Filters;
use tokio::task::block_in_place;

/// One private daemon at a time: two would only share the machine's two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the cache may take to match the engine after the last action.
const CONVERGE: Duration = Duration::from_secs(30);

/// What the handlers saw.
#[derive(Debug, Default)]
struct Log {
    added: BTreeSet<String>,
    /// id -> whether the delete was a tombstone (`FinalStateUnknown`).
    deleted: BTreeMap<String, bool>,
}

/// An informer on `engine` with fast liveness checks and a short backoff.
async fn informer(engine: &Engine, filters: Filters) -> (Informer, Arc<Mutex<Log>>) {
    let source = DockerSource::builder(DockerHost::parse(&engine.url()).expect("socket url"))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("connect to the private daemon");
    let informer = Informer::builder(source)
        .filters(filters)
        .backoff(
            BackoffConfig::default()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(1)),
        )
        .build()
        .expect("informer");
    let log = Arc::new(Mutex::new(Log::default()));
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
    (informer, log)
}

/// `docker ARGS` without blocking the runtime's other worker.
fn sh(engine: &Engine, args: &[&str]) -> String {
    block_in_place(|| engine.must(args))
}

/// `docker run -d` of a labelled container running `cmd`; its id.
fn run(engine: &Engine, name: &str, labels: &[&str], cmd: &[&str]) -> String {
    sh(engine, &common::run_args(name, labels, cmd))
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
        let want = block_in_place(|| engine.containers(label)).expect("docker inspect");
        let got = cached(informer);
        if want == got {
            return want;
        }
        assert!(
            Instant::now() < deadline,
            "the cache did not converge within {CONVERGE:?}\nengine: {want:#?}\ncache: {got:#?}\nstatus: {:#?}",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_churn_and_across_a_daemon_restart() {
    let _serial = SERIAL.lock().await;
    let Some(mut engine) = block_in_place(|| engine_or_skip("docker churn test")) else {
        return;
    };
    let started = Instant::now();
    // Containers the informer finds in its first list.
    let pre = run(&engine, "pre0", &["hde=churn", "tier=a"], &["sleep", "600"]);
    let pre_created = sh(
        &engine,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "pre1",
            "--label",
            "hde=churn",
            IMAGE,
            "true",
        ],
    );
    let (informer, log) = informer(&engine, Filters::new()).await;
    assert_eq!(informer.store().len(), 2);
    assert!(informer.store().get(&pre).is_some());

    // Churn: every action the spec lists, on labelled containers.
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
    let k0 = sh(
        &engine,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "k0",
            "--label",
            "hde=churn",
            IMAGE,
            "sleep",
            "600",
        ],
    );
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
    sh(&engine, &["update", "--restart", "no", "c4"]);
    sh(&engine, &["rm", "-f", "c5"]);
    sh(&engine, &["rm", "-f", &pre_created]);
    // Exiting on their own, and one removed by the daemon when it exits.
    run(&engine, "e0", &["hde=churn"], &["sh", "-c", "sleep 0.3"]);
    run(
        &engine,
        "e1",
        &["hde=churn", "exit=3"],
        &["sh", "-c", "sleep 0.2; exit 3"],
    );
    sh(
        &engine,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--label",
            "hde=churn",
            IMAGE,
            "true",
        ],
    );
    let k1 = sh(
        &engine,
        &["create", "--network", "none", "--name", "k1", IMAGE, "true"],
    );
    sh(&engine, &["rm", &k1]);
    sh(&engine, &["stop", "-t", "0", &k0]);
    sh(&engine, &["rm", &k0]);

    let now = converge(&engine, &informer, None).await;
    check_deletes(&log, &now);
    {
        let log = log.lock().unwrap();
        for gone in [&ids[5], &pre_created, &k0, &k1] {
            assert_eq!(
                log.deleted.get(gone.as_str()),
                Some(&false),
                "delete of {gone}"
            );
        }
    }
    let status = informer.status();
    assert_eq!(status.decode_errors, 0, "{status:#?}");
    assert_eq!(
        status.relists, 1,
        "no relist without a failure: {status:#?}"
    );
    eprintln!(
        "churn converged after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The daemon stops; one container is removed while it is down (its directory goes, as
    // if removed by another tool), the running ones come back exited without events.
    let before = informer.status();
    let t = Instant::now();
    block_in_place(|| engine.stop());
    eprintln!("daemon stopped in {:.1}s", t.elapsed().as_secs_f64());
    let removed_while_down = ids[1].clone();
    std::fs::remove_dir_all(
        engine
            .data_root()
            .join("containers")
            .join(&removed_while_down),
    )
    .expect("remove a container's directory while the daemon is down");
    eventually(
        "the informer notices the daemon is gone",
        Duration::from_secs(10),
        || !informer.status().connected,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = Instant::now();
    block_in_place(|| engine.launch()).expect("the daemon starts again");
    eprintln!("daemon started in {:.1}s", t.elapsed().as_secs_f64());
    let after = run(&engine, "after", &["hde=churn"], &["sleep", "600"]);
    let now = converge(&engine, &informer, None).await;
    assert!(now.contains_key(&after));
    assert!(!now.contains_key(&removed_while_down));
    check_deletes(&log, &now);
    assert_eq!(
        log.lock().unwrap().deleted.get(&removed_while_down),
        Some(&true),
        "a container removed while the daemon was down reaches on_delete as a tombstone"
    );
    let status = informer.status();
    assert!(status.relists > before.relists, "{status:#?}");
    assert!(status.reconnects > before.reconnects, "{status:#?}");
    assert!(status.failures > before.failures, "{status:#?}");
    eprintln!(
        "restart converged after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // A frozen daemon keeps its sockets open but answers nothing: the idle events stream
    // looks fine, the /_ping on a second connection does not.
    let before = informer.status();
    engine.signal("STOP");
    eventually(
        "the informer notices the daemon is frozen",
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
    eprintln!("done after {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_filter_caches_only_those_containers() {
    let _serial = SERIAL.lock().await;
    let Some(engine) = block_in_place(|| engine_or_skip("docker label filter test")) else {
        return;
    };
    let mut outside = BTreeSet::new();
    run(&engine, "in0", &["sel=yes"], &["sleep", "600"]);
    outside.insert(run(&engine, "out0", &["other=1"], &["sleep", "600"]));
    outside.insert(run(&engine, "out1", &[], &["sleep", "600"]));
    let (informer, log) = informer(&engine, Filters::new().label("sel")).await;
    assert_eq!(informer.store().len(), 1);

    run(&engine, "in1", &["sel=", "x=y"], &["sh", "-c", "sleep 0.2"]);
    outside.insert(run(&engine, "out2", &["x=y"], &["sh", "-c", "sleep 0.2"]));
    sh(&engine, &["pause", "out0"]);
    sh(&engine, &["rm", "-f", "out1"]);
    sh(&engine, &["stop", "-t", "0", "in0"]);
    sh(&engine, &["rename", "out2", "out2b"]);

    let now = converge(&engine, &informer, Some("sel")).await;
    assert_eq!(now.len(), 2);
    {
        let log = log.lock().unwrap();
        assert!(log.added.is_disjoint(&outside), "{log:?}");
        assert!(log.deleted.is_empty(), "{log:?}");
    }
    informer.shutdown().await;
}
