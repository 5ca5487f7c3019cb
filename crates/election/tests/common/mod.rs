//! A private etcd for the election tests: its own data directory under `/tmp`, client and
//! peer ports on 127.0.0.1 picked free, killed and removed on drop. It can be paused
//! (SIGSTOP), resumed, killed and restarted on the same directory and ports.
//!
//! When `CI` is set a missing `etcd` or one that does not start fails the test; elsewhere
//! the test says what is missing and returns.
#![allow(dead_code)]

// How a test that cannot run here says so, shared with the Docker source's tests.
#[path = "../../../docker/tests/common/skip.rs"]
mod skip;
use skip::skip;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long etcd may take to answer `/health` after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running private etcd.
pub struct Etcd {
    pub dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    child: Option<Child>,
}

/// What `.ci/run` installs for these tests.
const INSTALLS: &str = "etcd-server";

/// A test's etcd, or `None` (with a message) when this machine has none and `CI` is not
/// set.
pub fn etcd_or_skip(test: &str) -> Option<Etcd> {
    if which("etcd").is_none() {
        skip(test, "`etcd` is not installed", INSTALLS);
        return None;
    }
    match Etcd::start() {
        Ok(etcd) => Some(etcd),
        Err(e) => {
            let why = format!("the private etcd did not start: {e}");
            skip(test, &why, INSTALLS);
            None
        }
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Etcd {
    /// Starts etcd in a new directory on free ports (tried again on other ports if one was
    /// taken meanwhile).
    pub fn start() -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/hel-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut last = String::new();
        for _ in 0..3 {
            let mut etcd = Self {
                dir: dir.clone(),
                client_port: free_port().map_err(|e| e.to_string())?,
                peer_port: free_port().map_err(|e| e.to_string())?,
                child: None,
            };
            match etcd.launch() {
                Ok(()) => return Ok(etcd),
                Err(e) => {
                    last = e;
                    let _ = std::fs::remove_dir_all(etcd.dir.join("data"));
                }
            }
        }
        Err(last)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts etcd on this directory and these ports and waits until it is healthy.
    pub fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .map_err(|e| e.to_string())?;
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(which("etcd").ok_or("etcd is not installed")?)
            .arg("--name")
            .arg("hel")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("hel={peer}"))
            .args(["--log-level", "warn", "--logger", "zap"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run etcd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("etcd exited ({status}): {}", self.log_tail()));
            }
            if self.healthy() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "etcd was not healthy within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `GET /health` answers `"health":"true"`.
    pub fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut body = String::new();
        let _ = s.take(64 * 1024).read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// Sends `signal` (`STOP`, `CONT`) to etcd.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
        }
    }

    /// Kills etcd (SIGKILL); its data directory stays for a restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Etcd {
    /// POSTs `json` to etcd's JSON gateway (`/v3/...`) and returns the response body.
    pub fn post(&self, path: &str, json: &str) -> Result<String, String> {
        let mut s =
            TcpStream::connect(("127.0.0.1", self.client_port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut response = String::new();
        s.take(1024 * 1024)
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        if !response.starts_with("HTTP/1.0 200") && !response.starts_with("HTTP/1.1 200") {
            return Err(format!("{path}: {response}"));
        }
        Ok(response)
    }

    /// Turns authentication on with a `root` user of password `password`, and a user
    /// `limited` (same password) that may only use keys under `other/`.
    pub fn enable_auth(&self, password: &str) -> Result<(), String> {
        for user in ["root", "limited"] {
            self.post(
                "/v3/auth/user/add",
                &format!(r#"{{"name":"{user}","password":"{password}"}}"#),
            )?;
        }
        self.post("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#)?;
        self.post("/v3/auth/role/add", r#"{"name":"other"}"#)?;
        // Keys are base64 in the JSON gateway: "other/" to "other0".
        self.post(
            "/v3/auth/role/grant",
            r#"{"name":"other","perm":{"permType":"READWRITE","key":"b3RoZXIv","range_end":"b3RoZXIw"}}"#,
        )?;
        self.post(
            "/v3/auth/user/grant",
            r#"{"user":"limited","role":"other"}"#,
        )?;
        self.post("/v3/auth/enable", "{}")?;
        Ok(())
    }
}
