//! The error of starting a router.

use std::net::SocketAddr;

/// Why a router could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make the self-signed certificate: {0}")]
    Certificate(String),
    /// The certificate or key was refused by the TLS library (a key that is not PKCS#8,
    /// a key that does not match the certificate, ...).
    #[error("TLS setup failed: {0}")]
    Tls(#[source] native_tls::Error),
}
