//! The signed client: `GET /containers/json` over HTTPS and `/events/ws` over a websocket,
//! both through one native-tls (OpenSSL) configuration.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::{ClientConfig, TlsMode};
use crate::container::Container;
use crate::error::Error;
use crate::filters::Filters;
use crate::list::ArraySplitter;
use crate::sign4;
use crate::stream::EventStream;

/// Characters left as they are in a query value: the unreserved set of RFC 3986.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A streaming list logs its progress every this many containers...
const LIST_PROGRESS_EVERY: usize = 10_000;
/// ...or when this long has passed since the last progress line.
const LIST_PROGRESS_PERIOD: Duration = Duration::from_secs(2);

/// A signed client for one API router. Cheap to clone.
///
/// ```no_run
/// use futures_util::StreamExt;
/// # // The facade `hypersh` re-exports these; this crate's doctests cannot depend on it.
/// # mod hypersh { pub use hypersh_watch::{Client, ClientConfig, Credentials, Filters}; }
/// use hypersh::{Client, ClientConfig, Credentials, Filters};
///
/// # async fn run() -> Result<(), hypersh_watch::Error> {
/// let config = ClientConfig::new("us-west-1.hyper.sh", Credentials::new("AK", "SK"))?;
/// let client = Client::new(config)?;
/// let running = client.list_containers(&Filters::new().status("running")).await?;
/// println!("{} running", running.len());
/// let mut events = client.watch(&Filters::new().event("start")).await?;
/// while let Some(event) = events.next().await {
///     match event {
///         Ok(e) => println!("{} {}", e.kind_str(), e.id()),
///         Err(e) if e.is_frame_error() => eprintln!("skipped: {e}"),
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    tls: native_tls::TlsConnector,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client and its TLS configuration. With
    /// [`TlsMode::InsecureSkipVerify`] a warning is logged once, here.
    ///
    /// # Errors
    /// [`Error::Tls`] when the CA PEM does not parse or TLS cannot be set up;
    /// [`Error::Http`] when the HTTP client cannot be built.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let mut tls = native_tls::TlsConnector::builder();
        match &config.tls {
            TlsMode::Verify => {}
            TlsMode::CustomCa(pem) => {
                tls.add_root_certificate(
                    native_tls::Certificate::from_pem(pem).map_err(Error::Tls)?,
                );
            }
            TlsMode::InsecureSkipVerify => {
                tracing::warn!(
                    endpoint = config.endpoint.authority(),
                    "TLS certificate verification is disabled (insecure_skip_verify): \
                     the connection can be intercepted"
                );
                tls.danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
        }
        let tls = tls.build().map_err(Error::Tls)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.clone())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(Error::Http)?;
        Ok(Self {
            inner: Arc::new(Inner { config, http, tls }),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Lists every container (`all=1`) that matches `filters` (list keys: `id`, `name`,
    /// `label`, `status`, `exited`, `ancestor`).
    ///
    /// # Errors
    /// [`Error::Auth`] for 401/403, [`Error::Status`] for other error statuses,
    /// [`Error::Timeout`], [`Error::Http`] for transport failures, [`Error::ListDecode`]
    /// when the body is not a JSON array of containers.
    pub async fn list_containers(&self, filters: &Filters) -> Result<Vec<Container>, Error> {
        let body = self.list_containers_raw(filters).await?;
        serde_json::from_slice(&body).map_err(Error::ListDecode)
    }

    /// Like [`Client::list_containers`], but decodes the body as it arrives and hands each
    /// container to `each` instead of collecting them: the whole list (or its body) is
    /// never in memory at once, so a relist of a large account into a full cache does not
    /// hold a second copy of it. Logs progress at info every 10 000 containers or 2 s.
    /// Returns how many containers were listed.
    ///
    /// When it fails, `each` may already have been called for the containers before the
    /// failure.
    ///
    /// # Errors
    /// As [`Client::list_containers`].
    pub async fn list_containers_into(
        &self,
        filters: &Filters,
        mut each: impl FnMut(Container),
    ) -> Result<usize, Error> {
        let mut response = self.send_list(filters).await?;
        let mut splitter = ArraySplitter::new();
        let mut count = 0usize;
        let started = Instant::now();
        let mut logged = started;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            splitter
                .feed(&chunk, |element| {
                    each(serde_json::from_slice(element)?);
                    count += 1;
                    if count.is_multiple_of(LIST_PROGRESS_EVERY)
                        || (count.is_multiple_of(1_000) && logged.elapsed() >= LIST_PROGRESS_PERIOD)
                    {
                        logged = Instant::now();
                        tracing::info!(containers = count, elapsed = ?started.elapsed(), "listing containers");
                    }
                    Ok(())
                })
                .map_err(Error::ListDecode)?;
        }
        splitter.finish().map_err(Error::ListDecode)?;
        Ok(count)
    }

    /// Like [`Client::list_containers`] but returns the body undecoded, for callers that
    /// decode it their own way.
    ///
    /// # Errors
    /// As [`Client::list_containers`], without [`Error::ListDecode`].
    pub async fn list_containers_raw(&self, filters: &Filters) -> Result<bytes::Bytes, Error> {
        self.send_list(filters)
            .await?
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))
    }

    /// Sends the signed list request; an error status is read and returned as an error.
    async fn send_list(&self, filters: &Filters) -> Result<reqwest::Response, Error> {
        let cfg = &self.inner.config;
        let mut path = cfg.path("/containers/json");
        path.push_str("?all=1");
        if let Some(f) = filters.query_value() {
            path.push_str("&filters=");
            path.extend(utf8_percent_encode(&f, QUERY_VALUE));
        }
        let url = cfg.endpoint.http_url(&path);
        let headers = self.signed_headers(&Method::GET, &url)?;
        let response = self
            .inner
            .http
            .get(&url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(e))?;
            return Err(Error::from_status(status.as_u16(), &body));
        }
        Ok(response)
    }

    /// Opens the signed websocket `/events/ws?filters=...` and returns the stream of
    /// events. The stream pings the server every `ping_interval` and ends with
    /// [`Error::Idle`] when nothing arrives for `idle_timeout`.
    ///
    /// # Errors
    /// [`Error::Auth`] when the upgrade is refused with 401/403, [`Error::Status`] for
    /// 400/429/5xx, [`Error::Timeout`] when connecting and the handshake take longer than
    /// `connect_timeout`, [`Error::WebSocket`] for other failures (refused, TLS).
    pub async fn watch(&self, filters: &Filters) -> Result<EventStream, Error> {
        let cfg = &self.inner.config;
        let mut path = cfg.path("/events/ws");
        if let Some(f) = filters.query_value() {
            path.push_str("?filters=");
            path.extend(utf8_percent_encode(&f, QUERY_VALUE));
        }
        let url = cfg.endpoint.ws_url(&path);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Config(format!("websocket URL {url}: {e}")))?;
        let uri = request.uri().clone();
        self.sign(&Method::GET, &uri, request.headers_mut())?;

        let ws_config = WebSocketConfig::default()
            .max_frame_size(Some(cfg.max_frame_size))
            .max_message_size(Some(cfg.max_frame_size));
        let connector = if cfg.endpoint.is_secure() {
            Connector::NativeTls(self.inner.tls.clone())
        } else {
            Connector::Plain
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(ws_config),
            true,
            Some(connector),
        );
        let (ws, _response) = match tokio::time::timeout(cfg.connect_timeout, connect).await {
            Err(_) => {
                return Err(Error::Timeout {
                    what: "websocket handshake",
                    after: cfg.connect_timeout,
                });
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                let body = response.body().as_deref().unwrap_or_default();
                return Err(Error::from_status(response.status().as_u16(), body));
            }
            Ok(Err(e)) => return Err(Error::WebSocket(Box::new(e))),
            Ok(Ok(pair)) => pair,
        };
        tracing::debug!(%url, "watch connected");
        Ok(EventStream::new(ws, cfg.ping_interval, cfg.idle_timeout))
    }

    fn signed_headers(&self, method: &Method, url: &str) -> Result<HeaderMap, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::Config(format!("request URL {url}: {e}")))?;
        let mut headers = HeaderMap::new();
        self.sign(method, &uri, &mut headers)?;
        Ok(headers)
    }

    fn sign(&self, method: &Method, uri: &Uri, headers: &mut HeaderMap) -> Result<(), Error> {
        let cfg = &self.inner.config;
        sign4::sign(
            method,
            uri,
            headers,
            b"",
            &cfg.credentials,
            &cfg.region,
            SystemTime::now(),
        )?;
        Ok(())
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                what: "list request",
                after: self.inner.config.request_timeout,
            }
        } else {
            Error::Http(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;

    #[test]
    fn query_values_are_fully_encoded() {
        let f = Filters::new().label("a=b c");
        let encoded: String = utf8_percent_encode(&f.to_json(), QUERY_VALUE).collect();
        assert_eq!(encoded, "%7B%22label%22%3A%7B%22a%3Db%20c%22%3Atrue%7D%7D");
    }

    #[test]
    fn a_bad_custom_ca_is_a_tls_error() {
        let cfg = ClientConfig::new("127.0.0.1:1", Credentials::new("ak", "sk"))
            .unwrap()
            .tls(TlsMode::CustomCa(b"not a pem".to_vec()));
        assert!(matches!(Client::new(cfg), Err(Error::Tls(_))));
    }

    #[tokio::test]
    async fn a_refused_connection_is_reported_not_panicked() {
        // Port 1 on loopback is closed on any sane machine.
        let cfg = ClientConfig::new("http://127.0.0.1:1", Credentials::new("ak", "sk")).unwrap();
        let client = Client::new(cfg).unwrap();
        assert!(matches!(
            client.watch(&Filters::new()).await,
            Err(Error::WebSocket(_))
        ));
        assert!(matches!(
            client.list_containers(&Filters::new()).await,
            Err(Error::Http(_))
        ));
    }
}
