//! The fleet on scripted sources, in paused time.

use std::sync::Mutex;
use std::time::Duration;

use hypersh_watch::ContainerState::{Exited, Running};
use tokio::sync::mpsc;

use super::*;
use crate::testing::{FakeError, FakeSource};
use crate::testkit::container;

const WAIT: Duration = Duration::from_secs(30);

/// What a fleet handler saw, as `host op id` lines.
fn recorder(fleet: &Fleet) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (added, updated, deleted) = (tx.clone(), tx.clone(), tx);
    fleet
        .handler()
        .on_add(move |host, c| {
            let _ = added.send(format!("{host} add {}", c.id()));
        })
        .on_update(move |host, _, c| {
            let _ = updated.send(format!("{host} update {}", c.id()));
        })
        .on_delete(move |host, d| {
            let unknown = if d.is_final_state_unknown() { "?" } else { "" };
            let _ = deleted.send(format!("{host} delete{unknown} {}", d.key()));
        })
        .register();
    rx
}

/// The next `n` lines a recorder got, sorted, within the deadline.
async fn next(rx: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<String> {
    next_within(rx, n, WAIT).await
}

/// The next `n` lines a recorder got, sorted, within `wait`.
async fn next_within(
    rx: &mut mpsc::UnboundedReceiver<String>,
    n: usize,
    wait: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let line = tokio::time::timeout(wait, rx.recv())
            .await
            .expect("a handler call in time")
            .expect("the handler runs");
        out.push(line);
    }
    out.sort();
    out
}

fn ids(list: &[HostContainer]) -> Vec<(String, String)> {
    let mut out: Vec<_> = list
        .iter()
        .map(|c| (c.host().to_owned(), c.id().to_owned()))
        .collect();
    out.sort();
    out
}

/// A source that refuses every watch from now on (and ends the open ones).
fn take_down(source: &FakeSource) {
    for _ in 0..10_000 {
        source.fail_next_watch(FakeError::Failure("down".into()));
    }
    source.break_watches(FakeError::Failure("down".into()));
}

