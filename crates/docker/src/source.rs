//! [`DockerSource`]: the reflector's [`Source`] on a Docker Engine.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hypersh_reflector::Source;
use hypersh_watch::{Container, Filters};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserializer as _;
use serde::de::{SeqAccess, Visitor};

use crate::error::DockerError;
use crate::events::{DockerWatch, WatchConfig};
use crate::host::DockerHost;
use crate::transport::Transport;
use crate::version::ApiVersion;

/// Default of [`DockerSourceBuilder::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`DockerSourceBuilder::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`DockerSourceBuilder::ping_interval`].
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);
/// Default of [`DockerSourceBuilder::ping_timeout`].
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`DockerSourceBuilder::max_body`]: 64 MiB, some 30 000 containers.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;
/// Default of [`DockerSourceBuilder::max_line`]: 1 MiB (an event is well under 1 KiB
/// unless its container has very many labels).
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

/// A Docker Engine (or a Docker-compatible service) as a [`Source`] for the reflector:
/// `GET /containers/json?all=1` and the `GET /events` stream, over a Unix socket or plain
/// TCP, one HTTP/1.1 connection per request.
///
/// Cheap to clone; clones share their settings.
#[derive(Clone)]
pub struct DockerSource {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    version: ApiVersion,
    /// `/v1.41`.
    prefix: String,
    request_timeout: Duration,
    max_body: usize,
    watch: WatchConfig,
}

impl fmt::Debug for DockerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerSource")
            .field("endpoint", &self.inner.transport.endpoint)
            .field("api_version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

impl DockerSource {
    /// Connects to the daemon at `url` (`unix:///var/run/docker.sock`, `tcp://host:2375`)
    /// with the default settings and negotiates the API version.
    ///
    /// # Errors
    /// A bad URL, no daemon ([`DockerError::NotRunning`]), no permission
    /// ([`DockerError::PermissionDenied`]), or a daemon too old ([`DockerError::ApiTooOld`]).
    pub async fn connect(url: &str) -> Result<Self, DockerError> {
        Self::builder(DockerHost::parse(url)?).connect().await
    }

    /// As [`connect`](Self::connect), to `DOCKER_HOST` when it is set, else to
    /// [`DEFAULT_HOST`](crate::DEFAULT_HOST).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn from_env() -> Result<Self, DockerError> {
        Self::builder(DockerHost::from_env()?).connect().await
    }

    /// A builder for a source on `host`, to change the timeouts and limits.
    pub fn builder(host: DockerHost) -> DockerSourceBuilder {
        DockerSourceBuilder::new(host)
    }

    /// The API version requests are made with.
    #[must_use]
    pub fn api_version(&self) -> ApiVersion {
        self.inner.version
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

    fn list_path(&self, filters: &Filters) -> String {
        let mut path = format!("{}/containers/json?all=1", self.inner.prefix);
        if !filters.is_empty() {
            path.push_str("&filters=");
            path.push_str(&query_filters(filters, None));
        }
        path
    }

    /// Lists into `sink` (see [`Source::list`]).
    async fn list_into(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> Result<(), DockerError> {
        let (_, body) = self
            .inner
            .transport
            .get_body(
                &self.list_path(filters),
                self.inner.request_timeout,
                self.inner.max_body,
            )
            .await?;
        decode_list(&body, sink).map_err(DockerError::List)
    }
}

impl Source for DockerSource {
    type Error = DockerError;
    type Watch = DockerWatch;

    fn endpoint(&self) -> String {
        self.inner.transport.endpoint.clone()
    }

    async fn watch(&self, filters: &Filters) -> Result<DockerWatch, DockerError> {
        let path = format!(
            "{}/events?filters={}",
            self.inner.prefix,
            query_filters(filters, Some(("type", "container")))
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
        ))
    }

    async fn list(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> Result<(), DockerError> {
        self.list_into(filters, sink).await
    }
}

/// Settings of a [`DockerSource`]; [`connect`](Self::connect) makes it.
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
        }
    }

    /// How long opening a connection may take (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long a list, a fetch, the version check, or opening the events stream may take,
    /// connection included (default 30 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// How long the events stream may stay silent before the daemon is pinged on a second
    /// connection (default 10 s). A dead daemon is noticed within about this plus
    /// [`ping_timeout`](Self::ping_timeout).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d;
        self
    }

    /// How long a `GET /_ping` may take, connection included (default 5 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d;
        self
    }

    /// The largest container list body accepted, in bytes (default 64 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The longest events line accepted, in bytes (default 1 MiB); a longer one ends
    /// the watch with [`DockerError::LineTooLong`].
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// Uses this API version instead of asking the daemon: [`connect`](Self::connect)
    /// then needs no daemon.
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = Some(version);
        self
    }

    /// Negotiates the API version (unless one was set) and makes the source.
    ///
    /// # Errors
    /// No daemon, no permission, a daemon too old, or one that does not say its version.
    pub async fn connect(self) -> Result<DockerSource, DockerError> {
        let transport = Transport {
            endpoint: self.host.to_string(),
            host: self.host,
            connect_timeout: self.connect_timeout,
        };
        let version = match self.api_version {
            Some(v) => v,
            None => ApiVersion::negotiate(server_version(&transport, self.request_timeout).await?)?,
        };
        tracing::debug!(endpoint = %transport.endpoint, %version, "docker API version");
        Ok(DockerSource {
            inner: Arc::new(Inner {
                transport,
                prefix: format!("/v{version}"),
                version,
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
}

/// The daemon's API version: the `Api-Version` header of `GET /_ping`, else the
/// `ApiVersion` of `GET /version`.
async fn server_version(
    transport: &Transport,
    timeout: Duration,
) -> Result<ApiVersion, DockerError> {
    let (headers, _) = transport.get_body("/_ping", timeout, 1024).await?;
    if let Some(v) = headers.get("api-version") {
        return ApiVersion::parse(v.to_str().unwrap_or_default());
    }
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(rename = "ApiVersion")]
        api_version: String,
    }
    let (_, body) = transport.get_body("/version", timeout, 64 * 1024).await?;
    let version: Version = serde_json::from_slice(&body).map_err(|_| DockerError::BadVersion {
        value: String::from_utf8_lossy(&body).chars().take(32).collect(),
    })?;
    ApiVersion::parse(&version.api_version)
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

/// Decodes a JSON array of containers, handing each to `sink` as it is decoded (no
/// `Vec` of them all).
fn decode_list(body: &[u8], sink: impl FnMut(Container)) -> Result<(), serde_json::Error> {
    struct Each<F>(F);
    impl<'de, F: FnMut(Container)> Visitor<'de> for Each<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array of containers")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(c) = seq.next_element::<Container>()? {
                (self.0)(c);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    (&mut de).deserialize_seq(Each(sink))?;
    de.end()
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

    #[test]
    fn the_list_decodes_one_container_at_a_time() {
        let body = br#"[{"Id":"a","Names":["/x"],"State":"running","Labels":{"k":"v"}},
            {"Id":"b","State":"exited","Labels":{}}]"#;
        let mut got = Vec::new();
        decode_list(body, |c| got.push(c)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label("k"), Some("v"));
        assert!(decode_list(b"{}", |_| {}).is_err());
        assert!(decode_list(b"[1]", |_| {}).is_err());
        assert!(decode_list(b"[] x", |_| {}).is_err());
    }
}
