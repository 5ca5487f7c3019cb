//! [`DockerError`]: what can go wrong talking to a Docker daemon, each variant saying what
//! to do about it.

use std::path::PathBuf;
use std::time::Duration;

use hypersh_reflector::SourceError;
use hypersh_watch::event::DecodeError;

use crate::ssh::SshProblem;
use crate::tls::TlsProblem;
use crate::version::ApiVersion;

/// An error of the Docker source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// The daemon address is not one this source can use.
    #[error("invalid Docker host {url:?}: {reason}")]
    InvalidHost {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing listens at the address (no socket file, or the connection is refused).
    #[error("cannot connect to the Docker daemon at {endpoint}: is dockerd running? ({source})")]
    NotRunning {
        /// The daemon address.
        endpoint: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on {}: run as root or join the docker group",
        path.display()
    )]
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
    },
    /// Any other failure to connect.
    #[error("cannot connect to the Docker daemon at {endpoint}: {source}")]
    Connect {
        /// The daemon address.
        endpoint: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// TLS with a `tcp://` daemon failed: the problem says what to do, the detail is
    /// OpenSSL's own text.
    #[error("TLS with the Docker daemon at {endpoint} failed: {problem}: {detail}")]
    Tls {
        /// The daemon address.
        endpoint: String,
        /// What went wrong.
        problem: TlsProblem,
        /// OpenSSL's error text.
        detail: String,
    },
    /// A TLS file (CA, client certificate or key) cannot be used.
    #[error("cannot use the TLS file {}: {reason}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TLS was asked for (`DOCKER_TLS_VERIFY`, or the builder's `tls`) and this build has
    /// no TLS support.
    #[error(
        "TLS to the Docker daemon at {endpoint} was asked for (DOCKER_TLS_VERIFY), and this build has none: enable the docker-tls feature of hypersh (tls of hypersh-docker)"
    )]
    TlsNotBuilt {
        /// The daemon address.
        endpoint: String,
    },
    /// The `ssh` process of an `ssh://` host failed: the problem says what to do, `stderr`
    /// is what ssh said (its last 4 KiB).
    #[error("ssh to the Docker host {endpoint} failed: {problem}{}", said(stderr))]
    Ssh {
        /// The daemon address (`ssh://user@host:port`).
        endpoint: String,
        /// What went wrong.
        problem: SshProblem,
        /// ssh's stderr (or why it did not start).
        stderr: String,
    },
    /// A step took longer than its limit (see the builder's timeouts).
    #[error("timed out after {after:?} waiting for {what} from the Docker daemon at {endpoint}")]
    Timeout {
        /// What was awaited (`connect`, `GET /_ping`, ...).
        what: String,
        /// The daemon address.
        endpoint: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The HTTP exchange failed (the connection broke, or the daemon is not speaking HTTP).
    #[error("HTTP error talking to the Docker daemon at {endpoint}: {source}")]
    Http {
        /// The daemon address.
        endpoint: String,
        /// The hyper error.
        #[source]
        source: hyper::Error,
    },
    /// A TCP proxy in front of the daemon refused the request (HTTP 401 or 403):
    /// check the proxy's credentials.
    #[error("authentication failed (HTTP {status}) at {endpoint}: {message}")]
    Auth {
        /// The daemon address.
        endpoint: String,
        /// 401 or 403.
        status: u16,
        /// The `message` of the answer, or its text.
        message: String,
    },
    /// The daemon answered with another error status.
    #[error("the Docker daemon at {endpoint} answered {what} with HTTP {status}: {message}")]
    Status {
        /// The daemon address.
        endpoint: String,
        /// The request (`GET /containers/json`).
        what: String,
        /// The HTTP status.
        status: u16,
        /// The `message` of the answer, or its text.
        message: String,
    },
    /// The daemon's API is older than this source supports: upgrade the engine.
    #[error(
        "the Docker daemon speaks API {server}, older than {minimum}, the oldest this client supports: upgrade Docker"
    )]
    ApiTooOld {
        /// What the daemon speaks.
        server: ApiVersion,
        /// The oldest supported.
        minimum: ApiVersion,
    },
    /// The daemon's version could not be read (`Api-Version` header, `/version`).
    #[error("cannot read the Docker API version {value:?}: is this a Docker daemon?")]
    BadVersion {
        /// What was read.
        value: String,
    },
    /// A response body is larger than the limit (see the builder's `max_body`).
    #[error("the answer to {what} is larger than {limit} bytes (raise max_body)")]
    BodyTooLarge {
        /// The request.
        what: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// One container of the list is larger than the limit (see the builder's `max_line`,
    /// which bounds one listed container as it bounds one event line).
    #[error("a container in the list is larger than {limit} bytes (raise max_line)")]
    ContainerTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The container list is not the JSON array of containers Docker sends.
    #[error("cannot decode the container list: {0}")]
    List(#[source] serde_json::Error),
    /// One line of the events stream is longer than the limit: the stream ends (the
    /// reflector reconnects and relists). See the builder's `max_line`.
    #[error("an events line is longer than {limit} bytes (raise max_line)")]
    LineTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// An events line stayed incomplete for the ping interval while the watch waited for
    /// its end. The daemon writes each line at once, so the stream is stuck (dead, or a
    /// hostile peer dribbling bytes): it ends, and the reflector reconnects and relists.
    /// See the builder's `ping_interval`.
    #[error(
        "an events line from the Docker daemon at {endpoint} stayed incomplete for {after:?} (ping_interval): the stream is stuck"
    )]
    LineStalled {
        /// The daemon address.
        endpoint: String,
        /// How long the line waited: the ping interval.
        after: Duration,
    },
    /// One event line could not be decoded; the stream goes on.
    #[error("could not decode event line: {0}")]
    Frame(#[source] DecodeError),
    /// The daemon ended the events stream (it stops or restarts): reconnect and relist.
    #[error("the Docker daemon at {endpoint} ended the events stream (stopping or restarting?)")]
    StreamEnded {
        /// The daemon address.
        endpoint: String,
    },
    /// The events stream brought no event for the ping interval and the daemon did not
    /// answer `GET /_ping` on a second connection: it is taken for dead, and the watch
    /// ends.
    #[error("the Docker daemon at {endpoint} stopped answering /_ping: {source}")]
    Unresponsive {
        /// The daemon address.
        endpoint: String,
        /// Why the ping failed.
        #[source]
        source: Box<DockerError>,
    },
}

impl DockerError {
    /// Whether this is an authentication failure: HTTP 401/403 from a proxy, the daemon
    /// refusing (or wanting) a TLS client certificate, or ssh refusing the login or the
    /// host's key.
    #[must_use]
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::Auth { .. }
                | Self::Tls {
                    problem: TlsProblem::ClientCertRequired | TlsProblem::ClientCertRefused { .. },
                    ..
                }
                | Self::Ssh {
                    problem: SshProblem::AuthRefused | SshProblem::HostKeyRefused,
                    ..
                }
        )
    }

    /// Whether the error concerns one event line only (the stream goes on).
    #[must_use]
    pub fn is_frame_error(&self) -> bool {
        matches!(self, Self::Frame(_))
    }
}

/// `: ssh said: ...` when ssh said something.
fn said(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; ssh said: {stderr}")
    }
}

impl SourceError for DockerError {
    fn is_auth(&self) -> bool {
        DockerError::is_auth(self)
    }

    fn is_frame_error(&self) -> bool {
        DockerError::is_frame_error(self)
    }
}
