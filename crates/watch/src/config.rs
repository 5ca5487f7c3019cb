//! Client configuration: endpoint, credentials, region, TLS mode, timeouts and limits.

use std::fmt;
use std::time::Duration;

use crate::credentials::Credentials;
use crate::error::Error;
use crate::sign4::DEFAULT_REGION;

/// Websocket ping interval. client-go's watch has no ping; browsers and load balancers
/// commonly drop idle connections after 60 s, so a ping every 10 s keeps the connection
/// warm and gives [`DEFAULT_IDLE_TIMEOUT`] three chances.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);
/// No frame (event or pong) for this long means the connection is dead: three missed
/// pings. "Tens of seconds, not minutes" (reflector issue).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP connect + TLS + websocket upgrade must finish within this (client-go's dialer
/// uses 30 s; an API router on the same continent answers in well under a second).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole list request, body included. Large enough for 100k containers on a slow
/// link (about 40 MB).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest accepted event frame. Events are a few hundred bytes; a container with
/// Docker's maximum label set stays far below 1 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 1 << 20;
/// How much the websocket reads from the connection at a time (fixed): one TLS record
/// at most.
///
/// PERFORMANCE: tungstenite zeroes the room it reads into before every read, so its
/// default (128 KiB) zeroed up to 128 KiB for each record of a few KiB; and every frame
/// is a slice of the buffer it was read into, which an event keeps (`Event::raw`), so a
/// smaller buffer also holds less memory behind a kept event.
pub const WEBSOCKET_READ_BUFFER: usize = 16 * 1024;
/// No bytes of a list response for this long fail the list (besides its overall
/// [`DEFAULT_REQUEST_TIMEOUT`]): a stalled connection is noticed in seconds.
pub const DEFAULT_LIST_PROGRESS_TIMEOUT: Duration = Duration::from_secs(10);
/// The most containers one list may hold: twice the largest account this client is
/// benchmarked with (a million), so a server that sends an endless list is stopped.
pub const DEFAULT_MAX_LIST_CONTAINERS: usize = 2_000_000;
/// Default of [`ClientConfig::max_list_bytes`]: 1 GiB, a million ordinary containers
/// (about 720 bytes of JSON each) with room to spare.
pub const DEFAULT_MAX_LIST_BYTES: usize = 1 << 30;
/// TCP keepalive probes start after this long without traffic, on every connection: a
/// peer that vanished without closing is found by the kernel too.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// How the server's certificate is checked.
#[derive(Clone, Default)]
pub enum TlsMode {
    /// Verify against the system roots (the default).
    #[default]
    Verify,
    /// Verify against the system roots plus this CA (PEM), e.g. a router's self-signed
    /// certificate.
    CustomCa(Vec<u8>),
    /// Accept any certificate and host name, as the original client's
    /// `InsecureSkipVerify: true` did. Only when asked: it allows a man in the middle.
    InsecureSkipVerify,
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verify => f.write_str("Verify"),
            Self::CustomCa(pem) => write!(f, "CustomCa({} bytes)", pem.len()),
            Self::InsecureSkipVerify => f.write_str("InsecureSkipVerify"),
        }
    }
}

/// Where the API router is: `host:port`, `https://host:port` or (tests, `--tls off`)
/// `http://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    secure: bool,
    authority: String,
}

impl Endpoint {
    /// Parses `HOST:PORT`, `https://HOST[:PORT]`, `wss://...`, `http://...` or `ws://...`.
    /// A trailing `/` is ignored.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty host or a path after the authority.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let (secure, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("ws://") {
            (false, r)
        } else {
            (true, s)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
            return Err(Error::Config(format!(
                "endpoint {s:?}: expected HOST:PORT or https://HOST:PORT"
            )));
        }
        Ok(Self {
            secure,
            authority: rest.to_owned(),
        })
    }

    /// True for TLS (`https`/`wss`).
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// `host:port` as given.
    #[must_use]
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `host:port` to connect to: the authority, with the scheme's port when it has none.
    pub(crate) fn socket_addr(&self) -> String {
        let host_end = self.authority.rfind(']').map_or(0, |i| i + 1);
        if self.authority[host_end..].contains(':') {
            self.authority.clone()
        } else {
            let port = if self.secure { 443 } else { 80 };
            format!("{}:{port}", self.authority)
        }
    }

    /// The URL of an HTTP path (`/containers/json`) on this endpoint.
    #[must_use]
    pub fn http_url(&self, path_and_query: &str) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}{path_and_query}", self.authority)
    }

    /// The URL of a websocket path (`/events/ws`) on this endpoint.
    #[must_use]
    pub fn ws_url(&self, path_and_query: &str) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}{path_and_query}", self.authority)
    }
}

/// Everything a [`Client`](crate::client::Client) needs.
///
/// Each setting has a setter named after it (`tls`, `api_version`, ...). The settings the
/// configuration also reports have a getter of that name (`region()`, `ping_interval()`,
/// `idle_timeout()`), and their setter is `with_<name>`.
///
/// ```
/// use std::time::Duration;
/// # // The facade `hypersh` re-exports these; this crate's doctests cannot depend on it.
/// # mod hypersh { pub use hypersh_watch::{ClientConfig, Credentials, TlsMode}; }
/// use hypersh::{ClientConfig, Credentials, TlsMode};
///
/// let config = ClientConfig::new("127.0.0.1:6443", Credentials::new("ak", "sk"))?
///     .tls(TlsMode::InsecureSkipVerify)
///     .api_version("v1.23")
///     .with_idle_timeout(Duration::from_secs(5));
/// assert_eq!(config.region(), "us-west-1");
/// assert_eq!(config.idle_timeout(), Duration::from_secs(5));
/// # Ok::<(), hypersh_watch::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub(crate) endpoint: Endpoint,
    pub(crate) credentials: Credentials,
    pub(crate) region: String,
    pub(crate) tls: TlsMode,
    pub(crate) api_version: Option<String>,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_frame_size: usize,
    pub(crate) list_progress_timeout: Duration,
    pub(crate) max_list_containers: usize,
    pub(crate) max_list_bytes: usize,
    pub(crate) tcp_keepalive: Duration,
}

