//! A TLS websocket server that dribbles a frame: it answers the upgrade, sends the header
//! of a 256-byte text frame and then its payload one byte every 100 ms, for ever, reading
//! and dropping what the client sends (so our pings are never answered). Raw bytes keep
//! arriving, but no whole message ever does: the watch must end with `Error::Idle` within
//! the idle timeout, and an informer behind it must reconnect, relist and converge once
//! the attack ends.
//!
//! The hostile server is a TLS front (its own self-signed certificate, made with rcgen)
//! for a plain reference router: list requests are passed through, websocket upgrades are
//! dribbled while the attack is on and passed through after.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{PATIENCE, cache_matches, fast_backoff};
use futures_util::StreamExt;
use hypersh::Informer;
use hypersh::reflector::Phase;
use hypersh::watch::{Client, ClientConfig, Error, Filters, TlsMode};
use hypersh_apirouter::{Router, RouterConfig, ServerTls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The idle timeout of the clients here.
const IDLE: Duration = Duration::from_secs(1);
/// The dribble: one byte this often, ten per idle timeout.
const DRIBBLE_EVERY: Duration = Duration::from_millis(100);

/// The TLS front and its switch.
struct DribblingFront {
    addr: SocketAddr,
    cert_pem: String,
    attack: Arc<AtomicBool>,
    /// Payload bytes dribbled so far, over every connection.
    dribbled: Arc<AtomicUsize>,
    /// Pong frames the router sent on passed-through websockets, over every connection.
    pongs: Arc<AtomicUsize>,
}

impl DribblingFront {
    async fn start(upstream: SocketAddr) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("a certificate");
        let cert_pem = certified.cert.pem();
        let identity = native_tls::Identity::from_pkcs8(
            cert_pem.as_bytes(),
            certified.signing_key.serialize_pem().as_bytes(),
        )
        .expect("an identity");
        let acceptor = tokio_native_tls::TlsAcceptor::from(
            native_tls::TlsAcceptor::new(identity).expect("an acceptor"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let attack = Arc::new(AtomicBool::new(true));
        let dribbled = Arc::new(AtomicUsize::new(0));
        let pongs = Arc::new(AtomicUsize::new(0));
        let (on, count, pong_count) = (attack.clone(), dribbled.clone(), pongs.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, on) = (acceptor.clone(), on.clone());
                let (count, pong_count) = (count.clone(), pong_count.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, upstream, &on, &count, &pong_count).await;
                    }
                });
            }
        });
        Self {
            addr,
            cert_pem,
            attack,
            dribbled,
            pongs,
        }
    }

    fn config(&self, router: &Router) -> ClientConfig {
        ClientConfig::new(
            &format!("https://{}", self.addr),
            router.credentials()[0].clone(),
        )
        .expect("config")
        .tls(TlsMode::CustomCa(self.cert_pem.as_bytes().to_vec()))
        .with_ping_interval(Duration::from_millis(200))
        .with_idle_timeout(IDLE)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(5))
    }
}

/// One connection: the request head, then the dribble or a pass-through (counting the
/// router's pongs on a websocket).
async fn serve<S>(
    mut client: S,
    upstream: SocketAddr,
    attack: &AtomicBool,
    dribbled: &AtomicUsize,
    pongs: &AtomicUsize,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-key:"))
        .map(str::trim);
    if let (Some(key), true) = (key, attack.load(Ordering::SeqCst)) {
        // The key's case matters for the accept value: take it from the original head.
        let start = text.find(key).unwrap_or(0);
        let key = String::from_utf8_lossy(&head[start..start + key.len()]).into_owned();
        let _ = dribble(client, &key, dribbled).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    if key.is_none() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_server, mut to_server) = server.into_split();
    let up = tokio::io::copy(&mut from_client, &mut to_server);
    let down = async {
        let mut frames = ServerFrames::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from_server.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            pongs.fetch_add(frames.pongs_in(&buf[..n]), Ordering::SeqCst);
            to_client.write_all(&buf[..n]).await?;
            to_client.flush().await?;
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Reads the server's side of a websocket as it passes: the upgrade's head, then frames
/// (RFC 6455, section 5.2), counting the pongs.
#[derive(Default)]
struct ServerFrames {
    head_done: bool,
    /// Bytes not yet parsed: part of the head, or of a frame header.
    pending: Vec<u8>,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
}

impl ServerFrames {
    /// Takes the next bytes; returns how many pong frames began in them.
    fn pongs_in(&mut self, bytes: &[u8]) -> usize {
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        if !self.head_done {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return 0;
            };
            at = end + 4;
            self.head_done = true;
        }
        let mut pongs = 0;
        loop {
            let available = (self.pending.len() - at) as u64;
            let skip = self.payload_left.min(available);
            at += skip as usize;
            self.payload_left -= skip;
            if self.payload_left > 0 {
                break;
            }
            let Some((opcode, header, payload)) = frame_header(&self.pending[at..]) else {
                break;
            };
            if opcode == 0xA {
                pongs += 1;
            }
            at += header;
            self.payload_left = payload;
        }
        self.pending.drain(..at);
        pongs
    }
}

/// A frame header at the start of `b`: its opcode, its length and the payload's length;
/// `None` while incomplete.
fn frame_header(b: &[u8]) -> Option<(u8, usize, u64)> {
    let [b0, b1, ..] = *b else {
        return None;
    };
    let mask = if b1 & 0x80 == 0 { 0 } else { 4 };
    let (extended, payload) = match b1 & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(b.get(2..10)?.try_into().ok()?)),
        n => (0, u64::from(n)),
    };
    let header = 2 + extended + mask;
    (b.len() >= header).then_some((b0 & 0x0f, header, payload))
}

