//! Replay refusal: every signature is accepted once within the 5-minute window. A captured
//! upgrade sent again is refused `403` (replay) before it takes a watch slot or reads an
//! event, while the owner's fresh requests are served; a flood of distinct signed
//! requests keeps the cache at its cap, and no accepted signature is ever accepted again.

mod common;

use std::time::SystemTime;

use common::{Client, WAIT, handshake_status, next_event};
use hypersh_apirouter::{Router, RouterConfig, ServerTls};
use hypersh_watch::event::WatchEvent;

/// The `message` of a JSON error answer.
fn message(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    value["message"].as_str().expect("a message").to_owned()
}

#[tokio::test]
async fn a_replayed_upgrade_is_refused_takes_no_slot_and_reads_nothing() {
    let router = Router::start(RouterConfig::default().max_watches_per_key(3))
        .await
        .unwrap();
    let client = Client::new(&router);
    let url = format!("{}/events/ws", client.ws_base);
    let captured = client.signed_headers(&url, SystemTime::now());

    // The owner's upgrade, then the same signed headers from elsewhere, again and again.
    let mut owner = client
        .ws_with("/events/ws", captured.clone())
        .await
        .unwrap();
    for _ in 0..10 {
        let (status, body) = handshake_status(client.ws_with("/events/ws", captured.clone()).await);
        assert_eq!(status, 403, "{body}");
        assert!(message(&body).contains("replay"), "{body}");
    }
    assert_eq!(router.active_watches(), 1, "the replays took no slot");

    // The owner's fresh upgrades are served up to the limit, and read the events.
    let mut fresh = client.watch("").await;
    let _third = client.watch("").await;
    assert_eq!(router.active_watches(), 3);
    let id = router
        .runtime()
        .create("after", "nginx:1.25", Default::default());
    for ws in [&mut owner, &mut fresh] {
        let event = next_event(ws).await;
        assert!(matches!(&event, WatchEvent::Added(_)), "{event:?}");
        assert_eq!(event.id(), id);
    }

    // Once the owner's watch is gone, its signature is still spent.
    drop(owner);
    tokio::time::timeout(WAIT, router.wait_for_active_watches(2))
        .await
        .expect("the owner's first watch closes");
    let (status, body) = handshake_status(client.ws_with("/events/ws", captured).await);
    assert_eq!(status, 403, "{body}");
    assert_eq!(router.active_watches(), 2);
    router.shutdown().await;
}

#[tokio::test]
async fn a_replayed_list_is_refused_and_a_fresh_one_served() {
    let router = Router::start(RouterConfig::default().containers(2))
        .await
        .unwrap();
    let client = Client::new(&router);
    let url = format!("{}/containers/json?all=1", client.base);
    let captured = client.signed_headers(&url, SystemTime::now());
    let first = client
        .get_with("/containers/json?all=1", captured.clone())
        .await;
    assert_eq!(first.status(), 200);
    let again = client.get_with("/containers/json?all=1", captured).await;
    assert_eq!(again.status(), 403);
    assert!(message(&again.text().await.unwrap()).contains("replay"));
    // The same query signed anew, in the same second: another signature, served.
    assert_eq!(client.list("all=1").await.len(), 2);
    router.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_distinct_signed_requests_keeps_the_cache_at_its_cap() {
    const CAP: usize = 200;
    let router = Router::start(
        RouterConfig::default()
            .tls(ServerTls::Off)
            .max_seen_signatures(CAP),
    )
    .await
    .unwrap();
    let client = Client::new(&router);
    let path = "/containers/json?all=1";
    let url = format!("{}{path}", client.base);
    let mut accepted = Vec::new();
    let mut busy = 0;
    for _ in 0..1_000 {
        let headers = client.signed_headers(&url, SystemTime::now());
        let status = client.get_with(path, headers.clone()).await.status();
        match status.as_u16() {
            200 => accepted.push(headers),
            // Signed in a second whose `CAP` signatures are all held: it cannot displace
            // any of them, and would be under the floor at once.
            503 => busy += 1,
            other => panic!("a distinct signed request got {other}"),
        }
        assert!(router.seen_signatures() <= CAP);
    }
    assert!(accepted.len() >= CAP, "at least the first {CAP} are served");
    assert_eq!(accepted.len() + busy, 1_000);
    assert_eq!(router.seen_signatures(), CAP);

    // None of the accepted ones is ever accepted again: held ones are replays (403),
    // dropped ones are under the floor (503).
    for headers in accepted {
        let response = client.get_with(path, headers).await;
        let status = response.status().as_u16();
        assert!(status == 403 || status == 503, "a replay got {status}");
    }
    assert_eq!(router.seen_signatures(), CAP);

    // A fresh request is served at the latest in the next second.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let response = client.get(path).await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        assert!(
            tokio::time::Instant::now() < deadline,
            "fresh requests starved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    router.shutdown().await;
}
