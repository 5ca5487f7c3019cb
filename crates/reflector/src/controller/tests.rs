//! The controller on a `FakeSource` informer, with paused time: no network, and every
//! delay passes at once when all tasks wait.

use std::sync::atomic::{AtomicUsize, Ordering};

use hypersh_watch::ContainerState;

use super::*;
use crate::testing::FakeSource;
use crate::testkit::{container, labelled};

/// How long a test waits for the informer to sync (paused time: no real wait).
const SYNC: Duration = Duration::from_secs(60);

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// One reconcile as the test saw it.
#[derive(Clone, Debug)]
struct Call {
    id: String,
    /// The cached state, or `None` for a deletion.
    state: Option<ContainerState>,
    /// For a deletion: whether it is a relist tombstone.
    tombstone: bool,
    attempt: u32,
    reason: Reason,
    /// When it started, from the test's start.
    at: Duration,
}

#[derive(Clone)]
struct Log {
    calls: Arc<Mutex<Vec<Call>>>,
    start: Instant,
}

impl Log {
    fn new() -> Self {
        Self {
            calls: Arc::default(),
            start: Instant::now(),
        }
    }

    fn record(&self, req: &Request) {
        self.calls.lock().unwrap().push(Call {
            id: req.id().to_owned(),
            state: req.container().map(|c| c.state()),
            tombstone: req.deleted().is_some_and(Deleted::is_final_state_unknown),
            attempt: req.attempt(),
            reason: req.reason(),
            at: self.start.elapsed(),
        });
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn ids(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.id).collect()
    }

    fn of(&self, id: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.id == id).collect()
    }
}

async fn informer_with(ids: &[&str]) -> (FakeSource, Informer) {
    let source = FakeSource::new();
    for id in ids {
        source.add(container(id, ContainerState::Running));
    }
    let informer = Informer::builder(source.clone())
        .build()
        .expect("informer builds");
    informer.wait_synced(SYNC).await.expect("synced");
    (source, informer)
}

/// Lets the handler and the controller catch up (time is paused: this is instant).
async fn settle() {
    tokio::time::sleep(10 * MS).await;
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(MS).await;
    }
}

fn config() -> ControllerConfig {
    ControllerConfig::new("test")
}

/// Runs `controller` with a reconcile that records each call, waits `hold`, and returns
/// what `decide` says.
fn spawn(
    controller: Controller,
    log: &Log,
    hold: impl Fn(&Request) -> Duration + Send + 'static,
    decide: impl Fn(&Request) -> Result<Action, ReconcileError> + Send + Sync + 'static,
) -> JoinHandle<ShutdownReport> {
    let log = log.clone();
    let decide = Arc::new(decide);
    tokio::spawn(controller.run(
        move |req: Request, _: Arc<()>| {
            log.record(&req);
            let hold = hold(&req);
            let decide = Arc::clone(&decide);
            async move {
                tokio::time::sleep(hold).await;
                decide(&req)
            }
        },
        Arc::new(()),
    ))
}

fn done(_: &Request) -> Result<Action, ReconcileError> {
    Ok(Action::Done)
}

fn instant(_: &Request) -> Duration {
    Duration::ZERO
}

