//! [`Router`]: a running server, its address, and the handles that drive it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use hypersh_watch::credentials::{Credentials, SecretKey};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, RouterConfig};
use crate::emit::EmitPool;
use crate::error::Error;
use crate::faults::Faults;
use crate::runtime::Runtime;
use crate::state::{AppParts, AppState};
use crate::{routes, server, tls};

/// A running router. Dropping it stops it too (without waiting); prefer
/// [`Router::shutdown`], which waits until every connection is gone and the port is free.
pub struct Router {
    addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    runtime: Runtime,
    faults: Faults,
    credentials: Vec<Credentials>,
    app: AppState,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    churn: Option<JoinHandle<()>>,
    open: server::ConnCount,
}

impl Router {
    /// Binds the listen address and starts serving.
    ///
    /// The runtime is the configured one, or a new one from the seed with the configured
    /// number of containers (without networks, ports or mounts in `emit` mode: see
    /// [`Runtime::without_attachments`]). Churn, if configured, runs until `churn_for` elapses or the
    /// router stops.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address cannot be bound, [`Error::Certificate`] or
    /// [`Error::Tls`] when TLS cannot be set up.
    pub async fn start(config: RouterConfig) -> Result<Self, Error> {
        let runtime = config.runtime.clone().unwrap_or_else(|| {
            let runtime = if config.emit.is_some() {
                Runtime::without_attachments(config.seed)
            } else {
                Runtime::new(config.seed)
            };
            runtime.populate(config.containers);
            runtime
        });
        let credentials = if config.credentials.is_empty() {
            vec![Credentials::new(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)]
        } else {
            config.credentials.clone()
        };
        let keys: HashMap<String, SecretKey> = credentials
            .iter()
            .map(|c| (c.access_key().to_owned(), c.secret_key().clone()))
            .collect();
        let tls = tls::build(&config.tls, config.listen)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;

        let faults = Faults::new();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let emit = config.emit.map(|n| {
            let pool = EmitPool::build(&runtime, config.shape, n, config.seed);
            Arc::new(pool.paced(config.emit_rate).delayed(config.emit_delay))
        });
        let app = AppState::new(AppParts {
            runtime: runtime.clone(),
            faults: faults.clone(),
            keys,
            region: config.region.clone(),
            shape: config.shape,
            emit,
            max_watches_per_key: config.max_watches_per_key,
            watch_send_timeout: config.watch_send_timeout,
            body_read_timeout: config.header_read_timeout,
            max_seen_signatures: config.max_seen_signatures,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        });
        let (acceptor, ca_pem) = match tls {
            Some(tls) => (Some(tls.acceptor), Some(tls.cert_pem)),
            None => (None, None),
        };
        let is_tls = acceptor.is_some();
        let open = tokio::sync::watch::channel(0).0;
        tracker.spawn(server::serve(
            listener,
            acceptor,
            routes::app(app.clone()),
            server::Limits::of(&config),
            open.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        let churn =
            (config.churn > 0.0).then(|| runtime.spawn_churn(config.churn, config.churn_for));
        tracing::info!(%addr, tls = is_tls, shape = %config.shape, "router listening");
        Ok(Self {
            addr,
            tls: is_tls,
            ca_pem,
            runtime,
            faults,
            credentials,
            app,
            shutdown,
            tracker,
            churn,
            open,
        })
    }

    /// The bound address (the real port when the configured one was 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `HOST:PORT` for clients (`127.0.0.1:8443`, `[::1]:8443`). When listening on an
    /// unspecified address (`0.0.0.0`, `::`), HOST is the loopback address of that family,
    /// which the self-signed certificate covers.
    #[must_use]
    pub fn addr_string(&self) -> String {
        self.client_addr().to_string()
    }

    /// `https://HOST:PORT`, or `http://HOST:PORT` without TLS (HOST as in
    /// [`Router::addr_string`]).
    #[must_use]
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.client_addr())
    }

    fn client_addr(&self) -> SocketAddr {
        let mut addr = self.addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            _ => {}
        }
        addr
    }

    /// The certificate (chain) the router presents, PEM: the self-signed one (names
    /// `localhost`, `127.0.0.1` and `::1`), for clients to trust as a custom CA, or the
    /// one given with [`crate::ServerTls::Pem`]. `None` without TLS.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The simulated containers (a clone-able handle).
    #[must_use]
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Fault injection (a clone-able handle).
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The accepted credentials.
    #[must_use]
    pub fn credentials(&self) -> &[Credentials] {
        &self.credentials
    }

    /// Open websocket connections (counted from the upgrade answer until the session ends).
    #[must_use]
    pub fn active_watches(&self) -> usize {
        self.app.active_watches()
    }

    /// Waits until exactly `n` websocket connections are open (wrap it in a timeout).
    pub async fn wait_for_active_watches(&self, n: usize) {
        let mut count = self.app.watch_count();
        // The sender lives in `self.app`, so this cannot fail while `self` is borrowed.
        let _ = count.wait_for(|active| *active == n).await;
    }

    /// Signatures held against replay: those accepted whose requests would still verify
    /// (at most [`RouterConfig::max_seen_signatures`]).
    #[must_use]
    pub fn seen_signatures(&self) -> usize {
        self.app.seen_signatures()
    }

    /// Open connections: accepted and not yet closed, websockets included (at most
    /// [`RouterConfig::max_connections`]).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Waits until exactly `n` connections are open (wrap it in a timeout).
    pub async fn wait_for_open_connections(&self, n: usize) {
        let mut count = self.open.subscribe();
        // The sender lives in `self`, so this cannot fail while `self` is borrowed.
        let _ = count.wait_for(|open| *open == n).await;
    }

    /// Stops accepting, drops every connection, stops the churn this router started, and
    /// waits for every task; the port is free when this returns.
    pub async fn shutdown(mut self) {
        self.stop();
        self.tracker.wait().await;
        tracing::info!(addr = %self.addr, "router stopped");
    }

    fn stop(&mut self) {
        self.shutdown.cancel();
        self.tracker.close();
        if let Some(churn) = self.churn.take() {
            churn.abort();
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("active_watches", &self.active_watches())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerTls;

    #[tokio::test]
    async fn client_addresses_replace_unspecified_hosts() {
        let router = Router::start(
            RouterConfig::default()
                .listen("0.0.0.0:0".parse().unwrap())
                .tls(ServerTls::Off),
        )
        .await
        .unwrap();
        let port = router.local_addr().port();
        assert!(router.local_addr().ip().is_unspecified());
        assert_eq!(router.addr_string(), format!("127.0.0.1:{port}"));
        assert_eq!(router.base_url(), format!("http://127.0.0.1:{port}"));
        assert!(router.ca_pem().is_none());
        assert_eq!(router.credentials()[0].access_key(), DEFAULT_ACCESS_KEY);
        router.shutdown().await;
    }
}
