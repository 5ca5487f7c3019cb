//! [`EventStream`]: the events of one websocket connection, with keep-alive pings, an
//! idle timeout and a polite close.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::Error;
use crate::event::WatchEvent;

/// How long a polite close waits for the server's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

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

/// The connection and its timers. The futures polled when no frame is ready (the close
/// signal and the idle timer) are kept here rather than made anew: a new `sleep` registers
/// a timer and a new `cancelled()` a waiter, which cost more than decoding a small frame.
struct State<S> {
    ws: WebSocketStream<S>,
    ping: tokio::time::Interval,
    idle_timeout: Duration,
    /// When the last frame arrived.
    last_frame: Instant,
    /// Fires at `last_frame + idle_timeout` or earlier (then it is pushed back).
    idle: Pin<Box<Sleep>>,
    /// The close signal, checked before every frame, and its waiter, polled only when no
    /// frame is ready.
    close: CancellationToken,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl EventStream {
    pub(crate) fn new<S>(
        ws: WebSocketStream<S>,
        ping_interval: Duration,
        idle_timeout: Duration,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let close = CancellationToken::new();
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let now = Instant::now();
        let state = State {
            ws,
            ping,
            idle_timeout,
            last_frame: now,
            idle: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            close: close.clone(),
            closed: Box::pin(close.clone().cancelled_owned()),
            done: false,
        };
        let inner = futures_util::stream::unfold(state, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        });
        Self {
            // Fused: polling after the end (or after `close`) keeps returning `None`.
            inner: Box::pin(inner.fuse()),
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

impl<S: AsyncRead + AsyncWrite + Unpin> State<S> {
    async fn next_item(&mut self) -> Option<Result<WatchEvent, Error>> {
        loop {
            if self.done {
                return None;
            }
            // Checked here too: frames come first below, and a busy stream must not keep
            // a close waiting.
            if self.close.is_cancelled() {
                self.done = true;
                self.close_politely().await;
                return None;
            }
            // A ready frame is taken without looking at the close waiter or the timers:
            // while frames flow the connection is alive, and polling those for every
            // frame costs more than decoding some of them.
            tokio::select! {
                biased;
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
                            self.last_frame = Instant::now();
                            if let Some(item) = self.on_message(msg) {
                                return Some(item);
                            }
                        }
                    }
                }
                () = &mut self.closed => {
                    self.done = true;
                    self.close_politely().await;
                    return None;
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
                () = &mut self.idle => {
                    let deadline = self.last_frame + self.idle_timeout;
                    if deadline > Instant::now() {
                        // Frames came since the timer was set: wait for the new deadline.
                        self.idle.as_mut().reset(deadline);
                        continue;
                    }
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
                // Text frames are UTF-8 already (tungstenite checks): not checked twice.
                let raw = Bytes::from(text.clone());
                Some(
                    WatchEvent::decode_text(text.as_str(), raw)
                        .map_err(|e| Error::decode(e, text.as_bytes())),
                )
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// A client stream over an in-memory pipe, and the server's end of it.
    async fn pair(
        ping: Duration,
        idle: Duration,
    ) -> (EventStream, WebSocketStream<tokio::io::DuplexStream>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        (EventStream::new(client, ping, idle), server)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_declared_dead_after_the_idle_timeout() {
        let (mut events, _server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        let started = Instant::now();
        let item = events.next().await;
        assert!(
            matches!(item, Some(Err(Error::Idle(d))) if d == Duration::from_secs(30)),
            "{item:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert!(events.next().await.is_none(), "the stream ends after Idle");
    }

    #[tokio::test(start_paused = true)]
    async fn pongs_keep_the_connection_alive_and_pings_are_sent_on_time() {
        let (mut events, mut server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        // The server answers pings (tungstenite does it while reading) and, after
        // 95 s, sends one event.
        let server_task = tokio::spawn(async move {
            let mut pings = 0;
            let deadline = Instant::now() + Duration::from_secs(95);
            loop {
                tokio::select! {
                    msg = server.next() => match msg {
                        Some(Ok(Message::Ping(_))) => pings += 1,
                        Some(Ok(_)) => {}
                        _ => return pings,
                    },
                    () = tokio::time::sleep_until(deadline) => {
                        let frame = r#"{"Type":"container","Action":"start","id":"abc"}"#;
                        server.send(Message::text(frame)).await.ok();
                        server.flush().await.ok();
                        // Keep answering until the client closes.
                        while let Some(Ok(msg)) = server.next().await {
                            if let Message::Ping(_) = msg {
                                pings += 1;
                            }
                        }
                        return pings;
                    }
                }
            }
        });
        let started = Instant::now();
        let item = events.next().await;
        assert!(
            matches!(&item, Some(Ok(ev)) if ev.id() == "abc"),
            "{item:?}"
        );
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(95),
            "no idle timeout while pongs flow"
        );
        events.close().await;
        let pings = server_task.await.unwrap();
        assert_eq!(pings, 9, "one ping every 10 s for 95 s");
    }

    #[tokio::test(start_paused = true)]
    async fn close_handle_sends_a_close_frame() {
        let (mut events, mut server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        events.close_handle().close();
        let (item, msg) = tokio::join!(events.next(), server.next());
        assert!(item.is_none());
        assert!(matches!(msg, Some(Ok(Message::Close(_)))), "{msg:?}");
    }
}
