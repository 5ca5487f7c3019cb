//! Hostile peers, written against the wire rather than through a friendly client (issue
//! 15, items 5-9): header dribblers, idle sockets, more connections than the cap, large
//! and slow bodies, a ping flood that never reads, a watch client that stops reading, and
//! raw JSON in a request target. Timeouts are configured short; every wait has a deadline.

mod common;

use std::time::{Duration, SystemTime};

use common::WAIT;
use hypersh_apirouter::{MAX_REQUEST_BODY, Router, RouterConfig, TlsMode};
use hypersh_watch::sign4;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A connection to the router, TLS or not.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A short limit for the tests.
const SHORT: Duration = Duration::from_millis(600);

async fn router(config: RouterConfig) -> Router {
    Router::start(config).await.unwrap()
}

/// A raw connection to `router`, over TLS when it speaks TLS.
async fn connect(router: &Router) -> Box<dyn Io> {
    let tcp = TcpStream::connect(router.local_addr()).await.unwrap();
    wrap(router, tcp).await
}

async fn wrap(router: &Router, tcp: TcpStream) -> Box<dyn Io> {
    let Some(pem) = router.ca_pem() else {
        return Box::new(tcp);
    };
    let connector = native_tls::TlsConnector::builder()
        .disable_built_in_roots(true)
        .add_root_certificate(native_tls::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let connector = tokio_native_tls::TlsConnector::from(connector);
    Box::new(connector.connect("127.0.0.1", tcp).await.unwrap())
}

/// A signed request head: signed for `signed_target`, sent with `sent_target` (the same
/// request in another spelling), with `extra` header lines.
fn signed_head(
    router: &Router,
    method: &str,
    signed_target: &str,
    sent_target: &str,
    body: &[u8],
    extra: &[&str],
) -> String {
    let uri: http::Uri = format!("{}{signed_target}", router.base_url())
        .parse()
        .unwrap();
    let mut headers = http::HeaderMap::new();
    sign4::sign(
        &http::Method::from_bytes(method.as_bytes()).unwrap(),
        &uri,
        &mut headers,
        body,
        &router.credentials()[0],
        sign4::DEFAULT_REGION,
        SystemTime::now(),
    )
    .unwrap();
    let mut head = format!("{method} {sent_target} HTTP/1.1\r\n");
    for (name, value) in &headers {
        head += &format!("{name}: {}\r\n", value.to_str().unwrap());
    }
    for line in extra {
        head += line;
        head += "\r\n";
    }
    head + "\r\n"
}

/// Reads one response: its status and its body (by `Content-Length`; none for 101).
async fn response(io: &mut (impl AsyncRead + Unpin + ?Sized)) -> (u16, String) {
    tokio::time::timeout(WAIT, async {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                io.read(&mut byte).await.unwrap(),
                1,
                "EOF in a response head"
            );
            head.push(byte[0]);
            assert!(head.len() < 64 * 1024);
        }
        let head = String::from_utf8(head).unwrap();
        let status: u16 = head[9..12].parse().unwrap();
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        io.read_exact(&mut body).await.unwrap();
        (status, String::from_utf8(body).unwrap())
    })
    .await
    .expect("no response within the wait")
}

/// Waits until the router closes `io` (EOF or an error); returns how long that took.
async fn closed(io: &mut (impl AsyncRead + Unpin + ?Sized)) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the router did not close the connection");
    started.elapsed()
}

async fn wait_open(router: &Router, n: usize) {
    tokio::time::timeout(WAIT, router.wait_for_open_connections(n))
        .await
        .unwrap_or_else(|_| panic!("{} connections open, not {n}", router.open_connections()));
}

/// Item 5: a header dribbled a byte at a time is cut after the header-read timeout (plain
/// and TLS), however lively the dribble.
#[tokio::test]
async fn slowloris_headers_are_cut_after_the_header_timeout() {
    for tls in [TlsMode::Off, TlsMode::SelfSigned] {
        let router = router(
            RouterConfig::default()
                .tls(tls)
                .header_read_timeout(SHORT)
                .idle_timeout(WAIT * 2),
        )
        .await;
        // hyper's timer starts when the router begins to wait for the head, after the
        // connection is accepted (and the TLS handshake done): after `started`.
        let started = Instant::now();
        let mut dribblers = Vec::new();
        for _ in 0..5 {
            let conn = connect(&router).await;
            dribblers.push(tokio::spawn(dribble(conn, started)));
        }
        for dribbler in dribblers {
            let cut_after = tokio::time::timeout(WAIT, dribbler)
                .await
                .expect("a dribbling connection was never cut")
                .unwrap();
            assert!(cut_after >= SHORT, "{cut_after:?}");
        }
        wait_open(&router, 0).await;
        router.shutdown().await;
    }
}

