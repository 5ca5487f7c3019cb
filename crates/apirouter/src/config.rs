//! [`RouterConfig`]: what to serve and how, with defaults named as constants.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hypersh_watch::credentials::{Credentials, SecretKey};
use hypersh_watch::event::Shape;

use crate::runtime::Runtime;

/// The access key used when no credential is configured (the `hyperb` test vector's).
pub const DEFAULT_ACCESS_KEY: &str = "ak";
/// The secret key used when no credential is configured (the `hyperb` test vector's).
pub const DEFAULT_SECRET_KEY: &str = "sk";
/// The region of the credential scope the router accepts (Hyper.sh's default region).
pub const DEFAULT_REGION: &str = hypersh_watch::sign4::DEFAULT_REGION;
/// Open websocket connections allowed per access key before `429` (a test-friendly limit;
/// Hyper.sh's real limit was not published).
pub const DEFAULT_MAX_WATCHES_PER_KEY: usize = 16;
/// The seed of the simulated runtime when none is given.
pub const DEFAULT_SEED: u64 = 0;
/// The default listen address: loopback, any free port.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
/// How long a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the router waits for a request head: from the moment it waits for a request
/// (a new connection, or the previous response sent on a keep-alive one) until the blank
/// line that ends the headers. A request body must also arrive within this time.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a plain HTTP connection may move no bytes either way while no request is being
/// handled (a client that does not read its answer, a keep-alive connection left open)
/// before the router closes it. Websockets have their own limits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections (TCP, TLS or not, websockets included) open at once; past it the router
/// stops accepting until one closes, and new clients wait in the kernel's listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long one websocket send (a frame written and flushed, or a pong to a client's ping)
/// may take before the router closes the watch with 1008 (the client is not reading).
pub const DEFAULT_WATCH_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Signatures the router remembers to refuse replays (see [`RouterConfig::max_seen_signatures`]):
/// at most about 10 MB, and 333 signed requests a second over the 5-minute window before
/// the cap starts to shorten it.
pub const DEFAULT_MAX_SEEN_SIGNATURES: usize = 100_000;
/// The largest request body accepted (the API has no bodies): a larger `Content-Length`
/// is answered `413` without reading the body, a longer chunked body `413` when the cap is
/// passed.
pub const MAX_REQUEST_BODY: usize = 8 * 1024;
/// Pause after a failed accept (out of file descriptors, ...) before trying again.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// The most a connection's read buffer may grow to while hyper reads a request head
/// (hyper's smallest allowed is 8 KiB; its default is about 400 KiB); a longer head is
/// refused (`431`).
pub const MAX_HEAD_BUFFER: usize = 64 * 1024;
/// Read buffer of a watch connection. Its client sends only control frames (pings, pongs
/// and a close, at most 125 bytes of payload each), and tungstenite zeroes the buffer's
/// free space on every read attempt, which a session makes once per event it pushes: a
/// buffer of the default 128 KiB would be zeroed for every event.
pub const CLIENT_FRAMES_BUFFER: usize = 4 * 1024;
/// The largest frame and message a watch client may send: it sends only control frames
/// (at most 125 bytes of payload) and a close; anything larger ends the connection.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Bytes of outgoing frames gathered before they are written to a watch connection (every
/// event is flushed at once anyway; this batches `--emit` bursts).
pub const WRITE_BUFFER: usize = 64 * 1024;
/// The most outgoing bytes a watch connection may hold beyond what the kernel took: past
/// it, sends wait (and then time out), and queued pongs replace each other instead of
/// piling up.
pub const MAX_WRITE_BUFFER: usize = 256 * 1024;
/// How long the router tries to send its close frame, and then how long it waits for the
/// client's, before it drops the socket.
pub const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(5);

/// The router's own TLS: its certificate, or none. (A client's way of checking a server
/// certificate is `hypersh_watch::TlsMode`.)
#[derive(Clone, Default)]
pub enum ServerTls {
    /// A certificate made at start with `rcgen` for `localhost`, `127.0.0.1` and `::1`
    /// (and the listen address's IP when it is a specific one). [`crate::Router::ca_pem`]
    /// returns it so clients can trust it as a custom CA.
    #[default]
    SelfSigned,
    /// Plain HTTP and `ws://`.
    Off,
    /// A given certificate (chain) and PKCS#8 private key, both PEM text (not file names).
    Pem {
        /// The certificate chain, PEM.
        cert: String,
        /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). `Debug` does not
        /// print it.
        key: String,
    },
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfSigned => f.write_str("SelfSigned"),
            Self::Off => f.write_str("Off"),
            Self::Pem { .. } => f.write_str("Pem { .. }"),
        }
    }
}

