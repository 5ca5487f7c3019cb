//! Sign4 on every request: 401 without (or with a malformed) Authorization, 403 for a wrong
//! secret, an unknown key, a stale date or another region, with JSON messages; the
//! reject-auth fault.

mod common;

use std::time::{Duration, SystemTime};

use common::{Client, handshake_status};
use hypersh_apirouter::{Router, RouterConfig, ServerTls};
use hypersh_watch::credentials::Credentials;

async fn message(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let (status, text) = message(client.get_unsigned("/containers/json").await).await;
    assert_eq!(status, 401);
    assert!(text.contains("Authorization"), "{text}");

    let url = format!("{}/containers/json", client.base);
    let response = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(&url)
        .header("authorization", "HYPER-HMAC-SHA256 garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    router.shutdown().await;
}

#[tokio::test]
async fn unsigned_upgrade_is_401() {
    let router = Router::start(RouterConfig::default().tls(ServerTls::Off))
        .await
        .unwrap();
    let url = format!("ws://{}/events/ws", router.addr_string());
    let (status, body) = handshake_status(
        tokio_tungstenite::connect_async(url)
            .await
            .map(|(ws, _)| ws),
    );
    assert_eq!(status, 401);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["message"].is_string());
    router.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_or_unknown_key_is_403() {
    let router = Router::start(RouterConfig::default().credential("ak1", "sk1"))
        .await
        .unwrap();
    assert_eq!(
        router.credentials().len(),
        1,
        "a configured credential replaces the default"
    );
    for creds in [
        Credentials::new("ak1", "wrong"),
        Credentials::new("nobody", "sk1"),
        Credentials::new("ak", "sk"),
    ] {
        let client = Client::with(&router, creds);
        let (status, text) = message(client.get("/containers/json").await).await;
        assert_eq!(status, 403);
        assert!(!text.contains("sk1"), "no secret in messages");
        let (status, _) = handshake_status(client.ws("/events/ws").await);
        assert_eq!(status, 403);
    }
    let good = Client::with(&router, Credentials::new("ak1", "sk1"));
    assert!(good.list("").await.is_empty());
    router.shutdown().await;
}

#[tokio::test]
async fn every_configured_credential_is_accepted() {
    let router = Router::start(
        RouterConfig::default()
            .credential("a", "1")
            .credential("b", "2"),
    )
    .await
    .unwrap();
    for (ak, sk) in [("a", "1"), ("b", "2")] {
        let client = Client::with(&router, Credentials::new(ak, sk));
        assert_eq!(client.get("/containers/json").await.status(), 200);
    }
    router.shutdown().await;
}

#[tokio::test]
async fn a_stale_date_is_403_and_says_so() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    let six_minutes = Duration::from_secs(6 * 60);
    for when in [
        SystemTime::now() - six_minutes,
        SystemTime::now() + six_minutes,
    ] {
        let (status, text) = message(client.get_at("/containers/json", when).await).await;
        assert_eq!(status, 403);
        assert!(text.contains("clock"), "{text}");
    }
    let four_minutes = Duration::from_secs(4 * 60);
    assert_eq!(
        client
            .get_at("/containers/json", SystemTime::now() - four_minutes)
            .await
            .status(),
        200
    );
    router.shutdown().await;
}

#[tokio::test]
async fn another_region_is_403() {
    let router = Router::start(RouterConfig::default().with_region("eu-central-1"))
        .await
        .unwrap();
    let mut client = Client::new(&router);
    assert_eq!(
        client.get("/containers/json").await.status(),
        403,
        "signed for us-west-1"
    );
    client.region = "eu-central-1".into();
    assert_eq!(client.get("/containers/json").await.status(), 200);
    router.shutdown().await;
}

#[tokio::test]
async fn reject_auth_fault_refuses_then_accepts() {
    let router = Router::start(RouterConfig::default()).await.unwrap();
    let client = Client::new(&router);
    router.faults().set_reject_auth(true);
    let (status, _) = message(client.get("/containers/json").await).await;
    assert_eq!(status, 403);
    let (status, body) = handshake_status(client.ws("/events/ws").await);
    assert_eq!(status, 403);
    assert!(body.contains("message"));
    router.faults().set_reject_auth(false);
    assert_eq!(client.get("/containers/json").await.status(), 200);
    client.watch("").await;
    router.shutdown().await;
}
