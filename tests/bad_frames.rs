//! Bad frames on a live websocket: each is a typed error item, and the next good event
//! still arrives, both from the router's fault injection and from a raw websocket server
//! written here that sends what the router never would (a frame over the client's cap,
//! invalid UTF-8 in a text frame, fragments).
//!
//! What the client does, as observed:
//! - binary frame: [`Error::BinaryFrame`], the stream goes on;
//! - text that is not an event (not JSON, no id, another type): [`Error::Decode`], the
//!   stream goes on;
//! - a frame, or a fragmented message, over `max_frame_size`: tungstenite refuses it with
//!   `Error::Capacity`, the client yields [`Error::WebSocket`] and the stream ends (the
//!   reflector reconnects and relists);
//! - a text frame that is not UTF-8: tungstenite refuses it (`Error::Utf8`), the client
//!   yields [`Error::WebSocket`] and the stream ends.

mod common;

use std::collections::BTreeMap;

use common::raw::RawServer;
use common::{PATIENCE, eventually, informer, informer_on, router};
use futures_util::StreamExt;
use hypersh::watch::event::DecodeError;
use hypersh::watch::{ContainerState, Error, EventStream, Filters, WatchEvent};
use hypersh_apirouter::RouterConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};

/// The frame cap the raw-server clients use.
const CAP: usize = 4 * 1024;

/// A Docker-style event frame for container `id`.
fn docker_event(id: &str, action: &str) -> String {
    format!(
        r#"{{"status":"{action}","id":"{id}","from":"busybox","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"image":"busybox","name":"{id}"}}}},"time":1476375774,"timeNano":1476375774255155116}}"#
    )
}