impl ClientConfig {
    /// A configuration with the defaults: TLS verified, region `us-west-1` (or the one a
    /// `<region>.hyper.sh` host names), no API version prefix.
    ///
    /// # Errors
    /// [`Error::Config`] when the endpoint does not parse (see [`Endpoint::parse`]).
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Self, Error> {
        Ok(Self {
            endpoint: Endpoint::parse(endpoint)?,
            credentials,
            region: DEFAULT_REGION.to_owned(),
            tls: TlsMode::default(),
            api_version: None,
            ping_interval: DEFAULT_PING_INTERVAL,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            list_progress_timeout: DEFAULT_LIST_PROGRESS_TIMEOUT,
            max_list_containers: DEFAULT_MAX_LIST_CONTAINERS,
            max_list_bytes: DEFAULT_MAX_LIST_BYTES,
            tcp_keepalive: DEFAULT_TCP_KEEPALIVE,
        })
    }

    /// The region used in the signature scope when the host is not `<region>.hyper.sh`.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The credentials.
    #[must_use]
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The ping interval of the watch stream.
    #[must_use]
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// The idle timeout of the watch stream.
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Sets the fallback region.
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Sets how the server certificate is checked.
    #[must_use]
    pub fn tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// Prefixes every path with a Docker API version, as Hyper.sh's SDKs do
    /// (`v1.23` gives `/v1.23/containers/json`).
    #[must_use]
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        let v = version.into();
        self.api_version = Some(v.trim_matches('/').to_owned());
        self
    }

    /// Sets the websocket ping interval ([`DEFAULT_PING_INTERVAL`]).
    #[must_use]
    pub fn with_ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every;
        self
    }

    /// Sets the idle timeout ([`DEFAULT_IDLE_TIMEOUT`]).
    #[must_use]
    pub fn with_idle_timeout(mut self, after: Duration) -> Self {
        self.idle_timeout = after;
        self
    }

    /// Sets the connect + handshake timeout ([`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(mut self, after: Duration) -> Self {
        self.connect_timeout = after;
        self
    }

    /// Sets the list request timeout ([`DEFAULT_REQUEST_TIMEOUT`]).
    #[must_use]
    pub fn request_timeout(mut self, after: Duration) -> Self {
        self.request_timeout = after;
        self
    }

    /// Sets the largest accepted frame ([`DEFAULT_MAX_FRAME_SIZE`]); it also bounds one
    /// container of a list response.
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets how long a list response may send no bytes
    /// ([`DEFAULT_LIST_PROGRESS_TIMEOUT`]).
    #[must_use]
    pub fn list_progress_timeout(mut self, after: Duration) -> Self {
        self.list_progress_timeout = after;
        self
    }

    /// Sets the most containers one list may hold ([`DEFAULT_MAX_LIST_CONTAINERS`]).
    #[must_use]
    pub fn max_list_containers(mut self, n: usize) -> Self {
        self.max_list_containers = n;
        self
    }

    /// Sets the most bytes one list response may carry ([`DEFAULT_MAX_LIST_BYTES`]): with
    /// [`max_list_containers`](Self::max_list_containers) and the per-container bounds
    /// (`max_frame_size`, `container::MAX_LABELS_BYTES`, `container::MAX_KEPT_BYTES`) it
    /// bounds what a relist in progress holds.
    #[must_use]
    pub fn max_list_bytes(mut self, bytes: usize) -> Self {
        self.max_list_bytes = bytes;
        self
    }

    /// Sets when TCP keepalive probes start ([`DEFAULT_TCP_KEEPALIVE`]).
    #[must_use]
    pub fn tcp_keepalive(mut self, after: Duration) -> Self {
        self.tcp_keepalive = after;
        self
    }

    /// `path` behind the API version prefix, if any.
    pub(crate) fn path(&self, path: &str) -> String {
        match &self.api_version {
            Some(v) => format!("/{v}{path}"),
            None => path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let e = Endpoint::parse("127.0.0.1:6443").unwrap();
        assert!(e.is_secure());
        assert_eq!(e.ws_url("/events/ws"), "wss://127.0.0.1:6443/events/ws");
        assert_eq!(
            e.http_url("/containers/json"),
            "https://127.0.0.1:6443/containers/json"
        );
        let e = Endpoint::parse("http://localhost:8080/").unwrap();
        assert!(!e.is_secure());
        assert_eq!(e.ws_url("/x"), "ws://localhost:8080/x");
        assert_eq!(
            Endpoint::parse("wss://us-west-1.hyper.sh")
                .unwrap()
                .authority(),
            "us-west-1.hyper.sh"
        );
        for bad in ["", "https://", "host:1/path", "a b:1", "user@host:1"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn version_prefix_and_debug_hides_the_secret() {
        let c = ClientConfig::new("h:1", Credentials::new("ak", "very-secret")).unwrap();
        assert_eq!(c.path("/events/ws"), "/events/ws");
        let c = c.api_version("/v1.23/");
        assert_eq!(c.path("/events/ws"), "/v1.23/events/ws");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
