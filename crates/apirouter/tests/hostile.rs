//! Hostile peers, written against the wire rather than through a friendly client (issue
//! 15, items 5-9): header dribblers, idle sockets, more connections than the cap, large
//! and slow bodies, a ping flood that never reads, a watch client that stops reading, and
//! raw JSON in a request target. Timeouts are configured short; every wait has a deadline.

mod common;

use std::time::{Duration, SystemTime};

use common::{Client, WAIT, handshake_status};
use futures_util::{SinkExt, StreamExt};
use hypersh_apirouter::{MAX_REQUEST_BODY, Router, RouterConfig, ServerTls};
use hypersh_watch::sign4;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

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
/// request in another spelling), with `extra` header lines and a fresh nonce (the router
/// accepts each signature once).
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
    headers.insert(sign4::NONCE_HEADER, sign4::nonce().unwrap());
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

/// Waits until the router closes `io` (EOF or an error); returns when it did.
async fn closed(io: &mut (impl AsyncRead + Unpin + ?Sized)) -> Instant {
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
    Instant::now()
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
    for tls in [ServerTls::Off, ServerTls::SelfSigned] {
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
            .tls(ServerTls::Off)
            .header_read_timeout(WAIT * 2)
            .idle_timeout(SHORT),
    )
    .await;
    // Each timer starts after `started` (the accept; the answer sent), so a close before
    // `started + SHORT` is early whatever the machine's load.
    let started = Instant::now();
    let mut silent = connect(&router).await;
    let waited = closed(&mut silent).await - started;
    assert!(waited >= SHORT, "{waited:?}");

    let mut kept = connect(&router).await;
    let started = Instant::now();
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
    let waited = closed(&mut kept).await - started;
    assert!(waited >= SHORT, "{waited:?}");
    wait_open(&router, 0).await;
    router.shutdown().await;
}

/// Item 5: past the cap the router stops accepting; a waiting client is served as soon as
/// a connection closes.
#[tokio::test]
async fn the_connection_cap_holds() {
    let router = router(
        RouterConfig::default()
            .tls(ServerTls::Off)
            .max_connections(2)
            .header_read_timeout(WAIT * 3)
            .idle_timeout(WAIT * 3),
    )
    .await;
    let first = connect(&router).await;
    let _second = connect(&router).await;
    // Both slots are taken: the accept loop waits for one before it accepts again.
    wait_open(&router, 2).await;
    // The kernel completes the third handshake (the connection is in the listen backlog
    // when `connect` returns); the router does not accept it. The quiet window only
    // confirms it: a router that accepted past the cap would answer at once.
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
            .tls(ServerTls::Off)
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

    // Unsigned, with a small body that never comes: 401 without waiting for it (a router
    // that read the body first would time out on it and answer 408, as below).
    let mut conn = connect(&router).await;
    conn.write_all(b"POST /containers/json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut conn).await.0, 401);
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
    // The body's timer starts once the router has the head: after `started`.
    let started = Instant::now();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..9]).await.unwrap();
    assert_eq!(response(&mut conn).await.0, 408);
    assert!(started.elapsed() >= SHORT, "{:?}", started.elapsed());

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

/// A raw TCP websocket to `/events/ws`, with a small receive buffer so that a client that
/// does not read is found out quickly.
async fn raw_watch(router: &Router) -> Box<dyn Io> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(router.local_addr()).await.unwrap();
    let mut io = wrap(router, tcp).await;
    let head = signed_head(
        router,
        "GET",
        "/events/ws",
        "/events/ws",
        b"",
        &[
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ],
    );
    io.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(response(&mut io).await.0, 101);
    io
}

/// A masked ping frame with a 125-byte payload.
fn ping_frame() -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    frame.extend((0..125u8).map(|i| b'p' ^ [1, 2, 3, 4][usize::from(i % 4)]));
    frame
}

/// Item 7: a client that floods pings and never reads is closed (its pongs cannot pile up:
/// the write buffer is bounded, and an unflushable pong times out) and its slot freed.
#[tokio::test]
async fn a_ping_flooding_client_that_never_reads_is_closed() {
    for tls in [ServerTls::Off, ServerTls::SelfSigned] {
        let router = router(RouterConfig::default().tls(tls).watch_send_timeout(SHORT)).await;
        let mut io = raw_watch(&router).await;
        let frames = ping_frame().repeat(64);
        let mut sent = 0usize;
        let flood = async {
            // Until the router closes the connection, writes fail or stall for good.
            while tokio::time::timeout(WAIT, io.write_all(&frames))
                .await
                .is_ok_and(|r| r.is_ok())
            {
                sent += frames.len();
                if router.active_watches() == 0 {
                    break;
                }
            }
        };
        tokio::time::timeout(WAIT * 2, flood)
            .await
            .expect("the flood was never stopped");
        tokio::time::timeout(WAIT, router.wait_for_active_watches(0))
            .await
            .expect("the flooding watch still holds its slot");
        wait_open(&router, 0).await;
        // What the router took in before it gave up is what the kernel buffers hold plus a
        // bounded write buffer, not the flood's length.
        assert!(sent < 64 << 20, "{sent} bytes of pings accepted");
        router.shutdown().await;
    }
}

/// Item 7: clients send only control frames; a message over the limit ends the watch.
#[tokio::test]
async fn a_large_client_message_ends_the_watch() {
    let router = router(RouterConfig::default().tls(ServerTls::Off)).await;
    let client = Client::new(&router);
    let mut ws = client.watch("").await;
    let _ = ws.send(Message::Binary(vec![0u8; 64 * 1024].into())).await;
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    });
    end.await.expect("the watch was not ended");
    tokio::time::timeout(WAIT, router.wait_for_active_watches(0))
        .await
        .unwrap();
    router.shutdown().await;
}

