//! A private container engine for the engine tests, in one of two flavours: a Docker
//! daemon (`dockerd`) or a Podman service (`podman system service`). Each has its own
//! socket, data, run and temporary directories, event log and locks under a temporary
//! directory (and no network), so a system-wide daemon is never touched and two tests can
//! run side by side. Stopped and removed on drop.
//!
//! The test drives the engine with its own CLI (`docker -H`, `podman --url`) and compares
//! the informer's cache with the engine's own list, `GET /containers/json?all=1`, read
//! over the socket.
//!
//! When `CI` is set a missing tool or an engine that does not start fails the test;
//! elsewhere the test prints what is missing and returns ([`skip`]).
#![allow(dead_code)]

mod skip;
pub use skip::skip;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The tag of the image made from the static busybox.
pub const IMAGE: &str = "hde-busybox:1";

/// How long the engine may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to stop on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request to the engine's socket may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `dockerd`, driven with `docker -H unix://...`.
    Docker,
    /// `podman system service`, driven with `podman --url unix://...`.
    Podman,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
        }
    }

    /// The tools the engine needs, besides `busybox` and `tar`.
    fn tools(self) -> &'static [&'static str] {
        match self {
            Self::Docker => &["dockerd", "docker"],
            Self::Podman => &["podman", "conmon", "runc"],
        }
    }

    /// What `.ci/run` installs for it.
    fn packages(self) -> &'static str {
        match self {
            Self::Docker => "docker.io and busybox-static",
            Self::Podman => "podman, runc and busybox-static",
        }
    }
}

/// A running private engine.
pub struct Engine {
    pub kind: Kind,
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    /// More dockerd arguments (a TLS listener, ...): see [`engine_or_skip_with`].
    extra_args: Vec<String>,
    /// A dockerd in a network namespace of its own, with its default bridge and iptables:
    /// see [`networked_engine_or_skip`].
    networked: bool,
}

/// A test's engine, or `None` (with a message) when this machine cannot run one and `CI`
/// is not set.
pub fn engine_or_skip(kind: Kind, test: &str) -> Option<Engine> {
    let mut engine = prepared_or_skip(kind, test)?;
    match engine.start_prepared() {
        Ok(()) => Some(engine),
        Err(e) => {
            let why = format!("the private {} did not start: {e}", kind.name());
            skip(test, &why, kind.packages());
            None
        }
    }
}

/// A private Docker daemon started with more arguments (the socket is always there too),
/// or `None` as [`engine_or_skip`].
pub fn engine_or_skip_with(test: &str, extra_args: Vec<String>) -> Option<Engine> {
    let mut engine = prepared_or_skip(Kind::Docker, test)?;
    engine.extra_args = extra_args;
    match engine.start_prepared() {
        Ok(()) => Some(engine),
        Err(e) => {
            let why = format!("the private Docker daemon did not start: {e}");
            skip(test, &why, Kind::Docker.packages());
            None
        }
    }
}

/// A test's Docker daemon that gives containers addresses and published ports: started
/// in a network namespace of its own (`unshare --net`), with its default bridge and
/// iptables there, so nothing of the machine's network (nor another test's daemon) is
/// touched. `None` as [`engine_or_skip`].
pub fn networked_engine_or_skip(test: &str) -> Option<Engine> {
    if let Some(tool) = ["unshare", "iptables"]
        .into_iter()
        .find(|t| which(t).is_none())
    {
        let why = format!("cannot run a networked Docker daemon here: `{tool}` is not installed");
        skip(test, &why, "util-linux, iptables");
        return None;
    }
    let mut engine = prepared_or_skip(Kind::Docker, test)?;
    engine.networked = true;
    match engine.start_prepared() {
        Ok(()) => Some(engine),
        Err(e) => {
            let why = format!("the private networked Docker daemon did not start: {e}");
            skip(test, &why, "docker.io, util-linux, iptables");
            None
        }
    }
}

/// As [`engine_or_skip`], without starting the engine.
pub fn prepared_or_skip(kind: Kind, test: &str) -> Option<Engine> {
    let missing = missing_tools(kind);
    if !missing.is_empty() {
        let why = format!(
            "cannot run a private {} here: {} missing",
            kind.name(),
            missing.join(", ")
        );
        skip(test, &why, kind.packages());
        return None;
    }
    match Engine::prepare(kind) {
        Ok(engine) => Some(engine),
        Err(e) => {
            let why = format!("cannot prepare a private {}: {e}", kind.name());
            skip(test, &why, kind.packages());
            None
        }
    }
}

