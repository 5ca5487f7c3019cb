//! TLS to a `tcp://` daemon, as the `docker` CLI's `--tlsverify`: [`DockerTls`] says which
//! files to use; with the `tls` feature (native-tls, OpenSSL) they become a connector, and
//! what OpenSSL reports is turned into a [`TlsProblem`] that says what to do.

use std::fmt;
use std::path::{Path, PathBuf};

/// TLS settings for a `tcp://` daemon, as the `docker` CLI reads them: the daemon's
/// certificate is always verified (against the CA file when one is given, else the
/// system's roots, and against the host name or address of the URL), and a client
/// certificate is sent when one is given (mutual TLS, dockerd's `--tlsverify`).
///
/// ```
/// # mod hypersh { pub mod docker { pub use hypersh_docker::*; } }
/// use hypersh::docker::DockerTls;
///
/// // The files of a DOCKER_CERT_PATH directory: ca.pem, cert.pem, key.pem.
/// let tls = DockerTls::from_cert_path("/etc/docker/client");
/// // Or each file named.
/// let tls = DockerTls::new()
///     .ca_file("/etc/docker/ca.pem")
///     .client_cert("/etc/docker/cert.pem", "/etc/docker/key.pem");
/// assert_eq!(tls.ca().map(|p| p.to_str()), Some(Some("/etc/docker/ca.pem")));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerTls {
    ca: Option<PathBuf>,
    /// `cert.pem` and `key.pem`.
    identity: Option<(PathBuf, PathBuf)>,
}

impl DockerTls {
    /// TLS that verifies the daemon against the system's roots and sends no client
    /// certificate.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The files of a certificate directory as the `docker` CLI reads `DOCKER_CERT_PATH`:
    /// `ca.pem` (the CA the daemon's certificate is verified against), `cert.pem` and
    /// `key.pem` (the client certificate and its key), each used when it exists. When only
    /// one of `cert.pem` and `key.pem` exists, connecting fails and names the other.
    #[must_use]
    pub fn from_cert_path(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        let ca = dir.join("ca.pem");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        Self {
            ca: ca.exists().then_some(ca),
            identity: (cert.exists() || key.exists()).then_some((cert, key)),
        }
    }

    /// The `docker` CLI's environment: when `DOCKER_TLS_VERIFY` is set and not empty (any
    /// value, `0` too, as the CLI), the files of `DOCKER_CERT_PATH`, else of
    /// `$DOCKER_CONFIG`, else of `~/.docker` (see [`from_cert_path`](Self::from_cert_path));
    /// `None` when `DOCKER_TLS_VERIFY` is not set. `DOCKER_TLS` (TLS without verifying the
    /// daemon) is not supported.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let set = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        set("DOCKER_TLS_VERIFY")?;
        let dir = set("DOCKER_CERT_PATH")
            .or_else(|| set("DOCKER_CONFIG"))
            .map(PathBuf::from)
            .or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        Some(Self::from_cert_path(dir))
    }

    /// Verifies the daemon's certificate against the CA certificates (PEM) in `path`
    /// (added to the system's roots, as the `docker` CLI's `--tlscacert`).
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// Sends the client certificate in `cert` (PEM, the leaf first, then any
    /// intermediates) with its private key in `key` (PEM: PKCS#8 `BEGIN PRIVATE KEY`,
    /// PKCS#1 `BEGIN RSA PRIVATE KEY` as `openssl genrsa` writes, or SEC1
    /// `BEGIN EC PRIVATE KEY`; not encrypted).
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// The CA file, if one is used.
    #[must_use]
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The client certificate file, if one is sent.
    #[must_use]
    pub fn cert(&self) -> Option<&Path> {
        self.identity.as_ref().map(|(cert, _)| cert.as_path())
    }

    /// The client key file, if a certificate is sent.
    #[must_use]
    pub fn key(&self) -> Option<&Path> {
        self.identity.as_ref().map(|(_, key)| key.as_path())
    }
}

