//! HTTP/1.1 requests to the daemon, one connection each, with hyper's low-level client over
//! a `tokio` Unix or TCP stream, TLS on TCP (`tls`), or the stdin and stdout of an
//! `ssh ... docker system dial-stdio` process (`ssh`).

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;

use crate::error::DockerError;
use crate::host::DockerHost;
use crate::ssh::SshCommand;
use crate::tls::{DockerTls, TlsConnector, TlsProblem};

/// How long a failed request waits for its connection's own error.
const CONN_ERROR_WAIT: Duration = Duration::from_secs(1);

/// How much of an error answer (`{"message": ...}`) is read for its message; the rest is
/// not read. Not configurable.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Where and how to send requests.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub(crate) host: DockerHost,
    pub(crate) endpoint: String,
    pub(crate) connect_timeout: Duration,
    dial: Dial,
}

/// How a connection is opened.
#[derive(Clone, Debug)]
enum Dial {
    Unix(std::path::PathBuf),
    /// With TLS when it is set, its files loaded.
    Tcp {
        addr: String,
        tls: Option<TlsConnector>,
    },
    /// One ssh process per connection.
    Ssh(SshCommand),
}

/// How to reach a daemon beyond its address: the builder's TLS and ssh settings.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteSettings {
    /// TLS for a `tcp://` host (ignored for the others).
    pub(crate) tls: Option<DockerTls>,
    /// Arguments for `ssh` before its own (an `ssh://` host).
    pub(crate) ssh_args: Vec<String>,
}

/// A response whose body is still arriving, with the task that drives its connection
/// (aborted when this is dropped).
pub(crate) struct Response {
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Incoming,
    pub(crate) conn: AbortOnDrop,
}

