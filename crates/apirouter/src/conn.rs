//! Per-connection bookkeeping for the idle timeout: an IO wrapper that stamps the time of
//! the last byte moved, and a service wrapper that counts the requests being handled and
//! notes an upgrade to a websocket.
//!
//! hyper's header-read timer covers a connection while it waits for a request head; this
//! covers the rest of a plain HTTP connection's life: a response the client does not read,
//! a body that stalls. A request being handled is never cut (fault injection holds lists
//! on purpose), and a websocket is left to its own limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What one connection shares between its IO, its service and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    /// When the connection was accepted; `last_io` counts from here.
    origin: Instant,
    /// Milliseconds from `origin` to the last byte read or written.
    last_io: AtomicU64,
    /// Requests whose handler has not returned its response yet.
    in_flight: AtomicUsize,
    /// The connection was answered `101`: it is a websocket now.
    upgraded: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            last_io: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io.store(ms, Ordering::Relaxed);
    }

    fn last_io(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_io.load(Ordering::Relaxed))
    }

    /// Returns when the connection has moved no bytes for `idle` while no request was
    /// being handled; never for a websocket.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            if self.upgraded.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            let deadline = self.last_io() + idle;
            if Instant::now() >= deadline {
                if self.in_flight.load(Ordering::Relaxed) == 0 {
                    return;
                }
                // A handler is running (a held list, a slow upgrade): look again later.
                self.touch();
                continue;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// An IO wrapper that stamps [`Activity`] whenever a byte moves, and holds what must
/// live exactly as long as the connection (its place under the connection cap).
pub(crate) struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
    _held: Box<dyn Send + Sync>,
}

impl<I> Tracked<I> {
    pub(crate) fn new(inner: I, activity: Arc<Activity>, held: impl Send + Sync + 'static) -> Self {
        Self {
            inner,
            activity,
            _held: Box::new(held),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A hyper service wrapper that counts requests in flight and notes upgrades.
#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

/// Decrements the in-flight count when the handler's future ends (or is dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl<S, R, B> hyper::service::Service<R> for Counted<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(self.activity.clone());
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await;
            if let Ok(response) = &response
                && response.status() == http::StatusCode::SWITCHING_PROTOCOLS
            {
                guard.0.upgraded.store(true, Ordering::Relaxed);
            }
            drop(guard);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_handlers_and_ignores_websockets() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(Duration::from_secs(3)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(3));

        // A handler in flight keeps the connection; its end restarts the clock.
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let a = activity.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(InFlight(a));
        });
        let started = Instant::now();
        activity.idle_for(Duration::from_secs(3)).await;
        assert!(started.elapsed() >= Duration::from_secs(13));

        activity.upgraded.store(true, Ordering::Relaxed);
        let never = tokio::time::timeout(
            Duration::from_secs(600),
            activity.idle_for(Duration::from_secs(1)),
        );
        assert!(never.await.is_err(), "a websocket is never idle-cut");
    }
}
