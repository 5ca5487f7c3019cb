//! The error type of the client: variants a user can act on, sources kept.

use std::time::Duration;

use crate::event::DecodeError;
use crate::filters::FilterError;
use crate::sign4::SignError;

/// What can go wrong talking to the API router.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the credentials or the signature (HTTP 401 or 403). Check the
    /// access key, the secret key, the region and the local clock (signatures older than
    /// five minutes are refused).
    #[error("authentication failed (HTTP {status}): {message}")]
    Auth {
        /// 401 or 403.
        status: u16,
        /// The server's `message`, or its body.
        message: String,
    },
    /// The server answered with another error status: 400 (bad filters), 429 (too many
    /// connections), 5xx.
    #[error("request rejected (HTTP {status}): {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `message`, or the start of its body.
        message: String,
    },
    /// The TLS set-up failed (bad CA file, ...).
    #[error("TLS configuration: {0}")]
    Tls(#[source] native_tls::Error),
    /// The configuration is unusable (bad endpoint, bad header value, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The filters are invalid.
    #[error(transparent)]
    Filters(#[from] FilterError),
    /// The request could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Connecting, the handshake or the list request took too long.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out (`websocket handshake`, `list request`).
        what: &'static str,
        /// The configured limit.
        after: Duration,
    },
    /// No whole message (an event, or a pong) arrived within the idle timeout: the
    /// connection is considered dead and the stream ends. Bytes of a frame that has not
    /// completed do not count, so a peer that dribbles a frame ends here too.
    #[error("no frame received for {0:?} (idle_timeout): connection considered dead")]
    Idle(Duration),
    /// One frame could not be decoded. The stream goes on.
    #[error("could not decode event frame ({source}): {frame}")]
    Decode {
        /// Why.
        #[source]
        source: DecodeError,
        /// The start of the frame (at most 256 bytes), for the log.
        frame: String,
    },
    /// A binary frame arrived where text frames are expected. The stream goes on.
    #[error("unexpected binary frame of {0} bytes")]
    BinaryFrame(usize),
    /// The server answered with a redirect. A signed API does not redirect, and the
    /// signature would not cover the other host: check the endpoint.
    #[error(
        "HTTP {status} redirect to {location:?} refused: a signed API does not redirect; check the endpoint"
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` the server gave (or empty).
        location: String,
    },
    /// The list holds more containers than [`ClientConfig::max_list_containers`]
    /// allows (an account that large, or a server that never ends its list).
    ///
    /// [`ClientConfig::max_list_containers`]: crate::ClientConfig::max_list_containers
    #[error(
        "the list holds more than {limit} containers: raise ClientConfig::max_list_containers if the account is that large"
    )]
    ListTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The list response carries more bytes than [`ClientConfig::max_list_bytes`]
    /// allows (an account that large, or a server that never ends its list).
    ///
    /// [`ClientConfig::max_list_bytes`]: crate::ClientConfig::max_list_bytes
    #[error(
        "the list is larger than {limit} bytes: raise ClientConfig::max_list_bytes if the account is that large"
    )]
    ListBodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The list response is not a JSON array of containers.
    #[error("could not decode the container list: {0}")]
    ListDecode(#[source] serde_json::Error),
    /// A websocket-level failure (connection reset, protocol violation, frame over the
    /// size cap). The stream ends after it.
    #[error("websocket: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// An HTTP transport failure on the list call (connection refused, TLS, reset).
    #[error("HTTP: {0}")]
    Http(#[source] reqwest::Error),
}

impl Error {
    /// True for [`Error::Auth`].
    #[must_use]
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Auth { .. })
    }

    /// True for errors that concern one frame only: the stream goes on after them.
    #[must_use]
    pub fn is_frame_error(&self) -> bool {
        matches!(self, Self::Decode { .. } | Self::BinaryFrame(_))
    }

    pub(crate) fn decode(source: DecodeError, frame: &[u8]) -> Self {
        const MAX: usize = 256;
        let cut = &frame[..frame.len().min(MAX)];
        Self::Decode {
            source,
            frame: String::from_utf8_lossy(cut).into_owned(),
        }
    }

    /// Builds the error for a failed HTTP exchange from its status and body.
    pub(crate) fn from_status(status: u16, body: &[u8]) -> Self {
        let message = server_message(body);
        if status == 401 || status == 403 {
            Self::Auth { status, message }
        } else {
            Self::Status { status, message }
        }
    }
}

/// The `message` of a JSON error body, else the start of the body as text.
fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: String,
    }
    if let Ok(b) = serde_json::from_slice::<Body>(body) {
        return b.message;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_statuses_become_auth_errors_with_the_server_message() {
        let e = Error::from_status(403, br#"{"message":"invalid signature"}"#);
        assert!(e.is_auth());
        assert_eq!(
            e.to_string(),
            "authentication failed (HTTP 403): invalid signature"
        );
        assert!(Error::from_status(401, b"").is_auth());
    }

    #[test]
    fn other_statuses_keep_the_start_of_an_html_body() {
        let html = format!("<html><body>{}</body></html>", "x".repeat(1000));
        let e = Error::from_status(502, html.as_bytes());
        assert!(!e.is_auth());
        let text = e.to_string();
        assert!(text.starts_with("request rejected (HTTP 502): <html><body>xxx"));
        assert!(text.len() < 260, "body is cut: {}", text.len());
        assert_eq!(
            Error::from_status(429, b"").to_string(),
            "request rejected (HTTP 429): (empty body)"
        );
    }

    #[test]
    fn decode_errors_cut_the_frame() {
        let frame = vec![b'a'; 10_000];
        let e = Error::decode(DecodeError::MissingId, &frame);
        assert!(e.is_frame_error());
        let Error::Decode { frame, .. } = e else {
            unreachable!()
        };
        assert_eq!(frame.len(), 256);
    }
}
