//! Issue 25's replay attack on the reference router, end to end: a proxy in front of the
//! router records the informer's signed upgrade (as a TLS-terminating proxy that logs
//! requests could), and the attacker sends it again on as many connections as the key
//! has watch slots. Every replay is refused `403` with a message that says replay, takes
//! no slot and reads no event; the informer keeps its watch, and the owner's fresh
//! upgrades fill the remaining slots.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::{PATIENCE, eventually, informer_on};
use hypersh::watch::{Client, ClientConfig, Filters};
use hypersh_apirouter::{DEFAULT_MAX_WATCHES_PER_KEY, Router, RouterConfig, ServerTls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A plain TCP proxy that keeps the head of every websocket upgrade it passes on.
struct RecordingProxy {
    addr: SocketAddr,
    upgrades: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RecordingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let kept = upgrades.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let Some(head) = read_head(&mut client).await else {
                        return;
                    };
                    if head.windows(10).any(|w| w == b"/events/ws") {
                        kept.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(head.clone());
                    }
                    if server.write_all(&head).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { addr, upgrades }
    }

    fn first_upgrade(&self) -> Option<Vec<u8>> {
        self.upgrades
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .cloned()
    }
}

/// Bytes up to and including the blank line that ends a request or response head.
async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if io.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// One response: its status and its body (by `Content-Length`).
async fn response(conn: &mut TcpStream) -> (u16, String) {
    let head = tokio::time::timeout(PATIENCE, read_head(conn))
        .await
        .expect("an answer in time")
        .expect("a response head");
    let head = String::from_utf8(head).expect("a text head");
    let status = head[9..12].parse().expect("a status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("a length"))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await.expect("the body");
    (status, String::from_utf8(body).expect("a text body"))
}

fn config(proxy: &RecordingProxy, router: &Router) -> ClientConfig {
    ClientConfig::new(
        &format!("http://{}", proxy.addr),
        router.credentials()[0].clone(),
    )
    .expect("config")
    .with_ping_interval(Duration::from_millis(200))
    .with_idle_timeout(Duration::from_secs(1))
    .connect_timeout(Duration::from_secs(2))
    .request_timeout(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_upgrade_replayed_on_every_slot_is_refused_and_the_owner_is_served() {
    let router = Router::start(
        RouterConfig::default()
            .tls(ServerTls::Off)
            .containers(10)
            .seed(25),
    )
    .await
    .expect("router");
    let proxy = RecordingProxy::start(router.local_addr()).await;
    let informer = informer_on(Client::new(config(&proxy, &router)).expect("client"));
    informer.wait_synced(PATIENCE).await.expect("synced");
    let captured = proxy
        .first_upgrade()
        .expect("the informer's upgrade went through");

    // The attack: the captured upgrade, once per slot of the key, each connection held.
    let mut replays = Vec::new();
    for _ in 0..DEFAULT_MAX_WATCHES_PER_KEY {
        let mut conn = TcpStream::connect(router.local_addr())
            .await
            .expect("connect");
        conn.write_all(&captured).await.expect("send the replay");
        let (status, body) = response(&mut conn).await;
        assert_eq!(status, 403, "{body}");
        let message: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let message = message["message"].as_str().expect("a message");
        assert!(message.contains("replay"), "{message}");
        replays.push(conn);
    }
    assert_eq!(router.active_watches(), 1, "only the informer's watch");

    // Events still reach the informer, and none reaches the replayer.
    let id = router
        .runtime()
        .create("during-the-attack", "nginx:1.25", Default::default());
    eventually("the informer sees the new container", || {
        informer
            .store()
            .get(&id)
            .map(|_| ())
            .ok_or_else(|| format!("{:#?}", informer.status()))
    })
    .await;
    for conn in &mut replays {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), conn.read(&mut buf)).await {
            // Nothing came (the connection waits for another request), or it closed.
            Err(_) | Ok(Ok(0) | Err(_)) => {}
            Ok(Ok(n)) => panic!("the replayer read {n} bytes: {:?}", &buf[..n]),
        }
    }

    // The owner's fresh upgrades are served on every other slot, while the replays stay.
    let owner = Client::new(config(&proxy, &router)).expect("client");
    let mut watches = Vec::new();
    for _ in 1..DEFAULT_MAX_WATCHES_PER_KEY {
        watches.push(
            owner
                .watch(&Filters::new())
                .await
                .expect("a fresh upgrade is served"),
        );
    }
    assert_eq!(router.active_watches(), DEFAULT_MAX_WATCHES_PER_KEY);
    let status = informer.status();
    assert!(status.connected, "{status:#?}");
    assert_eq!(status.failures, 0, "{status:#?}");
    assert_eq!(status.auth_failures, 0, "{status:#?}");

    drop((watches, replays));
    informer.shutdown().await;
    router.shutdown().await;
}
