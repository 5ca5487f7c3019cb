use std::time::Duration;

use hypersh::watch::{ClientConfig, ContainerState, TlsMode};
use hypersh::{Client, Informer};
use hypersh_apirouter::{Router, RouterConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_controller_sees_what_the_router_does() -> Result<(), Box<dyn std::error::Error>> {
    let router = Router::start(RouterConfig::default().containers(50).seed(7)).await?;
    let ca = router.ca_pem().unwrap_or_default().as_bytes().to_vec();
    let config = ClientConfig::new(&router.base_url(), router.credentials()[0].clone())?
        .tls(TlsMode::CustomCa(ca));
    let informer = Informer::builder(Client::new(config)?).build()?;
    informer.wait_synced(Duration::from_secs(30)).await?;
    assert_eq!(informer.store().len(), router.runtime().list(true).len());

    // Drive the truth: create, start, die, restart, pause, rename, destroy...
    let labels = [("app".to_owned(), "web".to_owned())].into();
    let id = router.runtime().create("web-1", "nginx", labels);
    router.runtime().start(&id)?;
    // ...and wait, with a deadline, for the cache (or your controller) to follow.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while informer.store().get(&id).map(|c| c.state()) != Some(ContainerState::Running) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await?;

    // Inject faults:
    router.faults().drop_connections(); // cut every websocket, no close frame
    router.faults().close_connections(); // close them politely (1001)
    router.faults().send_malformed(3); // garbage frames: not JSON, an array, no id, binary
    router.faults().set_stall(true); // half-open: no pongs, requests hang
    router.faults().set_stall(false);
    router.faults().set_reject_auth(true); // every request answered 403
    router.faults().set_reject_auth(false);

    informer.shutdown().await;
    router.shutdown().await;
    Ok(())
}