/// What went wrong in TLS with the daemon, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The daemon's certificate is not signed by a CA this client trusts.
    UntrustedServer {
        /// The CA file it was checked against (`None`: the system's roots only).
        ca: Option<PathBuf>,
    },
    /// The daemon's certificate is signed by a trusted CA but not valid now (expired, not
    /// yet valid, or refused for another reason the detail gives).
    ServerCertInvalid,
    /// The daemon's certificate is valid, but not for the host name or address connected
    /// to.
    NameMismatch {
        /// The host of the URL.
        host: String,
    },
    /// The daemon wants a client certificate, and none was sent.
    ClientCertRequired,
    /// The daemon refused the client certificate that was sent.
    ClientCertRefused {
        /// The certificate file.
        cert: PathBuf,
    },
    /// The daemon does not speak TLS on this port.
    NotTls,
    /// The daemon speaks TLS on this port, and TLS is not configured.
    TlsRequired,
    /// Another TLS failure (the detail says which).
    Other,
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UntrustedServer { ca: Some(ca) } => write!(
                f,
                "the daemon's certificate is not signed by the CA in {} (check DOCKER_CERT_PATH's ca.pem)",
                ca.display()
            ),
            Self::UntrustedServer { ca: None } => f.write_str(
                "the daemon's certificate is not signed by a CA this system trusts (put its CA in DOCKER_CERT_PATH/ca.pem)",
            ),
            Self::ServerCertInvalid => f.write_str(
                "the daemon's certificate is not valid (expired, or not yet valid: see why below)",
            ),
            Self::NameMismatch { host } => write!(
                f,
                "the daemon's certificate is not valid for {host} (connect with a name or address its certificate lists)"
            ),
            Self::ClientCertRequired => f.write_str(
                "the daemon requires a client certificate and none was sent (put cert.pem and key.pem in DOCKER_CERT_PATH)",
            ),
            Self::ClientCertRefused { cert } => write!(
                f,
                "the daemon refused the client certificate {} (it must be signed by the CA of the daemon's --tlscacert, and not expired)",
                cert.display()
            ),
            Self::NotTls => f.write_str(
                "the daemon does not speak TLS on this port (unset DOCKER_TLS_VERIFY, or use its TLS port)",
            ),
            Self::TlsRequired => f.write_str(
                "the daemon speaks TLS on this port (set DOCKER_TLS_VERIFY=1, and DOCKER_CERT_PATH to a directory with its CA and a client certificate)",
            ),
            Self::Other => f.write_str("the TLS handshake failed"),
        }
    }
}

#[cfg(feature = "tls")]
pub(crate) use with_tls::TlsConnector;
#[cfg(not(feature = "tls"))]
pub(crate) use without_tls::TlsConnector;

/// The innermost source of `error` (OpenSSL's own text, under hyper's and io's), as it is.
#[cfg(feature = "tls")]
fn root_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut root = error;
    while let Some(e) = root.source() {
        root = e;
    }
    root.to_string()
}

/// The text of an error and its sources, lowercased, for [`classify`].
#[cfg(feature = "tls")]
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text.to_lowercase()
}

/// What an OpenSSL error text (lowercased, as [`chain_text`] gives it) says went wrong:
/// OpenSSL's reason strings (`certificate verify failed`, the verify result
/// `hostname mismatch`, the peer's alert `tlsv13 alert certificate required`, ...) are
/// the only place the kind is told. `None`: not a TLS failure.
#[cfg(any(feature = "tls", test))]
fn classify(text: &str, settings: &DockerTls, host: &str) -> Option<TlsProblem> {
    let has = |s: &str| text.contains(s);
    if has("certificate verify failed") {
        return Some(if has("hostname mismatch") || has("ip address mismatch") {
            TlsProblem::NameMismatch {
                host: host.to_owned(),
            }
        } else if [
            "unable to get local issuer",
            "self-signed",
            "self signed",
            "unable to verify the first certificate",
            "unable to get issuer",
        ]
        .iter()
        .any(|s| has(s))
        {
            TlsProblem::UntrustedServer {
                ca: settings.ca.clone(),
            }
        } else {
            TlsProblem::ServerCertInvalid
        });
    }
    if has("alert") {
        // The daemon ended the handshake (TLS 1.2) or the connection right after it
        // (TLS 1.3, where the client's certificate is checked after the client is done).
        let about_our_cert = [
            "certificate required",
            "bad certificate",
            "unknown ca",
            "certificate unknown",
            "unsupported certificate",
            "certificate expired",
            "certificate revoked",
        ]
        .iter()
        .any(|a| has(a));
        return Some(match (&settings.identity, about_our_cert) {
            (None, true) => TlsProblem::ClientCertRequired,
            (Some((cert, _)), true) => TlsProblem::ClientCertRefused { cert: cert.clone() },
            (_, false) => TlsProblem::Other,
        });
    }
    if has("wrong version number") || has("packet length too long") || has("record layer failure") {
        return Some(TlsProblem::NotTls);
    }
    (has("ssl") || has("tls")).then_some(TlsProblem::Other)
}

