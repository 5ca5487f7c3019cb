//! TLS setup: a self-signed certificate made with `rcgen`, or a given PEM pair, served with
//! `tokio-native-tls`.

use std::net::SocketAddr;

use native_tls::Identity;
use tokio_native_tls::TlsAcceptor;

use crate::config::ServerTls;
use crate::error::Error;

/// The names every self-signed certificate covers.
const SELF_SIGNED_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// A TLS acceptor and the certificate it presents.
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    /// The certificate (chain), PEM.
    pub(crate) cert_pem: String,
}

/// Builds the acceptor for `mode` (`None` for [`ServerTls::Off`]). `listen` adds its IP to a
/// self-signed certificate when it is a specific, non-loopback address.
pub(crate) fn build(mode: &ServerTls, listen: SocketAddr) -> Result<Option<Tls>, Error> {
    let (cert_pem, key_pem) = match mode {
        ServerTls::Off => return Ok(None),
        ServerTls::SelfSigned => self_signed(listen)?,
        ServerTls::Pem { cert, key } => (cert.clone(), key.clone()),
    };
    let identity =
        Identity::from_pkcs8(cert_pem.as_bytes(), key_pem.as_bytes()).map_err(Error::Tls)?;
    let acceptor = native_tls::TlsAcceptor::new(identity).map_err(Error::Tls)?;
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(acceptor),
        cert_pem,
    }))
}

/// A fresh self-signed certificate and its PKCS#8 key, both PEM.
fn self_signed(listen: SocketAddr) -> Result<(String, String), Error> {
    let mut names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| Error::Certificate(e.to_string()))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_are_pem_and_load() {
        let tls = build(&ServerTls::SelfSigned, "127.0.0.1:0".parse().unwrap())
            .unwrap()
            .unwrap();
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // The same PEM is accepted as a client's custom root.
        native_tls::Certificate::from_pem(tls.cert_pem.as_bytes()).unwrap();
    }

    #[test]
    fn off_has_no_acceptor_and_bad_pem_is_an_error() {
        assert!(
            build(&ServerTls::Off, "127.0.0.1:0".parse().unwrap())
                .unwrap()
                .is_none()
        );
        let bad = ServerTls::Pem {
            cert: "not a cert".into(),
            key: "not a key".into(),
        };
        assert!(matches!(
            build(&bad, "127.0.0.1:0".parse().unwrap()),
            Err(Error::Tls(_))
        ));
    }

    #[test]
    fn a_given_pem_pair_is_served() {
        let (cert, key) = self_signed("10.1.2.3:0".parse().unwrap()).unwrap();
        let mode = ServerTls::Pem {
            cert: cert.clone(),
            key,
        };
        let tls = build(&mode, "127.0.0.1:0".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(tls.cert_pem, cert);
    }
}