/// Accepts the upgrade and dribbles one frame's payload for ever.
async fn dribble<S>(mut client: S, key: &str, dribbled: &AtomicUsize) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let accept = derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    client.write_all(answer.as_bytes()).await?;
    // A text frame, FIN set, 256 bytes of payload announced.
    client.write_all(&[0x81, 126, 0x01, 0x00]).await?;
    client.flush().await?;
    let (mut read, mut write) = tokio::io::split(client);
    // Read and drop what the client sends (its pings): never answered.
    let drain = async move {
        let mut sink = [0u8; 1024];
        while read.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let drip = async move {
        let mut tick = tokio::time::interval(DRIBBLE_EVERY);
        loop {
            tick.tick().await;
            write.write_all(b"x").await?;
            write.flush().await?;
            dribbled.fetch_add(1, Ordering::SeqCst);
        }
        #[allow(unreachable_code)]
        Ok::<_, std::io::Error>(())
    };
    tokio::select! {
        r = drain => r,
        r = drip => r,
    }
}

async fn plain_router() -> Router {
    Router::start(
        RouterConfig::default()
            .tls(ServerTls::Off)
            .containers(30)
            .seed(25),
    )
    .await
    .expect("router starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_frame_ends_the_watch_at_the_idle_timeout() {
    let router = plain_router().await;
    let front = DribblingFront::start(router.local_addr()).await;
    let client = Client::new(front.config(&router)).expect("client");
    let mut events = client
        .watch(&Filters::new())
        .await
        .expect("the front accepts the upgrade");
    let opened = Instant::now();
    let item = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the stream ends by itself");
    let took = opened.elapsed();
    assert!(
        matches!(item, Some(Err(Error::Idle(d))) if d == IDLE),
        "{item:?}"
    );
    // Ten bytes came within the idle timeout, and none of them counted.
    assert!(
        front.dribbled.load(Ordering::SeqCst) >= 5,
        "the front dribbled: {}",
        front.dribbled.load(Ordering::SeqCst)
    );
    // Not pushed back by the bytes (it would never end): one idle timeout, plus what a
    // loaded machine takes to run the timer.
    assert!(took >= IDLE && took < 3 * IDLE, "ended after {took:?}");
    assert!(events.next().await.is_none());
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_informer_behind_a_dribbling_server_relists_and_converges_when_it_stops() {
    let router = plain_router().await;
    let front = DribblingFront::start(router.local_addr()).await;
    let informer = Informer::builder(Client::new(front.config(&router)).expect("client"))
        .backoff(fast_backoff())
        .build()
        .expect("informer");
    // The list passes through: the informer syncs, then each watch is dribbled.
    informer
        .wait_synced(PATIENCE)
        .await
        .expect("synced through the front");
    let attacked = Instant::now();
    loop {
        let status = informer.status();
        if status.failures >= 3 {
            let error = status.last_error.clone().unwrap_or_default();
            assert!(error.contains("(idle_timeout)"), "{error}");
            assert!(status.relists >= 3, "each reconnect relists: {status:#?}");
            break;
        }
        assert!(attacked.elapsed() < PATIENCE, "{status:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three dribbled watches, each ended one idle timeout after it opened, plus short
    // backoffs and lists: seconds, not the minutes the dribble could go on for.
    assert!(
        attacked.elapsed() < 3 * (IDLE + Duration::from_secs(2)),
        "{:?}",
        attacked.elapsed()
    );

    // The attack ends; the cache converges, and the new watch then stays up and carries
    // events (a container created now arrives without a relist).
    front.attack.store(false, Ordering::SeqCst);
    let healed = Instant::now();
    loop {
        let status = informer.status();
        if status.phase == Phase::Watching
            && status.connected
            && cache_matches(&informer, &router).is_ok()
        {
            break;
        }
        assert!(healed.elapsed() < PATIENCE, "not converged: {status:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = informer.status();
    let id = router
        .runtime()
        .create("after-the-attack", "nginx:1.25", Default::default());
    let created = Instant::now();
    while informer.store().get(&id).is_none() {
        assert!(created.elapsed() < PATIENCE, "{:#?}", informer.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Two idle timeouts more: the healthy watch is not taken for dead. Its pongs prove
    // the time passed on it: the client pings every 200 ms, so twelve pings answered
    // since now span more than two idle timeouts.
    let pongs = front.pongs.load(Ordering::SeqCst);
    let waiting = Instant::now();
    while front.pongs.load(Ordering::SeqCst) < pongs + 12 {
        assert!(
            waiting.elapsed() < PATIENCE,
            "{} pongs: {:#?}",
            front.pongs.load(Ordering::SeqCst) - pongs,
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = informer.status();
    assert_eq!(after.failures, before.failures, "{after:#?}");
    assert_eq!(after.relists, before.relists, "{after:#?}");
    informer.shutdown().await;
    router.shutdown().await;
}
