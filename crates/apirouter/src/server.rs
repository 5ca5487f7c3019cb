//! The accept loop: TLS (or not), then HTTP/1.1 with upgrades, one tracked task per
//! connection, all ended by the shutdown token.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_native_tls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::TLS_HANDSHAKE_TIMEOUT;

/// Pause after a failed accept (out of file descriptors, ...) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections until `shutdown` is cancelled; then drops the listener (freeing the
/// port) and returns. Each connection runs in a task on `tracker` and ends with `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        // Event frames are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let (tls, app, shutdown) = (tls.clone(), app.clone(), shutdown.clone());
        tracker.spawn(async move {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                () = connection(stream, peer, tls, app) => {}
            }
        });
    }
    tracing::debug!("accept loop stopped");
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
) {
    let Some(acceptor) = tls else {
        return serve_http(stream, peer, app).await;
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_http(stream, peer, app).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, app: axum::Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let result = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades()
        .await;
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