/// A raw text frame with any payload (even invalid UTF-8).
fn raw_text(payload: &[u8]) -> Message {
    Message::Frame(Frame::message(
        payload.to_vec(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// The next item, failing the test after [`PATIENCE`].
async fn next(stream: &mut EventStream) -> Option<Result<WatchEvent, Error>> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an item within the patience")
}

async fn next_error(stream: &mut EventStream) -> Error {
    match next(stream).await {
        Some(Err(e)) => e,
        other => panic!("expected an error item, got {other:?}"),
    }
}

fn decode_source(e: &Error) -> &DecodeError {
    match e {
        Error::Decode { source, .. } => source,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_bad_frame_is_a_typed_error_and_the_stream_goes_on() {
    let frames = vec![
        Message::Binary(b"\x00\x01 binary".to_vec().into()),
        Message::Text("this is not JSON {".into()),
        Message::Text("".into()),
        Message::Text("[1,2,3]".into()),
        Message::Text(r#"{"Action":"start","Type":"container"}"#.into()),
        Message::Text(r#"{"Type":"image","Action":"pull","id":"busybox"}"#.into()),
        Message::Text(r#"{"id":"no-action"}"#.into()),
        Message::Ping(b"ping".to_vec().into()),
        Message::Text(docker_event("good", "start").into()),
    ];
    let server = RawServer::start(CAP, frames, "[]").await;
    let mut events = server.client().watch(&Filters::new()).await.unwrap();

    let e = next_error(&mut events).await;
    assert!(matches!(e, Error::BinaryFrame(9)), "{e:?}");
    assert!(e.is_frame_error());
    assert_eq!(e.to_string(), "unexpected binary frame of 9 bytes");

    let e = next_error(&mut events).await;
    assert!(matches!(decode_source(&e), DecodeError::Json(_)), "{e:?}");
    assert!(e.is_frame_error());
    assert!(
        e.to_string().ends_with(": this is not JSON {"),
        "the frame is quoted: {e}"
    );
    for expected in [
        "json",
        "array",
        "missing id",
        "not container",
        "missing action",
    ] {
        let e = next_error(&mut events).await;
        assert!(e.is_frame_error(), "{e:?}");
        let ok = match (expected, decode_source(&e)) {
            ("json", DecodeError::Json(_))
            | ("array", DecodeError::NotObject)
            | ("missing id", DecodeError::MissingId) => true,
            ("not container", DecodeError::NotContainer(t)) => t == "image",
            ("missing action", DecodeError::MissingAction) => true,
            _ => false,
        };
        assert!(ok, "expected {expected}, got {e:?}");
    }
    // The ping is answered, not yielded; the good event follows.
    let good = next(&mut events).await.unwrap().unwrap();
    assert_eq!(good.id(), "good");
    assert_eq!(good.event().action(), "start");
    events.close().await;
}

/// `EventStream::close` documents that later polls return `None`. Today the inner
/// `futures_util::stream::unfold` is polled again after it ended and panics ("Unfold must
/// not be polled after it returned `Poll::Ready(None)`"): reported to the lead; the fix
/// belongs in `crates/watch/src/stream.rs` (fuse the inner stream or check a done flag).
#[tokio::test]
async fn polling_after_close_returns_none() {
    let frames = vec![Message::Text(docker_event("only", "start").into())];
    let server = RawServer::start(CAP, frames, "[]").await;
    let mut events = server.client().watch(&Filters::new()).await.unwrap();
    assert_eq!(next(&mut events).await.unwrap().unwrap().id(), "only");
    events.close().await;
    assert!(next(&mut events).await.is_none(), "closed streams end");
    assert!(next(&mut events).await.is_none(), "and stay ended");
}

#[tokio::test]
async fn a_frame_over_the_cap_is_a_websocket_error_that_ends_the_stream() {
    let big = docker_event(&"x".repeat(CAP), "start");
    assert!(big.len() > CAP);
    let frames = vec![
        Message::Text(docker_event("before", "start").into()),
        Message::Text(big.into()),
        Message::Text(docker_event("after", "start").into()),
    ];
    let server = RawServer::start(CAP, frames, "[]").await;
    let mut events = server.client().watch(&Filters::new()).await.unwrap();

    assert_eq!(next(&mut events).await.unwrap().unwrap().id(), "before");
    let e = next_error(&mut events).await;
    let Error::WebSocket(inner) = &e else {
        panic!("expected a websocket error, got {e:?}")
    };
    assert!(
        matches!(
            **inner,
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { max_size, .. })
                if max_size == CAP
        ),
        "{inner:?}"
    );
    assert!(
        !e.is_frame_error(),
        "the connection is lost, not just a frame"
    );
    assert!(e.to_string().starts_with("websocket: "), "{e}");
    // The stream ends: the event after the big frame is lost with the connection (the
    // reflector relists on reconnect).
    assert!(next(&mut events).await.is_none());
}

#[tokio::test]
async fn a_fragmented_message_over_the_cap_is_refused_too() {
    // Four continuation fragments of 1.5 KiB: each frame is under the cap, the message is
    // not.
    let chunk = vec![b' '; 1536];
    let mut frames = vec![Message::Frame(Frame::message(
        chunk.clone(),
        OpCode::Data(Data::Text),
        false,
    ))];
    for last in [false, false, true] {
        frames.push(Message::Frame(Frame::message(
            chunk.clone(),
            OpCode::Data(Data::Continue),
            last,
        )));
    }
    let server = RawServer::start(CAP, frames, "[]").await;
    let mut events = server.client().watch(&Filters::new()).await.unwrap();
    let e = next_error(&mut events).await;
    assert!(
        matches!(&e, Error::WebSocket(inner) if matches!(**inner, tungstenite::Error::Capacity(_))),
        "{e:?}"
    );
    assert!(next(&mut events).await.is_none());
}

#[tokio::test]
async fn a_fragmented_message_under_the_cap_decodes() {
    let event = docker_event("fragmented", "die");
    let (a, b) = event.as_bytes().split_at(event.len() / 2);
    let frames = vec![
        Message::Frame(Frame::message(a.to_vec(), OpCode::Data(Data::Text), false)),
        Message::Frame(Frame::message(
            b.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )),
    ];
    let server = RawServer::start(CAP, frames, "[]").await;
    let mut events = server.client().watch(&Filters::new()).await.unwrap();
    assert_eq!(next(&mut events).await.unwrap().unwrap().id(), "fragmented");
    events.close().await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_is_a_websocket_error_that_ends_the_stream() {
    let frames = vec![
        raw_text(br#"{"Action":"start","id":"bad-"#),
        raw_text(b"{\"Action\":\"start\",\"id\":\"\xff\"}"),
        Message::Text(docker_event("after", "start").into()),
    ];
    let server = RawServer::start(CAP, frames, "[]").await;
    let mut events = server.client().watch(&Filters::new()).await.unwrap();
    // Truncated JSON is valid UTF-8: a decode error, the stream goes on.
    let e = next_error(&mut events).await;
    assert!(matches!(decode_source(&e), DecodeError::Json(_)));
    // Invalid UTF-8 is refused by tungstenite before the client sees it.
    let e = next_error(&mut events).await;
    assert!(
        matches!(&e, Error::WebSocket(inner) if matches!(**inner, tungstenite::Error::Utf8(_))),
        "{e:?}"
    );
    assert!(next(&mut events).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_informer_counts_decode_errors_and_applies_the_next_good_event() {
    let list =
        r#"[{"Id":"c1","Names":["/c1"],"Image":"busybox","State":"created","Status":"Created"}]"#;
    let frames = vec![
        Message::Binary(b"\x00".to_vec().into()),
        Message::Text("not json".into()),
        Message::Text(r#"{"Action":"start"}"#.into()),
        Message::Text(docker_event("c1", "start").into()),
    ];
    let server = RawServer::start(CAP, frames, list).await;
    let informer = informer_on(server.client());
    informer.wait_synced(PATIENCE).await.expect("ready");
    // The store is filled a moment before the status says connected: wait for both.
    eventually("the start event to be applied", || {
        match informer.store().get("c1") {
            Some(c) if c.state() == ContainerState::Running && informer.status().connected => {
                Ok(())
            }
            other => Err(format!("{other:?} {:?}", informer.status())),
        }
    })
    .await;
    let status = informer.status();
    assert_eq!(status.decode_errors, 3, "{status:?}");
    assert_eq!(
        status.reconnects, 0,
        "bad frames must not cost the connection"
    );
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_garbage_is_counted_exactly_and_the_next_container_arrives() {
    let router = router(RouterConfig::default().containers(5).seed(21)).await;
    let informer = informer(&router);
    informer.wait_synced(PATIENCE).await.expect("ready");
    tokio::time::timeout(PATIENCE, router.wait_for_active_watches(1))
        .await
        .expect("the watch is open");
    // Two rounds of the router's four kinds of garbage (not JSON, an array, no id, binary).
    router.faults().send_malformed(8);
    let rt = router.runtime();
    let id = rt.create("after-garbage", "busybox", BTreeMap::new());
    rt.start(&id).unwrap();
    eventually(
        "the new container to be cached running",
        || match informer.store().get(&id) {
            Some(c) if c.state() == ContainerState::Running => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let status = informer.status();
    assert_eq!(status.decode_errors, 8, "{status:?}");
    assert_eq!(status.reconnects, 0, "{status:?}");
    common::cache_matches(&informer, &router).unwrap();
    informer.shutdown().await;
    router.shutdown().await;
}

#[tokio::test]
async fn router_garbage_has_the_expected_types_in_order() {
    let router = router(RouterConfig::default()).await;
    let mut events = common::client_for(&router)
        .watch(&Filters::new())
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, router.wait_for_active_watches(1))
        .await
        .expect("the watch is open");
    router.faults().send_malformed(4);
    let id = router.runtime().create("good", "busybox", BTreeMap::new());
    assert!(matches!(
        decode_source(&next_error(&mut events).await),
        DecodeError::Json(_)
    ));
    assert!(matches!(
        decode_source(&next_error(&mut events).await),
        DecodeError::NotObject
    ));
    assert!(matches!(
        decode_source(&next_error(&mut events).await),
        DecodeError::MissingId
    ));
    assert!(matches!(
        next_error(&mut events).await,
        Error::BinaryFrame(_)
    ));
    let good = next(&mut events).await.unwrap().unwrap();
    assert_eq!(good.id(), id);
    assert!(matches!(good, WatchEvent::Added(_)));
    events.close().await;
    router.shutdown().await;
}
