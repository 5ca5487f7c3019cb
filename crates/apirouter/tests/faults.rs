//! Fault injection, observed from a client: drop, close, stall (half-open), malformed
//! frames, reject-auth.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Client, next_event, next_message};
use futures_util::{SinkExt, StreamExt};
use hypersh_apirouter::{Router, RouterConfig, Shape};
use hypersh_watch::event::{DecodeError, WatchEvent};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

#[tokio::test]
async fn drop_connections_ends_streams_without_a_close_frame() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let mut a = client.watch("").await;
    let mut b = client.watch("").await;
    assert_eq!(router.active_watches(), 2);
    router.faults().drop_connections();
    for ws in [&mut a, &mut b] {
        match next_message(ws).await {
            None
            | Some(Err(
                tungstenite::Error::Protocol(_)
                | tungstenite::Error::Io(_)
                | tungstenite::Error::ConnectionClosed,
            )) => {}
            other => panic!("expected an abrupt end, got {other:?}"),
        }
    }
    tokio::time::timeout(common::WAIT, router.wait_for_active_watches(0))
        .await
        .unwrap();
    // New connections are not affected.
    let mut c = client.watch("").await;
    router.runtime().create("after", "busybox", BTreeMap::new());
    assert_eq!(next_event(&mut c).await.kind_str(), "ADDED");
    router.shutdown().await;
}

#[tokio::test]
async fn close_connections_sends_a_close_frame() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    router.faults().close_connections();
    match next_message(&mut ws).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(matches!(
        next_message(&mut ws).await,
        None | Some(Err(tungstenite::Error::ConnectionClosed))
    ));
    tokio::time::timeout(common::WAIT, router.wait_for_active_watches(0))
        .await
        .unwrap();
    router.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_then_normal_events() {
    for shape in [Shape::Docker, Shape::Kubernetes] {
        let router = Router::start(RouterConfig::default().shape(shape))
            .await
            .unwrap();
        let client = Client::new(&router);
        let mut ws = client.watch("").await;
        router.faults().send_malformed(4);
        router.runtime().create("ok", "busybox", BTreeMap::new());
        let mut errors = Vec::new();
        let mut binary = 0;
        for _ in 0..4 {
            match next_message(&mut ws).await {
                Some(Ok(Message::Text(text))) => {
                    errors.push(WatchEvent::decode(text.as_str().to_owned()).unwrap_err())
                }
                Some(Ok(Message::Binary(_))) => binary += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(binary, 1);
        assert!(
            matches!(
                errors[..],
                [
                    DecodeError::Json(_),
                    DecodeError::NotObject,
                    DecodeError::MissingId
                ]
            ),
            "{errors:?}"
        );
        assert_eq!(
            next_event(&mut ws).await.kind_str(),
            "ADDED",
            "the stream goes on"
        );
        router.shutdown().await;
    }
}

#[tokio::test]
async fn stall_is_half_open_until_turned_off() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    router.faults().set_stall(true);
    // Let the session see the stall: it is taken into account before the next event.
    router
        .runtime()
        .create("during", "busybox", BTreeMap::new());
    ws.send(Message::Ping(b"p"[..].into())).await.unwrap();

    // A list request hangs while stalled...
    let list = tokio::spawn({
        let client = Client::new(&router);
        async move { client.get("/containers/json?all=1").await.status() }
    });
    // ... and so does a new watch (its upgrade is never answered).
    let pending_watch = tokio::spawn({
        let client = Client::new(&router);
        async move { client.ws("/events/ws").await.is_ok() }
    });
    // The router holds all three: the open websocket, the list and the upgrade.
    tokio::time::timeout(common::WAIT, async {
        while router.faults().stalled() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} held by the stall, not 3", router.faults().stalled()));
    assert!(!list.is_finished() && !pending_watch.is_finished());
    // Nothing arrives on the open one: no event, no pong. The session stopped before
    // either (the stall is seen before the next event), so the window only confirms it.
    let quiet = tokio::time::timeout(Duration::from_millis(100), ws.next()).await;
    assert!(quiet.is_err(), "stalled socket sent {quiet:?}");

    router.faults().set_stall(false);
    assert_eq!(
        tokio::time::timeout(common::WAIT, list)
            .await
            .unwrap()
            .unwrap(),
        200
    );
    assert!(
        tokio::time::timeout(common::WAIT, pending_watch)
            .await
            .unwrap()
            .unwrap()
    );
    // The event and the pong come through once the stall ends.
    let mut saw_event = false;
    let mut saw_pong = false;
    while !(saw_event && saw_pong) {
        match tokio::time::timeout(common::WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(_))) => saw_event = true,
            Some(Ok(Message::Pong(_))) => saw_pong = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    router.shutdown().await;
}

#[tokio::test]
async fn reject_auth_is_observable_on_both_endpoints() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    assert!(!router.faults().rejects_auth());
    router.faults().set_reject_auth(true);
    assert_eq!(client.get("/containers/json").await.status(), 403);
    assert_eq!(
        common::handshake_status(client.ws("/events/ws").await).0,
        403
    );
    router.faults().set_reject_auth(false);
    assert_eq!(client.get("/containers/json").await.status(), 200);
    router.shutdown().await;
}
