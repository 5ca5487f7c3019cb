//! The bounded readiness wait on a `FakeSource`, with paused time.

use std::time::Duration;

use hypersh_reflector::testing::FakeError;
use hypersh_reflector::testing::FakeSource;
use hypersh_reflector::{BackoffConfig, Informer, Phase, SyncWait};

fn informer(source: &FakeSource) -> Informer {
    Informer::builder(source.clone())
        .backoff(
            BackoffConfig::default()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(1)),
        )
        .build()
        .expect("informer builds")
}

#[tokio::test(start_paused = true)]
async fn a_bounded_wait_returns_ok_once_synced() {
    let source = FakeSource::new();
    let informer = informer(&source);
    assert_eq!(informer.wait_synced(Duration::from_secs(5)).await, Ok(()));
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_source_gives_up_at_the_deadline_with_the_cause() {
    let source = FakeSource::new();
    for _ in 0..100 {
        source.fail_next_watch(FakeError::Failure("connection refused".into()));
    }
    let informer = informer(&source);
    let started = tokio::time::Instant::now();
    let err = informer
        .wait_synced(Duration::from_secs(5))
        .await
        .expect_err("never syncs");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(err.phase, Phase::Backoff);
    assert!(!err.auth_failing);
    assert!(err.attempts >= 4, "{err:?}");
    assert_eq!(
        err.last_error.as_deref(),
        Some("fake source failure: connection refused")
    );
    let text = err.to_string();
    assert!(
        text.contains("connection refused") && text.contains("reachable"),
        "{text}"
    );
    informer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_key_fails_at_once_when_asked_to() {
    let source = FakeSource::new();
    for _ in 0..100 {
        source.fail_next_watch(FakeError::Auth("403 Forbidden".into()));
    }
    let informer = informer(&source);
    let started = tokio::time::Instant::now();
    let err = informer
        .wait_synced(SyncWait::new(Duration::from_secs(60)).fail_on_auth(true))
        .await
        .expect_err("the key is refused");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(err.auth_failing);
    assert_eq!(err.attempts, 1);
    assert!(err.to_string().contains("check the access key"), "{err}");
    // Without the option, the wait goes on to its deadline.
    let err = informer
        .wait_synced(Duration::from_secs(3))
        .await
        .expect_err("still refused");
    assert!(err.auth_failing && err.waited == Duration::from_secs(3));
    informer.shutdown().await;
}
