//! [`DockerWatch`]: the newline-delimited JSON body of `GET /events`, split into lines and
//! decoded into [`WatchEvent`]s, with a `/_ping` on a second connection when it is idle and
//! an end when a line stays incomplete (the rule: [`crate::liveness`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::Stream;
use hyper::body::{Body, Incoming};
use hypersh_watch::event::DecodeError;
use hypersh_watch::{Filters, WatchEvent};
use tokio::time::{Instant, Sleep};

use crate::engine::{Engine, may_match};
use crate::error::DockerError;
use crate::liveness::{Due, Liveness};
use crate::transport::{AbortOnDrop, Transport};

type PingFuture = Pin<Box<dyn Future<Output = Result<(), DockerError>> + Send>>;

/// The container events of one `GET /events` response.
///
/// Each item is one line of the response decoded with [`WatchEvent::decode`] (the event
/// keeps the line: [`Event::raw`](hypersh_watch::Event::raw)) and read with the meaning
/// of the engine that sent it ([`WatchEvent::on_engine`]). Blank lines, events of other
/// types (`network`, Podman's image `pull`, ...) and, on an engine that could not be
/// trusted with some of the filters, events about containers that cannot match them are
/// skipped. A line that does not decode is a [`DockerError::Frame`] and the stream goes
/// on; a line longer than the limit, a line that stays incomplete for the ping interval,
/// a broken connection, the end of the response, or a daemon that does not answer
/// `GET /_ping` after the stream brought no event for the ping interval ends the stream
/// with an error (then `None`).
pub struct DockerWatch {
    body: Incoming,
    _conn: AbortOnDrop,
    /// Bytes received and not yet handed out: the start of the next line(s).
    buf: BytesMut,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    max_line: usize,
    transport: Transport,
    ping_timeout: Duration,
    /// When the body last gave data: the time of the lines that chunk completed.
    chunk_at: Instant,
    /// When to ping, and whether a line is stuck.
    liveness: Liveness,
    /// Fires at the deadline of [`Liveness::next`].
    idle: Pin<Box<Sleep>>,
    ping: Option<PingFuture>,
    done: bool,
    /// The engine whose meaning the events are read with.
    engine: Engine,
    /// Filters the engine was not asked to apply, checked on each event.
    check: Option<Filters>,
}

impl std::fmt::Debug for DockerWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerWatch")
            .field("endpoint", &self.transport.endpoint)
            .field("buffered", &self.buf.len())
            .field("pinging", &self.ping.is_some())
            .field("done", &self.done)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The limits and timers of a watch.
pub(crate) struct WatchConfig {
    pub(crate) max_line: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
}

impl DockerWatch {
    pub(crate) fn new(
        body: Incoming,
        conn: AbortOnDrop,
        transport: Transport,
        config: &WatchConfig,
        engine: Engine,
        check: Option<Filters>,
    ) -> Self {
        let now = Instant::now();
        Self {
            body,
            _conn: conn,
            buf: BytesMut::with_capacity(8 * 1024),
            scanned: 0,
            max_line: config.max_line,
            transport,
            ping_timeout: config.ping_timeout,
            chunk_at: now,
            liveness: Liveness::new(now, config.ping_interval),
            idle: Box::pin(tokio::time::sleep_until(now + config.ping_interval)),
            ping: None,
            done: false,
            engine,
            check,
        }
    }

