//! What the remote-daemon tests need beside the private dockerd of `common`: the
//! certificates of a `--tlsverify` daemon and its clients (rcgen), and the dockerd
//! arguments that add a TLS listener on 127.0.0.1. Kept apart from `common` so the engine
//! harness can change without this.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A private directory under `/tmp`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `/tmp/PREFIX-PID-N`, new and empty. Short: Unix socket paths go in it.
    pub fn new(prefix: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free port on 127.0.0.1 (bound, read, released: nothing else on this machine picks
/// ports in that range on purpose).
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A CA and what it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).expect("a CA certificate").pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `names` with `usage`, signed by this CA, and its key (PEM).
    fn sign(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        key: KeyPair,
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.issuer).expect("a certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// The files of a `--tlsverify` daemon and of its clients, each client's in a directory
/// laid out as `DOCKER_CERT_PATH` (`ca.pem`, `cert.pem`, `key.pem`).
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    /// A CA; the daemon's certificate (127.0.0.1 and localhost) and key; clients' dirs:
    /// `good` (a client certificate of the CA, its key in `pkcs1_key` form when given:
    /// `openssl genrsa`'s), `wrong-ca` (the daemon is checked against another CA),
    /// `no-cert` (the CA only), `foreign` (a client certificate of another CA).
    /// `rsa_pkcs1`: an RSA key as (PKCS#8 PEM for rcgen, PKCS#1 PEM for `key.pem`).
    pub fn new(rsa_pkcs1: Option<(String, String)>) -> Self {
        let dir = TempDir::new("hdtls");
        let ca = Ca::new("hypersh test CA");
        let other = Ca::new("another CA");
        let write = |sub: &str, name: &str, data: &str| {
            let d = dir.0.join(sub);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join(name), data).expect("write");
        };
        let (server_cert, server_key) = ca.sign(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            KeyPair::generate().expect("key"),
        );
        write("server", "ca.pem", &ca.pem);
        write("server", "cert.pem", &server_cert);
        write("server", "key.pem", &server_key);

        let (client_key, key_pem) = match &rsa_pkcs1 {
            Some((pkcs8, pkcs1)) => (
                KeyPair::from_pkcs8_pem_and_sign_algo(pkcs8, &rcgen::PKCS_RSA_SHA256)
                    .expect("the RSA key"),
                Some(pkcs1.clone()),
            ),
            None => (KeyPair::generate().expect("key"), None),
        };
        let (client_cert, pkcs8_key) =
            ca.sign(&["client"], ExtendedKeyUsagePurpose::ClientAuth, client_key);
        let client_key = key_pem.unwrap_or(pkcs8_key);
        for sub in ["good", "wrong-ca"] {
            write(sub, "cert.pem", &client_cert);
            write(sub, "key.pem", &client_key);
        }
        write("good", "ca.pem", &ca.pem);
        write("wrong-ca", "ca.pem", &other.pem);
        write("no-cert", "ca.pem", &ca.pem);
        let (foreign_cert, foreign_key) = other.sign(
            &["client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            KeyPair::generate().expect("key"),
        );
        write("foreign", "ca.pem", &ca.pem);
        write("foreign", "cert.pem", &foreign_cert);
        write("foreign", "key.pem", &foreign_key);
        Self { dir }
    }

    /// A client's `DOCKER_CERT_PATH`: `good`, `wrong-ca`, `no-cert`, `foreign`.
    pub fn client(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// dockerd's arguments for a TLS listener on each `IP:PORT` of `listen` that requires
    /// client certificates of the CA.
    pub fn dockerd_args(&self, listen: &[String]) -> Vec<String> {
        let server = |name: &str| path(&self.dir.0.join("server").join(name));
        let mut args = vec![
            "--tlsverify".to_owned(),
            "--tlscacert".to_owned(),
            server("ca.pem"),
            "--tlscert".to_owned(),
            server("cert.pem"),
            "--tlskey".to_owned(),
            server("key.pem"),
        ];
        for addr in listen {
            args.push("--host".to_owned());
            args.push(format!("tcp://{addr}"));
        }
        args
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}
