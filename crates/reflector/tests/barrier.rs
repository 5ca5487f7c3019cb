//! The consistency barriers end to end on a `FakeSource`, with paused time:
//! `Informer::refresh` and `Store::wait_for`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypersh_reflector::testing::FakeSource;
use hypersh_reflector::{Informer, RefreshError};
use hypersh_watch::{Container, ContainerState};

/// How long a test waits for the informer to sync (paused time: no real wait).
const SYNC: Duration = Duration::from_secs(60);

fn container(id: &str, state: &str) -> Container {
    serde_json::from_value(serde_json::json!({
        "Id": id, "Names": [format!("/n-{id}")], "Image": "busybox", "State": state,
    }))
    .expect("a valid container")
}

#[tokio::test(start_paused = true)]
async fn refresh_returns_once_the_handlers_have_been_offered_what_the_source_says() {
    let source = FakeSource::new();
    source.add(container("a", "running"));
    source.add(container("b", "running"));
    let informer = Informer::builder(source.clone()).build().expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2) = (Arc::clone(&seen), Arc::clone(&seen));
    informer.register(
        hypersh_store::FnHandler::new()
            .on_update(move |_, new: &Arc<Container>| {
                s1.lock()
                    .unwrap()
                    .push(format!("{} {}", new.id(), new.state()));
            })
            .on_delete(move |d| s2.lock().unwrap().push(format!("{} gone", d.key()))),
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Changed behind the watch's back: no event tells the informer.
    source.set_quietly(container("a", "exited"));
    source.remove_quietly("b");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        informer.store().get("a").map(|c| c.state()),
        Some(ContainerState::Running)
    );

    informer.refresh(["a", "b"]).await.expect("refreshed");
    assert_eq!(
        informer.store().get("a").map(|c| c.state()),
        Some(ContainerState::Exited)
    );
    assert!(informer.store().get("b").is_none());
    // The handler has been offered the result; it runs on its own task.
    let found = informer
        .store()
        .wait_for(
            "a",
            |c| c.is_some_and(|c| c.state() == ContainerState::Exited),
            Duration::ZERO,
        )
        .await
        .expect("already there");
    assert!(found.is_some());
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["a exited", "b gone"]);

    assert_eq!(informer.refresh(Vec::<String>::new()).await, Ok(()));
    informer.shutdown().await;
    assert_eq!(informer.refresh(["a"]).await, Err(RefreshError::Stopped));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_asked_during_a_list_is_served_by_it() {
    let source = FakeSource::new();
    source.add(container("a", "running"));
    source.hold_lists();
    let informer = Informer::builder(source.clone()).build().expect("builds");
    let refresh = tokio::spawn({
        let informer = informer.clone();
        async move { informer.refresh(["a"]).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!refresh.is_finished());
    source.release_lists();
    assert_eq!(refresh.await.expect("joins"), Ok(()));
    assert!(informer.store().get("a").is_some());
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn wait_for_sees_a_change_arriving_on_the_watch() {
    let source = FakeSource::new();
    source.add(container("a", "running"));
    let informer = Informer::builder(source.clone()).build().expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    let store = informer.store().clone();
    let waiter = tokio::spawn(async move {
        store
            .wait_for("a", |c| c.is_none(), Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    source.remove("a");
    assert_eq!(waiter.await.expect("joins").map(|c| c.is_none()), Ok(true));
    informer.shutdown().await;
}
