//! The informer behind a TCP proxy that stalls its connections: bytes stop both ways
//! while the sockets stay open, and a stalled connection never resumes. After the
//! network heals, the cache must converge within the idle timeout, a backoff and one
//! list: no list may be sent on a pooled connection from before the failure.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{cache_matches, fast_backoff, router};
use hypersh::reflector::Phase;
use hypersh::watch::{ClientConfig, TlsMode};
use hypersh::{Client, Informer};
use hypersh_apirouter::RouterConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy on 127.0.0.1 whose connections can be stalled.
struct StallingProxy {
    addr: std::net::SocketAddr,
    stalled: Arc<AtomicBool>,
    /// The stall flag of every connection so far.
    connections: Arc<std::sync::Mutex<Vec<Arc<AtomicBool>>>>,
}

impl StallingProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let stalled = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let global = stalled.clone();
        let all = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                // A connection stalled once stays stalled; one opened during a stall
                // starts stalled.
                let mine = Arc::new(AtomicBool::new(global.load(Ordering::SeqCst)));
                all.lock().expect("not poisoned").push(mine.clone());
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, mine.clone()));
                tokio::spawn(pipe(sr, cw, mine));
            }
        });
        Self {
            addr,
            stalled,
            connections,
        }
    }

    /// Stalls every open connection (idle ones too) and every new one until `heal`.
    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().expect("not poisoned").iter() {
            connection.store(true, Ordering::SeqCst);
        }
    }

    fn heal(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Connections opened through the proxy so far.
    fn opened(&self) -> usize {
        self.connections.lock().expect("not poisoned").len()
    }
}

/// Copies `from` to `to` until the proxy stalls this connection; then holds both
/// sockets open, forwarding nothing, for ever.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mine: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buf).await;
        // Stalled: nothing passes, not even the other side's close.
        if mine.load(Ordering::SeqCst) {
            let _hold = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_stall_heals_the_cache_converges_without_reusing_a_stalled_connection() {
    let router = router(RouterConfig::default().containers(40).churn(30.0)).await;
    let upstream = router.base_url().trim_start_matches("https://").to_owned();
    let proxy = StallingProxy::start(upstream).await;
    let ca = router.ca_pem().expect("a CA").as_bytes().to_vec();
    // The list's own timeouts are long: only a fresh connection lets it finish in time.
    let config = ClientConfig::new(
        &format!("https://{}", proxy.addr),
        router.credentials()[0].clone(),
    )
    .expect("config")
    .tls(TlsMode::CustomCa(ca))
    .with_ping_interval(Duration::from_millis(200))
    .with_idle_timeout(Duration::from_secs(1))
    .connect_timeout(Duration::from_secs(1))
    .request_timeout(Duration::from_secs(60))
    .list_progress_timeout(Duration::from_secs(60));
    let informer = Informer::builder(Client::new(config).expect("client"))
        .backoff(fast_backoff())
        .build()
        .expect("informer");
    informer
        .wait_synced(common::PATIENCE)
        .await
        .expect("synced through the proxy");
    // The pool holds a connection from before the failure: the list's, which went back
    // to the pool when its body ended, beside the watch's own connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(informer.status().connected && proxy.opened() >= 2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the list and the watch went through the proxy: {} connections, {:?}",
            proxy.opened(),
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.stall();
    let stalled_at = proxy.opened();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while informer.status().failures == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stall is noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!informer.status().connected);
    // The stall lasts until an attempt has begun during it (its connection opened
    // stalled), so the healed network meets a stalled attempt and a stalled pool.
    while proxy.opened() == stalled_at {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt during the stall: {:?}",
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.heal();

    // Idle timeout (1 s) + backoff (at most 0.3 s) + a connect timeout (1 s) for an
    // attempt that began during the stall + one list: well under 10 s.
    let healed = tokio::time::Instant::now();
    let mut last = String::new();
    while tokio::time::Instant::now() < healed + Duration::from_secs(10) {
        let status = informer.status();
        if status.phase == Phase::Watching && status.connected {
            match cache_matches(&informer, &router) {
                Ok(()) => {
                    informer.shutdown().await;
                    router.shutdown().await;
                    return;
                }
                Err(e) => last = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no convergence 10 s after the network healed: {:?} {last}",
        informer.status()
    );
}
