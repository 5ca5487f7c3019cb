//! A fleet on real engines: two private Docker daemons and one private Podman service in
//! one cache. Churn on all three; one daemon stopped for 20 s and started again (its
//! containers kept and marked while it is down, what changed meanwhile seen after); one
//! host removed while the fleet runs (its containers deleted, the handlers told) and
//! added back; at the end the cache equals each engine's own list, host by host. With
//! `CI` set this must run; elsewhere it skips when an engine, busybox or root is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Engine, Kind, Seen, engine_or_skip, seen};
use hypersh_docker::{DockerHost, DockerSource};
use hypersh_reflector::BackoffConfig;
use hypersh_reflector::fleet::Fleet;
use tokio::task::block_in_place;

/// How long the cache may take to match the engines after the last action.
const CONVERGE: Duration = Duration::from_secs(30);

/// How long the stopped daemon stays down.
const DOWN_FOR: Duration = Duration::from_secs(20);

/// The Docker source on `engine`, with fast liveness checks.
fn source(engine: &Engine) -> DockerSource {
    DockerSource::builder(DockerHost::parse(&engine.url()).expect("socket url"))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(1))
        .build()
        .expect("the source")
}

/// The fleet's cache of one host, as the engine's list is compared.
fn cached(fleet: &Fleet, host: &str) -> BTreeMap<String, Seen> {
    fleet
        .by_host(host)
        .unwrap_or_default()
        .iter()
        .map(|c| seen(c.container()))
        .collect()
}

