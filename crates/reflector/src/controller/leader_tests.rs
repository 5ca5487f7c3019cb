//! The controller gated by a leadership ([`Controller::with_leadership`]), driven by a
//! `FakeElection` with paused time: who may start work, under which term, and when running
//! work is cancelled.

use std::sync::atomic::AtomicBool;

use hypersh_election::{ElectionConfig, FakeElection, FencingToken, Timing};
use hypersh_watch::ContainerState;

use super::*;
use crate::testing::FakeSource;
use crate::testkit::container;

const SEC: Duration = Duration::from_secs(1);

/// One reconcile: its id and the fencing token it was given.
type Calls = Arc<Mutex<Vec<(String, Option<FencingToken>)>>>;

/// Lease 15 s, renew deadline 10 s, retry 2 s (client-go's defaults).
fn election() -> FakeElection {
    let config = ElectionConfig::new("ctl", "replica-a")
        .expect("a valid config")
        .with_timing(Timing::new(15 * SEC, 10 * SEC, 2 * SEC).expect("valid timing"));
    FakeElection::new(config)
}

async fn informer_with(ids: &[&str]) -> (FakeSource, Informer) {
    let source = FakeSource::new();
    for id in ids {
        source.add(container(id, ContainerState::Running));
    }
    let informer = Informer::builder(source.clone())
        .build()
        .expect("informer builds");
    informer
        .wait_synced(Duration::from_secs(60))
        .await
        .expect("synced");
    (source, informer)
}

/// Runs a gated controller whose reconcile records its call, then takes `hold`.
fn spawn(controller: Controller, calls: &Calls, hold: Duration) -> JoinHandle<ShutdownReport> {
    let calls = Arc::clone(calls);
    tokio::spawn(controller.run(
        move |req: Request, _: Arc<()>| {
            calls
                .lock()
                .unwrap()
                .push((req.id().to_owned(), req.fencing_token()));
            async move {
                tokio::time::sleep(hold).await;
                Ok::<_, ReconcileError>(Action::Done)
            }
        },
        Arc::new(()),
    ))
}

fn taken(calls: &Calls) -> Vec<(String, Option<FencingToken>)> {
    calls.lock().unwrap().clone()
}

/// Lets the handler and the controller catch up (paused time: instant).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_starts_nothing_and_a_new_leader_reconciles_everything_with_its_token() {
    let (source, informer) = informer_with(&["a", "b"]).await;
    let election = election();
    let controller = Controller::new(&informer, ControllerConfig::new("test"))
        .expect("a controller")
        .with_leadership(election.leadership());
    let calls = Calls::default();
    let task = spawn(controller, &calls, Duration::ZERO);
    settle().await;
    source.update(container("a", ContainerState::Paused));
    tokio::time::sleep(5 * SEC).await;
    assert!(
        taken(&calls).is_empty(),
        "a standby reconciled: {:?}",
        taken(&calls)
    );

    election.win(FencingToken::new(7));
    settle().await;
    let mut got = taken(&calls);
    got.sort();
    let token = Some(FencingToken::new(7));
    assert_eq!(got, vec![("a".into(), token), ("b".into(), token)]);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn nothing_starts_once_the_lease_cannot_be_proven_even_before_the_elector_says_so() {
    let (source, informer) = informer_with(&["a"]).await;
    let election = election();
    election.win(FencingToken::new(3));
    let controller = Controller::new(&informer, ControllerConfig::new("test"))
        .expect("a controller")
        .with_leadership(election.leadership());
    let calls = Calls::default();
    let task = spawn(controller, &calls, Duration::ZERO);
    settle().await;
    assert_eq!(taken(&calls).len(), 1);

    // Renewed at 4 s: the deadline moves to 14 s. A change at 13 s is reconciled.
    tokio::time::sleep(4 * SEC).await;
    election.renew();
    tokio::time::sleep(9 * SEC).await;
    source.update(container("a", ContainerState::Paused));
    settle().await;
    assert_eq!(taken(&calls).len(), 2, "{:?}", taken(&calls));
    // Past the deadline, without a renewal and without the elector having looked at the
    // clock (no tick): a change is queued, not reconciled.
    tokio::time::sleep(2 * SEC).await;
    source.update(container("a", ContainerState::Exited));
    settle().await;
    assert_eq!(
        taken(&calls).len(),
        2,
        "started past the deadline: {:?}",
        taken(&calls)
    );
    // A new term takes it, with the new token.
    election.win(FencingToken::new(9));
    settle().await;
    let got = taken(&calls);
    assert_eq!(
        got.last(),
        Some(&("a".to_owned(), Some(FencingToken::new(9))))
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_running_reconcile_is_cancelled_by_the_renew_deadline_and_runs_again_in_a_new_term() {
    let (_source, informer) = informer_with(&["a"]).await;
    let election = election();
    election.win(FencingToken::new(3));
    let controller = Controller::new(&informer, ControllerConfig::new("test"))
        .expect("a controller")
        .with_leadership(election.leadership());
    let calls = Calls::default();
    let finished = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&finished);
    let log = Arc::clone(&calls);
    let started = Instant::now();
    let cancelled_at = Arc::new(Mutex::new(None));
    let at = Arc::clone(&cancelled_at);
    let task = tokio::spawn(controller.run(
        move |req: Request, _: Arc<()>| {
            log.lock()
                .unwrap()
                .push((req.id().to_owned(), req.fencing_token()));
            let done = Arc::clone(&done);
            let at = Arc::clone(&at);
            async move {
                // Records when it is dropped unfinished (cancelled).
                struct OnDrop(Arc<Mutex<Option<Instant>>>, Arc<AtomicBool>);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        if !self.1.load(std::sync::atomic::Ordering::SeqCst) {
                            *self.0.lock().unwrap() = Some(Instant::now());
                        }
                    }
                }
                let guard = OnDrop(at, Arc::clone(&done));
                tokio::time::sleep(60 * SEC).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                drop(guard);
                Ok::<_, ReconcileError>(Action::Done)
            }
        },
        Arc::new(()),
    ));
    settle().await;
    assert_eq!(taken(&calls).len(), 1);
    // No renewal: the term ends at its renew deadline (10 s), and so does the reconcile.
    tokio::time::sleep(11 * SEC).await;
    let at = cancelled_at.lock().unwrap().expect("cancelled");
    assert_eq!(
        at.duration_since(started).as_secs(),
        10,
        "cancelled at the deadline"
    );
    assert!(!finished.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        taken(&calls).len(),
        1,
        "not started again while not leading"
    );

    election.win(FencingToken::new(4));
    settle().await;
    assert_eq!(
        taken(&calls).last(),
        Some(&("a".to_owned(), Some(FencingToken::new(4))))
    );
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn without_a_leadership_requests_carry_no_term() {
    let (_source, informer) = informer_with(&["a"]).await;
    let controller =
        Controller::new(&informer, ControllerConfig::new("test")).expect("a controller");
    let calls = Calls::default();
    let task = spawn(controller, &calls, Duration::ZERO);
    settle().await;
    assert_eq!(taken(&calls), vec![("a".to_owned(), None)]);
    task.abort();
}
