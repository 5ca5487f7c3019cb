//! Three replicas of the controller example (`--elect`) sharing one out-dir, on a private
//! etcd and the reference router under churn: at most one leader at every sample, only the
//! leader's term in what is written, and failover on `kill -9`, SIGSTOP, SIGTERM and an
//! etcd outage. Each scenario has its own etcd, router and directory, and they run in
//! parallel.
//!
//! Needs `etcd` (with `CI` set a missing one fails the test) and the example built with
//! the `etcd` feature: the test builds it with `cargo build --example controller --features
//! etcd` (cargo's own artifacts: a rebuild only relinks).
#![cfg(all(feature = "etcd", feature = "hypersh", feature = "docker"))]

mod common;
#[path = "../crates/election/tests/common/mod.rs"]
mod etcd;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use hypersh::watch::ContainerState;
use hypersh_apirouter::{Router, RouterConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use common::{PATIENCE, TempDir};

/// The election's timing in the replicas: lease 3 s, renew deadline 2 s, retry 0.5 s.
const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const TIMING: [&str; 6] = [
    "--lease-duration",
    "3",
    "--renew-deadline",
    "2",
    "--retry-period",
    "0.5",
];
/// How often the sampler looks.
const SAMPLE: Duration = Duration::from_millis(100);
/// Slack for a file's timestamp against the moment the test read a `leader:` line.
const MARGIN: Duration = Duration::from_millis(50);

/// The example built with `--features etcd` (once per test binary).
fn controller() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", "controller", "--features", "etcd"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .stdin(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "cargo build --example controller --features etcd: {status}"
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    common::example("controller")
}

/// What a replica said on stderr, and when the test read it.
#[derive(Clone, Debug)]
enum Said {
    Leader(u64),
    Standby,
}

/// A replica's lines, with when the test read each.
type Lines = Arc<Mutex<Vec<(SystemTime, Said)>>>;

/// One replica process and its `leader:`/`standby:` lines.
struct Replica {
    id: String,
    child: Child,
    pid: u32,
    lines: Lines,
    /// Whether the sampler counts it: not while killed or paused, nor just after resuming
    /// (it must say `standby:` within 1 s).
    out: Arc<Mutex<Out>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Out {
    In,
    Gone,
    Paused,
    Resumed(Instant),
}

impl Replica {
    fn said(&self) -> Option<Said> {
        self.lines.lock().unwrap().last().map(|(_, s)| s.clone())
    }

    fn term(&self) -> Option<u64> {
        match self.said() {
            Some(Said::Leader(t)) => Some(t),
            _ => None,
        }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }
}

/// A scenario: etcd, the router under churn, the shared directory, three replicas, and
/// the sampler's findings.
struct Cluster {
    etcd: etcd::Etcd,
    router: Router,
    dir: TempDir,
    ca: PathBuf,
    replicas: Vec<Replica>,
    /// What the sampler found wrong.
    violations: Arc<Mutex<Vec<String>>>,
    sampler: tokio::task::JoinHandle<()>,
}

/// Shared with the sampler.
struct View {
    dir: PathBuf,
    lines: Vec<(String, Lines, Arc<Mutex<Out>>)>,
    /// No file may be written from this time (the etcd outage), until cleared.
    quiet_since: Arc<Mutex<Option<SystemTime>>>,
}

impl Cluster {
    async fn start(tag: &str) -> Option<Self> {
        let etcd = etcd::etcd_or_skip(tag)?;
        let router = common::router(
            RouterConfig::default()
                .containers(30)
                .seed(tag.len() as u64)
                .churn(5.0),
        )
        .await;
        let dir = TempDir::new(&format!("ha-{tag}"));
        let out = dir.0.join("out");
        std::fs::create_dir_all(&out).expect("out dir");
        let ca = dir.0.join("ca.pem");
        std::fs::write(&ca, router.ca_pem().expect("self-signed")).expect("write the CA");
        let exe = controller();
        let mut replicas = Vec::new();
        for i in 0..3 {
            replicas.push(spawn(
                &exe,
                &etcd,
                &router,
                &ca,
                &out,
                tag,
                &format!("r{i}"),
            ));
        }
        let violations = Arc::new(Mutex::new(Vec::new()));
        let view = View {
            dir: out,
            lines: replicas
                .iter()
                .map(|r| (r.id.clone(), Arc::clone(&r.lines), Arc::clone(&r.out)))
                .collect(),
            quiet_since: Arc::new(Mutex::new(None)),
        };
        let sampler = tokio::spawn(sample(view, Arc::clone(&violations)));
        Some(Self {
            etcd,
            router,
            dir,
            ca,
            replicas,
            violations,
            sampler,
        })
    }

