//! The accept loop: TLS (or not), then HTTP/1.1 with upgrades, one tracked task per
//! connection, all ended by the shutdown token.
//!
//! Limits: at most `max_connections` connections at once (past it the loop stops
//! accepting, so new clients wait in the kernel's backlog instead of costing a file
//! descriptor each); a TLS handshake within [`TLS_HANDSHAKE_TIMEOUT`]; a request head
//! within `header_read_timeout` of the router starting to wait for it (hyper's timer, so a
//! header dribbled a byte at a time, or a connection that sends nothing, is cut); and a
//! plain HTTP connection that moves no bytes for `idle_timeout` while no request is being
//! handled is closed ([`crate::conn`]). An accept that fails (out of file descriptors) is
//! retried after a pause, logged once per run of failures, so the loop never spins.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_native_tls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ACCEPT_ERROR_BACKOFF, MAX_HEAD_BUFFER, RouterConfig, TLS_HANDSHAKE_TIMEOUT};
use crate::conn::{Activity, Counted, Tracked};
use crate::request_line::RawTarget;

/// The connection limits of one router.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Limits {
    pub(crate) fn of(config: &RouterConfig) -> Self {
        Self {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// Counts open connections (for [`crate::Router::open_connections`]).
pub(crate) type ConnCount = watch::Sender<usize>;

/// Decrements the open connection count when the connection's task ends.
struct Open(ConnCount);

impl Open {
    fn new(count: &ConnCount) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Accepts connections until `shutdown` is cancelled; then drops the listener (freeing the
/// port) and returns. Each connection runs in a task on `tracker` and ends with `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    limits: Limits,
    open: ConnCount,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Set while accepts fail, so a run of failures is logged once.
    let mut failing = false;
    loop {
        // At the cap, wait for a connection to close before accepting another.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                if failing {
                    tracing::info!("accepting connections again");
                    failing = false;
                }
                pair
            }
            Err(error) => {
                if failing {
                    tracing::debug!(%error, "accept failed again");
                } else {
                    tracing::warn!(%error, backoff = ?ACCEPT_ERROR_BACKOFF, "accept failed; retrying after a pause (logged once until it recovers)");
                    failing = true;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        // Event frames are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let (tls, app, shutdown) = (tls.clone(), app.clone(), shutdown.clone());
        // Held by the connection's IO, so a connection upgraded to a websocket still counts.
        let held = Held {
            _permit: permit,
            _open: Open::new(&open),
        };
        tracker.spawn(async move {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                () = connection(stream, peer, tls, app, limits, held) => {}
            }
        });
    }
    tracing::debug!("accept loop stopped");
}

/// What a connection holds until its socket is dropped: its place under the connection
/// cap and in the open count.
struct Held {
    _permit: OwnedSemaphorePermit,
    _open: Open,
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    limits: Limits,
    held: Held,
) {
    let Some(acceptor) = tls else {
        return serve_http(stream, peer, app, limits, held).await;
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_http(stream, peer, app, limits, held).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, app: axum::Router, limits: Limits, held: Held)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let io = Tracked::new(RawTarget::new(io), activity.clone(), held);
    let service = Counted::new(TowerToHyperService::new(app), activity.clone());
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BUFFER)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let result = tokio::select! {
        result = connection => result,
        () = activity.idle_for(limits.idle_timeout) => {
            tracing::debug!(%peer, "closing an idle connection");
            return;
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerTls;
    use tokio::io::AsyncReadExt;

    /// A client that connects and never starts the TLS handshake is cut off after
    /// [`TLS_HANDSHAKE_TIMEOUT`] (paused time: the wait is virtual).
    #[tokio::test(start_paused = true)]
    async fn silent_tls_clients_are_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = crate::tls::build(&ServerTls::SelfSigned, addr)
            .unwrap()
            .unwrap();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(serve(
            listener,
            Some(tls.acceptor),
            axum::Router::new(),
            Limits::of(&RouterConfig::default()),
            watch::channel(0).0,
            shutdown.clone(),
            tracker.clone(),
        ));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        let n = client.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "the server closes the connection");
        assert!(started.elapsed() >= TLS_HANDSHAKE_TIMEOUT);
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test]
    async fn shutdown_ends_the_loop_and_frees_the_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(serve(
            listener,
            None,
            axum::Router::new(),
            Limits::of(&RouterConfig::default()),
            watch::channel(0).0,
            shutdown.clone(),
            tracker.clone(),
        ));
        let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        TcpListener::bind(addr).await.unwrap();
    }
}
