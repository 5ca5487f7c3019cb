//! The informer on a `FakeSource`: the shell and the core together, with no server.
//! Time is paused: backoff sleeps pass at once, and every wait has a deadline.

use std::time::Duration;

use hypersh_reflector::testing::FakeError;
use hypersh_reflector::testing::FakeSource;
use hypersh_reflector::{BackoffConfig, Informer, Phase};
use hypersh_watch::{Container, ContainerState, Filters};

/// How long a test waits for the informer to sync (paused time: no real wait).
const SYNC: Duration = Duration::from_secs(60);

fn container(id: &str, state: &str, labels: serde_json::Value) -> Container {
    serde_json::from_value(serde_json::json!({
        "Id": id, "Names": [format!("/n-{id}")], "Image": "busybox", "State": state,
        "Labels": labels,
    }))
    .expect("a valid container")
}

fn running(id: &str) -> Container {
    container(id, "running", serde_json::json!({}))
}

/// Containers as (id, state) pairs, sorted by id.
fn states<C: std::ops::Deref<Target = Container>>(
    list: impl IntoIterator<Item = C>,
) -> Vec<(String, ContainerState)> {
    let mut out: Vec<_> = list
        .into_iter()
        .map(|c| (c.id().to_owned(), c.state()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The source's truth, as [`states`].
fn truth(source: &FakeSource) -> Vec<(String, ContainerState)> {
    states(source.containers().into_iter().map(std::sync::Arc::new))
}

/// Waits until `done` holds, checking every 10 ms of (paused) time, for at most 60 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn quick_backoff() -> BackoffConfig {
    BackoffConfig::default()
        .initial(Duration::from_millis(100))
        .max(Duration::from_secs(1))
}

#[tokio::test(start_paused = true)]
async fn the_cache_follows_adds_changes_and_removes() {
    let source = FakeSource::new();
    source.add(running("a"));
    let informer = Informer::builder(source.clone()).build().expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    assert_eq!(states(informer.store().list()), truth(&source));

    source.add(container("b", "created", serde_json::json!({"app": "web"})));
    source.update(container("b", "running", serde_json::json!({"app": "web"})));
    source.update(container("a", "paused", serde_json::json!({})));
    source.remove("a");
    until("the cache to follow", || {
        states(informer.store().list()) == truth(&source)
    })
    .await;
    let b = informer.store().get("b").expect("b is cached");
    assert_eq!(b.label("app"), Some("web"));
    assert_eq!(informer.status().phase, Phase::Watching);
    informer.shutdown().await;
    assert_eq!(informer.status().phase, Phase::Stopped);
    assert_eq!(source.open_watches(), 0);
}

#[tokio::test(start_paused = true)]
async fn what_vanished_while_disconnected_is_a_tombstone_after_the_relist() {
    let source = FakeSource::new();
    source.add(running("a"));
    source.add(running("b"));
    let informer = Informer::builder(source.clone())
        .backoff(quick_backoff())
        .build()
        .expect("builds");
    let (tx, mut deleted) = tokio::sync::mpsc::unbounded_channel();
    let _handle = informer.on_delete(move |d| {
        let _ = tx.send((d.key().to_owned(), d.is_final_state_unknown()));
    });
    informer.wait_synced(SYNC).await.expect("synced");
    // Missed while away: b removed, c created, a stopped.
    source.fail_next_watch(FakeError::Failure("refused".into()));
    source.disconnect();
    source.remove_quietly("b");
    source.set_quietly(running("c"));
    source.set_quietly(container("a", "exited", serde_json::json!({})));
    assert_eq!(deleted.recv().await, Some(("b".to_owned(), true)));
    until("the relist", || {
        states(informer.store().list()) == truth(&source)
    })
    .await;
    let status = informer.status();
    assert_eq!(status.reconnects, 1);
    assert_eq!(status.relists, 2);
    assert_eq!(status.failures, 1, "the refused watch");
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn events_sent_while_the_list_is_held_are_merged_into_it() {
    let source = FakeSource::new();
    source.add(running("a"));
    source.hold_lists();
    let informer = Informer::builder(source.clone()).build().expect("builds");
    until("the watch to open", || source.open_watches() == 1).await;
    // The list has not handed anything over yet; these events (create, start, destroy)
    // are buffered.
    source.add(running("b"));
    source.remove("a");
    until("the events to be received", || {
        informer.status().events_received == 3
    })
    .await;
    assert!(!informer.store().has_synced());
    source.release_lists();
    informer.wait_synced(SYNC).await.expect("synced");
    assert_eq!(
        states(informer.store().list()),
        [("b".to_owned(), ContainerState::Running)]
    );
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_authentication_failure_is_reported_then_cleared_by_a_sync() {
    let source = FakeSource::new();
    source.add(running("a"));
    source.fail_next_watch(FakeError::Auth("bad key".into()));
    let informer = Informer::builder(source.clone())
        .backoff(quick_backoff())
        .build()
        .expect("builds");
    until("the auth failure", || informer.status().auth_failing).await;
    let status = informer.status();
    assert_eq!(status.phase, Phase::Backoff);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 403"))
    );
    informer.wait_synced(SYNC).await.expect("synced");
    let status = informer.status();
    assert!(!status.auth_failing);
    assert_eq!(status.auth_failures, 1);
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_list_or_fetch_is_retried_until_the_cache_is_right() {
    let source = FakeSource::new();
    source.add(running("a"));
    source.fail_next_list(FakeError::Failure("list cut off".into()));
    let informer = Informer::builder(source.clone())
        .backoff(quick_backoff())
        .build()
        .expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    assert_eq!(informer.status().failures, 1);
    source.fail_next_fetch(FakeError::Failure("fetch reset".into()));
    source.add(running("b"));
    until("b after a retried fetch", || {
        informer.store().get("b").is_some()
    })
    .await;
    assert_eq!(informer.status().failures, 2);
    assert!(source.calls().lists >= 3);
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_bad_frame_is_counted_and_the_watch_goes_on() {
    let source = FakeSource::new();
    let informer = Informer::builder(source.clone()).build().expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    source.send_frame("{not json");
    source.add(running("a"));
    until("a", || informer.store().get("a").is_some()).await;
    assert_eq!(informer.status().decode_errors, 1);
    assert_eq!(informer.status().reconnects, 0);
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn filters_keep_only_the_containers_they_select() {
    let source = FakeSource::new();
    source.add(container(
        "web",
        "running",
        serde_json::json!({"app": "web"}),
    ));
    source.add(container("db", "running", serde_json::json!({"app": "db"})));
    let informer = Informer::builder(source.clone())
        .filters(Filters::new().label("app=web"))
        .build()
        .expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    source.add(container(
        "web2",
        "created",
        serde_json::json!({"app": "web"}),
    ));
    source.add(container(
        "db2",
        "created",
        serde_json::json!({"app": "db"}),
    ));
    until("web2", || informer.store().get("web2").is_some()).await;
    let mut ids: Vec<String> = informer.store().keys();
    ids.sort();
    assert_eq!(ids, ["web", "web2"]);
    informer.shutdown().await;
}

/// Random churn with disconnects and quiet changes, from a fixed seed: at the end the
/// cache equals the source.
#[tokio::test(start_paused = true)]
async fn random_churn_with_disconnects_converges() {
    let mut rng = fastrand::Rng::with_seed(7);
    let source = FakeSource::new();
    let informer = Informer::builder(source.clone())
        .backoff(quick_backoff())
        .build()
        .expect("builds");
    informer.wait_synced(SYNC).await.expect("synced");
    let states = ["created", "running", "paused", "exited"];
    for step in 0..2_000 {
        let id = format!("c{}", rng.usize(0..40));
        let state = states[rng.usize(0..states.len())];
        match rng.u8(0..100) {
            0..=39 => source.update(container(&id, state, serde_json::json!({}))),
            40..=59 => source.remove(&id),
            60..=64 => source.set_quietly(container(&id, state, serde_json::json!({}))),
            65..=67 => source.remove_quietly(&id),
            68 => source.disconnect(),
            69 => source.break_watches(FakeError::Failure("reset".into())),
            _ => source.add(container(&id, state, serde_json::json!({}))),
        }
        if step % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.u64(0..200))).await;
        }
    }
    // Quiet changes are only seen by a relist: end with one.
    source.disconnect();
    until("convergence", || {
        informer.status().phase == Phase::Watching
            && states_of(&informer) == states_of_source(&source)
    })
    .await;
    assert!(informer.status().reconnects > 5, "{:?}", informer.status());
    informer.shutdown().await;
}

fn states_of(informer: &Informer) -> Vec<(String, ContainerState)> {
    states(informer.store().list())
}

fn states_of_source(source: &FakeSource) -> Vec<(String, ContainerState)> {
    truth(source)
}

#[tokio::test(start_paused = true)]
async fn wait_synced_waits_for_the_handlers_to_see_the_first_list() {
    let source = FakeSource::new();
    for n in 0..500 {
        source.set_quietly(running(&format!("c{n}")));
    }
    let informer = Informer::builder(source.clone()).build().expect("builds");
    let added = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&added);
    let _handle = informer
        .handler()
        .on_add(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .register();
    informer.wait_synced(SYNC).await.expect("synced");
    assert_eq!(added.load(std::sync::atomic::Ordering::SeqCst), 500);
    informer.shutdown().await;
}

/// One handler built with `handler()` sees each container's changes in order: never a
/// change after its delete, unless it was added again.
#[tokio::test(start_paused = true)]
async fn one_handler_sees_each_containers_changes_in_order() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Seen {
        Added,
        Updated,
        Deleted,
    }
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Seen)>::new()));
    let source = FakeSource::new();
    let informer = Informer::builder(source.clone())
        .backoff(quick_backoff())
        .build()
        .expect("builds");
    let (a, u, d) = (log.clone(), log.clone(), log.clone());
    let handle = informer
        .handler()
        .on_add(move |c| a.lock().unwrap().push((c.id().to_owned(), Seen::Added)))
        .on_update(move |_, c| u.lock().unwrap().push((c.id().to_owned(), Seen::Updated)))
        .on_delete(move |x| d.lock().unwrap().push((x.key().to_owned(), Seen::Deleted)))
        .register();
    informer.wait_synced(SYNC).await.expect("synced");
    let mut rng = fastrand::Rng::with_seed(3);
    let states = ["created", "running", "paused", "exited"];
    for step in 0..1_000 {
        let id = format!("c{}", rng.usize(0..20));
        match rng.u8(0..100) {
            0..=19 => source.remove(&id),
            20 => source.disconnect(),
            _ => source.update(container(
                &id,
                states[rng.usize(0..4)],
                serde_json::json!({}),
            )),
        }
        if step % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Some changes (a created container going back to exited) have no Docker event:
    // only a relist shows them. End with one.
    source.disconnect();
    until("convergence", || {
        informer.status().phase == Phase::Watching && states_of(&informer) == truth(&source)
    })
    .await;
    until("the handler to drain its queue", || handle.queue_len() == 0).await;
    let log = log.lock().unwrap().clone();
    let mut last: std::collections::HashMap<&str, Seen> = std::collections::HashMap::new();
    for (id, seen) in log.iter() {
        let before = last.insert(id, *seen);
        match (before, seen) {
            (None | Some(Seen::Deleted), Seen::Added) => {}
            (Some(Seen::Added | Seen::Updated), Seen::Updated | Seen::Deleted) => {}
            other => panic!("{id}: {other:?} out of order"),
        }
    }
    assert!(log.len() > 100, "the handler saw the churn: {}", log.len());
    informer.shutdown().await;
}

