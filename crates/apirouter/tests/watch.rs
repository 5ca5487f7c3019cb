//! `/events/ws`: events arrive in both shapes and decode with the client's decoder, filters
//! narrow them, limits, pings, `--emit`, and lagging clients.

mod common;

use std::collections::BTreeMap;

use common::{Client, filters, handshake_status, next_event, next_message};
use futures_util::SinkExt;
use hypersh_apirouter::{Router, RouterConfig, ServerTls};
use hypersh_watch::container::PodPhase;
use hypersh_watch::event::{DockerAction, Shape, WatchEvent};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn summary(e: &WatchEvent) -> (&'static str, String) {
    (e.kind_str(), e.event().action().to_string())
}

#[tokio::test]
async fn docker_events_arrive_over_wss_and_decode() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    assert_eq!(router.active_watches(), 1);
    let rt = router.runtime();
    let id = rt.create("web", "nginx:1.25", labels(&[("app", "web")]));
    rt.start(&id).unwrap();
    rt.stop(&id).unwrap();
    rt.rename(&id, "web2").unwrap();
    rt.destroy(&id).unwrap();
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(next_event(&mut ws).await);
    }
    let kinds: Vec<_> = got.iter().map(summary).collect();
    let want = [
        ("ADDED", "create"),
        ("MODIFIED", "start"),
        ("MODIFIED", "kill"),
        ("MODIFIED", "die"),
        ("MODIFIED", "stop"),
        ("MODIFIED", "rename"),
        ("DELETED", "destroy"),
    ];
    assert_eq!(kinds, want.map(|(k, a)| (k, a.to_owned())));
    let create = got[0].event();
    assert_eq!(create.shape(), Shape::Docker);
    assert_eq!(create.id(), id);
    assert_eq!(create.image(), Some("nginx:1.25"));
    assert_eq!(create.name(), Some("web"));
    assert_eq!(create.attributes()["app"], "web");
    assert_eq!(got[3].event().exit_code(), Some(0));
    assert_eq!(got[3].event().docker_action(), Some(DockerAction::Die));
    assert_eq!(got[5].event().attributes()["oldName"], "/web");
    assert_eq!(got[5].event().name(), Some("web2"));
    assert!(got.iter().all(|e| e.event().time_nano() > 0));
    router.shutdown().await;
}

#[tokio::test]
async fn k8s_events_arrive_and_a_restart_of_an_exited_container_is_deleted_then_added() {
    let router = Router::start(RouterConfig::default().shape(Shape::Kubernetes))
        .await
        .unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    let rt = router.runtime();
    let id = rt.create("job", "busybox", labels(&[("kind", "batch")]));
    rt.start(&id).unwrap();
    rt.die(&id, 2).unwrap();
    rt.start(&id).unwrap();
    rt.destroy(&id).unwrap();
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(next_event(&mut ws).await);
    }
    let shape: Vec<_> = got
        .iter()
        .map(|e| (e.kind_str(), e.event().phase(), e.event().exit_code()))
        .collect();
    assert_eq!(
        shape,
        [
            ("ADDED", Some(PodPhase::Pending), None),
            ("MODIFIED", Some(PodPhase::Running), None),
            ("MODIFIED", Some(PodPhase::Failed), Some(2)),
            ("DELETED", Some(PodPhase::Failed), Some(2)),
            ("ADDED", Some(PodPhase::Running), None),
            ("MODIFIED", Some(PodPhase::Running), None),
            ("MODIFIED", Some(PodPhase::Failed), Some(137)),
        ],
        "create, start, die, start (DELETED+ADDED), kill"
    );
    let last = next_event(&mut ws).await;
    assert_eq!(last.kind_str(), "DELETED");
    let c = got[0].event().to_container().unwrap();
    assert_eq!(c.id(), id);
    assert_eq!(c.names().collect::<Vec<_>>(), ["/job"]);
    assert_eq!(
        *c.labels(),
        labels(&[("kind", "batch")]).into_iter().collect()
    );
    assert!(got.iter().all(|e| e.event().shape() == Shape::Kubernetes));
    router.shutdown().await;
}