    fn out(&self) -> PathBuf {
        self.dir.0.join("out")
    }

    /// The replica that says it leads (waits up to `within`), and when it was seen.
    async fn leader(&self, within: Duration, except: Option<usize>) -> (usize, u64, Instant) {
        let deadline = Instant::now() + within;
        loop {
            let leading: Vec<(usize, u64)> = self
                .replicas
                .iter()
                .enumerate()
                .filter(|(i, r)| Some(*i) != except && *r.out.lock().unwrap() == Out::In)
                .filter_map(|(i, r)| r.term().map(|t| (i, t)))
                .collect();
            if let [(i, t)] = leading[..] {
                return (i, t, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {within:?}: {:?}",
                self.replicas.iter().map(Replica::said).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until DIR holds one file per running `tier=frontend` container, each with
    /// `term`.
    async fn converged(&self, term: u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let want = truth(&self.router);
            let have = files(&self.out());
            let terms: BTreeSet<u64> = have.values().map(|(_, t)| *t).collect();
            if have.keys().cloned().collect::<BTreeSet<_>>() == want
                && terms.iter().all(|t| *t == term)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the directory does not match: want {want:?}, have {:?}",
                have.iter().map(|(k, (_, t))| (k, t)).collect::<Vec<_>>()
            );
            tokio::time::sleep(SAMPLE).await;
        }
    }

    fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    async fn finish(mut self) {
        self.sampler.abort();
        let v = self.violations();
        for r in &mut self.replicas {
            let _ = r.child.start_kill();
            let _ = r.child.wait().await;
        }
        let _ = std::fs::remove_file(&self.ca);
        self.router.shutdown().await;
        assert!(v.is_empty(), "violations: {v:#?}");
    }
}

fn spawn(
    exe: &Path,
    etcd: &etcd::Etcd,
    router: &Router,
    ca: &Path,
    out: &Path,
    election: &str,
    id: &str,
) -> Replica {
    let creds = &router.credentials()[0];
    let mut child = Command::new(exe)
        .args([
            "--elect",
            &etcd.url(),
            "--election",
            election,
            "--identity",
            id,
        ])
        .args(TIMING)
        .args(["--addr", &router.addr_string()])
        .args(["--access-key", creds.access_key()])
        .args(["--secret-key", creds.secret_key().expose()])
        .arg("--ca-cert")
        .arg(ca)
        .args(["--label", "tier=frontend"])
        .arg("--out-dir")
        .arg(out)
        .env_remove("HYPER_ACCESS_KEY")
        .env_remove("HYPER_SECRET_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example runs");
    let pid = child.id().expect("a pid");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("piped");
    let (l, who) = (Arc::clone(&lines), id.to_owned());
    tokio::spawn(async move {
        let mut stderr = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = stderr.next_line().await {
            let said = if let Some(rest) = line.strip_prefix(&format!("leader: {who} term=")) {
                rest.parse().ok().map(Said::Leader)
            } else if line == format!("standby: {who}") {
                Some(Said::Standby)
            } else {
                None
            };
            if let Some(said) = said {
                l.lock().unwrap().push((SystemTime::now(), said));
            } else if line.contains("panicked") {
                l.lock().unwrap().push((SystemTime::now(), Said::Standby));
                eprintln!("{who}: {line}");
            }
        }
    });
    Replica {
        id: id.to_owned(),
        child,
        pid,
        lines,
        out: Arc::new(Mutex::new(Out::In)),
    }
}

/// Every 100 ms: at most one replica says it leads, and no file carries a term older than
/// one announced before the file was written; nothing written while `quiet_since` is set.
async fn sample(view: View, violations: Arc<Mutex<Vec<String>>>) {
    let fail = |v: String| {
        let mut all = violations.lock().unwrap();
        if all.len() < 20 {
            all.push(v);
        }
    };
    loop {
        tokio::time::sleep(SAMPLE).await;
        let mut leaders = Vec::new();
        let mut announced: Vec<(SystemTime, u64)> = Vec::new();
        for (id, lines, out) in &view.lines {
            let lines = lines.lock().unwrap();
            announced.extend(lines.iter().filter_map(|(at, s)| match s {
                Said::Leader(t) => Some((*at, *t)),
                Said::Standby => None,
            }));
            let state = *out.lock().unwrap();
            let says_leader = matches!(lines.last(), Some((_, Said::Leader(_))));
            match state {
                Out::In if says_leader => leaders.push(id.clone()),
                Out::Resumed(at) if says_leader && at.elapsed() > Duration::from_secs(1) => {
                    fail(format!("{id} still says it leads 1 s after resuming"));
                }
                _ => {}
            }
        }
        if leaders.len() > 1 {
            fail(format!("several leaders at once: {leaders:?}"));
        }
        let quiet = *view.quiet_since.lock().unwrap();
        for (name, (mtime, term)) in files(&view.dir) {
            if let Some((at, newer)) = announced
                .iter()
                .find(|(at, t)| *t > term && mtime > *at + MARGIN)
            {
                fail(format!(
                    "{name} written with term {term} at {mtime:?}, after term {newer} began ({at:?})"
                ));
            }
            if quiet.is_some_and(|q| mtime > q) {
                fail(format!(
                    "{name} written with term {term} while etcd was down"
                ));
            }
        }
    }
}

/// DIR's files: id -> (modified, Term). Files that vanish meanwhile are skipped.
fn files(dir: &Path) -> BTreeMap<String, (SystemTime, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let mtime = e.metadata().ok()?.modified().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let doc: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{name} is not JSON ({err}): {text}"));
            let term = doc["Term"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name} has no Term: {text}"));
            Some((name, (mtime, term)))
        })
        .collect()
}

/// The ids of the running `tier=frontend` containers.
fn truth(router: &Router) -> BTreeSet<String> {
    router
        .runtime()
        .list(true)
        .into_iter()
        .filter(|c| c.state() == ContainerState::Running && c.label("tier") == Some("frontend"))
        .map(|c| c.id().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_a_new_leader_within_the_lease_and_the_directory_matches() {
    let Some(cluster) = Cluster::start("kill").await else {
        return;
    };
    let (i, term, _) = cluster.leader(PATIENCE, None).await;
    cluster.converged(term).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.replicas[i].signal("KILL");
    let killed = Instant::now();
    *cluster.replicas[i].out.lock().unwrap() = Out::Gone;
    let (_, new_term, at) = cluster
        .leader(LEASE + Duration::from_secs(5), Some(i))
        .await;
    let took = at - killed;
    eprintln!("kill -9: a new leader after {took:?}");
    assert!(
        took < LEASE + Duration::from_secs(2),
        "a new leader after {took:?}"
    );
    assert!(new_term > term);
    cluster.converged(new_term).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_20_s_is_replaced_and_writes_nothing_after_resuming() {
    let Some(cluster) = Cluster::start("stop").await else {
        return;
    };
    let (i, term, _) = cluster.leader(PATIENCE, None).await;
    cluster.converged(term).await;
    cluster.replicas[i].signal("STOP");
    let stopped = Instant::now();
    *cluster.replicas[i].out.lock().unwrap() = Out::Paused;
    let (_, new_term, at) = cluster
        .leader(LEASE + Duration::from_secs(5), Some(i))
        .await;
    assert!(
        at - stopped < LEASE + Duration::from_secs(2),
        "took {:?}",
        at - stopped
    );
    assert!(new_term > term);
    tokio::time::sleep_until(stopped + Duration::from_secs(20)).await;
    cluster.replicas[i].signal("CONT");
    *cluster.replicas[i].out.lock().unwrap() = Out::Resumed(Instant::now());
    // It says standby, and the directory stays the new leader's.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !matches!(cluster.replicas[i].said(), Some(Said::Standby)) {
        assert!(
            Instant::now() < deadline,
            "the resumed replica still says it leads"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    *cluster.replicas[i].out.lock().unwrap() = Out::In;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let old: Vec<String> = files(&cluster.out())
        .into_iter()
        .filter(|(_, (_, t))| *t == term)
        .map(|(n, _)| n)
        .collect();
    assert!(
        old.is_empty(),
        "files with the old term after the takeover: {old:?}"
    );
    cluster.converged(new_term).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_leader_hands_over_in_under_3_s() {
    let Some(mut cluster) = Cluster::start("term").await else {
        return;
    };
    let (i, term, _) = cluster.leader(PATIENCE, None).await;
    cluster.converged(term).await;
    cluster.replicas[i].signal("TERM");
    let sent = Instant::now();
    let (_, new_term, at) = cluster.leader(Duration::from_secs(10), Some(i)).await;
    let took = at - sent;
    eprintln!("SIGTERM: a new leader after {took:?}");
    assert!(took < Duration::from_secs(3), "handover took {took:?}");
    assert!(new_term > term);
    let status = tokio::time::timeout(PATIENCE, cluster.replicas[i].child.wait())
        .await
        .expect("exits on SIGTERM")
        .expect("waited");
    assert!(status.success(), "{status:?}");
    assert!(matches!(cluster.replicas[i].said(), Some(Said::Standby)));
    *cluster.replicas[i].out.lock().unwrap() = Out::Gone;
    cluster.converged(new_term).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_down_20_s_no_replica_acts_and_one_leads_after() {
    let Some(mut cluster) = Cluster::start("etcd").await else {
        return;
    };
    let (_, term, _) = cluster.leader(PATIENCE, None).await;
    cluster.converged(term).await;
    cluster.etcd.kill();
    let down = Instant::now();
    // By the renew deadline (and a margin for the stderr line) nobody leads.
    tokio::time::sleep(RENEW + Duration::from_millis(500)).await;
    let quiet_from = SystemTime::now();
    let leading: Vec<_> = cluster.replicas.iter().filter_map(Replica::term).collect();
    assert!(
        leading.is_empty(),
        "still leading with etcd down: {leading:?}"
    );
    // From now until etcd is back: no leader (the sampler) and nothing written.
    let before = files(&cluster.out());
    let deadline = down + Duration::from_secs(20);
    while Instant::now() < deadline {
        let leading: Vec<_> = cluster.replicas.iter().filter_map(Replica::term).collect();
        assert!(leading.is_empty(), "a leader with etcd down: {leading:?}");
        tokio::time::sleep(SAMPLE).await;
    }
    let after = files(&cluster.out());
    let written: Vec<&String> = after
        .iter()
        .filter(|(_, (m, _))| *m > quiet_from)
        .map(|(n, _)| n)
        .collect();
    assert!(written.is_empty(), "written with etcd down: {written:?}");
    let removed: Vec<&String> = before.keys().filter(|n| !after.contains_key(*n)).collect();
    assert!(removed.is_empty(), "removed with etcd down: {removed:?}");
    cluster.etcd.launch().expect("etcd restarts");
    let (_, new_term, _) = cluster.leader(PATIENCE, None).await;
    assert!(new_term > term);
    cluster.converged(new_term).await;
    cluster.finish().await;
}
