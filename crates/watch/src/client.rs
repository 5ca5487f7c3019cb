//! The signed client: `GET /containers/json` over HTTPS and `/events/ws` over a websocket,
//! both through one native-tls (OpenSSL) configuration.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::{ClientConfig, TlsMode, WEBSOCKET_READ_BUFFER};
use crate::container::Container;
use crate::error::Error;
use crate::filters::Filters;
use crate::list::{ArraySplitter, SplitError};
use crate::sign4;
use crate::stream::EventStream;
use serde::de::Error as _;

/// Characters left as they are in a query value: the unreserved set of RFC 3986.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How much of an error response's body is read, for its message.
const ERROR_BODY_MAX: usize = 64 * 1024;

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
    /// Renewed by [`Client::reset_connections`].
    http: std::sync::RwLock<reqwest::Client>,
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
        let http = std::sync::RwLock::new(build_http(&config, &tls)?);
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
    /// As [`Client::list_containers_into`].
    pub async fn list_containers(&self, filters: &Filters) -> Result<Vec<Container>, Error> {
        let mut out = Vec::new();
        self.list_containers_into(filters, |c| out.push(c)).await?;
        Ok(out)
    }

    /// Like [`Client::list_containers`], but decodes the body as it arrives and hands each
    /// container to `each` instead of collecting them: the whole list (or its body) is
    /// never in memory at once, so a relist of a large account into a full cache does not
    /// hold a second copy of it. Logs progress at info every 10 000 containers or 2 s.
    /// Returns how many containers were listed.
    ///
    /// The response is bounded: no bytes for [`ClientConfig::list_progress_timeout`]
    /// fail it, as do more than [`ClientConfig::max_list_containers`] containers or
    /// [`ClientConfig::max_list_bytes`] bytes, or one container larger than
    /// [`ClientConfig::max_frame_size`].
    ///
    /// When it fails, `each` may already have been called for the containers before the
    /// failure.
    ///
    /// # Errors
    /// [`Error::Auth`] for 401/403, [`Error::Redirect`] for 3xx, [`Error::Status`] for
    /// other error statuses, [`Error::Timeout`] (overall or without progress),
    /// [`Error::Http`] for transport failures, [`Error::ListDecode`] when the body is not
    /// a JSON array of containers, [`Error::ListTooLarge`], [`Error::ListBodyTooLarge`].
    pub async fn list_containers_into(
        &self,
        filters: &Filters,
        mut each: impl FnMut(Container),
    ) -> Result<usize, Error> {
        let cfg = &self.inner.config;
        let mut response = self.send_list(filters).await?;
        let mut splitter = ArraySplitter::new(cfg.max_frame_size).max_bytes(cfg.max_list_bytes);
        let mut count = 0usize;
        let started = Instant::now();
        let mut logged = started;
        while let Some(chunk) = self.progress(response.chunk()).await? {
            splitter
                .feed(&chunk, |element| {
                    if count >= cfg.max_list_containers {
                        return Err(ListStop::TooMany);
                    }
                    each(Container::from_list_element(element).map_err(ListStop::Decode)?);
                    count += 1;
                    if count.is_multiple_of(LIST_PROGRESS_EVERY)
                        || (count.is_multiple_of(1_000) && logged.elapsed() >= LIST_PROGRESS_PERIOD)
                    {
                        logged = Instant::now();
                        tracing::info!(containers = count, elapsed = ?started.elapsed(), "listing containers");
                    }
                    Ok(())
                })
                .map_err(|stop| stop.into_error(cfg))?;
        }
        splitter
            .finish()
            .map_err(|e| ListStop::Split(e).into_error(cfg))?;
        Ok(count)
    }

    /// Forgets every pooled HTTP connection: the next request opens a new one. The
    /// reflector calls it after a failed session, so that a list is never sent on a
    /// connection from before the failure, which may be half dead.
    pub fn reset_connections(&self) {
        match build_http(&self.inner.config, &self.inner.tls) {
            Ok(http) => {
                *self
                    .inner
                    .http
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = http;
            }
            // The same settings built the first one: this does not happen in practice.
            Err(e) => tracing::warn!(error = %e, "could not renew the HTTP connections"),
        }
    }

    /// The HTTP client (and its pool) of the moment.
    fn http(&self) -> reqwest::Client {
        self.inner
            .http
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits for `step` of a list response, at most the progress timeout.
    async fn progress<T>(
        &self,
        step: impl Future<Output = Result<T, reqwest::Error>>,
    ) -> Result<T, Error> {
        let after = self.inner.config.list_progress_timeout;
        match tokio::time::timeout(after, step).await {
            Ok(r) => r.map_err(|e| self.transport_error(e)),
            Err(_) => Err(Error::Timeout {
                what: "list response (no progress)",
                after,
            }),
        }
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
            .progress(self.http().get(&url).headers(headers).send())
            .await?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            return Err(Error::Redirect {
                status: status.as_u16(),
                location,
            });
        }
        if !status.is_success() {
            let body = self.error_body(response).await?;
            return Err(Error::from_status(status.as_u16(), &body));
        }
        Ok(response)
    }

    /// The start of an error response's body (at most [`ERROR_BODY_MAX`] bytes).
    async fn error_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        while body.len() < ERROR_BODY_MAX {
            match self.progress(response.chunk()).await? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(ERROR_BODY_MAX);
        Ok(body)
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
            .read_buffer_size(WEBSOCKET_READ_BUFFER)
            .max_frame_size(Some(cfg.max_frame_size))
            .max_message_size(Some(cfg.max_frame_size));
        let connector = if cfg.endpoint.is_secure() {
            Connector::NativeTls(self.inner.tls.clone())
        } else {
            Connector::Plain
        };
        let addr = cfg.endpoint.socket_addr();
        let keepalive = cfg.tcp_keepalive;
        let connect = async move {
            let tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            tcp.set_nodelay(true)
                .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            socket2::SockRef::from(&tcp)
                .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(keepalive))
                .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            tokio_tungstenite::client_async_tls_with_config(
                request,
                tcp,
                Some(ws_config),
                Some(connector),
            )
            .await
        };
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

    /// Signs a request with a fresh nonce: two requests of one second never share a
    /// signature, so a server that refuses replays serves both.
    fn sign(&self, method: &Method, uri: &Uri, headers: &mut HeaderMap) -> Result<(), Error> {
        let cfg = &self.inner.config;
        headers.insert(sign4::NONCE_HEADER, sign4::nonce()?);
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

/// Why a streamed list stopped early.
enum ListStop {
    Split(SplitError),
    Decode(serde_json::Error),
    TooMany,
}

impl From<SplitError> for ListStop {
    fn from(e: SplitError) -> Self {
        Self::Split(e)
    }
}

impl ListStop {
    fn into_error(self, cfg: &ClientConfig) -> Error {
        match self {
            Self::TooMany => Error::ListTooLarge {
                limit: cfg.max_list_containers,
            },
            Self::Decode(e) => Error::ListDecode(e),
            Self::Split(SplitError::ListTooLarge { limit }) => Error::ListBodyTooLarge { limit },
            Self::Split(SplitError::ElementTooLarge { limit }) => {
                Error::ListDecode(serde_json::Error::custom(format_args!(
                    "a list element is larger than {limit} bytes (ClientConfig::max_frame_size)"
                )))
            }
            Self::Split(e) => Error::ListDecode(serde_json::Error::custom(e)),
        }
    }
}

/// The HTTP client of the list calls: no redirects (a signed API does not redirect),
/// TCP keepalive, the connect and overall timeouts.
fn build_http(
    config: &ClientConfig,
    tls: &native_tls::TlsConnector,
) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .tcp_keepalive(Some(config.tcp_keepalive))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(Error::Http)
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
    fn the_same_request_twice_in_one_second_signs_differently_and_verifies() {
        let cfg =
            ClientConfig::new("https://127.0.0.1:8443", Credentials::new("ak", "sk")).unwrap();
        let client = Client::new(cfg).unwrap();
        let url = "https://127.0.0.1:8443/containers/json?all=1";
        let mut keys = std::collections::HashMap::new();
        keys.insert("ak".to_owned(), crate::credentials::SecretKey::new("sk"));
        let target: Uri = "/containers/json?all=1".parse().unwrap();
        // A second boundary may fall between two signings, never between all three pairs
        // of four taken back to back: some pair shares its X-Hyper-Date.
        let signed: Vec<HeaderMap> = (0..4)
            .map(|_| client.signed_headers(&Method::GET, url).unwrap())
            .collect();
        let date = |h: &HeaderMap| h[sign4::DATE_HEADER].clone();
        assert!(signed.windows(2).any(|w| date(&w[0]) == date(&w[1])));
        for (i, a) in signed.iter().enumerate() {
            let auth = a[http::header::AUTHORIZATION].to_str().unwrap();
            assert!(
                auth.contains("x-hyper-nonce"),
                "the nonce is signed: {auth}"
            );
            let now = SystemTime::now();
            assert_eq!(
                sign4::verify(&Method::GET, &target, a, b"", &keys, now),
                Ok("ak".to_owned())
            );
            for b in &signed[i + 1..] {
                assert_ne!(
                    a[http::header::AUTHORIZATION],
                    b[http::header::AUTHORIZATION]
                );
            }
        }
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