/// Router settings. `Default` gives a TLS router on `127.0.0.1:0` with one credential
/// ([`DEFAULT_ACCESS_KEY`]/[`DEFAULT_SECRET_KEY`]), no containers and no churn.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) tls: ServerTls,
    pub(crate) credentials: Vec<Credentials>,
    pub(crate) region: String,
    pub(crate) containers: usize,
    pub(crate) churn: f64,
    pub(crate) churn_for: Option<Duration>,
    pub(crate) seed: u64,
    pub(crate) shape: Shape,
    pub(crate) emit: Option<u64>,
    pub(crate) emit_rate: Option<u64>,
    pub(crate) emit_delay: Duration,
    pub(crate) max_watches_per_key: usize,
    pub(crate) runtime: Option<Runtime>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) watch_send_timeout: Duration,
    pub(crate) max_seen_signatures: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            tls: ServerTls::SelfSigned,
            credentials: Vec::new(),
            region: DEFAULT_REGION.to_owned(),
            containers: 0,
            churn: 0.0,
            churn_for: None,
            seed: DEFAULT_SEED,
            shape: Shape::Docker,
            emit: None,
            emit_rate: None,
            emit_delay: Duration::ZERO,
            max_watches_per_key: DEFAULT_MAX_WATCHES_PER_KEY,
            runtime: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            watch_send_timeout: DEFAULT_WATCH_SEND_TIMEOUT,
            max_seen_signatures: DEFAULT_MAX_SEEN_SIGNATURES,
        }
    }
}