/// Item 8: a watch client that stops reading is closed with 1008 once a send times out,
/// and its slot is freed within a few seconds: a new watch for the key then gets 101.
#[tokio::test]
async fn a_non_reading_watch_client_is_closed_with_1008_and_its_slot_freed() {
    for tls in [ServerTls::Off, ServerTls::SelfSigned] {
        let router = router(
            RouterConfig::default()
                .tls(tls)
                .max_watches_per_key(1)
                .watch_send_timeout(SHORT),
        )
        .await;
        let client = Client::new(&router);
        let mut stuck = raw_watch(&router).await;
        assert_eq!(handshake_status(client.ws("/events/ws").await).0, 429);
        // Events until the router gives up on the client (it never reads meanwhile).
        let rt = router.runtime().clone();
        let started = Instant::now();
        let labels = std::collections::BTreeMap::from([("pad".to_owned(), "x".repeat(2000))]);
        let id = rt.create("n", "busybox", labels);
        tokio::time::timeout(WAIT, async {
            let mut i = 0u64;
            while router.active_watches() > 0 {
                for _ in 0..50 {
                    i += 1;
                    rt.rename(&id, &format!("n{i}")).unwrap();
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the non-reading watch was never closed");
        let freed_after = started.elapsed();
        assert!(freed_after < WAIT, "{freed_after:?}");
        // The slot is free: a new watch for the key is accepted.
        let mut fresh = client.watch("").await;
        // The stuck client, reading at last, finds a 1008 close behind the queued events.
        let code = tokio::time::timeout(WAIT, async {
            let mut buf = vec![0u8; 64 * 1024];
            let mut stream = Vec::new();
            loop {
                let n = stuck.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return close_code(&stream);
                }
                stream.extend_from_slice(&buf[..n]);
                if let Some(code) = close_code(&stream) {
                    return Some(code);
                }
            }
        })
        .await
        .expect("no end on the stuck client");
        assert_eq!(code, Some(1008));
        fresh.close(None).await.unwrap();
        router.shutdown().await;
    }
}

/// The code of the first close frame in a stream of unmasked server frames, if complete.
fn close_code(mut stream: &[u8]) -> Option<u16> {
    loop {
        let [b0, b1, rest @ ..] = stream else {
            return None;
        };
        let (len, rest) = match b1 & 0x7f {
            126 => {
                let [a, b, rest @ ..] = rest else { return None };
                (usize::from(u16::from_be_bytes([*a, *b])), rest)
            }
            127 => {
                let (len, rest) = rest.split_at_checked(8)?;
                (
                    usize::try_from(u64::from_be_bytes(len.try_into().ok()?)).ok()?,
                    rest,
                )
            }
            n => (usize::from(n), rest),
        };
        let (payload, rest) = rest.split_at_checked(len)?;
        if b0 & 0x0f == 0x8 {
            let [a, b, ..] = payload else { return None };
            return Some(u16::from_be_bytes([*a, *b]));
        }
        stream = rest;
    }
}

/// Item 9: raw JSON in the request target (as `curl -g` and Go clients send it) is
/// accepted, over plain TCP and TLS, on every request of a keep-alive connection, for the
/// list and for the websocket; the signature made over the encoded form verifies.
#[tokio::test]
async fn raw_json_in_the_query_is_accepted() {
    for tls in [ServerTls::Off, ServerTls::SelfSigned] {
        let router = router(RouterConfig::default().tls(tls)).await;
        let rt = router.runtime();
        let labels = std::collections::BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        let web = rt.create("web", "nginx", labels);
        rt.create("db", "postgres", std::collections::BTreeMap::new());
        let json = r#"{"label":["app=web"]}"#;
        let raw = format!("/containers/json?all=1&filters={json}");
        let encoded = format!("/containers/json?all=1&{}", common::filters(json));
        let mut conn = connect(&router).await;
        for _ in 0..2 {
            let head = signed_head(&router, "GET", &encoded, &raw, b"", &[]);
            conn.write_all(head.as_bytes()).await.unwrap();
            let (status, body) = response(&mut conn).await;
            assert_eq!(status, 200, "{body}");
            let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
            assert_eq!(list.len(), 1, "{body}");
            assert_eq!(list[0]["Id"], web.as_str());
        }
        // `<`, `>` and `"` in a value, raw, on the same connection.
        let json = r#"{"name":["<x>"]}"#;
        let raw = format!("/containers/json?filters={json}");
        let encoded = format!("/containers/json?{}", common::filters(json));
        let head = signed_head(&router, "GET", &encoded, &raw, b"", &[]);
        conn.write_all(head.as_bytes()).await.unwrap();
        assert_eq!(response(&mut conn).await, (200, "[]".to_owned()));

        // The websocket with raw filters.
        let mut ws = connect(&router).await;
        let json = r#"{"event":["start"]}"#;
        let head = signed_head(
            &router,
            "GET",
            &format!("/events/ws?{}", common::filters(json)),
            &format!("/events/ws?filters={json}"),
            b"",
            &[
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
            ],
        );
        ws.write_all(head.as_bytes()).await.unwrap();
        assert_eq!(response(&mut ws).await.0, 101);
        drop(ws);
        router.shutdown().await;
    }
}

/// A close code check of the helper itself.
#[test]
fn close_codes_are_found_behind_other_frames() {
    let mut stream = vec![0x81, 3, b'a', b'b', b'c'];
    assert_eq!(close_code(&stream), None);
    stream.extend_from_slice(&[0x88, 2, 0x03, 0xF0]);
    assert_eq!(close_code(&stream), Some(1008));
    assert_eq!(CloseCode::Policy, CloseCode::from(1008));
}