/// Aborts a task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Transport {
    /// A transport to `host`; loads the TLS files (a `tcp://` host with TLS settings).
    ///
    /// # Errors
    /// [`DockerError::TlsFile`] for a file that cannot be used, [`DockerError::TlsNotBuilt`]
    /// without the `tls` feature.
    pub(crate) fn new(
        host: DockerHost,
        connect_timeout: Duration,
        remote: &RemoteSettings,
    ) -> Result<Self, DockerError> {
        let endpoint = host.to_string();
        let dial = match &host {
            DockerHost::Tcp(addr) => Dial::Tcp {
                addr: addr.clone(),
                tls: match &remote.tls {
                    Some(settings) => Some(TlsConnector::new(settings, &endpoint)?),
                    None => None,
                },
            },
            DockerHost::Unix(path) => Dial::Unix(path.clone()),
            DockerHost::Ssh(ssh) => {
                Dial::Ssh(SshCommand::new(ssh, &remote.ssh_args, connect_timeout))
            }
        };
        if remote.tls.is_some() && !matches!(dial, Dial::Tcp { .. }) {
            tracing::debug!(%endpoint, "TLS settings ignored: not a tcp:// host");
        }
        Ok(Self {
            host,
            endpoint,
            connect_timeout,
            dial,
        })
    }

    /// Sends `GET path_and_query` on a new connection and waits (at most `timeout`, the
    /// connection included) for a success status and the headers.
    pub(crate) async fn get(
        &self,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<Response, DockerError> {
        let what = what(path_and_query);
        let response = self
            .within(timeout, &what, self.exchange(path_and_query))
            .await?;
        let status = response.status;
        if status.is_success() {
            return Ok(Response {
                headers: response.headers,
                body: response.body,
                conn: response.conn,
            });
        }
        let body = self
            .within(timeout, &what, async {
                read_body(response.body, MAX_ERROR_BODY, &self.endpoint, &what, true).await
            })
            .await
            .unwrap_or_default();
        let message = error_message(&body);
        Err(match status {
            // Go's answer to plain HTTP on a TLS port.
            StatusCode::BAD_REQUEST if message.contains("HTTP request to an HTTPS server") => {
                DockerError::Tls {
                    endpoint: self.endpoint.clone(),
                    problem: TlsProblem::TlsRequired,
                    detail: message,
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DockerError::Auth {
                endpoint: self.endpoint.clone(),
                status: status.as_u16(),
                message,
            },
            _ => DockerError::Status {
                endpoint: self.endpoint.clone(),
                what,
                status: status.as_u16(),
                message,
            },
        })
    }

    /// `GET`s and reads the whole body, at most `limit` bytes, within `timeout`.
    pub(crate) async fn get_body(
        &self,
        path_and_query: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<(http::HeaderMap, Bytes), DockerError> {
        let what = what(path_and_query);
        self.within(timeout, &what, async {
            let response = self.get(path_and_query, timeout).await?;
            let body = read_body(response.body, limit, &self.endpoint, &what, false).await?;
            drop(response.conn);
            Ok((response.headers, body))
        })
        .await
    }

    /// Runs `fut`, or fails with [`DockerError::Timeout`] after `limit`.
    pub(crate) async fn within<T>(
        &self,
        limit: Duration,
        what: &str,
        fut: impl Future<Output = Result<T, DockerError>>,
    ) -> Result<T, DockerError> {
        tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
            Err(DockerError::Timeout {
                what: what.to_owned(),
                endpoint: self.endpoint.clone(),
                after: limit,
            })
        })
    }

    async fn exchange(&self, path_and_query: &str) -> Result<RawResponse, DockerError> {
        let request = Request::get(path_and_query)
            .header(header::HOST, self.host.authority())
            .header(
                header::USER_AGENT,
                concat!("hypersh-docker/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| DockerError::InvalidHost {
                url: self.endpoint.clone(),
                reason: format!("cannot build a request for {path_and_query:?}: {e}"),
            })?;
        match &self.dial {
            Dial::Unix(path) => {
                let stream = self
                    .within(self.connect_timeout, "a connection", async {
                        UnixStream::connect(path)
                            .await
                            .map_err(|e| self.connect_error(e))
                    })
                    .await?;
                self.send(TokioIo::new(stream), request).await
            }
            Dial::Tcp { addr, tls } => {
                let stream = self
                    .within(self.connect_timeout, "a connection", async {
                        TcpStream::connect(addr.as_str())
                            .await
                            .map_err(|e| self.connect_error(e))
                    })
                    .await?;
                // Small requests and event lines: do not wait to fill packets.
                let _ = stream.set_nodelay(true);
                let Some(tls) = tls else {
                    return self.send(TokioIo::new(stream), request).await;
                };
                let host = host_of(addr);
                let stream = self
                    .within(
                        self.connect_timeout,
                        "a TLS handshake",
                        tls.handshake(host, stream, &self.endpoint),
                    )
                    .await?;
                self.send(TokioIo::new(stream), request)
                    .await
                    .map_err(|e| tls.explain(e, host))
            }
            Dial::Ssh(ssh) => {
                let (stream, stderr) = ssh.spawn(&self.endpoint)?;
                match self.send(TokioIo::new(stream), request).await {
                    Ok(response) => Ok(response),
                    Err(e) => Err(stderr.explain(e, &self.endpoint).await),
                }
            }
        }
    }

    async fn send<T>(
        &self,
        io: T,
        request: Request<Empty<Bytes>>,
    ) -> Result<RawResponse, DockerError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let http = |source| DockerError::Http {
            endpoint: self.endpoint.clone(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(http)?;
        let (failed, why) = tokio::sync::oneshot::channel();
        let conn = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "docker connection ended");
                let _ = failed.send(e);
            }
        }));
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            // The request's own error says why (an I/O error: the daemon's TLS alert,
            // a reset). Not the connection's: after a fatal alert its close fails too
            // (OpenSSL's "shutdown while in init"), and that says nothing.
            Err(e) if !says_only_that_the_connection_went_away(&e) => return Err(http(e)),
            Err(e) => {
                // The connection failed first (a TLS alert read before the request went
                // out): the request only says "not ready", the connection says why.
                let e = match tokio::time::timeout(CONN_ERROR_WAIT, why).await {
                    Ok(Ok(conn_error)) if !conn_error.is_shutdown() => conn_error,
                    _ => e,
                };
                return Err(http(e));
            }
        };
        let (parts, body) = response.into_parts();
        Ok(RawResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            conn,
        })
    }

    fn connect_error(&self, e: io::Error) -> DockerError {
        match (e.kind(), &self.host) {
            (io::ErrorKind::PermissionDenied, DockerHost::Unix(path)) => {
                DockerError::PermissionDenied { path: path.clone() }
            }
            (io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused, _) => {
                DockerError::NotRunning {
                    endpoint: self.endpoint.clone(),
                    source: e,
                }
            }
            _ => DockerError::Connect {
                endpoint: self.endpoint.clone(),
                source: e,
            },
        }
    }
}

struct RawResponse {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Incoming,
    conn: AbortOnDrop,
}

