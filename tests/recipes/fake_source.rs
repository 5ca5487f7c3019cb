use std::time::Duration;

use hypersh::testing::{FakeError, FakeSource};
use hypersh::watch::ContainerState;
use hypersh::{Container, Informer};

#[tokio::test(start_paused = true)]
async fn my_controller_survives_a_disconnect() -> Result<(), Box<dyn std::error::Error>> {
    let source = FakeSource::new();
    source.add(
        Container::builder("a1")
            .name("web")
            .state(ContainerState::Running)
            .build(),
    );
    let informer = Informer::builder(source.clone()).build()?;
    informer.wait_synced(Duration::from_secs(10)).await?;
    assert!(informer.store().get("a1").is_some());

    source.fail_next_watch(FakeError::Failure("refused".into()));
    source.disconnect();
    source.remove_quietly("a1"); // missed: a tombstone after the relist
    // Wait, with a deadline, for the cache (or your controller) to see the delete; the
    // time is paused, so the backoff before the next attempt passes at once.
    tokio::time::timeout(Duration::from_secs(60), async {
        while informer.store().get("a1").is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;
    assert!(informer.status().relists >= 2, "{:?}", informer.status());
    informer.shutdown().await;
    Ok(())
}
