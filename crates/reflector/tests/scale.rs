//! A large account under the default [`Limits`]: the informer's first list of a million
//! containers fills its cache, while the events of a busy account arrive during the list
//! and are buffered, and the creates among them are fetched, without an overflow or a
//! second list.
//!
//! The same check against the reference router and the real client, with the client's
//! own list limits at their defaults, is part of the `scale` benchmark
//! (`scripts/bench.sh scale`, docs/performance.md).

use std::time::Duration;

use hypersh_reflector::testing::FakeSource;
use hypersh_reflector::{Informer, Limits};
use hypersh_watch::{Container, ContainerState};

/// How long the test waits for the first list (real time: a million containers in a
/// debug build on a busy machine).
const SYNC: Duration = Duration::from_secs(300);

/// Containers of the account: a million, as a large Hyper.sh account.
const CONTAINERS: usize = 1_000_000;
/// Containers that die while the first list runs (one event each).
const DYING: usize = 10_000;
/// Containers created while the first list runs (`create` and `start`, then a fetch).
const CREATED: usize = 1_000;

fn container(i: usize, state: ContainerState) -> Container {
    Container::builder(&format!("{i:064x}"))
        .name(&format!("c{i}"))
        .image("busybox")
        .state(state)
        .build()
}

/// Waits until `done` holds, checking every 10 ms, for at most `secs` seconds.
async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_million_container_list_passes_under_the_default_limits() {
    let source = FakeSource::new();
    for i in 0..CONTAINERS {
        source.set_quietly(container(i, ContainerState::Running));
    }
    source.hold_lists();
    let informer = Informer::builder(source.clone())
        .limits(Limits::default())
        .build()
        .expect("an informer");
    until("the list and the watch", 60, || {
        source.calls().lists == 1 && source.open_watches() == 1
    })
    .await;
    // While the list is held: events for the buffer (well under max_buffered_events),
    // and new containers the informer must fetch (well under max_pending_fetches).
    for i in 0..DYING {
        source.update(container(i, ContainerState::Exited));
    }
    for i in CONTAINERS..CONTAINERS + CREATED {
        source.add(container(i, ContainerState::Running));
    }
    source.release_lists();
    informer.wait_synced(SYNC).await.expect("synced");
    let store = informer.store();
    until("every container cached", 120, || {
        store.len() == CONTAINERS + CREATED
    })
    .await;
    until("the dead ones exited", 60, || {
        (0..DYING).step_by(97).all(|i| {
            store
                .get(&format!("{i:064x}"))
                .is_some_and(|c| c.state() == ContainerState::Exited)
        })
    })
    .await;
    let status = informer.status();
    assert_eq!(status.overflows, 0, "{status:?}");
    assert_eq!(source.calls().lists, 1, "no second list: {status:?}");
    assert_eq!(status.failures, 0, "{status:?}");
    informer.shutdown().await;
}