/// The host of `host:port` (`[::1]:2376` gives `::1`), which the daemon's certificate must
/// name.
fn host_of(authority: &str) -> &str {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `GET /path` without the query, for messages.
fn what(path_and_query: &str) -> String {
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    format!("GET {path}")
}

/// Whether a request's error only says that its connection went away before an answer
/// ("connection was not ready", "connection closed", the dispatch task gone), not why.
fn says_only_that_the_connection_went_away(error: &hyper::Error) -> bool {
    error.is_canceled() || error.is_user()
}

/// Reads a body up to `limit` bytes; past it, an error, or (with `truncate`) the first
/// `limit` bytes.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    endpoint: &str,
    what: &str,
    truncate: bool,
) -> Result<Bytes, DockerError> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| DockerError::Http {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > limit {
            if truncate {
                let room = limit - out.len();
                out.extend_from_slice(&data[..room]);
                break;
            }
            return Err(DockerError::BodyTooLarge {
                what: what.to_owned(),
                limit,
            });
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}

/// The `message` of Docker's `{"message": "..."}` error body, else its text.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(512)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(host: &str) -> Transport {
        let host = DockerHost::parse(host).unwrap();
        Transport::new(host, Duration::from_secs(1), &RemoteSettings::default()).unwrap()
    }

    /// Without the `tls` feature, asking for TLS is an error that names the feature; the
    /// settings are ignored for a socket, as with the feature.
    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_without_the_feature_says_which_feature() {
        let remote = RemoteSettings {
            tls: Some(DockerTls::new()),
            ..RemoteSettings::default()
        };
        let tcp = DockerHost::parse("tcp://127.0.0.1:2376").unwrap();
        match Transport::new(tcp, Duration::from_secs(1), &remote) {
            Err(e @ DockerError::TlsNotBuilt { .. }) => {
                assert!(e.to_string().contains("docker-tls feature"), "{e}");
            }
            other => panic!("{:?}", other.map(drop)),
        }
        let unix = DockerHost::parse("unix:///run/docker.sock").unwrap();
        assert!(Transport::new(unix, Duration::from_secs(1), &remote).is_ok());
    }

    #[test]
    fn the_certificate_is_checked_for_the_host_of_the_address() {
        assert_eq!(host_of("127.0.0.1:2376"), "127.0.0.1");
        assert_eq!(host_of("docker.example.com:2376"), "docker.example.com");
        assert_eq!(host_of("[::1]:2376"), "::1");
    }

    /// Root may open any socket, so this mapping is checked here rather than on a daemon.
    #[test]
    fn connect_errors_say_what_to_do() {
        let unix = transport("unix:///var/run/docker.sock");
        let denied = unix.connect_error(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(
            denied.to_string(),
            "permission denied on /var/run/docker.sock: run as root or join the docker group"
        );
        let missing = unix.connect_error(io::Error::from(io::ErrorKind::NotFound));
        assert!(
            missing.to_string().starts_with(
                "cannot connect to the Docker daemon at unix:///var/run/docker.sock: is dockerd running?"
            ),
            "{missing}"
        );
        let tcp = transport("tcp://127.0.0.1:2375");
        let refused = tcp.connect_error(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(refused, DockerError::NotRunning { .. }));
        let other = tcp.connect_error(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(other, DockerError::Connect { .. }));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"message":"no such container"}"#),
            "no such container"
        );
        assert_eq!(error_message(b"  plain text\n"), "plain text");
    }

    /// A connection whose reads fail once the request is written (as a daemon's TLS alert
    /// after it refused the client's certificate) and whose close fails too (OpenSSL's
    /// shutdown after a fatal alert).
    #[derive(Default)]
    struct RefusingConnection {
        written: bool,
        reader: Option<std::task::Waker>,
    }

    impl tokio::io::AsyncRead for RefusingConnection {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            _buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if self.written {
                return std::task::Poll::Ready(Err(io::Error::other("alert bad certificate")));
            }
            self.reader = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    }

    impl tokio::io::AsyncWrite for RefusingConnection {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.written = true;
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Err(io::Error::other("shutdown while in init")))
        }
    }

    /// The request's error (the alert) is the one given, not the failed close that
    /// follows it: the TLS tests classify the alert, and a close says nothing.
    #[tokio::test]
    async fn a_request_fails_with_its_own_error_not_the_failed_close() {
        let request = Request::get("/_ping")
            .header(header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let tcp = transport("tcp://127.0.0.1:2375");
        let sent = tcp.send(TokioIo::new(RefusingConnection::default()), request);
        let error = match tokio::time::timeout(Duration::from_secs(10), sent).await {
            Ok(Err(DockerError::Http { source, .. })) => source,
            Ok(other) => panic!("{:?}", other.map(|r| r.status)),
            Err(_) => panic!("no answer in 10 s"),
        };
        let text = format!("{error:?}");
        assert!(text.contains("alert bad certificate"), "{text}");
        assert!(!error.is_shutdown(), "{text}");
    }
}