#[cfg(feature = "tls")]
mod with_tls {
    use std::path::Path;

    use tokio::net::TcpStream;

    use super::{DockerTls, TlsProblem, chain_text, classify, root_text};
    use crate::error::DockerError;

    /// A TLS stream to the daemon.
    type TlsStream = tokio_native_tls::TlsStream<TcpStream>;

    /// The files of a [`DockerTls`], loaded once into a native-tls connector.
    #[derive(Clone)]
    pub(crate) struct TlsConnector {
        connector: tokio_native_tls::TlsConnector,
        settings: DockerTls,
    }

    impl std::fmt::Debug for TlsConnector {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TlsConnector")
                .field("settings", &self.settings)
                .finish_non_exhaustive()
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>, DockerError> {
        std::fs::read(path).map_err(|e| DockerError::TlsFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    fn bad(path: &Path, reason: impl Into<String>) -> DockerError {
        DockerError::TlsFile {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// The client identity from `cert` and `key` (PEM). native-tls takes PKCS#8 keys
    /// only; `openssl genrsa` writes PKCS#1 and `openssl ecparam -genkey` SEC1, so the
    /// key goes through OpenSSL (the library native-tls uses) and out as PKCS#8.
    pub(crate) fn identity(cert: &Path, key: &Path) -> Result<native_tls::Identity, DockerError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        if key_pem.windows(9).any(|w| w == b"ENCRYPTED") {
            return Err(bad(
                key,
                "the key is encrypted; dockerd and the docker CLI need it unencrypted too \
                 (openssl pkey -in key.pem -out key.pem asks for the passphrase once)",
            ));
        }
        // A callback that gives no passphrase: OpenSSL never prompts on a terminal.
        let pkey = openssl::pkey::PKey::private_key_from_pem_callback(&key_pem, |_| Ok(0))
            .map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
        let leaf = openssl::x509::X509::stack_from_pem(&cert_pem)
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .ok_or_else(|| bad(cert, "no PEM certificate in it"))?;
        let matches = leaf
            .public_key()
            .is_ok_and(|public| public.public_eq(&pkey));
        if !matches {
            return Err(bad(
                key,
                format!("it is not the key of the certificate {}", cert.display()),
            ));
        }
        let pkcs8 = pkey
            .private_key_to_pem_pkcs8()
            .map_err(|e| bad(key, e.to_string()))?;
        native_tls::Identity::from_pkcs8(&cert_pem, &pkcs8).map_err(|e| bad(cert, e.to_string()))
    }

    impl TlsConnector {
        /// Loads the files of `settings`.
        pub(crate) fn new(settings: &DockerTls, _endpoint: &str) -> Result<Self, DockerError> {
            let mut builder = native_tls::TlsConnector::builder();
            // dockerd's own minimum.
            builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
            if let Some(ca) = &settings.ca {
                let certs = native_tls::Certificate::stack_from_pem(&read(ca)?)
                    .map_err(|e| bad(ca, format!("not PEM certificates: {e}")))?;
                if certs.is_empty() {
                    return Err(bad(ca, "no PEM certificate in it"));
                }
                for cert in certs {
                    builder.add_root_certificate(cert);
                }
            }
            if let Some((cert, key)) = &settings.identity {
                builder.identity(identity(cert, key)?);
            }
            let connector = builder.build().map_err(|e| DockerError::TlsFile {
                path: settings.ca.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
            Ok(Self {
                connector: connector.into(),
                settings: settings.clone(),
            })
        }

        /// The TLS handshake on `stream`, verifying the daemon's certificate for `host`.
        pub(crate) async fn handshake(
            &self,
            host: &str,
            stream: TcpStream,
            endpoint: &str,
        ) -> Result<TlsStream, DockerError> {
            self.connector
                .connect(host, stream)
                .await
                .map_err(|e| DockerError::Tls {
                    endpoint: endpoint.to_owned(),
                    problem: classify(&chain_text(&e), &self.settings, host)
                        .unwrap_or(TlsProblem::Other),
                    detail: e.to_string(),
                })
        }

        /// `error` (of an exchange on a TLS connection) as a TLS error when OpenSSL's
        /// text says it is one: the daemon checks the client's certificate after the
        /// client's side of the handshake is done, and its refusal arrives as an alert
        /// on the first read.
        pub(crate) fn explain(&self, error: DockerError, host: &str) -> DockerError {
            let DockerError::Http { endpoint, source } = error else {
                return error;
            };
            match classify(&chain_text(&source), &self.settings, host) {
                Some(problem) => DockerError::Tls {
                    endpoint,
                    problem,
                    detail: root_text(&source),
                },
                None => DockerError::Http { endpoint, source },
            }
        }
    }
}

#[cfg(not(feature = "tls"))]
mod without_tls {
    use tokio::net::TcpStream;

    use super::DockerTls;
    use crate::error::DockerError;

    /// Without the `tls` feature there is no connector: this type has no value.
    #[derive(Clone, Debug)]
    pub(crate) enum TlsConnector {}

    impl TlsConnector {
        pub(crate) fn new(_settings: &DockerTls, endpoint: &str) -> Result<Self, DockerError> {
            Err(DockerError::TlsNotBuilt {
                endpoint: endpoint.to_owned(),
            })
        }

        pub(crate) async fn handshake(
            &self,
            _host: &str,
            _stream: TcpStream,
            _endpoint: &str,
        ) -> Result<TcpStream, DockerError> {
            match *self {}
        }

        pub(crate) fn explain(&self, _error: DockerError, _host: &str) -> DockerError {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ca: bool, cert: bool) -> DockerTls {
        let mut s = DockerTls::new();
        if ca {
            s = s.ca_file("/certs/ca.pem");
        }
        if cert {
            s = s.client_cert("/certs/cert.pem", "/certs/key.pem");
        }
        s
    }

    /// The texts OpenSSL 3 gives for each failure, as read from a real dockerd (see
    /// tests/tls.rs), each mapped to its problem.
    #[test]
    fn openssl_texts_map_to_problems() {
        let cases = [
            (
                "error:0a000086:ssl routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (unable to get local issuer certificate)",
                settings(true, true),
                TlsProblem::UntrustedServer {
                    ca: Some("/certs/ca.pem".into()),
                },
            ),
            (
                "error:0a000086:ssl routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (hostname mismatch)",
                settings(true, true),
                TlsProblem::NameMismatch {
                    host: "127.0.0.2".into(),
                },
            ),
            (
                "connection error: error:0a00045c:ssl routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/record/rec_layer_s3.c:1605:ssl alert number 116",
                settings(true, false),
                TlsProblem::ClientCertRequired,
            ),
            (
                "connection error: error:0a000412:ssl routines:ssl3_read_bytes:sslv3 alert bad certificate:../ssl/record/rec_layer_s3.c:1605:ssl alert number 42",
                settings(true, true),
                TlsProblem::ClientCertRefused {
                    cert: "/certs/cert.pem".into(),
                },
            ),
            (
                "error:0a00010b:ssl routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:354:",
                settings(false, false),
                TlsProblem::NotTls,
            ),
        ];
        for (text, settings, want) in cases {
            assert_eq!(classify(text, &settings, "127.0.0.2"), Some(want), "{text}");
        }
        assert_eq!(
            classify(
                "connection closed before message completed",
                &settings(true, true),
                "h"
            ),
            None
        );
    }

    #[test]
    fn problems_say_what_to_do() {
        let refused = TlsProblem::ClientCertRefused {
            cert: "/c/cert.pem".into(),
        };
        assert!(refused.to_string().contains("/c/cert.pem"), "{refused}");
        assert!(
            TlsProblem::ClientCertRequired
                .to_string()
                .contains("cert.pem and key.pem in DOCKER_CERT_PATH")
        );
        assert!(
            TlsProblem::UntrustedServer { ca: None }
                .to_string()
                .contains("ca.pem")
        );
    }

    #[test]
    fn a_cert_path_uses_the_files_it_has() {
        let dir = std::env::temp_dir().join(format!("hdt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(DockerTls::from_cert_path(&dir), DockerTls::new());
        std::fs::write(dir.join("ca.pem"), "").unwrap();
        std::fs::write(dir.join("key.pem"), "").unwrap();
        let tls = DockerTls::from_cert_path(&dir);
        assert_eq!(tls.ca(), Some(dir.join("ca.pem").as_path()));
        // One of the pair is there: both are kept, so that loading names the missing one.
        assert_eq!(tls.cert(), Some(dir.join("cert.pem").as_path()));
        assert_eq!(tls.key(), Some(dir.join("key.pem").as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(feature = "tls")]
    mod keys {
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;

        use super::super::with_tls::identity;
        use crate::error::DockerError;

        /// A self-signed certificate for the RSA key `pkey` (rcgen signs with it).
        fn cert_for(pkey: &PKey<openssl::pkey::Private>) -> String {
            let pkcs8 = String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
            let key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
                .unwrap();
            rcgen::CertificateParams::new(vec!["client".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .pem()
        }

        #[test]
        fn pkcs1_pkcs8_and_sec1_keys_are_read_and_others_refused_by_name() {
            let dir = std::env::temp_dir().join(format!("hdk-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let write = |name: &str, data: &[u8]| {
                let path = dir.join(name);
                std::fs::write(&path, data).unwrap();
                path
            };
            let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
            let cert = write("cert.pem", cert_for(&rsa).as_bytes());
            // `openssl genrsa` writes PKCS#1.
            let pkcs1 = rsa.rsa().unwrap().private_key_to_pem().unwrap();
            assert!(pkcs1.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
            identity(&cert, &write("pkcs1.pem", &pkcs1))
                .map(drop)
                .expect("a PKCS#1 key");
            let pkcs8 = rsa.private_key_to_pem_pkcs8().unwrap();
            identity(&cert, &write("pkcs8.pem", &pkcs8))
                .map(drop)
                .expect("a PKCS#8 key");

            // SEC1 (`openssl ecparam -genkey`), with its own certificate.
            let ec = rcgen::KeyPair::generate().unwrap();
            let ec_cert = write(
                "ec-cert.pem",
                rcgen::CertificateParams::new(vec!["client".to_owned()])
                    .unwrap()
                    .self_signed(&ec)
                    .unwrap()
                    .pem()
                    .as_bytes(),
            );
            let sec1 = PKey::private_key_from_pem(ec.serialize_pem().as_bytes())
                .unwrap()
                .ec_key()
                .unwrap()
                .private_key_to_pem()
                .unwrap();
            assert!(sec1.starts_with(b"-----BEGIN EC PRIVATE KEY-----"));
            identity(&ec_cert, &write("sec1.pem", &sec1))
                .map(drop)
                .expect("a SEC1 key");

            let refused = |key: &std::path::Path, cert: &std::path::Path, want: &str| match identity(
                cert, key,
            ) {
                Err(DockerError::TlsFile { path, reason }) => {
                    assert!(reason.contains(want), "{reason}");
                    path
                }
                other => panic!("{}: {:?}", key.display(), other.map(drop)),
            };
            // Another certificate's key.
            let path = refused(
                &dir.join("sec1.pem"),
                &cert,
                "not the key of the certificate",
            );
            assert_eq!(path, dir.join("sec1.pem"));
            let encrypted = rsa
                .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"pw")
                .unwrap();
            refused(&write("enc.pem", &encrypted), &cert, "encrypted");
            refused(&write("junk.pem", b"junk"), &cert, "not a PEM private key");
            let path = refused(
                &dir.join("pkcs1.pem"),
                &write("no-cert.pem", b""),
                "no PEM certificate",
            );
            assert_eq!(path, dir.join("no-cert.pem"));
            let err = identity(&dir.join("missing.pem"), &cert)
                .map(drop)
                .unwrap_err();
            assert!(err.to_string().contains("missing.pem"), "{err}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