impl RouterConfig {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The address to listen on (port 0: any free port; see [`crate::Router::local_addr`]).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The router's TLS (default [`ServerTls::SelfSigned`]).
    #[must_use]
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = tls;
        self
    }

    /// Adds an accepted credential (repeatable). Without any, the router accepts
    /// [`DEFAULT_ACCESS_KEY`]/[`DEFAULT_SECRET_KEY`].
    #[must_use]
    pub fn credential(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<SecretKey>,
    ) -> Self {
        self.credentials
            .push(Credentials::new(access_key, secret_key));
        self
    }

    /// Sets the region requests must be signed for (default [`DEFAULT_REGION`]).
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// How many containers the new runtime starts with (default 0; ignored with
    /// [`RouterConfig::runtime`]).
    #[must_use]
    pub fn containers(mut self, n: usize) -> Self {
        self.containers = n;
        self
    }

    /// Churn rate: random actions per second while the router runs (default 0: none).
    #[must_use]
    pub fn churn(mut self, events_per_sec: f64) -> Self {
        self.churn = events_per_sec;
        self
    }

    /// Stops the churn after this long (default: churn until shutdown).
    #[must_use]
    pub fn churn_for(mut self, duration: Duration) -> Self {
        self.churn_for = Some(duration);
        self
    }

    /// The seed of the new runtime (default [`DEFAULT_SEED`]; ignored with
    /// [`RouterConfig::runtime`]).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The shape of event frames (default [`Shape::Docker`]).
    #[must_use]
    pub fn shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    /// Benchmark mode: each new watch connection gets `n` pre-serialised frames as fast as
    /// possible, then a normal close frame (`None`, the default: live events). The
    /// runtime made from the seed then has no networks, ports or mounts
    /// ([`Runtime::without_attachments`]).
    #[must_use]
    pub fn emit(mut self, n: Option<u64>) -> Self {
        self.emit = n;
        self
    }

    /// With [`RouterConfig::emit`]: send the frames at `per_sec` frames per second (evenly,
    /// a millisecond's worth at a time) instead of as fast as possible (`None`, the
    /// default; `Some(0)` counts as `None`).
    #[must_use]
    pub fn emit_rate(mut self, per_sec: Option<u64>) -> Self {
        self.emit_rate = per_sec.filter(|r| *r > 0);
        self
    }

    /// With [`RouterConfig::emit`]: wait this long on each new watch connection before
    /// sending the frames (default none). An informer opens its watch and then lists; with
    /// a delay longer than the list, the frames reach a synced cache instead of the list's
    /// event buffer (how the `scale` benchmark measures events/s with N containers cached).
    #[must_use]
    pub fn emit_delay(mut self, delay: Duration) -> Self {
        self.emit_delay = delay;
        self
    }

    /// Open websocket connections allowed per access key; past it the upgrade is answered
    /// `429` (default [`DEFAULT_MAX_WATCHES_PER_KEY`]).
    #[must_use]
    pub fn max_watches_per_key(mut self, n: usize) -> Self {
        self.max_watches_per_key = n;
        self
    }

    /// How long a request head (and body) may take, counted from when the router starts
    /// waiting for the request; also the limit for a new or keep-alive connection that
    /// sends nothing (default [`DEFAULT_HEADER_READ_TIMEOUT`]; zero counts as 1 ms).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long an HTTP connection may move no bytes while no request is being handled
    /// (default [`DEFAULT_IDLE_TIMEOUT`]; zero counts as 1 ms).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Connections open at once; past it the router stops accepting until one closes
    /// (default [`DEFAULT_MAX_CONNECTIONS`]; zero counts as 1).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long one websocket send may take before the watch is closed with 1008 and its
    /// slot freed (default [`DEFAULT_WATCH_SEND_TIMEOUT`]; zero counts as 1 ms).
    #[must_use]
    pub fn watch_send_timeout(mut self, timeout: Duration) -> Self {
        self.watch_send_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many accepted signatures the router remembers to refuse a replay (default
    /// [`DEFAULT_MAX_SEEN_SIGNATURES`]; zero counts as 1). Every signed request is accepted
    /// once: the same signature again within the 5-minute window is refused `403`
    /// (replay). A signature is held until its request would no longer verify; at the cap
    /// the oldest is dropped and requests signed at or before its date are refused `503`
    /// (they cannot be told from replays), so fresh requests are still served.
    #[must_use]
    pub fn max_seen_signatures(mut self, n: usize) -> Self {
        self.max_seen_signatures = n.max(1);
        self
    }

    /// Serves this runtime instead of making a new one (to restart a router with the same
    /// state, or to drive it from a test before the router starts).
    #[must_use]
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_builders() {
        let c = RouterConfig::default();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert!(matches!(c.tls, ServerTls::SelfSigned));
        assert!(c.credentials.is_empty());
        assert_eq!(c.region, "us-west-1");
        assert_eq!(c.max_watches_per_key, 16);
        assert_eq!(c.shape, Shape::Docker);
        let c = c
            .credential("a", "b")
            .credential("c", "d")
            .tls(ServerTls::Off)
            .containers(3)
            .churn(2.5)
            .churn_for(Duration::from_secs(4))
            .seed(9)
            .shape(Shape::Kubernetes)
            .emit(Some(10))
            .max_watches_per_key(2)
            .with_region("eu-central-1");
        assert_eq!(c.credentials.len(), 2);
        assert_eq!(c.credentials[1].access_key(), "c");
        assert_eq!(
            (c.containers, c.churn, c.seed, c.emit),
            (3, 2.5, 9, Some(10))
        );
        assert_eq!(c.churn_for, Some(Duration::from_secs(4)));
        assert_eq!(c.region, "eu-central-1");
        assert_eq!(c.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        assert_eq!(c.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(c.watch_send_timeout, DEFAULT_WATCH_SEND_TIMEOUT);
        assert_eq!(c.max_seen_signatures, DEFAULT_MAX_SEEN_SIGNATURES);
        let c = c
            .max_seen_signatures(0)
            .header_read_timeout(Duration::ZERO)
            .idle_timeout(Duration::from_secs(2))
            .max_connections(0)
            .watch_send_timeout(Duration::from_millis(300));
        assert_eq!(c.header_read_timeout, Duration::from_millis(1));
        assert_eq!(c.idle_timeout, Duration::from_secs(2));
        assert_eq!(c.max_connections, 1);
        assert_eq!(c.watch_send_timeout, Duration::from_millis(300));
        assert_eq!(c.max_seen_signatures, 1);
    }

    #[test]
    fn debug_hides_the_key() {
        let tls = ServerTls::Pem {
            cert: "CERT".into(),
            key: "TOPSECRET".into(),
        };
        let c = RouterConfig::default()
            .tls(tls)
            .credential("ak", "hidden-secret");
        let text = format!("{c:?}");
        assert!(!text.contains("TOPSECRET"));
        assert!(!text.contains("hidden-secret"));
    }
}
