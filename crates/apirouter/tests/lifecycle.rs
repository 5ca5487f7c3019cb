//! Router life cycle: shutdown frees the port and ends connections; restart on the same
//! port with the same or a different state; churn through a router converges.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::{Client, next_event, next_message};
use hypersh_apirouter::{Router, RouterConfig, ServerTls};
use hypersh_watch::container::ContainerState;
use hypersh_watch::event::WatchEvent;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn restart_on_the_same_port_with_the_same_or_new_state() {
    let router = Router::start(RouterConfig::default().containers(5).seed(11))
        .await
        .unwrap();
    let addr = router.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(router.addr_string(), format!("127.0.0.1:{}", addr.port()));
    assert_eq!(
        router.base_url(),
        format!("https://127.0.0.1:{}", addr.port())
    );
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    let before = client.list("all=1").await;
    assert_eq!(before.len(), 5);
    let runtime = router.runtime().clone();
    router.shutdown().await;
    // The open watch ends with the router.
    assert!(!matches!(
        next_message(&mut ws).await,
        Some(Ok(Message::Text(_)))
    ));

    // Same state, same port, right away.
    let router = Router::start(RouterConfig::default().listen(addr).runtime(runtime))
        .await
        .unwrap();
    assert_eq!(router.local_addr(), addr);
    let client = Client::new(&router);
    let ids = |v: &[hypersh_watch::container::Container]| {
        v.iter().map(|c| c.id().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&client.list("all=1").await), ids(&before));
    router.shutdown().await;

    // Different state, same port.
    let router = Router::start(
        RouterConfig::default()
            .listen(addr)
            .containers(2)
            .seed(12)
            .tls(ServerTls::Off),
    )
    .await
    .unwrap();
    assert_eq!(router.base_url(), format!("http://{addr}"));
    let after = Client::new(&router).list("all=1").await;
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|c| !ids(&before).iter().any(|id| id == c.id()))
    );
    router.shutdown().await;
}

#[tokio::test]
async fn dropping_a_router_stops_it() {
    let router = Router::start(RouterConfig::default().tls(ServerTls::Off))
        .await
        .unwrap();
    let addr = router.local_addr();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    drop(router);
    assert!(!matches!(
        next_message(&mut ws).await,
        Some(Ok(Message::Text(_)))
    ));
    // The accept loop ends and frees the port; binding again eventually succeeds.
    let router = tokio::time::timeout(common::WAIT, async {
        loop {
            match Router::start(RouterConfig::default().listen(addr).tls(ServerTls::Off)).await {
                Ok(router) => return router,
                Err(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .unwrap();
    router.shutdown().await;
}

#[tokio::test]
async fn bind_errors_are_reported() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let taken = Router::start(RouterConfig::default().listen(router.local_addr())).await;
    assert!(
        matches!(taken, Err(hypersh_apirouter::Error::Bind { .. })),
        "{taken:?}"
    );
    router.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_containers() {
    let a = Router::start(RouterConfig::default().containers(20).seed(5))
        .await
        .unwrap();
    let b = Router::start(RouterConfig::default().containers(20).seed(5))
        .await
        .unwrap();
    let key = |r: &Router| {
        r.runtime()
            .list(true)
            .into_iter()
            .map(|c| {
                let names: Vec<String> = c.names().map(str::to_owned).collect();
                let labels = c.labels().clone();
                (
                    c.id().to_owned(),
                    names,
                    c.state(),
                    labels,
                    c.image().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
    a.shutdown().await;
    b.shutdown().await;
}

/// A watcher that lists after subscribing and applies every event ends up with exactly the
/// runtime's list once churn stops.
/// Every listed container's name and state, by id.
async fn names_and_states(client: &Client) -> HashMap<String, (String, ContainerState)> {
    client
        .list("all=1")
        .await
        .into_iter()
        .map(|c| {
            let name = c.name().unwrap_or_default().to_owned();
            (c.id().to_string(), (name, c.state()))
        })
        .collect()
}

#[tokio::test]
async fn churned_events_converge_to_the_list() {
    let router = Router::start(RouterConfig::default().containers(15).seed(3))
        .await
        .unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    let mut cache = names_and_states(&client).await;
    let seen_before = router.runtime().event_count();
    router
        .runtime()
        .spawn_churn(2000.0, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let churned = router.runtime().event_count() - seen_before;
    assert!(churned > 50, "{churned} events");
    router
        .runtime()
        .create("sentinel", "busybox", BTreeMap::new());
    loop {
        let event = next_event(&mut ws).await;
        let e = event.event();
        match &event {
            WatchEvent::Added(_) => {
                cache.insert(
                    e.id().to_owned(),
                    (
                        e.name().unwrap_or_default().to_owned(),
                        ContainerState::Created,
                    ),
                );
            }
            WatchEvent::Deleted(_) => {
                cache.remove(e.id());
            }
            WatchEvent::Modified(_) => {
                let entry = cache.get_mut(e.id()).expect("modified a known container");
                if let Some(state) = e.docker_action().and_then(|a| a.implied_state()) {
                    entry.1 = state;
                }
                if let Some(name) = e.name() {
                    name.clone_into(&mut entry.0);
                }
            }
        }
        if e.name() == Some("sentinel") {
            break;
        }
    }
    let truth = names_and_states(&client).await;
    assert_eq!(cache, truth);
    router.shutdown().await;
}