/// Sends a request head a byte every 50 ms, reading meanwhile, until the router closes
/// the connection; returns when that was, from `started`.
async fn dribble(mut conn: Box<dyn Io>, started: Instant) -> Duration {
    let head = b"GET /containers/json HTTP/1.1\r\nHost: x\r\nX-Filler: ";
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut buf = [0u8; 1024];
    let mut i = 0;
    loop {
        tokio::select! {
            read = conn.read(&mut buf) => match read {
                Ok(0) | Err(_) => return started.elapsed(),
                // hyper's 408 (or nothing) before it closes.
                Ok(_) => {}
            },
            _ = tick.tick() => {
                let byte = head.get(i).copied().unwrap_or(b'a');
                if conn.write_all(&[byte]).await.is_err() {
                    return started.elapsed();
                }
                i += 1;
            }
        }
    }
}

/// Item 5: a connection that sends nothing, and a keep-alive connection after its
/// answer, are closed after the idle timeout.
#[tokio::test]
async fn idle_connections_are_cut_after_the_idle_timeout() {
    let router = router(
        RouterConfig::default()
            .tls(TlsMode::Off)
            .header_read_timeout(WAIT * 2)
            .idle_timeout(SHORT),
    )
    .await;
    let mut silent = connect(&router).await;
    let waited = closed(&mut silent).await;
    assert!(waited >= SHORT - Duration::from_millis(50), "{waited:?}");

    let mut kept = connect(&router).await;
    let head = signed_head(
        &router,
        "GET",
        "/containers/json",
        "/containers/json",
        b"",
        &[],
    );
    kept.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(response(&mut kept).await.0, 200);
    let waited = closed(&mut kept).await;
    assert!(waited >= SHORT - Duration::from_millis(50), "{waited:?}");
    wait_open(&router, 0).await;
    router.shutdown().await;
}

/// Item 5: past the cap the router stops accepting; a waiting client is served as soon as
/// a connection closes.
#[tokio::test]
async fn the_connection_cap_holds() {
    let router = router(
        RouterConfig::default()
            .tls(TlsMode::Off)
            .max_connections(2)
            .header_read_timeout(WAIT * 3)
            .idle_timeout(WAIT * 3),
    )
    .await;
    let first = connect(&router).await;
    let _second = connect(&router).await;
    wait_open(&router, 2).await;
    // The kernel completes the third handshake; the router does not accept it.
    let mut third = connect(&router).await;
    let head = signed_head(
        &router,
        "GET",
        "/containers/json",
        "/containers/json",
        b"",
        &[],
    );
    third.write_all(head.as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(SHORT, third.read(&mut byte)).await;
    assert!(early.is_err(), "answered past the cap: {early:?}");
    assert_eq!(router.open_connections(), 2);
    drop(first);
    assert_eq!(response(&mut third).await.0, 200);
    assert_eq!(router.open_connections(), 2);
    router.shutdown().await;
}

/// Item 6: a body over the cap is refused with 413 before it is read (by its
/// `Content-Length`, signed or not), a chunked one as soon as it passes the cap; an
/// unsigned request is refused without waiting for its body; a signed body that does not
/// arrive in time is 408.
#[tokio::test]
async fn bodies_are_capped_and_read_only_after_authentication() {
    let router = router(
        RouterConfig::default()
            .tls(TlsMode::Off)
            .header_read_timeout(SHORT)
            .idle_timeout(WAIT * 2),
    )
    .await;
    // 2^62 bytes announced, none sent: the answer does not wait for them.
    let mut conn = connect(&router).await;
    let head = signed_head(
        &router,
        "POST",
        "/containers/json",
        "/containers/json",
        b"",
        &["Content-Length: 4611686018427387904"],
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (status, body) = response(&mut conn).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("8192"), "{body}");
    closed(&mut conn).await;

    // Unsigned, with a small body that never comes: 401 at once.
    let mut conn = connect(&router).await;
    let started = Instant::now();
    conn.write_all(b"POST /containers/json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut conn).await.0, 401);
    assert!(started.elapsed() < SHORT, "{:?}", started.elapsed());
    closed(&mut conn).await;

    // Signed, chunked, longer than the cap: 413 once the cap is passed.
    let big = vec![b'a'; 4 * MAX_REQUEST_BODY];
    let mut conn = connect(&router).await;
    let head = signed_head(
        &router,
        "POST",
        "/containers/json",
        "/containers/json",
        &big,
        &["Transfer-Encoding: chunked"],
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let writer = async {
        for chunk in big.chunks(1024) {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(chunk);
            frame.extend_from_slice(b"\r\n");
            if conn.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(WAIT, writer).await;
    assert_eq!(response(&mut conn).await.0, 413);

    // Signed, a small body announced and sent a byte short: 408 after the read timeout.
    let mut conn = connect(&router).await;
    let body = b"0123456789";
    let head = signed_head(
        &router,
        "POST",
        "/containers/json",
        "/containers/json",
        body,
        &["Content-Length: 10"],
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..9]).await.unwrap();
    let started = Instant::now();
    assert_eq!(response(&mut conn).await.0, 408);
    assert!(started.elapsed() >= SHORT - Duration::from_millis(50));

    // A signed small body that arrives is accepted (the route then refuses the method).
    let mut conn = connect(&router).await;
    let head = signed_head(
        &router,
        "POST",
        "/containers/json",
        "/containers/json",
        body,
        &["Content-Length: 10"],
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    assert_eq!(response(&mut conn).await.0, 405);
    router.shutdown().await;
}