#[tokio::test(start_paused = true)]
async fn the_same_id_on_two_hosts_is_two_containers() {
    let (a, b) = (FakeSource::new(), FakeSource::new());
    a.add(container("x", Running));
    b.add(container("x", Exited));
    b.add(container("y", Running));
    let fleet = Fleet::builder()
        .index("state", |c| vec![c.state().as_str().to_owned()])
        .build();
    let mut seen = recorder(&fleet);
    fleet.add_host("a", a.clone()).unwrap();
    fleet.add_host("b", b.clone()).unwrap();
    fleet.wait_synced(WAIT).await.unwrap();

    assert_eq!(fleet.len(), 3);
    assert_eq!(fleet.get("a", "x").unwrap().state(), Running);
    assert_eq!(fleet.get("b", "x").unwrap().state(), Exited);
    assert!(fleet.get("a", "y").is_none());
    assert_eq!(
        ids(&fleet.by_host("b").unwrap()),
        [("b".into(), "x".into()), ("b".into(), "y".into())]
    );
    assert_eq!(
        ids(&fleet.by_index("state", "running").unwrap()),
        [("a".into(), "x".into()), ("b".into(), "y".into())]
    );
    assert_eq!(next(&mut seen, 3).await, ["a add x", "b add x", "b add y"]);

    // A change on one host is that host's only.
    a.remove("x");
    assert_eq!(next(&mut seen, 1).await, ["a delete x"]);
    assert_eq!(fleet.get("b", "x").unwrap().state(), Exited);
    assert_eq!(
        fleet
            .add_host("a", FakeSource::new())
            .unwrap_err()
            .to_string(),
        FleetError::HostExists("a".into()).to_string()
    );
    fleet.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn removing_a_host_deletes_its_containers_and_only_them() {
    let (a, b) = (FakeSource::new(), FakeSource::new());
    a.add(container("x", Running));
    a.add(container("y", Running));
    b.add(container("x", Running));
    let fleet = Fleet::builder().build();
    fleet.add_host("a", a).unwrap();
    fleet.add_host("b", b.clone()).unwrap();
    fleet.wait_synced(WAIT).await.unwrap();
    // A handler registered late gets the adds of both hosts too.
    let mut seen = recorder(&fleet);
    assert_eq!(next(&mut seen, 3).await, ["a add x", "a add y", "b add x"]);

    fleet.remove_host("a").await.unwrap();
    assert_eq!(next(&mut seen, 2).await, ["a delete? x", "a delete? y"]);
    assert_eq!(fleet.hosts(), ["b"]);
    assert_eq!(ids(&fleet.list()), [("b".into(), "x".into())]);
    assert!(matches!(
        fleet.remove_host("a").await,
        Err(FleetError::NoSuchHost(_))
    ));
    // The other host goes on.
    b.add(container("z", Running));
    assert_eq!(next(&mut seen, 1).await, ["b add z"]);
    fleet.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_host_that_is_down_keeps_its_containers_until_drop_after() {
    let (a, b) = (FakeSource::new(), FakeSource::new());
    a.add(container("x", Running));
    b.add(container("x", Running));
    let fleet = Fleet::builder()
        .drop_after(Duration::from_secs(600))
        .backoff(crate::BackoffConfig::default().max(Duration::from_secs(5)))
        .build();
    let mut seen = recorder(&fleet);
    fleet.add_host("a", a.clone()).unwrap();
    fleet.add_host("b", b.clone()).unwrap();
    fleet.wait_synced(WAIT).await.unwrap();
    assert_eq!(next(&mut seen, 2).await, ["a add x", "b add x"]);
    assert!(fleet.status("a").unwrap().down_since.is_none());

    let down_at = tokio::time::Instant::now();
    take_down(&a);
    let status = fleet.informer("a").unwrap().status_handle();
    loop {
        // Made before the look: a change in between still wakes it.
        let changed = status.changed();
        if !status.snapshot().connected {
            break;
        }
        tokio::time::timeout(WAIT, changed).await.unwrap();
    }
    // Down, and marked so, but its containers are kept.
    assert!(fleet.status("a").unwrap().down_since.is_some());
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(fleet.get("a", "x").is_some());
    assert!(seen.try_recv().is_err());

    // After drop_after they become tombstones; the other host is untouched.
    assert_eq!(
        next_within(&mut seen, 1, Duration::from_secs(600)).await,
        ["a delete? x"]
    );
    assert!(down_at.elapsed() >= Duration::from_secs(600));
    assert!(fleet.get("a", "x").is_none());
    assert!(fleet.get("b", "x").is_some());
    fleet.shutdown().await;
}

/// A handler stuck on one host's change (a blocking call, as a slow disk or a lock) and
/// a host whose list never ends: the other host's changes still reach the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_host_and_a_stuck_handler_do_not_hold_up_another_host() {
    let (stalled, slow, healthy) = (FakeSource::new(), FakeSource::new(), FakeSource::new());
    stalled.add(container("s", Running));
    stalled.hold_lists();
    // In the slow host's first list: its handler is stuck before that list is offered.
    slow.add(container("w", Running));
    let fleet = Fleet::builder().build();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (tx, mut seen) = mpsc::unbounded_channel();
    fleet
        .handler()
        .on_add(move |host, c| {
            if host == "slow" {
                // Blocks this host's handler task until the test lets it go.
                tokio::task::block_in_place(|| {
                    let _ = gate.lock().map(|gate| gate.recv());
                });
            }
            let _ = tx.send(format!("{host} add {}", c.id()));
        })
        .register();
    fleet.add_host("stalled", stalled.clone()).unwrap();
    fleet.add_host("slow", slow.clone()).unwrap();
    fleet.add_host("healthy", healthy.clone()).unwrap();
    for i in 0..100 {
        healthy.add(container(&format!("h{i:03}"), Running));
    }
    let got = next(&mut seen, 100).await;
    assert!(
        got.iter().all(|line| line.starts_with("healthy add ")),
        "{got:?}"
    );

    // Readiness names the hosts that have not synced: the one still listing, and the one
    // whose handler has not been offered its list yet.
    let err = fleet
        .wait_synced(Duration::from_millis(500))
        .await
        .unwrap_err();
    let names: Vec<&str> = err.hosts.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(names, ["slow", "stalled"]);
    assert_eq!(err.hosts[1].1.phase, crate::Phase::Listing);
    assert_eq!(err.of, 3);
    assert!(err.to_string().contains("host \"stalled\""), "{err}");

    stalled.release_lists();
    assert_eq!(next(&mut seen, 1).await, ["stalled add s"]);
    release.send(()).unwrap();
    assert_eq!(next(&mut seen, 1).await, ["slow add w"]);
    fleet.shutdown().await;
}
