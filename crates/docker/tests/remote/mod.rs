//! What the remote-daemon tests need beside the private dockerd of `common`: the
//! certificates of a `--tlsverify` daemon and its clients (rcgen), and the dockerd
//! arguments that add a TLS listener on 127.0.0.1. Kept apart from `common` so the engine
//! harness can change without this.
#![allow(dead_code)]

// The crate root imports the engine harness's `skip` (`use common::skip`).
use crate::skip;

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

/// How long sshd may take to answer after it is started.
const SSHD_START: std::time::Duration = std::time::Duration::from_secs(15);

/// A private sshd on 127.0.0.1 (its own host key, config, authorized keys and pid file),
/// logging in as root with keys only (`UsePAM no`); stopped on drop. The keys of its
/// `authorized_keys`, each a login with its own environment:
/// - `good`: `DOCKER_HOST` is the private daemon, so `docker system dial-stdio` reaches it;
/// - `nodocker`: `PATH` has no `docker`;
/// - `nodaemon`: `DOCKER_HOST` is a socket nobody listens on;
/// - `stranger` is not authorized.
pub struct Sshd {
    pub dir: TempDir,
    pub port: u16,
    child: Option<std::process::Child>,
}

/// A private sshd for `test` relaying to the daemon at `docker_host`, or `None` (with a
/// message) when this machine cannot run one and `CI` is not set.
pub fn sshd_or_skip(test: &str, docker_host: &str) -> Option<Sshd> {
    const INSTALLS: &str = "openssh-server and openssh-client";
    let missing: Vec<&str> = ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        let why = format!("cannot run sshd here: {} missing", missing.join(", "));
        skip(test, &why, INSTALLS);
        return None;
    }
    match Sshd::start(docker_host) {
        Ok(sshd) => Some(sshd),
        Err(e) => {
            skip(
                test,
                &format!("the private sshd did not start: {e}"),
                INSTALLS,
            );
            None
        }
    }
}

fn run(cmd: &mut std::process::Command) -> Result<(), String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ssh-keygen` of an ed25519 key without a passphrase at `path`; its public line.
fn keygen(path: &Path) -> Result<String, String> {
    run(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hypersh-test", "-f"])
        .arg(path))?;
    let public = std::fs::read_to_string(path.with_extension("pub")).map_err(|e| e.to_string())?;
    Ok(public.trim().to_owned())
}

impl Sshd {
    /// Starts sshd on a free port of 127.0.0.1 and waits for its banner.
    pub fn start(docker_host: &str) -> Result<Self, String> {
        let dir = TempDir::new("hdssh");
        let d = |name: &str| dir.0.join(name);
        let host_key = keygen(&d("host_ed25519"))?;
        let mut authorized = String::new();
        for (name, environment) in [
            ("good", format!("DOCKER_HOST={docker_host}")),
            ("nodocker", "PATH=/nonexistent".to_owned()),
            (
                "nodaemon",
                format!("DOCKER_HOST=unix://{}", d("nobody.sock").display()),
            ),
        ] {
            let public = keygen(&d(name))?;
            authorized.push_str(&format!("environment=\"{environment}\" {public}\n"));
        }
        keygen(&d("stranger"))?;
        std::fs::write(d("authorized_keys"), authorized).map_err(|e| e.to_string())?;
        let port = free_port("127.0.0.1");
        // The server's key, as a client that has seen it before knows it.
        let key_fields: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(
            d("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", key_fields.join(" ")),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(d("empty_known_hosts"), "").map_err(|e| e.to_string())?;
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {auth}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitUserEnvironment yes\n\
             LogLevel VERBOSE\n",
            host = d("host_ed25519").display(),
            pid = d("sshd.pid").display(),
            auth = d("authorized_keys").display(),
        );
        std::fs::write(d("sshd_config"), config).map_err(|e| e.to_string())?;
        // Debian's sshd wants its privilege separation directory, which its service
        // creates at boot; a machine that never ran the service has none.
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
        let log = std::fs::File::create(d("sshd.log")).map_err(|e| e.to_string())?;
        let child = std::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d("sshd_config"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run sshd: {e}"))?;
        let mut sshd = Self {
            dir,
            port,
            child: Some(child),
        };
        sshd.wait_for_banner()?;
        Ok(sshd)
    }

    fn wait_for_banner(&mut self) -> Result<(), String> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + SSHD_START;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(std::process::Child::try_wait) {
                self.child = None;
                return Err(format!("sshd exited ({status}): {}", self.log()));
            }
            if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if conn.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "sshd did not answer within {SSHD_START:?}: {}",
                    self.log()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("sshd.log")).unwrap_or_default()
    }

    /// `ssh://root@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// The ssh arguments of a client with key `key` (`good`, `nodocker`, `nodaemon`,
    /// `stranger`) that knows this server's host key when `known`: no user or system
    /// ssh configuration, no agent, strict host key checking.
    pub fn ssh_args(&self, key: &str, known: bool) -> Vec<String> {
        let known_hosts = self.dir.0.join(if known {
            "known_hosts"
        } else {
            "empty_known_hosts"
        });
        [
            "-F".to_owned(),
            "/dev/null".to_owned(),
            "-i".to_owned(),
            path(&self.dir.0.join(key)),
            "-o".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
            "-o".to_owned(),
            "IdentityAgent=none".to_owned(),
            "-o".to_owned(),
            format!("UserKnownHostsFile={}", path(&known_hosts)),
            "-o".to_owned(),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "-o".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
        ]
        .to_vec()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