fn missing_tools(kind: Kind) -> Vec<String> {
    let mut missing = Vec::new();
    for tool in kind.tools().iter().chain(&["busybox", "tar"]) {
        if which(tool).is_none() {
            missing.push(format!("`{tool}` is not installed"));
        }
    }
    // A dynamically linked busybox would not run in an image that holds only itself.
    let dynamic = which("busybox").is_some_and(|b| {
        Command::new("ldd")
            .arg(b)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if dynamic {
        missing.push("`busybox` is not statically linked (install busybox-static)".to_owned());
    }
    match Command::new("id").arg("-u").output() {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
        Ok(_) => missing.push(format!("a private {} needs root", kind.name())),
        Err(e) => missing.push(format!("cannot run `id -u` to check for root: {e}")),
    }
    missing
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

impl Engine {
    /// Starts an engine in a new directory and imports the busybox image.
    pub fn start(kind: Kind) -> Result<Self, String> {
        let mut engine = Self::prepare(kind)?;
        engine.launch()?;
        engine.make_image()?;
        Ok(engine)
    }

    /// The engine's directory and settings, without starting it (see
    /// [`start_prepared`](Self::start_prepared)): its socket path is known before it
    /// listens.
    pub fn prepare(kind: Kind) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        // Short: the socket path (and containerd's under the exec root) must fit in
        // sockaddr_un's 108 bytes.
        let tag = match kind {
            Kind::Docker => "hde",
            Kind::Podman => "hpe",
        };
        let dir = PathBuf::from(format!(
            "/tmp/{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = dir.join(match kind {
            Kind::Docker => "docker.sock",
            Kind::Podman => "podman.sock",
        });
        let engine = Self {
            kind,
            socket,
            dir,
            child: None,
            extra_args: Vec::new(),
            networked: false,
        };
        if kind == Kind::Podman {
            engine.write_podman_config()?;
        }
        Ok(engine)
    }

    /// Starts a [`prepare`](Self::prepare)d engine and imports the busybox image.
    pub fn start_prepared(&mut self) -> Result<(), String> {
        self.launch()?;
        self.make_image()
    }

    /// `unix:///.../docker.sock`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The image to run, as the engine names it after the import.
    pub fn image(&self) -> &'static str {
        match self.kind {
            Kind::Docker => IMAGE,
            Kind::Podman => "localhost/hde-busybox:1",
        }
    }

    /// Podman's settings: everything it would otherwise keep in machine-wide places (its
    /// temporary directory, event log, locks, volumes, network configuration) under this
    /// engine's directory; no network; runc; events in a file (journald needs systemd);
    /// ulimits a sandbox allows.
    fn write_podman_config(&self) -> Result<(), String> {
        let d = self.dir.display();
        let conf = format!(
            r#"[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"
static_dir = "{d}/storage/libpod"
volume_path = "{d}/volumes"
image_copy_tmp_dir = "{d}/tmp"
lock_type = "file"

[network]
network_config_dir = "{d}/net"
"#
        );
        std::fs::write(self.dir.join("containers.conf"), conf).map_err(|e| e.to_string())
    }

    /// `podman` with this engine's settings, on its storage directly (no service).
    fn podman_local(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"));
        cmd
    }

    /// Starts the engine and waits until it answers.
    pub fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("engine.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = match self.kind {
            Kind::Docker => {
                let dockerd = which("dockerd").ok_or("dockerd is not installed")?;
                let mut cmd = if self.networked {
                    // `unshare` execs dockerd in the new namespace: the child is the daemon.
                    let mut cmd = Command::new(which("unshare").ok_or("unshare is not installed")?);
                    cmd.arg("--net").arg(dockerd);
                    cmd
                } else {
                    let mut cmd = Command::new(dockerd);
                    cmd.args(["--bridge", "none", "--iptables=false", "--ip6tables=false"]);
                    cmd
                };
                cmd.arg("--host")
                    .arg(self.url())
                    .arg("--data-root")
                    .arg(self.dir.join("data"))
                    .arg("--exec-root")
                    .arg(self.dir.join("exec"))
                    .arg("--pidfile")
                    .arg(self.dir.join("docker.pid"))
                    // Containers that ignore SIGTERM (sleep as pid 1) do not hold a stop up.
                    .args(["--shutdown-timeout", "1"])
                    .args(&self.extra_args);
                cmd
            }
            Kind::Podman => {
                let _ = std::fs::remove_file(&self.socket);
                let mut cmd = self.podman_local();
                cmd.args(["system", "service", "--time=0"]).arg(self.url());
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run the {}: {e}", self.kind.name()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "the {} exited ({status}): {}",
                    self.kind.name(),
                    self.log_tail()
                ));
            }
            if self.get("/_ping").is_ok_and(|(status, _)| status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the {} did not answer within {START_TIMEOUT:?}: {}",
                    self.kind.name(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the engine (SIGTERM; SIGKILL after a while). Docker's containers stop with
    /// it; Podman's keep running (each has its own `conmon`).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the engine.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("engine.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Runs the engine's CLI (`docker -H unix://...`, `podman --url unix://...`) with
    /// `args`, returning stdout (trimmed).
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = match self.kind {
            Kind::Docker => {
                let mut cmd = Command::new("docker");
                cmd.arg("-H").arg(self.url());
                cmd
            }
            Kind::Podman => {
                let mut cmd = Command::new("podman");
                cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
                    .arg("--url")
                    .arg(self.url());
                cmd
            }
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the {} CLI: {e}", self.kind.name()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "{} {}: {}",
                self.kind.name().to_lowercase(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// As [`cli`](Self::cli), panicking on failure.
    pub fn must(&self, args: &[&str]) -> String {
        self.cli(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Imports a tarball holding the static busybox and its applets as [`IMAGE`].
    fn make_image(&self) -> Result<(), String> {
        let root = self.dir.join("image");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        let busybox = which("busybox").ok_or("busybox is not installed")?;
        std::fs::copy(&busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
        for applet in ["sh", "sleep", "true", "cat"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| e.to_string())?;
        }
        let tar = self.dir.join("image.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("tar failed".to_owned());
        }
        self.cli(&["import", &tar.display().to_string(), IMAGE])
            .map(drop)
    }

    /// `GET path` over the engine's socket: the status and the body. HTTP/1.0, so the
    /// engine answers without chunks and closes.
    pub fn get(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        http_get(&self.socket, path)
    }

    /// The engine's own list, `GET /containers/json?all=1` (with a `label` filter):
    /// id -> (state, labels, name).
    pub fn containers(&self, label: Option<&str>) -> Result<BTreeMap<String, Seen>, String> {
        let mut path = "/containers/json?all=1".to_owned();
        if let Some(label) = label {
            let filters = serde_json::json!({ "label": [label] }).to_string();
            path.push_str("&filters=");
            path.push_str(&percent_encode(&filters));
        }
        let (status, body) = self.get(&path)?;
        if status != 200 {
            return Err(format!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        // Read as the engine wrote it, not through the model: a state the model did not
        // know would otherwise compare equal as `unknown` on both sides.
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))?;
        list.iter()
            .map(|c| {
                let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
                let labels = c["Labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let name = c["Names"][0].as_str().unwrap_or_default();
                let id = text("Id");
                if id.is_empty() {
                    return Err(format!("GET {path}: a container without an id: {c}"));
                }
                Ok((
                    id,
                    Seen {
                        state: text("State"),
                        labels,
                        name: name.trim_start_matches('/').to_owned(),
                    },
                ))
            })
            .collect()
    }

    /// Removes a container while the engine is down, as another tool would: Docker's
    /// directory goes from its data root; Podman's own CLI removes it from the storage
    /// directly, without the service.
    pub fn remove_while_down(&self, id: &str) -> Result<(), String> {
        match self.kind {
            Kind::Docker => {
                std::fs::remove_dir_all(self.dir.join("data").join("containers").join(id))
                    .map_err(|e| e.to_string())
            }
            Kind::Podman => {
                let out = self
                    .podman_local()
                    .args(["rm", "-f", "-t", "0", id])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| e.to_string())?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            }
        }
    }

    /// The `run -d` arguments of a labelled container running `cmd` with no network.
    /// A short stop timeout: `sleep` as pid 1 ignores SIGTERM, and the daemon's own stop
    /// waits for its containers.
    pub fn run_args<'a>(&self, name: &'a str, labels: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "run",
            "-d",
            "--network",
            "none",
            "--stop-timeout",
            "1",
            "--name",
            name,
        ];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.push(self.image());
        args.extend(cmd);
        args
    }

    /// `run -d` of a labelled container running `cmd`; its id.
    pub fn run(&self, name: &str, labels: &[&str], cmd: &[&str]) -> String {
        self.must(&self.run_args(name, labels, cmd))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal("CONT");
        if self.kind == Kind::Podman {
            // Podman's containers outlive its service (conmon keeps them): remove them,
            // with the service if it runs, else directly.
            if self.child.is_none() || self.cli(&["rm", "-a", "-f", "-t", "0"]).is_err() {
                let _ = self
                    .podman_local()
                    .args(["rm", "-a", "-f", "-t", "0"])
                    .stdin(Stdio::null())
                    .output();
            }
        }
        self.stop();
        // The daemon unmounts what it mounted on a clean stop; whatever is left (a killed
        // daemon) stays for the machine to clean.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET path` over the Unix socket `socket`, HTTP/1.0: the status and the body.
pub fn http_get(socket: &Path, path: &str) -> Result<(u16, Vec<u8>), String> {
    let mut conn = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    conn.set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line {head:?}"))?;
    Ok((status, response[head_end + 4..].to_vec()))
}

/// Percent-encodes a query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A container as compared: state, labels, name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub state: String,
    pub labels: BTreeMap<String, String>,
    pub name: String,
}

/// A container in the form the engine's list is compared in: its id, and what is seen.
pub fn seen(c: &hypersh_watch::Container) -> (String, Seen) {
    (
        c.id().to_owned(),
        Seen {
            state: c.state().as_str().to_owned(),
            labels: c
                .labels()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            name: c.name().unwrap_or_default().to_owned(),
        },
    )
}

/// The informer's cache in the same form.
pub fn cached(informer: &hypersh_reflector::Informer) -> BTreeMap<String, Seen> {
    informer.store().list().iter().map(|c| seen(c)).collect()
}
