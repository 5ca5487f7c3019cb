//! A raw websocket + HTTP server on one port, for what the reference router never does:
//! frames over the cap, invalid UTF-8, fragments, a list call that never answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hypersh::watch::{Client, ClientConfig, Credentials};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// A websocket and HTTP server on one port that plays a script: every websocket
/// connection gets `frames`, then is read until the client goes away; every other request
/// gets `200` with `list` as its body (or, without a list, no answer at all: a list call
/// that hangs).
pub struct RawServer {
    addr: SocketAddr,
    cap: usize,
    task: JoinHandle<()>,
}

impl RawServer {
    /// Serves `frames` to every websocket and `list` (if any) to every other request;
    /// clients from [`RawServer::client`] cap frames at `cap` bytes.
    pub async fn start(cap: usize, frames: Vec<Message>, list: impl Into<Option<&str>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frames = Arc::new(frames);
        let list = Arc::new(list.into().map(str::to_owned));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, Arc::clone(&frames), Arc::clone(&list)));
            }
        });
        Self { addr, cap, task }
    }

    /// A plain-HTTP client for this server with short timeouts.
    pub fn client(&self) -> Client {
        let config = ClientConfig::new(
            &format!("http://{}", self.addr),
            Credentials::new("ak", "sk"),
        )
        .unwrap()
        .max_frame_size(self.cap)
        .with_ping_interval(Duration::from_millis(200))
        .with_idle_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(2));
        Client::new(config).unwrap()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: read the request head, then either upgrade (replaying the head to
/// tungstenite) or answer with the list.
async fn serve(stream: TcpStream, frames: Arc<Vec<Message>>, list: Arc<Option<String>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if reader.read_until(b'\n', &mut head).await.unwrap_or(0) == 0 {
            return;
        }
        if head[before..] == *b"\r\n" {
            break;
        }
    }
    let upgrade = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("upgrade: websocket");
    if !upgrade {
        let Some(list) = list.as_deref() else {
            // Hang: keep the connection open without answering.
            std::future::pending::<()>().await;
            return;
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{list}",
            list.len()
        );
        let _ = write.write_all(response.as_bytes()).await;
        return;
    }
    // The head was consumed: put it back in front of the rest of the stream.
    let replay = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(head), reader);
    let Ok(mut ws) = tokio_tungstenite::accept_async(tokio::io::join(replay, write)).await else {
        return;
    };
    for frame in frames.iter() {
        if ws.send(frame.clone()).await.is_err() {
            return;
        }
    }
    // Keep reading (answering pings) until the client closes or drops the connection.
    while let Some(Ok(_)) = ws.next().await {}
}
