//! A private Docker daemon for the engine tests: its own socket, data root, exec root and
//! pid file under a temporary directory, no bridge and no iptables, so a system daemon is
//! never touched. Stopped (SIGTERM, then SIGKILL) and removed on drop.
//!
//! When `CI` is set a missing tool or a daemon that does not start fails the test;
//! elsewhere the test prints what is missing and returns.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The tag of the image made from the static busybox.
pub const IMAGE: &str = "hde-busybox:1";

/// How long the daemon may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to stop on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running private daemon.
pub struct Engine {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

/// A test's daemon, or `None` (with a message) when this machine cannot run one and `CI`
/// is not set.
pub fn engine_or_skip(test: &str) -> Option<Engine> {
    let ci = std::env::var_os("CI").is_some();
    let missing = missing_tools();
    if !missing.is_empty() {
        let msg = format!(
            "{test}: cannot run a Docker daemon here: {}",
            missing.join(", ")
        );
        assert!(
            !ci,
            "{msg} (CI is set: .ci/run installs docker.io and busybox-static)"
        );
        skip(&msg);
        return None;
    }
    match Engine::start() {
        Ok(engine) => Some(engine),
        Err(e) => {
            assert!(!ci, "{test}: the private Docker daemon did not start: {e}");
            skip(&format!(
                "{test}: the private Docker daemon did not start: {e}"
            ));
            None
        }
    }
}

/// Says on the terminal that a test is skipped, and why. Written to stderr itself, not with
/// `eprintln!`, whose output the test harness captures and shows only for a failure: a
/// skipped test passes, and `cargo test` would say nothing.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
}

fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    for tool in ["dockerd", "docker", "busybox", "tar"] {
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
        Ok(_) => missing.push("dockerd needs root".to_owned()),
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
    /// Starts a daemon in a new directory and imports the busybox image.
    pub fn start() -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        // Short: the socket path (and containerd's under the exec root) must fit in
        // sockaddr_un's 108 bytes.
        let dir = PathBuf::from(format!(
            "/tmp/hde-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut engine = Self {
            socket: dir.join("docker.sock"),
            dir,
            child: None,
        };
        engine.launch()?;
        engine.make_image()?;
        Ok(engine)
    }

    /// `unix:///.../docker.sock`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Starts dockerd and waits until it answers.
    pub fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .map_err(|e| e.to_string())?;
        let dockerd = which("dockerd").ok_or("dockerd is not installed")?;
        let mut cmd = Command::new(dockerd);
        cmd.arg("--host")
            .arg(self.url())
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("docker.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            // Containers that ignore SIGTERM (sleep as pid 1) do not hold a stop up.
            .args(["--shutdown-timeout", "1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run dockerd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("dockerd exited ({status}): {}", self.log_tail()));
            }
            if self
                .docker(&["version", "--format", "{{.Server.APIVersion}}"])
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not answer within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops dockerd (SIGTERM; SIGKILL after a while). Its containers stop with it.
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

    /// Sends `signal` (`STOP`, `CONT`) to dockerd.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Runs `docker -H unix://... args`, returning stdout (trimmed).
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.url())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "docker {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// As [`docker`](Self::docker), panicking on failure.
    pub fn must(&self, args: &[&str]) -> String {
        self.docker(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `docker import` of a tarball holding the static busybox and its applets.
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
        self.docker(&["import", &tar.display().to_string(), IMAGE])
            .map(drop)
    }

    /// The engine's own view, through the CLI: id -> (state, labels, name).
    pub fn containers(&self, label: Option<&str>) -> Result<BTreeMap<String, Seen>, String> {
        let mut args = vec!["container", "ls", "-a", "-q", "--no-trunc"];
        let filter;
        if let Some(label) = label {
            filter = format!("label={label}");
            args.extend(["--filter", &filter]);
        }
        let ids = self.docker(&args)?;
        let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
        let mut out = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut args = vec![
            "inspect",
            "--format",
            "{{.Id}}\t{{.State.Status}}\t{{.Name}}\t{{json .Config.Labels}}",
        ];
        args.extend(&ids);
        for line in self.docker(&args)?.lines() {
            let mut parts = line.splitn(4, '\t');
            let (Some(id), Some(state), Some(name), Some(labels)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("bad inspect line {line:?}"));
            };
            let labels: BTreeMap<String, String> =
                serde_json::from_str::<Option<BTreeMap<String, String>>>(labels)
                    .map_err(|e| e.to_string())?
                    .unwrap_or_default();
            out.insert(
                id.to_owned(),
                Seen {
                    state: state.to_owned(),
                    labels,
                    name: name.trim_start_matches('/').to_owned(),
                },
            );
        }
        Ok(out)
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal("CONT");
        self.stop();
        // The daemon unmounts what it mounted on a clean stop; whatever is left (a killed
        // daemon) stays for the machine to clean.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

/// The `docker run -d` arguments of a labelled container running `cmd` with no network.
/// A short stop timeout: `sleep` as pid 1 ignores SIGTERM, and the daemon's own stop
/// waits for its containers.
pub fn run_args<'a>(name: &'a str, labels: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
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
    args.push(IMAGE);
    args.extend(cmd);
    args
}