/// A list that stalls while the watch floods events: the buffer stays at its bound, the
/// flooded list is taken again, and the cache converges once the list goes through.
#[tokio::test(start_paused = true)]
async fn a_flood_during_a_stalled_list_stays_bounded_and_the_list_is_taken_again() {
    let source = FakeSource::new();
    source.hold_lists();
    let informer = Informer::builder(source.clone())
        .limits(hypersh_reflector::Limits::default().max_buffered_events(100))
        .build()
        .expect("builds");
    until("the watch to open", || source.open_watches() == 1).await;
    for n in 0..1_000 {
        source.add(running(&format!("c{n}")));
    }
    until("the overflow", || informer.status().overflows >= 1).await;
    assert!(!informer.store().has_synced());
    source.release_lists();
    informer.wait_synced(SYNC).await.expect("synced");
    assert!(informer.status().relists >= 1);
    until("convergence", || states_of(&informer) == truth(&source)).await;
    assert_eq!(informer.store().len(), 1_000);
    informer.shutdown().await;
}

/// A source that says what serves it, counting the watches it opened.
#[derive(Clone)]
struct Described(FakeSource);

impl hypersh_reflector::Source for Described {
    type Error = <FakeSource as hypersh_reflector::Source>::Error;
    type Watch = <FakeSource as hypersh_reflector::Source>::Watch;

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
        self.0.fetch(ids).await
    }

    fn server(&self) -> Option<String> {
        Some(format!("Fake {} (API 1.41)", self.0.calls().watches))
    }
}

#[tokio::test(start_paused = true)]
async fn the_status_says_what_served_the_last_watch() {
    let source = FakeSource::new();
    let informer = Informer::builder(Described(source.clone()))
        .backoff(quick_backoff())
        .build()
        .unwrap();
    assert_eq!(informer.status().server, None, "no watch yet");
    informer.wait_synced(SYNC).await.expect("synced");
    assert_eq!(
        informer.status().server.as_deref(),
        Some("Fake 1 (API 1.41)")
    );
    // Each new watch asks again (an engine upgraded under the informer says so).
    source.disconnect();
    until("a second watch", || informer.status().reconnects == 1).await;
    assert_eq!(
        informer.status().server.as_deref(),
        Some("Fake 2 (API 1.41)")
    );
    informer.shutdown().await;
}
