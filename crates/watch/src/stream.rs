//! [`EventStream`]: the events of one websocket connection, with keep-alive pings, an
//! idle timeout and a polite close.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::event::WatchEvent;

/// How long a polite close waits for the server's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Inner = Pin<Box<dyn Stream<Item = Result<WatchEvent, Error>> + Send>>;

/// The events of one `/events/ws` connection.
///
/// Items are decoded events, or errors. An error for one frame
/// ([`Error::is_frame_error`]) does not end the stream; any other error is the last item.
/// The stream ends (`None`) when the server closes the connection, on EOF, or after
/// [`EventStream::close`]. There is no resume: after it ends, relist and watch again.
pub struct EventStream {
    inner: Inner,
    close: CancellationToken,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

/// A handle that closes an [`EventStream`] from elsewhere (another task, a Ctrl-C handler).
#[derive(Clone, Debug)]
pub struct CloseHandle(CancellationToken);

impl CloseHandle {
    /// Asks the stream to send a close frame and end. The stream's next poll does it.
    pub fn close(&self) {
        self.0.cancel();
    }
}

struct State {
    ws: Ws,
    ping: tokio::time::Interval,
    idle_timeout: Duration,
    deadline: Instant,
    close: CancellationToken,
    done: bool,
}

impl EventStream {
    pub(crate) fn new(ws: Ws, ping_interval: Duration, idle_timeout: Duration) -> Self {
        let close = CancellationToken::new();
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let state = State {
            ws,
            ping,
            idle_timeout,
            deadline: Instant::now() + idle_timeout,
            close: close.clone(),
            done: false,
        };
        let inner = futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        });
        Self {
            inner: Box::pin(inner),
            close,
        }
    }

    /// A handle to close this stream from elsewhere.
    #[must_use]
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle(self.close.clone())
    }

    /// Sends a close frame, waits briefly for the server's, and ends the stream (later
    /// polls return `None`).
    pub async fn close(&mut self) {
        self.close.cancel();
        while self.inner.next().await.is_some() {}
    }
}

impl Stream for EventStream {
    type Item = Result<WatchEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl State {
    async fn next_item(&mut self) -> Option<Result<WatchEvent, Error>> {
        loop {
            if self.done {
                return None;
            }
            tokio::select! {
                biased;
                () = self.close.cancelled() => {
                    self.done = true;
                    self.close_politely().await;
                    return None;
                }
                msg = self.ws.next() => {
                    let Some(msg) = msg else {
                        self.done = true;
                        return None;
                    };
                    match msg {
                        Err(e) => {
                            self.done = true;
                            return Some(Err(Error::WebSocket(Box::new(e))));
                        }
                        Ok(msg) => {
                            self.deadline = Instant::now() + self.idle_timeout;
                            if let Some(item) = self.on_message(msg) {
                                return Some(item);
                            }
                        }
                    }
                }
                _ = self.ping.tick() => {
                    let send = self.ws.send(Message::Ping(Bytes::new()));
                    match tokio::time::timeout(self.idle_timeout, send).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            self.done = true;
                            return Some(Err(Error::WebSocket(Box::new(e))));
                        }
                        Err(_) => {
                            self.done = true;
                            return Some(Err(Error::Idle(self.idle_timeout)));
                        }
                    }
                }
                () = tokio::time::sleep_until(self.deadline) => {
                    self.done = true;
                    tracing::warn!(timeout = ?self.idle_timeout, "watch connection idle: considered dead");
                    return Some(Err(Error::Idle(self.idle_timeout)));
                }
            }
        }
    }

    /// One frame: an item to yield, or `None` to keep reading.
    fn on_message(&mut self, msg: Message) -> Option<Result<WatchEvent, Error>> {
        match msg {
            Message::Text(text) => {
                let frame = Bytes::from(text);
                Some(WatchEvent::decode(frame.clone()).map_err(|e| Error::decode(e, &frame)))
            }
            Message::Binary(data) => Some(Err(Error::BinaryFrame(data.len()))),
            Message::Close(frame) => {
                tracing::debug!(?frame, "server closed the watch");
                self.done = true;
                None
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    async fn close_politely(&mut self) {
        let graceful = async {
            if self.ws.close(None).await.is_ok() {
                // Read until the server's close frame (or EOF) so the close is clean.
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        };
        if tokio::time::timeout(CLOSE_GRACE, graceful).await.is_err() {
            tracing::debug!("server did not answer the close frame in time");
        }
    }
}
