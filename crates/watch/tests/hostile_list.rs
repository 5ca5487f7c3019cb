//! The list call against hostile servers: an endless list, a container that never ends,
//! a response that stalls, a redirect. Each must end the call with an error that says
//! what happened, with memory bounded. Servers are plain HTTP on 127.0.0.1 port 0.

use std::time::Duration;

use hypersh_watch::{Client, ClientConfig, Credentials, Error, Filters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any of these tests may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server answering every connection with `respond`, after reading the request head.
async fn server<F, Fut>(respond: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let respond = std::sync::Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                respond(socket).await;
            });
        }
    });
    format!("http://{addr}")
}

fn client(endpoint: &str, configure: impl FnOnce(ClientConfig) -> ClientConfig) -> Client {
    let config = ClientConfig::new(endpoint, Credentials::new("ak", "sk")).expect("config");
    Client::new(configure(config)).expect("client")
}

/// Writes one chunk of a chunked body.
async fn chunk(socket: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    socket.write_all(data).await?;
    socket.write_all(b"\r\n").await
}

const CHUNKED_200: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn an_endless_list_stops_at_the_container_limit() {
    let endpoint = server(|mut socket| async move {
        let _ = socket.write_all(CHUNKED_200).await;
        let _ = chunk(&mut socket, b"[").await;
        for n in 0u64.. {
            let item = format!(r#"{{"Id":"{n:064x}","Names":["/c{n}"],"State":"running"}},"#);
            if chunk(&mut socket, item.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let client = client(&endpoint, |c| c.max_list_containers(5_000));
    let mut seen = 0;
    let err = tokio::time::timeout(
        PATIENCE,
        client.list_containers_into(&Filters::new(), |_| seen += 1),
    )
    .await
    .expect("the limit ends it")
    .unwrap_err();
    assert!(
        matches!(err, Error::ListTooLarge { limit: 5_000 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_list_containers"), "{err}");
    assert_eq!(seen, 5_000);
}

#[tokio::test]
async fn an_endless_list_of_large_containers_stops_at_the_byte_limit() {
    // Each container is valid and just under 64 KiB: the count limit alone would let
    // this list grow for ever.
    let endpoint = server(|mut socket| async move {
        let _ = socket.write_all(CHUNKED_200).await;
        let _ = chunk(&mut socket, b"[").await;
        let command = "x".repeat(60 * 1024);
        for n in 0u64.. {
            let item = format!(r#"{{"Id":"{n:064x}","Command":"{command}"}},"#);
            if chunk(&mut socket, item.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let client = client(&endpoint, |c| c.max_list_bytes(4 << 20));
    let mut seen = 0;
    let err = tokio::time::timeout(
        PATIENCE,
        client.list_containers_into(&Filters::new(), |_| seen += 1),
    )
    .await
    .expect("the limit ends it")
    .unwrap_err();
    assert!(
        matches!(err, Error::ListBodyTooLarge { limit } if limit == 4 << 20),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_list_bytes"), "{err}");
    assert!((60..=70).contains(&seen), "{seen} containers before 4 MiB");
}

#[tokio::test]
async fn a_container_with_too_many_labels_fails_the_list_naming_the_limit() {
    // One container just under 1 MiB of short labels (some 86 000): decoded, they would
    // keep over 4 MiB.
    let endpoint = server(|mut socket| async move {
        let _ = socket.write_all(CHUNKED_200).await;
        let labels: Vec<String> = (0..86_000).map(|i| format!(r#""{i:x}":"""#)).collect();
        let item = format!(r#"[{{"Id":"a","Labels":{{{}}}}}]"#, labels.join(","));
        let _ = chunk(&mut socket, item.as_bytes()).await;
        let _ = socket.write_all(b"0\r\n\r\n").await;
    })
    .await;
    let client = client(&endpoint, |c| c);
    let err = tokio::time::timeout(PATIENCE, client.list_containers(&Filters::new()))
        .await
        .expect("the limit ends it")
        .unwrap_err();
    assert!(matches!(err, Error::ListDecode(_)), "{err:?}");
    assert!(err.to_string().contains("MAX_LABELS_BYTES"), "{err}");
}

#[tokio::test]
async fn a_container_that_never_ends_stops_at_the_frame_limit() {
    let endpoint = server(|mut socket| async move {
        let _ = socket.write_all(CHUNKED_200).await;
        let _ = chunk(&mut socket, br#"[{"Id":"a","Names":[""#).await;
        let filler = vec![b'x'; 64 * 1024];
        while chunk(&mut socket, &filler).await.is_ok() {}
    })
    .await;
    let client = client(&endpoint, |c| c.max_frame_size(256 * 1024));
    let err = tokio::time::timeout(PATIENCE, client.list_containers(&Filters::new()))
        .await
        .expect("the limit ends it")
        .unwrap_err();
    assert!(matches!(err, Error::ListDecode(_)), "{err:?}");
    assert!(err.to_string().contains("max_frame_size"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_list_that_stops_sending_fails_after_the_progress_timeout() {
    let endpoint = server(|mut socket| async move {
        let _ = socket.write_all(CHUNKED_200).await;
        let _ = chunk(&mut socket, br#"[{"Id":"a"},"#).await;
        // Then nothing, with the connection open.
        std::future::pending::<()>().await;
    })
    .await;
    let client = client(&endpoint, |c| {
        c.list_progress_timeout(Duration::from_secs(3))
    });
    let started = tokio::time::Instant::now();
    let err = client.list_containers(&Filters::new()).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { after, .. } if after == Duration::from_secs(3)),
        "{err:?}"
    );
    assert!(err.to_string().contains("no progress"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not the overall 60 s"
    );
}

#[tokio::test]
async fn a_redirect_is_refused_with_its_status_and_not_followed() {
    let followed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = followed.clone();
    let elsewhere = server(move |mut socket| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]")
                .await;
        }
    })
    .await;
    let target = format!("{elsewhere}/containers/json");
    let endpoint = server(move |mut socket| {
        let head = format!("HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n");
        async move {
            let _ = socket.write_all(head.as_bytes()).await;
        }
    })
    .await;
    let err = client(&endpoint, |c| c)
        .list_containers(&Filters::new())
        .await
        .unwrap_err();
    let Error::Redirect { status, location } = &err else {
        panic!("expected a redirect error, got {err:?}")
    };
    assert_eq!(*status, 302);
    assert!(location.ends_with("/containers/json"), "{location}");
    assert!(err.to_string().contains("HTTP 302"), "{err}");
    assert_eq!(
        followed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the other host was never asked"
    );
}
