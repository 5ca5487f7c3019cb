//! [`DockerSource`]: the reflector's [`Source`] on a Docker Engine.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hypersh_reflector::Source;
use hypersh_watch::{Container, Filters};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::engine::watch_filters;
use crate::error::DockerError;
use crate::events::{DockerWatch, WatchConfig};
use crate::host::DockerHost;
use crate::list::{self, ListLimits};
use crate::server::{ServerVersion, handshake};
use crate::tls::DockerTls;
use crate::transport::{RemoteSettings, Transport};
use crate::version::ApiVersion;

/// Default of [`DockerSourceBuilder::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`DockerSourceBuilder::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`DockerSourceBuilder::ping_interval`].
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);
/// Default of [`DockerSourceBuilder::ping_timeout`].
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`DockerSourceBuilder::max_body`]: 1 GiB, as the Hyper.sh client's
/// `ClientConfig::max_list_bytes`: a million ordinary containers (about 720 bytes of JSON
/// each; Docker's own entries, with their ports, mounts and networks, run to 1–2 KiB, so
/// some 500 000 of those).
pub const DEFAULT_MAX_BODY: usize = 1 << 30;
/// Default of [`DockerSourceBuilder::max_line`]: 1 MiB (an event is well under 1 KiB
/// unless its container has very many labels).
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// A Docker Engine or Podman's Docker-compatible service as a [`Source`] for the
/// reflector: `GET /containers/json?all=1` and the `GET /events` stream, over a Unix
/// socket, TCP (with TLS when asked) or ssh, one HTTP/1.1 connection per request.
///
/// Each session (each watch the reflector opens) starts by asking the daemon which
/// engine it is and which API versions it speaks ([`ServerVersion`]): a daemon that is
/// not running yet is a failed session like any other, retried with the reflector's
/// backoff, and an engine upgraded between two sessions is spoken to in its new version.
/// The engine's quirks are translated here, at the source's edge: its events are read
/// with its meaning ([`WatchEvent::on_engine`](hypersh_watch::WatchEvent::on_engine)),
/// and the filters it cannot be trusted with are checked on each event (see
/// `docs/architecture.md`).
///
/// Cheap to clone; clones share their settings and the current session.
#[derive(Clone)]
pub struct DockerSource {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    /// The version set with [`DockerSourceBuilder::api_version`], if any.
    pinned: Option<ApiVersion>,
    /// What the last handshake found; lists and fetches use it.
    session: Mutex<Option<Arc<Session>>>,
    request_timeout: Duration,
    max_body: usize,
    watch: WatchConfig,
}

/// What one handshake decided.
#[derive(Debug)]
struct Session {
    server: ServerVersion,
    /// `/v1.41`.
    prefix: String,
}

impl fmt::Debug for DockerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerSource")
            .field("endpoint", &self.inner.transport.endpoint)
            .field("server", &self.current().map(|s| s.server.clone()))
            .finish_non_exhaustive()
    }
}

impl DockerSource {
    /// A source on the daemon at `url` (`unix:///var/run/docker.sock`, `tcp://host:2375`)
    /// with the default settings, without contacting it: the daemon may start later (an
    /// informer waits for it, retrying with backoff).
    ///
    /// As the `docker` CLI with `-H url`, a `tcp://` URL speaks TLS when
    /// `DOCKER_TLS_VERIFY` is set, with the files of `DOCKER_CERT_PATH`
    /// ([`DockerTls::from_env`]).
    ///
    /// # Errors
    /// [`DockerError::InvalidHost`] for a URL this source cannot use; a TLS file that
    /// cannot be used ([`DockerError::TlsFile`]).
    pub fn new(url: &str) -> Result<Self, DockerError> {
        Self::builder(DockerHost::parse(url)?)
            .tls_from_env()
            .build()
    }

    /// As [`new`](Self::new), then asks the daemon now which engine and API versions it
    /// speaks: for a caller that would rather fail at once than wait for the daemon.
    ///
    /// # Errors
    /// A bad URL, no daemon ([`DockerError::NotRunning`]), no permission
    /// ([`DockerError::PermissionDenied`]), TLS refused or misconfigured
    /// ([`DockerError::Tls`], [`DockerError::TlsFile`]), or a daemon too old
    /// ([`DockerError::ApiTooOld`]).
    pub async fn connect(url: &str) -> Result<Self, DockerError> {
        Self::builder(DockerHost::parse(url)?)
            .tls_from_env()
            .connect()
            .await
    }