#[tokio::test(start_paused = true)]
async fn a_key_changed_several_times_while_waiting_is_reconciled_once_with_its_latest_state() {
    let (source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    settle().await;
    source.update(container("a", ContainerState::Paused));
    source.update(container("a", ContainerState::Exited));
    until("the cache to see the exit", || {
        informer.store().get("a").map(|c| c.state()) == Some(ContainerState::Exited)
    })
    .await;
    settle().await;
    let log = Log::new();
    let task = spawn(controller, &log, instant, done);
    settle().await;
    let calls = log.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].state, Some(ContainerState::Exited));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn one_key_never_reconciles_twice_at_once_and_a_change_meanwhile_runs_after() {
    let (source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config().concurrency(4)).expect("a controller");
    let log = Log::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (f, m) = (Arc::clone(&in_flight), Arc::clone(&most));
    let l = log.clone();
    let task = tokio::spawn(controller.run(
        move |req: Request, _: Arc<()>| {
            l.record(&req);
            let (f, m) = (Arc::clone(&f), Arc::clone(&m));
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(SEC).await;
                f.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ReconcileError>(Action::Done)
            }
        },
        Arc::new(()),
    ));
    until("the first reconcile", || log.calls().len() == 1).await;
    source.update(container("a", ContainerState::Paused));
    tokio::time::sleep(300 * MS).await;
    source.update(container("a", ContainerState::Exited));
    until("the second reconcile", || log.calls().len() == 2).await;
    tokio::time::sleep(3 * SEC).await;
    let calls = log.calls();
    assert_eq!(
        calls.len(),
        2,
        "two changes during one reconcile: one more after it"
    );
    assert_eq!(calls[1].state, Some(ContainerState::Exited));
    assert!(calls[1].at >= SEC, "after the first ended: {calls:?}");
    assert_eq!(most.load(Ordering::SeqCst), 1);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn no_more_reconciles_run_than_the_concurrency_bound() {
    let ids: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (_source, informer) = informer_with(&refs).await;
    let controller = Controller::new(&informer, config().concurrency(3)).expect("a controller");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (f, m) = (Arc::clone(&in_flight), Arc::clone(&most));
    let log = Log::new();
    let l = log.clone();
    let task = tokio::spawn(controller.run(
        move |req: Request, _: Arc<()>| {
            l.record(&req);
            let (f, m) = (Arc::clone(&f), Arc::clone(&m));
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(SEC).await;
                f.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ReconcileError>(Action::Done)
            }
        },
        Arc::new(()),
    ));
    until("every container reconciled", || log.calls().len() == 10).await;
    assert_eq!(most.load(Ordering::SeqCst), 3);
    let last = log.calls().last().map(|c| c.at).unwrap_or_default();
    assert!(
        last >= 3 * SEC && last < 4 * SEC,
        "four rounds of three: {last:?}"
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn requeue_after_reconciles_again_at_that_time() {
    let (_source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, |_| {
        Ok(Action::RequeueAfter(Duration::from_secs(10)))
    });
    tokio::time::sleep(Duration::from_millis(25_500)).await;
    let at: Vec<u64> = log.calls().iter().map(|c| c.at.as_secs()).collect();
    assert_eq!(at, [0, 10, 20]);
    assert!(log.calls().iter().all(|c| c.attempt == 1));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn errors_are_retried_with_a_doubling_backoff_up_to_its_cap() {
    let (_source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(
        &informer,
        config().backoff(100 * MS, 400 * MS).rate_limit(0.0, 1),
    )
    .expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, |req| {
        if req.attempt() < 6 {
            Err(ReconcileError::new(format!(
                "attempt {} fails",
                req.attempt()
            )))
        } else {
            Ok(Action::Done)
        }
    });
    tokio::time::sleep(5 * SEC).await;
    let calls = log.calls();
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    assert_eq!(gaps, [100, 200, 400, 400, 400], "{calls:?}");
    let attempts: Vec<u32> = calls.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5, 6]);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn retries_over_all_keys_keep_to_the_overall_rate() {
    let ids: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (_source, informer) = informer_with(&refs).await;
    let controller = Controller::new(
        &informer,
        config()
            .concurrency(10)
            .backoff(Duration::ZERO, Duration::ZERO)
            .rate_limit(1.0, 2),
    )
    .expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, |req| {
        if req.attempt() == 1 {
            Err(ReconcileError::new("first try fails"))
        } else {
            Ok(Action::Done)
        }
    });
    tokio::time::sleep(10 * SEC).await;
    let mut retries: Vec<u128> = log
        .calls()
        .iter()
        .filter(|c| c.attempt == 2)
        .map(|c| c.at.as_millis() / 100 * 100)
        .collect();
    retries.sort_unstable();
    assert_eq!(
        retries,
        [0, 0, 1000, 2000, 3000],
        "burst 2, then 1 per second"
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn live_changes_go_before_the_initial_flood_and_the_flood_ages() {
    let ids: Vec<String> = (0..30).map(|i| format!("c{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (source, informer) = informer_with(&refs).await;
    let controller = Controller::new(&informer, config().aging(SEC)).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, |_| 100 * MS, done);
    until("the flood to start", || !log.calls().is_empty()).await;
    // A live change to the last container of the flood: it runs next.
    source.update(container("c29", ContainerState::Paused));
    until("c29's reconcile", || !log.of("c29").is_empty()).await;
    let order = log.ids();
    assert!(order.len() <= 3, "c29 went ahead of the flood: {order:?}");
    // A live change every 100 ms (as long as a reconcile): the flood still moves, one
    // aged item at a time, so none waits for ever.
    for i in 0..50 {
        source.update(container(
            &format!("live{}", i % 2),
            ContainerState::Running,
        ));
        tokio::time::sleep(100 * MS).await;
    }
    until("the whole flood", || {
        ids.iter().all(|id| !log.of(id).is_empty())
    })
    .await;
    assert!(Instant::now() - log.start < 10 * SEC);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_delete_carries_the_final_state_and_a_missed_one_its_tombstone() {
    let (source, informer) = informer_with(&["a", "b"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, done);
    until("the first reconciles", || log.calls().len() == 2).await;
    source.update(container("a", ContainerState::Exited));
    source.remove("a");
    until("a's deletion", || {
        log.of("a").iter().any(|c| c.state.is_none())
    })
    .await;
    let last = log.of("a").pop().expect("a call");
    assert!(!last.tombstone);

    // Missed while disconnected: the relist finds it gone.
    source.remove_quietly("b");
    source.disconnect();
    until("b's tombstone", || log.of("b").iter().any(|c| c.tombstone)).await;
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_deleted_container_s_request_carries_its_last_cached_version() {
    let (source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let task = tokio::spawn(controller.run(
        move |req: Request, _: Arc<()>| {
            s.lock()
                .unwrap()
                .push((req.deleted().is_some(), req.last().state()));
            async { Ok::<_, ReconcileError>(Action::Done) }
        },
        Arc::new(()),
    ));
    settle().await;
    source.update(container("a", ContainerState::Exited));
    settle().await;
    source.remove("a");
    until("the delete", || {
        seen.lock().unwrap().iter().any(|(d, _)| *d)
    })
    .await;
    let last = *seen.lock().unwrap().last().expect("a call");
    assert_eq!(last, (true, ContainerState::Exited));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_reconcile_is_caught_and_retried() {
    let (_source, informer) = informer_with(&["a", "b"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, |req| {
        assert!(!(req.id() == "a" && req.attempt() == 1), "boom");
        Ok(Action::Done)
    });
    until("a's retry", || log.of("a").len() == 2).await;
    assert_eq!(log.of("a")[1].attempt, 2);
    assert_eq!(log.of("b").len(), 1, "the others go on");
    assert!(!task.is_finished());
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_reconciles_finish_up_to_the_deadline_and_reports_the_rest() {
    let (_source, informer) = informer_with(&["fast", "slow", "w1", "w2"]).await;
    let controller = Controller::new(
        &informer,
        config()
            .concurrency(2)
            .shutdown_deadline(Duration::from_secs(5)),
    )
    .expect("a controller");
    let handle = controller.handle();
    let log = Log::new();
    // The first reconcile to start takes a minute, the others a second.
    let started = AtomicUsize::new(0);
    let task = spawn(
        controller,
        &log,
        move |_| {
            if started.fetch_add(1, Ordering::SeqCst) == 0 {
                Duration::from_secs(60)
            } else {
                SEC
            }
        },
        done,
    );
    until("two running", || log.calls().len() == 2).await;
    let stopped_at = Instant::now();
    handle.shutdown();
    let report = task.await.expect("run returns");
    let calls = log.ids();
    assert_eq!(report.finished, 1, "{report:?}");
    assert_eq!(report.abandoned, [calls[0].clone()]);
    let mut waiting: Vec<&str> = ["fast", "slow", "w1", "w2"]
        .into_iter()
        .filter(|id| !calls.iter().any(|c| c == id))
        .collect();
    waiting.sort_unstable();
    assert_eq!(report.waiting, waiting);
    assert_eq!(Instant::now() - stopped_at, Duration::from_secs(5));
    assert_eq!(
        log.calls().len(),
        2,
        "nothing new started after the shutdown"
    );
}

#[tokio::test(start_paused = true)]
async fn the_informer_s_shutdown_stops_the_controller() {
    let (_source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, done);
    settle().await;
    informer.shutdown().await;
    let report = task.await.expect("run returns");
    assert_eq!(report, ShutdownReport::default());
}

#[tokio::test(start_paused = true)]
async fn reconcile_on_a_stream_and_reconcile_all_trigger_reconciles() {
    let (_source, informer) = informer_with(&["a", "b"]).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let controller = Controller::new(&informer, config())
        .expect("a controller")
        .reconcile_on(tokio_stream_of(rx));
    let handle = controller.handle();
    let log = Log::new();
    let task = spawn(controller, &log, instant, done);
    until("the first reconciles", || log.calls().len() == 2).await;
    tx.send("a").expect("send");
    tx.send("unknown").expect("send");
    until("a again", || log.of("a").len() == 2).await;
    handle.reconcile("b");
    until("b again", || log.of("b").len() == 2).await;
    handle.reconcile_all();
    until("all again", || log.calls().len() == 6).await;
    settle().await;
    assert!(log.of("unknown").is_empty());
    task.abort();
}

/// An unbounded receiver as a stream (without the tokio-stream crate).
fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

fn reasons(calls: &[Call]) -> Vec<Reason> {
    calls.iter().map(|c| c.reason).collect()
}

#[tokio::test(start_paused = true)]
async fn each_request_says_why_it_runs() {
    let (source, informer) = informer_with(&["a", "b"]).await;
    let controller = Controller::new(&informer, config().backoff(MS, MS)).expect("a controller");
    let handle = controller.handle();
    let log = Log::new();
    let task = spawn(controller, &log, instant, |req| {
        match (req.id(), req.attempt()) {
            ("b", 1) if req.reason() == Reason::Changed => Err(ReconcileError::new("fails once")),
            ("a", _) if req.reason() == Reason::Resync => {
                Ok(Action::RequeueAfter(Duration::from_secs(10)))
            }
            _ => Ok(Action::Done),
        }
    });
    until("the first list", || log.calls().len() == 2).await;
    assert_eq!(reasons(&log.calls()), [Reason::Resync, Reason::Resync]);
    source.update(container("b", ContainerState::Paused));
    until("b's retry", || log.of("b").len() == 3).await;
    assert_eq!(
        reasons(&log.of("b")),
        [Reason::Resync, Reason::Changed, Reason::Retry]
    );
    until("a's requeue", || log.of("a").len() == 2).await;
    assert_eq!(log.of("a")[1].reason, Reason::Requeue);
    handle.reconcile("a");
    until("the trigger", || log.of("a").len() == 3).await;
    assert_eq!(log.of("a")[2].reason, Reason::Trigger);
    source.remove("b");
    until("b's delete", || log.of("b").len() == 4).await;
    assert_eq!(log.of("b")[3].reason, Reason::Deleted);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_terminal_error_is_not_retried_until_the_container_changes() {
    let (source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, |req| {
        if req
            .container()
            .is_some_and(|c| c.state() == ContainerState::Running)
        {
            Err(ReconcileError::terminal(
                "a running container is not wanted",
            ))
        } else {
            Ok(Action::Done)
        }
    });
    until("the first reconcile", || log.calls().len() == 1).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(log.calls().len(), 1, "not retried");
    source.update(container("a", ContainerState::Exited));
    until("the change", || log.calls().len() == 2).await;
    let second = &log.calls()[1];
    assert_eq!((second.attempt, second.reason), (1, Reason::Changed));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn an_error_that_says_when_is_retried_then_whatever_the_backoff() {
    let (_source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config().backoff(MS, MS)).expect("a controller");
    let log = Log::new();
    let task = spawn(controller, &log, instant, |req| {
        if req.attempt() < 3 {
            Err(ReconcileError::retry_after("busy", Duration::from_secs(7)))
        } else {
            Ok(Action::Done)
        }
    });
    until("the third try", || log.calls().len() == 3).await;
    let calls = log.calls();
    let at: Vec<u64> = calls.iter().map(|c| c.at.as_secs()).collect();
    assert_eq!(at, [0, 7, 14]);
    assert_eq!(
        calls.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(reasons(&calls[1..]), [Reason::Retry, Reason::Retry]);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn the_context_is_shared_by_every_reconcile() {
    let (_source, informer) = informer_with(&["a", "b", "c"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let context = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(controller.run(
        |_: Request, seen: Arc<AtomicUsize>| async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ReconcileError>(Action::Done)
        },
        Arc::clone(&context),
    ));
    until("three reconciles", || context.load(Ordering::SeqCst) == 3).await;
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_paused_controller_queues_but_starts_nothing_until_resumed() {
    let (source, informer) = informer_with(&["a"]).await;
    let controller = Controller::new(&informer, config()).expect("a controller");
    let handle = controller.handle();
    handle.pause();
    assert!(handle.is_paused());
    let log = Log::new();
    let task = spawn(controller, &log, instant, done);
    source.add(container("b", ContainerState::Running));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(log.calls().is_empty());
    assert_eq!(handle.depth(), 2, "a and b wait");
    handle.resume();
    until("both", || log.calls().len() == 2).await;
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_relation_maps_another_informer_s_changes_to_keys() {
    let (_source, informer) = informer_with(&["app1", "app2"]).await;
    // The sidecars name the app they belong to in a label.
    let sidecars = FakeSource::new();
    let other = Informer::builder(sidecars.clone())
        .build()
        .expect("an informer");
    other.wait_synced(SYNC).await.expect("synced");
    let controller = Controller::new(&informer, config())
        .expect("a controller")
        .watches(&other, |c: &Container| c.label("for").map(str::to_owned));
    let log = Log::new();
    let task = spawn(controller, &log, instant, done);
    until("the first list", || log.calls().len() == 2).await;
    sidecars.add(labelled("s1", ContainerState::Running, &[("for", "app2")]));
    until("app2 again", || log.of("app2").len() == 2).await;
    assert_eq!(log.of("app2")[1].reason, Reason::Trigger);
    // A sidecar for an app this informer does not hold: ignored.
    sidecars.add(labelled("s2", ContainerState::Running, &[("for", "zzz")]));
    sidecars.remove("s1");
    until("app2 on the delete", || log.of("app2").len() == 3).await;
    settle().await;
    assert_eq!(log.of("app1").len(), 1);
    assert!(log.of("zzz").is_empty());
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_controller_on_a_stopped_informer_is_refused() {
    let (_source, informer) = informer_with(&["a"]).await;
    informer.shutdown().await;
    assert_eq!(
        Controller::new(&informer, config()).err(),
        Some(Error::InformerStopped)
    );
}

#[test]
fn a_controller_outside_a_runtime_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_source, informer) = runtime.block_on(informer_with(&["a"]));
    assert_eq!(
        Controller::new(&informer, config()).err(),
        Some(Error::NoRuntime)
    );
    runtime.block_on(informer.shutdown());
}
