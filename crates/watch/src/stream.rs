//! [`EventStream`]: the events of one websocket connection, with keep-alive pings, an
//! idle timeout and a polite close.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::Error;
use crate::event::{Utf8Frame, WatchEvent};

/// How long a polite close waits for the server's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// While frames keep coming, the close signal is checked once per this many frames
/// (checking it takes a lock); when none is ready, its waiter is polled.
const CLOSE_CHECK_EVERY: u32 = 64;

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

/// Where a connection is in its life (RFC 6455's connection states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnectionState {
    /// Reading frames.
    Open,
    /// Closing politely: sending our close frame (`sent` once it is out), then reading
    /// until the server's, for at most [`CLOSE_GRACE`].
    Closing { sent: bool },
    /// Ended: every poll returns `None`.
    Done,
}

/// The connection, its timers and its state, polled by hand: no future is made per
/// frame. The close signal and the timers are polled only when no frame is ready: while
/// frames flow the connection is alive, and polling them for every frame costs more
/// than decoding some of them.
struct Connection<S> {
    ws: WebSocketStream<S>,
    state: ConnectionState,
    ping: Interval,
    /// A ping is due and not yet handed to the websocket.
    ping_due: bool,
    /// A ping was handed over and is being flushed.
    ping_flushing: bool,
    idle_timeout: Duration,
    /// When the last whole message arrived, or a moment later: the clock is read when no
    /// frame is ready after some were read (`fresh`), not for every frame. Tungstenite
    /// yields whole messages only: the bytes of a frame still arriving (a peer that
    /// dribbles one) never move this.
    last_frame: Instant,
    /// Frames were read since `last_frame` was set.
    fresh: bool,
    /// Fires at `last_frame + idle_timeout` or earlier (then it is pushed back); while
    /// closing, at the end of the grace period.
    timer: Pin<Box<Sleep>>,
    /// The close signal, checked every [`CLOSE_CHECK_EVERY`] frames, and its waiter,
    /// polled when no frame is ready.
    close: CancellationToken,
    /// Turns of the read loop since the close signal was last checked.
    unchecked: u32,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
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
        let connection = Connection {
            ws,
            state: ConnectionState::Open,
            ping,
            ping_due: false,
            ping_flushing: false,
            idle_timeout,
            last_frame: now,
            fresh: false,
            timer: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            close: close.clone(),
            unchecked: 0,
            closed: Box::pin(close.clone().cancelled_owned()),
        };
        Self {
            inner: Box::pin(connection),
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

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Connection<S> {
    type Item = Result<WatchEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.state {
                ConnectionState::Done => return Poll::Ready(None),
                ConnectionState::Closing { .. } => return this.poll_closing(cx).map(|()| None),
                ConnectionState::Open => {}
            }
            this.unchecked += 1;
            if this.unchecked >= CLOSE_CHECK_EVERY {
                this.unchecked = 0;
                if this.close.is_cancelled() {
                    this.start_closing();
                    continue;
                }
            }
            match this.ws.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    // Only data, or a pong to our ping, proves the connection alive: a
                    // server's own pings do not (it may send them and read nothing).
                    if !matches!(msg, Message::Ping(_)) {
                        this.fresh = true;
                    }
                    match this.on_message(msg) {
                        Some(item) => return Poll::Ready(Some(item)),
                        None => continue,
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(this.end(Error::WebSocket(Box::new(e))))));
                }
                Poll::Ready(None) => {
                    this.state = ConnectionState::Done;
                    return Poll::Ready(None);
                }
                Poll::Pending => {}
            }
            // No frame is ready: now the time of the last one, the close signal and the
            // timers.
            if this.fresh {
                this.fresh = false;
                this.last_frame = Instant::now();
            }
            if this.closed.as_mut().poll(cx).is_ready() {
                this.start_closing();
                continue;
            }
            if let Poll::Ready(Err(e)) = this.poll_ping(cx) {
                return Poll::Ready(Some(Err(this.end(Error::WebSocket(Box::new(e))))));
            }
            if this.timer.as_mut().poll(cx).is_ready() {
                let deadline = this.last_frame + this.idle_timeout;
                if deadline > Instant::now() {
                    // Frames came since the timer was set: wait for the new deadline.
                    this.timer.as_mut().reset(deadline);
                    continue;
                }
                tracing::warn!(timeout = ?this.idle_timeout, "watch connection idle: considered dead");
                return Poll::Ready(Some(Err(this.end(Error::Idle(this.idle_timeout)))));
            }
            return Poll::Pending;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Ends the stream with `error` as its last item.
    fn end(&mut self, error: Error) -> Error {
        self.state = ConnectionState::Done;
        error
    }

    /// One frame: an item to yield, or `None` to keep reading.
    fn on_message(&mut self, msg: Message) -> Option<Result<WatchEvent, Error>> {
        match msg {
            Message::Text(text) => {
                // Text frames are UTF-8 already (tungstenite checks): not checked twice.
                // The event keeps the frame.
                Some(
                    WatchEvent::decode_frame(Utf8Frame::from(text))
                        .map_err(|(e, frame)| Error::decode(e, frame.as_bytes())),
                )
            }
            Message::Binary(data) => Some(Err(Error::BinaryFrame(data.len()))),
            Message::Close(frame) => {
                tracing::debug!(?frame, "server closed the watch");
                self.state = ConnectionState::Done;
                None
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    /// Sends a ping when one is due. `Pending` unless sending failed. A ping that cannot
    /// go out (the server reads nothing) does not stop reading: the idle timer decides
    /// whether the connection is dead.
    fn poll_ping(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        while self.ping.poll_tick(cx).is_ready() {
            self.ping_due = true;
        }
        if self.ping_due {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    Pin::new(&mut self.ws).start_send(Message::Ping(Bytes::new()))?;
                    self.ping_due = false;
                    self.ping_flushing = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if self.ping_flushing {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.ping_flushing = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    fn start_closing(&mut self) {
        self.state = ConnectionState::Closing { sent: false };
        self.timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
    }

    /// The polite close: our close frame out, then frames read until the server's close
    /// (or EOF, or an error), for at most [`CLOSE_GRACE`]. `Ready` when done.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.state == (ConnectionState::Closing { sent: false }) {
            match Pin::new(&mut self.ws).poll_close(cx) {
                Poll::Ready(Ok(())) => self.state = ConnectionState::Closing { sent: true },
                Poll::Ready(Err(_)) => {
                    self.state = ConnectionState::Done;
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
        }
        if self.state == (ConnectionState::Closing { sent: true }) {
            loop {
                match self.ws.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(_) => {
                        self.state = ConnectionState::Done;
                        return Poll::Ready(());
                    }
                    Poll::Pending => break,
                }
            }
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            tracing::debug!("server did not answer the close frame in time");
            self.state = ConnectionState::Done;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
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
    async fn a_frame_dribbled_a_byte_at_a_time_is_dead_after_the_idle_timeout() {
        use tokio::io::AsyncWriteExt;
        let (client, mut raw) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let mut events = EventStream::new(client, Duration::from_secs(10), Duration::from_secs(30));
        // One whole event, then a text frame of 256 bytes whose payload comes one byte
        // every 5 s: tungstenite holds the partial frame and yields nothing, and the
        // bytes do not push the idle timer back.
        let dribbler = tokio::spawn(async move {
            let whole = br#"{"Type":"container","Action":"start","id":"a"}"#;
            let mut frame = vec![0x81, u8::try_from(whole.len()).unwrap()];
            frame.extend_from_slice(whole);
            frame.extend_from_slice(&[0x81, 126, 0x01, 0x00]);
            raw.write_all(&frame).await.unwrap();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if raw.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        let first = events.next().await;
        assert!(
            matches!(&first, Some(Ok(ev)) if ev.id() == "a"),
            "{first:?}"
        );
        let started = Instant::now();
        let item = events.next().await;
        assert!(
            matches!(item, Some(Err(Error::Idle(d))) if d == Duration::from_secs(30)),
            "{item:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        dribbler.abort();
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
    async fn server_pings_do_not_keep_a_connection_alive_that_answers_none_of_ours() {
        let (mut events, mut server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        // A server that pings every second and never reads: our pings go unanswered.
        let server_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if server.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let item = events.next().await;
        assert!(matches!(item, Some(Err(Error::Idle(_)))), "{item:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        server_task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn close_handle_sends_a_close_frame() {
        let (mut events, mut server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        events.close_handle().close();
        let (item, msg) = tokio::join!(events.next(), server.next());
        assert!(item.is_none());
        assert!(matches!(msg, Some(Ok(Message::Close(_)))), "{msg:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_the_server_does_not_answer_ends_after_the_grace_period() {
        let (mut events, _server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        let started = Instant::now();
        events.close().await;
        assert_eq!(started.elapsed(), CLOSE_GRACE);
        assert!(events.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn events_then_the_server_close_frame_end_the_stream() {
        let (mut events, mut server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        for id in ["a", "b"] {
            let frame = format!(r#"{{"Type":"container","Action":"start","id":"{id}"}}"#);
            server.send(Message::text(frame)).await.unwrap();
        }
        server
            .send(Message::Binary(Bytes::from_static(b"x")))
            .await
            .unwrap();
        server.close(None).await.unwrap();
        let a = events.next().await;
        assert!(matches!(&a, Some(Ok(ev)) if ev.id() == "a"), "{a:?}");
        let frame = r#"{"Type":"container","Action":"start","id":"a"}"#;
        assert!(
            matches!(&a, Some(Ok(ev)) if ev.event().raw_str() == frame),
            "the frame is kept"
        );
        let b = events.next().await;
        assert!(matches!(&b, Some(Ok(ev)) if ev.id() == "b"), "{b:?}");
        let bin = events.next().await;
        assert!(
            matches!(&bin, Some(Err(e)) if e.is_frame_error()),
            "{bin:?}"
        );
        assert!(events.next().await.is_none());
        assert!(events.next().await.is_none(), "stays ended");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_stream_still_closes_within_a_bounded_number_of_frames() {
        let (mut events, mut server) = pair(Duration::from_secs(10), Duration::from_secs(30)).await;
        // Far more frames than the check interval, then silence (with paused time, an
        // endless flood would keep the close's grace timer from ever firing).
        let flood = tokio::spawn(async move {
            let frame = r#"{"Type":"container","Action":"start","id":"a"}"#;
            for _ in 0..2_000 {
                if server.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
            server
        });
        assert!(matches!(events.next().await, Some(Ok(_))));
        events.close_handle().close();
        let mut after = 0;
        while let Some(item) = events.next().await {
            assert!(item.is_ok(), "{item:?}");
            after += 1;
            assert!(
                after <= CLOSE_CHECK_EVERY,
                "still reading after {after} frames"
            );
        }
        drop(flood.await);
    }
}