    /// As [`connect`](Self::connect), to `DOCKER_HOST` when it is set, else to
    /// [`DEFAULT_HOST`](crate::DEFAULT_HOST).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn from_env() -> Result<Self, DockerError> {
        Self::builder(DockerHost::from_env()?)
            .tls_from_env()
            .connect()
            .await
    }

    /// A builder for a source on `host`, to change the timeouts and limits.
    pub fn builder(host: DockerHost) -> DockerSourceBuilder {
        DockerSourceBuilder::new(host)
    }

    /// The API version requests are made with: the pinned one
    /// ([`DockerSourceBuilder::api_version`]), else the one the last session negotiated
    /// (`None` before the first).
    #[must_use]
    pub fn api_version(&self) -> Option<ApiVersion> {
        self.current()
            .map(|s| s.server.api_version)
            .or(self.inner.pinned)
    }

    /// What the last session found serving this source (`None` before the first): the
    /// engine, its version and the API version spoken.
    #[must_use]
    pub fn server_version(&self) -> Option<ServerVersion> {
        self.current().map(|s| s.server.clone())
    }

    /// Asks the daemon which engine and API versions it speaks, now, and keeps the answer
    /// for the requests that follow. Each watch does this first.
    ///
    /// # Errors
    /// No daemon, no permission, a daemon too old, or one that does not say its version.
    pub async fn handshake(&self) -> Result<ServerVersion, DockerError> {
        self.new_session().await.map(|s| s.server.clone())
    }

    fn current(&self) -> Option<Arc<Session>> {
        self.inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn new_session(&self) -> Result<Arc<Session>, DockerError> {
        let negotiated = handshake(
            &self.inner.transport,
            self.inner.request_timeout,
            self.inner.pinned,
        )
        .await?;
        let server = negotiated.server;
        let endpoint = &self.inner.transport.endpoint;
        if let Some(warning) = &negotiated.warning {
            tracing::warn!(%endpoint, "{warning}");
        }
        let session = Arc::new(Session {
            prefix: format!("/v{}", server.api_version),
            server,
        });
        let previous = self
            .inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Arc::clone(&session));
        if previous.is_none_or(|p| p.server != session.server) {
            tracing::info!(%endpoint, server = %session.server, "connected");
        } else {
            tracing::debug!(%endpoint, server = %session.server, "connected");
        }
        Ok(session)
    }

    /// The current session, or a new one if there is none yet.
    async fn session(&self) -> Result<Arc<Session>, DockerError> {
        match self.current() {
            Some(session) => Ok(session),
            None => self.new_session().await,
        }
    }

    /// The daemon address (`unix:///var/run/docker.sock`).
    #[must_use]
    pub fn host(&self) -> &DockerHost {
        &self.inner.transport.host
    }

    /// `GET /_ping` on a new connection.
    ///
    /// # Errors
    /// When the daemon does not answer `OK` within the ping timeout.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.inner
            .transport
            .get_body("/_ping", self.inner.watch.ping_timeout, 1024)
            .await
            .map(drop)
    }

    fn list_path(session: &Session, filters: &Filters) -> String {
        let mut path = format!("{}/containers/json?all=1", session.prefix);
        if !filters.is_empty() {
            path.push_str("&filters=");
            path.push_str(&query_filters(filters, None));
        }
        path
    }

    /// Lists into `sink` (see [`Source::list`]), decoding the body as it arrives; the
    /// whole list within the request timeout.
    async fn list_into(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> Result<(), DockerError> {
        let session = self.session().await?;
        let transport = &self.inner.transport;
        let path = Self::list_path(&session, filters);
        let what = format!("GET {}/containers/json", session.prefix);
        let limits = ListLimits {
            max_body: self.inner.max_body,
            max_container: self.inner.watch.max_line,
        };
        transport
            .within(self.inner.request_timeout, &what, async {
                let response = transport.get(&path, self.inner.request_timeout).await?;
                list::read(response.body, &what, &transport.endpoint, limits, sink).await
            })
            .await
    }
}

impl Source for DockerSource {
    type Error = DockerError;
    type Watch = DockerWatch;

    fn endpoint(&self) -> String {
        self.inner.transport.endpoint.clone()
    }

    /// Starts a session ([`handshake`](DockerSource::handshake)), then opens
    /// `GET /events` with the filters the engine can be trusted with.
    async fn watch(&self, filters: &Filters) -> Result<DockerWatch, DockerError> {
        let session = self.new_session().await?;
        let engine = session.server.engine;
        let split = watch_filters(filters, engine);
        let path = format!(
            "{}/events?filters={}",
            session.prefix,
            query_filters(&split.ask, Some(("type", "container")))
        );
        let response = self
            .inner
            .transport
            .get(&path, self.inner.request_timeout)
            .await?;
        Ok(DockerWatch::new(
            response.body,
            response.conn,
            self.inner.transport.clone(),
            &self.inner.watch,
            engine,
            split.check,
        ))
    }

    fn server(&self) -> Option<String> {
        self.current().map(|s| s.server.to_string())
    }

    async fn list(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> Result<(), DockerError> {
        self.list_into(filters, sink).await
    }
}

/// Settings of a [`DockerSource`]; [`build`](Self::build) makes it (and
/// [`connect`](Self::connect) makes it and checks the daemon).
#[derive(Clone, Debug)]
#[must_use]
pub struct DockerSourceBuilder {
    host: DockerHost,
    connect_timeout: Duration,
    request_timeout: Duration,
    ping_interval: Duration,
    ping_timeout: Duration,
    max_body: usize,
    max_line: usize,
    api_version: Option<ApiVersion>,
    remote: RemoteSettings,
}

impl DockerSourceBuilder {
    fn new(host: DockerHost) -> Self {
        Self {
            host,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            max_line: DEFAULT_MAX_LINE,
            api_version: None,
            remote: RemoteSettings::default(),
        }
    }