#[tokio::test]
async fn event_filters_narrow_the_stream() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let rt = router.runtime();
    let web = rt.create(
        "web",
        "nginx:1.25",
        labels(&[("app", "web"), ("env", "prod")]),
    );
    let db = rt.create("db", "postgres:16", labels(&[("app", "db")]));

    let mut by_event = client.watch(&filters(r#"{"event":["start"]}"#)).await;
    let mut by_label = client
        .watch(&filters(r#"{"label":{"app=web":true,"env":true}}"#))
        .await;
    let mut by_container = client
        .watch(&filters(&format!(
            r#"{{"container":["db","{}"]}}"#,
            &web[..12]
        )))
        .await;
    let mut by_image = client
        .watch(&filters(r#"{"image":["postgres"],"type":["container"]}"#))
        .await;

    rt.start(&db).unwrap();
    rt.pause(&db).unwrap();
    rt.start(&web).unwrap();
    rt.pause(&web).unwrap();
    let marker = rt.create("marker", "busybox", BTreeMap::new());
    rt.start(&marker).unwrap();

    let ids = |events: &[WatchEvent]| {
        events
            .iter()
            .map(|e| (e.id().to_owned(), e.event().action().to_owned()))
            .collect::<Vec<_>>()
    };
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_event(&mut by_event).await);
    }
    assert_eq!(
        ids(&got),
        [
            (db.clone(), "start".into()),
            (web.clone(), "start".into()),
            (marker.clone(), "start".into())
        ]
    );

    // The label stream sees web's events only; the db and marker ones are skipped, so the
    // first frame after web's pause would be a later web event.
    let got = [
        next_event(&mut by_label).await,
        next_event(&mut by_label).await,
    ];
    assert_eq!(
        ids(&got),
        [(web.clone(), "start".into()), (web.clone(), "pause".into())]
    );
    rt.stop(&web).unwrap();
    assert_eq!(
        next_event(&mut by_label).await.event().action(),
        "kill",
        "nothing else in between"
    );

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_event(&mut by_container).await);
    }
    assert_eq!(
        ids(&got),
        [
            (db.clone(), "start".into()),
            (db.clone(), "pause".into()),
            (web.clone(), "start".into()),
            (web.clone(), "pause".into())
        ]
    );
    let got = [
        next_event(&mut by_image).await,
        next_event(&mut by_image).await,
    ];
    assert_eq!(
        ids(&got),
        [(db.clone(), "start".into()), (db.clone(), "pause".into())]
    );
    rt.unpause(&db).unwrap();
    assert_eq!(
        next_event(&mut by_image).await.event().action(),
        "unpause",
        "marker skipped"
    );
    router.shutdown().await;
}

#[tokio::test]
async fn version_prefix_and_bad_filters_on_the_websocket() {
    let router = Router::start(RouterConfig::default().tls(ServerTls::Off))
        .await
        .unwrap();
    let client = Client::new(&router);
    let mut ws = client
        .ws("/v1.23/events/ws?since=0&whatever=1")
        .await
        .unwrap();
    router.runtime().create("x", "busybox", BTreeMap::new());
    assert_eq!(next_event(&mut ws).await.kind_str(), "ADDED");
    for json in ["{bad", r#"{"status":["running"]}"#] {
        let (status, body) =
            handshake_status(client.ws(&format!("/events/ws?{}", filters(json))).await);
        assert_eq!(status, 400, "{json}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(body["message"].is_string());
    }
    let (status, _) = handshake_status(client.ws("/v1/events/ws").await);
    assert_eq!(status, 404);
    router.shutdown().await;
}

#[tokio::test]
async fn too_many_watches_per_key_is_429_until_one_closes() {
    let router = Router::start(
        RouterConfig::default()
            .max_watches_per_key(2)
            .credential("a", "1")
            .credential("b", "2"),
    )
    .await
    .unwrap();
    let a = Client::with(&router, router.credentials()[0].clone());
    let b = Client::with(&router, router.credentials()[1].clone());
    let first = a.watch("").await;
    let _second = a.watch("").await;
    let (status, body) = handshake_status(a.ws("/events/ws").await);
    assert_eq!(status, 429);
    assert!(body.contains("too many"), "{body}");
    let _other_key = b.watch("").await;
    assert_eq!(router.active_watches(), 3);
    drop(first);
    tokio::time::timeout(common::WAIT, router.wait_for_active_watches(2))
        .await
        .unwrap();
    let _third = a.watch("").await;
    assert_eq!(router.active_watches(), 3);
    router.shutdown().await;
}

#[tokio::test]
async fn pings_are_answered_and_client_close_is_counted() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    ws.send(Message::Ping(b"hello"[..].into())).await.unwrap();
    let pong = tokio::time::timeout(common::WAIT, async {
        loop {
            use futures_util::StreamExt;
            if let Some(Ok(Message::Pong(payload))) = ws.next().await {
                return payload;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&pong[..], b"hello");
    ws.close(None).await.unwrap();
    tokio::time::timeout(common::WAIT, router.wait_for_active_watches(0))
        .await
        .unwrap();
    router.shutdown().await;
}

/// The router reads its watch clients with a small buffer and takes small messages only
/// (they send only control frames); a client message within the limit is read past, and
/// the ping behind it answered. (A larger one ends the watch: `tests/hostile.rs`.)
#[tokio::test]
async fn a_small_client_message_is_read_past() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    ws.send(Message::Text("x".repeat(3 * 1024).into()))
        .await
        .unwrap();
    ws.send(Message::Ping(b"after"[..].into())).await.unwrap();
    let pong = tokio::time::timeout(common::WAIT, async {
        loop {
            use futures_util::StreamExt;
            match ws.next().await {
                Some(Ok(Message::Pong(payload))) => return Some(payload),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong.as_deref(), Some(&b"after"[..]));
    router.shutdown().await;
}

#[tokio::test]
async fn emit_pushes_n_frames_then_closes_normally() {
    for shape in [Shape::Docker, Shape::Kubernetes] {
        let router = Router::start(
            RouterConfig::default()
                .emit(Some(1000))
                .containers(5)
                .shape(shape),
        )
        .await
        .unwrap();
        let client = Client::new(&router);
        for _ in 0..2 {
            let mut ws = client.watch("").await;
            let mut count = 0;
            let close = loop {
                match next_message(&mut ws).await {
                    Some(Ok(Message::Text(text))) => {
                        let event = WatchEvent::decode(text.as_str().to_owned()).unwrap();
                        assert!(
                            router.runtime().get(event.id()).is_some(),
                            "about existing containers"
                        );
                        count += 1;
                    }
                    Some(Ok(Message::Close(frame))) => break frame,
                    other => panic!("unexpected {other:?}"),
                }
            };
            assert_eq!(count, 1000);
            assert_eq!(close.unwrap().code, CloseCode::Normal);
        }
        // Filters apply to the emitted frames too.
        let mut ws = client.watch(&filters(r#"{"event":["die"]}"#)).await;
        for _ in 0..10 {
            assert_eq!(
                next_event(&mut ws).await.event().exit_code(),
                Some(137),
                "only die frames"
            );
        }
        router.shutdown().await;
    }
}

#[tokio::test]
async fn a_paced_emit_is_no_faster_than_its_rate() {
    let router = Router::start(
        RouterConfig::default()
            .emit(Some(300))
            .emit_rate(Some(2_000))
            .containers(5),
    )
    .await
    .unwrap();
    let client = Client::new(&router);
    // Timed from before the watch opens: the pacing starts when it does.
    let started = std::time::Instant::now();
    let mut ws = client.watch("").await;
    let mut count = 0;
    let close = loop {
        match next_message(&mut ws).await {
            Some(Ok(Message::Text(_))) => count += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(count, 300);
    assert_eq!(close.unwrap().code, CloseCode::Normal);
    // 300 frames at 2 000/s: the last is due 150 ms after the first tick.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(145),
        "paced: {:?}",
        started.elapsed()
    );
    router.shutdown().await;
}

#[tokio::test]
async fn a_delayed_emit_waits_before_its_first_frame() {
    let router = Router::start(
        RouterConfig::default()
            .emit(Some(10))
            .emit_delay(std::time::Duration::from_millis(300))
            .containers(5),
    )
    .await
    .unwrap();
    let client = Client::new(&router);
    let started = std::time::Instant::now();
    let mut ws = client.watch("").await;
    assert!(matches!(
        next_message(&mut ws).await,
        Some(Ok(Message::Text(_)))
    ));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "delayed: {:?}",
        started.elapsed()
    );
    router.shutdown().await;
}

#[tokio::test]
async fn a_lagging_client_is_closed_with_a_reason() {
    let router = Router::start(RouterConfig::default().tls(ServerTls::Off))
        .await
        .unwrap();
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    let rt = router.runtime();
    let id = rt.create("n0", "busybox", BTreeMap::new());
    assert_eq!(next_event(&mut ws).await.kind_str(), "ADDED");
    // While stalled the session reads no events; more than its buffer holds go by.
    router.faults().set_stall(true);
    for i in 0..=hypersh_apirouter::runtime::EVENT_BUFFER {
        rt.rename(&id, &format!("n{}", i + 1)).unwrap();
    }
    router.faults().set_stall(false);
    match next_message(&mut ws).await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Policy);
            assert!(frame.reason.contains("relist"), "{}", frame.reason);
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Reading on sends our close reply; the server then ends the session.
    assert!(next_message(&mut ws).await.is_none());
    tokio::time::timeout(common::WAIT, router.wait_for_active_watches(0))
        .await
        .unwrap();
    router.shutdown().await;
}