    /// The next event among the complete lines received, if any.
    fn next_event(&mut self) -> Option<Result<WatchEvent, DockerError>> {
        while let Some(n) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            let end = self.scanned + n;
            let line = self.buf.split_to(end + 1).freeze();
            self.scanned = 0;
            self.liveness.line_ended();
            let mut len = end;
            while len > 0 && matches!(line[len - 1], b'\r' | b' ' | b'\t') {
                len -= 1;
            }
            if len > self.max_line {
                return Some(Err(self.fail(DockerError::LineTooLong {
                    limit: self.max_line,
                })));
            }
            if line[..len].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match WatchEvent::decode(line.slice(..len)) {
                Ok(event) => {
                    // Every event proves the stream alive, one skipped here too.
                    self.liveness.event(self.chunk_at);
                    if let Some(check) = &self.check
                        && !may_match(check, event.event())
                    {
                        continue;
                    }
                    return Some(Ok(event.on_engine(self.engine)));
                }
                // Network, image, volume, daemon events: not ours (the `type` filter
                // normally keeps them out; Podman sends image `pull`s anyway), but events
                // all the same.
                Err(DecodeError::NotContainer(_)) => self.liveness.event(self.chunk_at),
                // `container prune` is about no one container: it has no id.
                Err(DecodeError::MissingId) if is_prune(&line[..len]) => {
                    self.liveness.event(self.chunk_at);
                }
                Err(e) => return Some(Err(DockerError::Frame(e))),
            }
        }
        self.scanned = self.buf.len();
        if self.buf.len() > self.max_line {
            return Some(Err(self.fail(DockerError::LineTooLong {
                limit: self.max_line,
            })));
        }
        None
    }

    fn fail(&mut self, e: DockerError) -> DockerError {
        self.done = true;
        self.ping = None;
        self.buf = BytesMut::new();
        e
    }

    fn start_ping(&self) -> PingFuture {
        let transport = self.transport.clone();
        let timeout = self.ping_timeout;
        Box::pin(async move { transport.get_body("/_ping", timeout, 1024).await.map(drop) })
    }

    /// Pings the daemon when the stream has brought no event for the ping interval, and
    /// ends the watch when the ping fails or a line stays incomplete.
    fn poll_liveness(&mut self, cx: &mut Context<'_>) -> Poll<DockerError> {
        loop {
            if let Some(ping) = self.ping.as_mut() {
                match ping.as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => {
                        self.ping = None;
                        self.liveness.answered(Instant::now());
                    }
                    Poll::Ready(Err(e)) => {
                        let endpoint = self.transport.endpoint.clone();
                        return Poll::Ready(self.fail(DockerError::Unresponsive {
                            endpoint,
                            source: Box::new(e),
                        }));
                    }
                    Poll::Pending => {}
                }
            }
            let Some((deadline, due)) = self.liveness.next(self.ping.is_some()) else {
                return Poll::Pending;
            };
            if self.idle.deadline() != deadline {
                self.idle.as_mut().reset(deadline);
            }
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            match due {
                Due::Ping => self.ping = Some(self.start_ping()),
                Due::Stalled => {
                    let endpoint = self.transport.endpoint.clone();
                    let after = self.liveness.period();
                    tracing::warn!(%endpoint, ?after, "events line incomplete: the stream is stuck");
                    return Poll::Ready(self.fail(DockerError::LineStalled { endpoint, after }));
                }
            }
        }
    }
}

/// Whether `line` is a `prune` event (Docker sends one after `docker container prune`,
/// with an empty `Actor.ID`). Read only for a line that has no id.
fn is_prune(line: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Action<'a> {
        #[serde(rename = "Action", borrow, default)]
        action: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Action<'_>>(line).is_ok_and(|a| a.action.as_deref() == Some("prune"))
}

impl Stream for DockerWatch {
    type Item = Result<WatchEvent, DockerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(item) = this.next_event() {
                return Poll::Ready(Some(item));
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                        this.chunk_at = Instant::now();
                    }
                }
                Poll::Ready(Some(Err(source))) => {
                    let endpoint = this.transport.endpoint.clone();
                    return Poll::Ready(Some(Err(
                        this.fail(DockerError::Http { endpoint, source })
                    )));
                }
                Poll::Ready(None) => {
                    let endpoint = this.transport.endpoint.clone();
                    return Poll::Ready(Some(
                        Err(this.fail(DockerError::StreamEnded { endpoint })),
                    ));
                }
                Poll::Pending => {
                    // Every complete line was taken: what is left is a line's start.
                    if !this.buf.is_empty() {
                        this.liveness.waiting(Instant::now());
                    }
                    return match this.poll_liveness(cx) {
                        Poll::Ready(e) => Poll::Ready(Some(Err(e))),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}