    /// Speaks TLS to a `tcp://` daemon with these settings (ignored for a Unix socket).
    /// The builder starts without TLS; [`tls_from_env`](Self::tls_from_env) reads the
    /// `docker` CLI's environment.
    pub fn tls(mut self, tls: DockerTls) -> Self {
        self.remote.tls = Some(tls);
        self
    }

    /// More arguments for `ssh` on an `ssh://` host, before its own (`-i KEY`,
    /// `-F CONFIG`, `-o UserKnownHostsFile=FILE`...), as the `docker` CLI's ssh flags:
    /// the user's win over the defaults this source adds (`ConnectTimeout` from the
    /// connect timeout, `BatchMode=yes`).
    pub fn ssh_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.remote.ssh_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// TLS as the `docker` CLI's environment says: [`DockerTls::from_env`]
    /// (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`); no change when `DOCKER_TLS_VERIFY` is
    /// not set.
    pub fn tls_from_env(mut self) -> Self {
        if let Some(tls) = DockerTls::from_env() {
            self.remote.tls = Some(tls);
        }
        self
    }

    /// How long opening a connection may take (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long a list, a fetch, each request of the handshake, or opening the events
    /// stream may take, connection included (default 30 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The idle period of the events stream (default 10 s). After this long without an
    /// event the daemon is pinged on a second connection; a dead daemon is noticed within
    /// about this plus [`ping_timeout`](Self::ping_timeout). Bytes without a newline do not
    /// count: a line still incomplete this long after the watch began waiting for its end
    /// ends the watch ([`DockerError::LineStalled`]).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d;
        self
    }

    /// How long a `GET /_ping` may take, connection included (default 5 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d;
        self
    }

    /// The largest container list body accepted, in bytes ([`DEFAULT_MAX_BODY`], 1 GiB).
    /// The list is decoded as it arrives, so this bounds what a daemon may send and,
    /// with `max_line` and the container's own bounds (`container::MAX_LABELS_BYTES`,
    /// `container::MAX_KEPT_BYTES`), what a relist in progress holds.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The longest events line accepted, in bytes (default 1 MiB); a longer one ends
    /// the watch with [`DockerError::LineTooLong`]. It bounds one container of a list
    /// too ([`DockerError::ContainerTooLarge`]).
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// Speaks this API version whatever the daemon says it speaks (the engine is still
    /// asked for at each session, to read its events with its meaning).
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = Some(version);
        self
    }

    /// Makes the source, without contacting the daemon: its first watch (or list) asks
    /// it which engine and API versions it speaks. The TLS files (when TLS is set) are
    /// read now: a file that cannot be used is a mistake to fix, not a daemon to wait for.
    ///
    /// # Errors
    /// A TLS file that cannot be used ([`DockerError::TlsFile`]), or TLS asked for in a
    /// build without the `tls` feature ([`DockerError::TlsNotBuilt`]).
    pub fn build(self) -> Result<DockerSource, DockerError> {
        Ok(DockerSource {
            inner: Arc::new(Inner {
                transport: Transport::new(self.host, self.connect_timeout, &self.remote)?,
                pinned: self.api_version,
                session: Mutex::new(None),
                request_timeout: self.request_timeout,
                max_body: self.max_body,
                watch: WatchConfig {
                    max_line: self.max_line,
                    ping_interval: self.ping_interval,
                    ping_timeout: self.ping_timeout,
                },
            }),
        })
    }

    /// Makes the source and asks the daemon now which engine and API versions it speaks
    /// ([`DockerSource::handshake`]): for a caller that would rather fail at once than
    /// wait for the daemon.
    ///
    /// # Errors
    /// A TLS file that cannot be used, no daemon, no permission, TLS refused, a daemon too
    /// old, or one that does not say its version.
    pub async fn connect(self) -> Result<DockerSource, DockerError> {
        let source = self.build()?;
        source.handshake().await?;
        Ok(source)
    }
}

/// Docker's `filters` query value: `{"key":["value",...]}`, percent-encoded, with `extra`
/// added.
fn query_filters(filters: &Filters, extra: Option<(&str, &str)>) -> String {
    let mut map: BTreeMap<&str, Vec<&str>> = filters
        .keys()
        .map(|k| {
            let values = filters.get(k).into_iter().flatten().map(String::as_str);
            (k, values.collect())
        })
        .collect();
    if let Some((k, v)) = extra {
        let values = map.entry(k).or_default();
        if !values.contains(&v) {
            values.push(v);
        }
    }
    let json = serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned());
    utf8_percent_encode(&json, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_go_in_the_array_form_with_the_type() {
        let f = Filters::new().label("app=web").label("tier");
        let q = query_filters(&f, Some(("type", "container")));
        let decoded = percent_encoding::percent_decode_str(&q)
            .decode_utf8()
            .unwrap();
        assert_eq!(
            decoded,
            r#"{"label":["app=web","tier"],"type":["container"]}"#
        );
        assert!(!q.contains('"') && !q.contains('{'));
    }
}