/// Polls until the fleet's cache of each engine's host equals that engine's list;
/// panics at the deadline with both.
async fn converge(fleet: &Fleet, engines: &[&Engine]) {
    let deadline = Instant::now() + CONVERGE;
    for engine in engines {
        let host = engine.url();
        loop {
            let want = block_in_place(|| engine.containers(None)).expect("the engine's list");
            let got = cached(fleet, &host);
            if want == got {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{host}: the cache did not converge within {CONVERGE:?}\nengine: {want:#?}\ncache: {got:#?}\nstatus: {:#?}",
                fleet.status(&host)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// Some churn on `engine`: runs, a stop, a pause, a removal. Names carry `tag`.
fn churn(engine: &Engine, tag: &str) {
    let name = |n: &str| format!("{tag}-{n}");
    let (a, b, c) = (name("a"), name("b"), name("c"));
    block_in_place(|| {
        engine.run(&a, &["fleet=1"], &["sleep", "600"]);
        engine.run(&b, &["fleet=2"], &["sleep", "600"]);
        engine.run(&c, &["fleet=3"], &["true"]);
        engine.must(&["pause", &a]);
        engine.must(&["stop", "-t", "0", &b]);
        engine.must(&["rm", "-f", &c]);
        engine.must(&["unpause", &a]);
    });
}

/// Every delete a fleet handler saw: (host, id) -> whether it was a tombstone.
type Deletes = Arc<Mutex<BTreeMap<(String, String), bool>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dockerds_and_a_podman_in_one_fleet() {
    let test = "fleet of two dockerds and a Podman";
    let Some(d1) = block_in_place(|| engine_or_skip(Kind::Docker, test)) else {
        return;
    };
    let Some(mut d2) = block_in_place(|| engine_or_skip(Kind::Docker, test)) else {
        return;
    };
    let Some(p) = block_in_place(|| engine_or_skip(Kind::Podman, test)) else {
        return;
    };
    let (h1, h2, hp) = (d1.url(), d2.url(), p.url());
    for (engine, tag) in [(&d1, "pre1"), (&d2, "pre2"), (&p, "prep")] {
        block_in_place(|| engine.run(tag, &["fleet=pre"], &["sleep", "600"]));
    }

    let fleet = Fleet::builder()
        .backoff(
            BackoffConfig::default()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(1)),
        )
        .build();
    let deletes: Deletes = Arc::default();
    let seen_deletes = Arc::clone(&deletes);
    fleet
        .handler()
        .on_delete(move |host, d| {
            seen_deletes.lock().unwrap().insert(
                (host.to_owned(), d.key().to_owned()),
                d.is_final_state_unknown(),
            );
        })
        .register();
    fleet.add_host(&h1, source(&d1)).unwrap();
    fleet.add_host(&h2, source(&d2)).unwrap();
    fleet.add_host(&hp, source(&p)).unwrap();
    fleet
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("every host syncs");
    for (host, kind) in [
        (&h1, Kind::Docker),
        (&h2, Kind::Docker),
        (&hp, Kind::Podman),
    ] {
        let server = fleet.status(host).unwrap().server.unwrap_or_default();
        assert!(server.starts_with(kind.name()), "{host}: {server}");
    }

    // Churn on all three at once (one thread each: the CLIs block).
    std::thread::scope(|s| {
        s.spawn(|| churn(&d1, "c1"));
        s.spawn(|| churn(&d2, "c2"));
        s.spawn(|| churn(&p, "cp"));
    });
    converge(&fleet, &[&d1, &d2, &p]).await;

    // d2 stops for 20 s. Its containers stay cached, and its status says since when;
    // the other hosts go on.
    let kept = cached(&fleet, &h2);
    let removed_while_down = block_in_place(|| d2.must(&["inspect", "-f", "{{.Id}}", "c2-b"]));
    block_in_place(|| d2.stop());
    let stopped_at = Instant::now();
    eventually("the fleet sees d2 down", Duration::from_secs(10), || {
        fleet.status(&h2).is_some_and(|s| !s.connected)
    })
    .await;
    block_in_place(|| d2.remove_while_down(&removed_while_down))
        .expect("remove a container while d2 is down");
    std::thread::scope(|s| {
        s.spawn(|| churn(&d1, "down1"));
        s.spawn(|| churn(&p, "downp"));
    });
    converge(&fleet, &[&d1, &p]).await;
    let status = fleet.status(&h2).unwrap();
    assert!(status.down_since.is_some(), "{status:#?}");
    assert_eq!(
        cached(&fleet, &h2),
        kept,
        "a host that is down keeps its containers"
    );
    let rest = DOWN_FOR.saturating_sub(stopped_at.elapsed());
    tokio::time::sleep(rest).await;
    assert_eq!(cached(&fleet, &h2), kept);
    assert!(fleet.status(&h2).unwrap().down_since.is_some());

    // d2 comes back: what changed while it was down is seen.
    block_in_place(|| d2.launch()).expect("d2 starts again");
    let after = block_in_place(|| d2.run("after", &["fleet=after"], &["sleep", "600"]));
    converge(&fleet, &[&d1, &d2, &p]).await;
    assert!(fleet.get(&h2, after.trim()).is_some());
    assert!(fleet.get(&h2, &removed_while_down).is_none());
    assert_eq!(
        deletes
            .lock()
            .unwrap()
            .get(&(h2.clone(), removed_while_down.clone())),
        Some(&true),
        "a container removed while d2 was down is a tombstone"
    );
    assert!(fleet.status(&h2).unwrap().down_since.is_none());

    // The Podman host is removed while the fleet runs: its containers are deleted and
    // every handler is told; then it comes back.
    let podman_ids: BTreeSet<String> = cached(&fleet, &hp).into_keys().collect();
    assert!(!podman_ids.is_empty());
    fleet.remove_host(&hp).await.unwrap();
    assert!(fleet.by_host(&hp).is_none());
    eventually("a delete for each Podman container", CONVERGE, || {
        let deletes = deletes.lock().unwrap();
        podman_ids
            .iter()
            .all(|id| deletes.contains_key(&(hp.clone(), id.clone())))
    })
    .await;
    block_in_place(|| churn(&p, "gone"));
    fleet.add_host(&hp, source(&p)).unwrap();

    // At the end the cache is the union of the three engines' lists, host by host.
    converge(&fleet, &[&d1, &d2, &p]).await;
    let total: usize = [&d1, &d2, &p]
        .iter()
        .map(|e| block_in_place(|| e.containers(None)).unwrap().len())
        .sum();
    assert_eq!(fleet.len(), total);
    assert_eq!(fleet.hosts().len(), 3);
    fleet.shutdown().await;
}
