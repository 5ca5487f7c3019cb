//! The protocol end to end: the watch client against the reference router over TLS.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::{client_for, config_for, config_with, router};
use futures_util::StreamExt;
use hypersh::watch::event::Shape;
use hypersh::watch::{Client, Credentials, Error, EventStream, Filters, TlsMode, WatchEvent};
use hypersh_apirouter::RouterConfig;

/// The next decoded event, skipping nothing: a frame error is returned as is.
async fn next(stream: &mut EventStream) -> Result<WatchEvent, Error> {
    match tokio::time::timeout(common::PATIENCE, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("stream ended"),
        Err(_) => panic!("no event within {:?}", common::PATIENCE),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn events_arrive_and_list_answers() {
    let router = router(RouterConfig::default()).await;
    let client = client_for(&router);
    let mut events = client.watch(&Filters::new()).await.unwrap();
    let rt = router.runtime();
    let id = rt.create("web-1", "nginx:1.25", labels(&[("app", "web")]));
    rt.start(&id).unwrap();

    let created = next(&mut events).await.unwrap();
    assert!(matches!(created, WatchEvent::Added(_)), "{created:?}");
    assert_eq!(created.id(), id);
    assert_eq!(created.event().shape(), Shape::Docker);
    let started = next(&mut events).await.unwrap();
    assert_eq!(started.event().action(), "start");

    let listed = client.list_containers(&Filters::new()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id(), id);
    assert_eq!(listed[0].names().collect::<Vec<_>>(), ["/web-1"]);
    assert_eq!(listed[0].label("app"), Some("web"));

    // The same with the API version prefix Hyper.sh's SDKs send.
    let versioned = Client::new(config_for(&router).api_version("v1.23")).unwrap();
    assert_eq!(
        versioned.list_containers(&Filters::new()).await.unwrap(),
        listed
    );
    events.close().await;
    router.shutdown().await;
}

#[tokio::test]
async fn kubernetes_shape_decodes_and_restart_is_deleted_then_added() {
    let router = router(RouterConfig::default().shape(Shape::Kubernetes)).await;
    let rt = router.runtime();
    let id = rt.create("job", "busybox", BTreeMap::new());
    rt.start(&id).unwrap();
    rt.stop(&id).unwrap();
    let mut events = client_for(&router).watch(&Filters::new()).await.unwrap();
    rt.start(&id).unwrap();
    let first = next(&mut events).await.unwrap();
    let second = next(&mut events).await.unwrap();
    assert_eq!((first.kind_str(), second.kind_str()), ("DELETED", "ADDED"));
    assert_eq!(second.event().shape(), Shape::Kubernetes);
    assert_eq!(second.event().name(), Some("job"));
    router.shutdown().await;
}

/// Each event filter key narrows the stream as spec section 4 says: the first event
/// through is the one the filter selects.
#[tokio::test]
async fn each_filter_key_narrows_the_stream() {
    let router = router(RouterConfig::default()).await;
    let rt = router.runtime();
    let client = client_for(&router);
    let a = rt.create(
        "alpha",
        "nginx:1.25",
        labels(&[("app", "web"), ("tier", "front")]),
    );
    let b = rt.create("beta", "redis:7", labels(&[("app", "db"), ("empty", "")]));
    rt.start(&a).unwrap();
    rt.start(&b).unwrap();

    let cases: Vec<(Filters, &str, &str)> = vec![
        (Filters::new().container("beta"), "pause", "beta by name"),
        (
            Filters::new().container(&b[..12]),
            "pause",
            "beta by id prefix",
        ),
        (
            Filters::new().container(b.as_str()),
            "pause",
            "beta by full id",
        ),
        (Filters::new().image("redis"), "pause", "beta by image name"),
        (
            Filters::new().image("redis:7"),
            "pause",
            "beta by image name:tag",
        ),
        (
            Filters::new().label("app=db"),
            "pause",
            "beta by label value",
        ),
        (
            Filters::new().label("empty="),
            "pause",
            "beta by empty label value",
        ),
        (
            Filters::new().label("app").label("empty"),
            "pause",
            "beta by two labels (ANDed)",
        ),
        (
            Filters::new().event("unpause").container("beta"),
            "unpause",
            "beta by event",
        ),
        (
            Filters::new().kind("container").container("beta"),
            "pause",
            "beta by type",
        ),
    ];
    for (filters, action, what) in cases {
        let mut events = client.watch(&filters).await.unwrap();
        // alpha changes first (must be filtered out), then beta.
        rt.pause(&a).unwrap();
        rt.unpause(&a).unwrap();
        rt.pause(&b).unwrap();
        rt.unpause(&b).unwrap();
        let ev = next(&mut events).await.unwrap();
        assert_eq!(ev.id(), b, "{what}: got an event for the wrong container");
        assert_eq!(ev.event().action(), action, "{what}");
        events.close().await;
    }
    router.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_naming_the_status() {
    let router = router(RouterConfig::default()).await;
    let ak = router.credentials()[0].access_key().to_owned();
    let client = Client::new(config_with(&router, Credentials::new(ak, "wrong-secret"))).unwrap();
    let err = client.watch(&Filters::new()).await.unwrap_err();
    let Error::Auth { status, .. } = &err else {
        panic!("expected Auth, got {err:?}")
    };
    assert!(*status == 401 || *status == 403);
    assert!(
        err.to_string()
            .starts_with("authentication failed (HTTP 40"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-secret"));
    assert!(
        client
            .list_containers(&Filters::new())
            .await
            .unwrap_err()
            .is_auth()
    );
    router.shutdown().await;
}

#[tokio::test]
async fn a_stale_date_is_rejected() {
    let router = router(RouterConfig::default()).await;
    let url = format!("{}/containers/json?all=1", router.base_url());
    let stale = SystemTime::now() - Duration::from_secs(6 * 60);
    let mut headers = http::HeaderMap::new();
    hypersh::watch::sign4::sign(
        &http::Method::GET,
        &url.parse().unwrap(),
        &mut headers,
        b"",
        &router.credentials()[0],
        "us-west-1",
        stale,
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let response = http.get(&url).headers(headers).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    router.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_do_not_end_the_stream() {
    let router = router(RouterConfig::default()).await;
    let rt = router.runtime();
    let mut events = client_for(&router).watch(&Filters::new()).await.unwrap();
    common::eventually("the watch to register", || {
        (router.active_watches() == 1)
            .then_some(())
            .ok_or_else(|| "not yet".into())
    })
    .await;
    router.faults().send_malformed(4);
    let id = rt.create("after-garbage", "busybox", BTreeMap::new());
    let mut frame_errors = 0;
    let good = loop {
        match next(&mut events).await {
            Ok(ev) => break ev,
            Err(e) => {
                assert!(e.is_frame_error(), "only frame errors expected, got {e}");
                frame_errors += 1;
            }
        }
    };
    assert_eq!(good.id(), id);
    assert_eq!(frame_errors, 4);
    router.shutdown().await;
}

#[tokio::test]
async fn self_signed_needs_insecure_or_the_ca() {
    let router = router(RouterConfig::default()).await;
    let creds = router.credentials()[0].clone();

    let verify = Client::new(config_with(&router, creds.clone()).tls(TlsMode::Verify)).unwrap();
    let err = verify.watch(&Filters::new()).await.unwrap_err();
    assert!(
        matches!(err, Error::WebSocket(_)),
        "verify must refuse: {err:?}"
    );
    assert!(verify.list_containers(&Filters::new()).await.is_err());

    let insecure =
        Client::new(config_with(&router, creds.clone()).tls(TlsMode::InsecureSkipVerify)).unwrap();
    insecure.watch(&Filters::new()).await.unwrap().close().await;
    insecure.list_containers(&Filters::new()).await.unwrap();

    // config_with trusts the router's certificate as a custom CA, without insecure mode.
    let custom = Client::new(config_with(&router, creds)).unwrap();
    custom.watch(&Filters::new()).await.unwrap().close().await;
    custom.list_containers(&Filters::new()).await.unwrap();
    router.shutdown().await;
}

#[tokio::test]
async fn bad_filters_and_too_many_watches_are_distinct_errors() {
    let router = router(RouterConfig::default().max_watches_per_key(1)).await;
    let client = client_for(&router);
    let err = client
        .watch(&Filters::new().with("colour", "red"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 400, .. }), "{err:?}");

    let _first = client.watch(&Filters::new()).await.unwrap();
    let err = client.watch(&Filters::new()).await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 429, .. }), "{err:?}");
    router.shutdown().await;
}
