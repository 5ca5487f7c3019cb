//! A small real controller on the runtime (`hypersh::Controller`): for every running
//! container that carries a label, it keeps one file in a directory describing it, as a
//! configuration generator for a reverse proxy would, and removes the file when the
//! container stops or goes away.
//!
//! ```text
//! cargo run --example controller                                  # embedded router, churn
//! cargo run --example controller -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] --label KEY=VALUE --out-dir DIR [--run-for SECS]
//! cargo run --example controller -- --docker [unix:///PATH | tcp://HOST:PORT | ssh://[USER@]HOST[:PORT]]
//!     [--docker URL ...] [--addr HOST:PORT ...] --label KEY --out-dir DIR
//! cargo run --example controller --features etcd -- --elect http://HOST:PORT [--election NAME]
//!     [--identity ID] --label KEY=VALUE --out-dir DIR [--docker URL | --addr ...] [--run-for SECS]
//! ```
//!
//! Several sources (`--docker` repeated, with `--addr` too) make one fleet: one
//! controller per host, the files of all hosts in `DIR`. Without `--out-dir` the files go
//! to a new directory under the system's temporary directory, `hypersh-controller-<pid>`,
//! named on stderr and kept at exit.
//!
//! The contract (tools outside the repository rely on it):
//! - `DIR` holds exactly one file per running container carrying the label `KEY=VALUE`
//!   (`--label KEY` alone: any value), named by its full id, containing a JSON object
//!   with `Id`, `Name` (without the leading `/`), `Image` and `Labels`, and where a proxy
//!   reaches it: `Networks` (each network's name to its `IPAddress`,
//!   `GlobalIPv6Address`, `Gateway`, `MacAddress` and `NetworkID`, as the list writes
//!   them) and `Ports` (the list's `Ports`: `PrivatePort`, `Type`, and `IP` and
//!   `PublicPort` when published), and `Host`: the container's source's URL exactly as
//!   given on the command line (as `informer --dump-cache` writes it);
//! - a file is written atomically: to `DIR/.<id>.tmp`, then renamed;
//! - a write that fails (the directory read-only for a moment) is retried with backoff
//!   (5 ms doubling up to 5 s), not lost;
//! - files of containers the cache does not hold (left by an earlier run) are removed
//!   once the cache has synced;
//! - at exit, after `--run-for SECS` or on Ctrl-C / SIGTERM, `DIR` matches the cache.
//!
//! With `--elect` (a build with `--features etcd`), several replicas share one `DIR` and
//! only the leader of the election writes or deletes in it (see `common/election.rs`):
//! - each file also holds `Term`, the fencing token of the term that wrote it; a write
//!   (its rename) or a removal is made only while the term holds;
//! - stderr gets `leader: ID term=N` when the replica becomes leader and `standby: ID` when
//!   it stops being leader or starts as standby;
//! - a standby, and a replica that shuts down as standby, leave `DIR` alone; the
//!   start-of-term sweep of stale files and the final pass at exit are the leader's, and
//!   at exit (SIGTERM) a leader resigns so the next one takes over at once.
//!
//! Stdout gets `synced: N containers` once the cache is in and `exit: N files` at the
//! end (a closed stdout is ignored); logs go to stderr (`RUST_LOG`).

mod common;
#[path = "common/election.rs"]
mod election;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use hypersh::controller::{Action, ControllerConfig, ReconcileError, Request};
use hypersh::election::Term;
use hypersh::reflector::fleet::Fleet;
use hypersh::watch::ContainerState;
use hypersh::{Container, Filters};

#[derive(Parser, Debug)]
#[command(about = "Keep one file per running container carrying a label")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// The label the containers must carry: KEY=VALUE, or KEY for any value.
    #[arg(long, default_value = "tier=frontend")]
    label: String,
    /// The directory of files (created if missing). Default: a new directory under the
    /// system's temporary directory, named on stderr and kept at exit.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    run_for: Option<f64>,
    /// Files written at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Run on a Docker Engine: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]
    /// (without a value: DOCKER_HOST, then unix:///var/run/docker.sock). Repeat it for
    /// several engines; with `--addr` too, the Hyper.sh endpoint joins them.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    docker: Vec<String>,
    #[command(flatten)]
    elect: election::ElectArgs,
}

/// The longest wait between two tries of a failing write: a directory that is writable
/// again is caught up within this.
const WRITE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long running writes may take to finish at exit.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(true, run(args))
}

/// Prints a line on stdout; a closed stdout (`| head`) is not an error.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The label selector: a key, and the value it must have (any, without one).
#[derive(Clone, Debug)]
struct Selector {
    key: String,
    value: Option<String>,
}

impl Selector {
    fn parse(s: &str) -> Result<Self, String> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (s, None),
        };
        if key.is_empty() {
            return Err(format!("--label {s:?}: expected KEY=VALUE or KEY"));
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }

    fn admits(&self, c: &Container) -> bool {
        match c.label(&self.key) {
            Some(v) => self.value.as_deref().is_none_or(|want| v == want),
            None => false,
        }
    }
}

/// The file a container should have: its JSON description (with `Term` under an
/// election) if it runs and carries the label, else none.
fn desired(c: &Container, host: &str, selector: &Selector, term: Option<&Term>) -> Option<Vec<u8>> {
    if c.state() != ContainerState::Running || !selector.admits(c) {
        return None;
    }
    let labels: serde_json::Map<String, serde_json::Value> = c
        .labels()
        .iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
        .collect();
    let networks: serde_json::Map<String, serde_json::Value> = c
        .networks()
        .iter()
        .map(|n| {
            let addresses = serde_json::json!({
                "IPAddress": n.ip_address(),
                "GlobalIPv6Address": n.global_ipv6_address(),
                "Gateway": n.gateway(),
                "MacAddress": n.mac_address(),
                "NetworkID": n.network_id(),
            });
            (n.name().to_owned(), addresses)
        })
        .collect();
    let mut doc = serde_json::json!({
        "Id": c.id(),
        "Name": c.name().unwrap_or_default(),
        "Image": c.image(),
        "Labels": labels,
        "Networks": networks,
        "Ports": c.ports(),
        "Host": host,
    });
    if let Some(term) = term {
        doc["Term"] = term.token().get().into();
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    Some(bytes)
}

/// Makes `DIR/<id>` hold `content` (written to a temporary file in DIR, synced, then
/// renamed over it), or be absent. Unchanged content is not written again. Under an
/// election the rename or the removal happens only while `term` holds.
fn converge(
    dir: &Path,
    id: &str,
    content: Option<&[u8]>,
    term: Option<&Term>,
) -> std::io::Result<()> {
    let fence = || match term {
        Some(t) if !t.is_current() => Err(std::io::Error::other(format!(
            "term {} ended: not leading",
            t.token()
        ))),
        _ => Ok(()),
    };
    if !is_id(id) {
        // Not a name this directory's readers expect (nor a safe path): leave it alone.
        tracing::warn!(id, "not a full container id; no file");
        return Ok(());
    }
    let path = dir.join(id);
    match content {
        Some(bytes) => {
            if std::fs::read(&path).is_ok_and(|old| old == bytes) {
                return Ok(());
            }
            // One reconcile per id at a time (the controller's guarantee), and the final
            // pass runs after the controller stopped: the temporary name cannot clash.
            let tmp = dir.join(format!(".{id}.tmp"));
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fence().inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            std::fs::rename(&tmp, &path)
        }
        None => match fence().and_then(|()| std::fs::remove_file(&path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Whether `name` is a full container id (64 lowercase hex characters).
fn is_id(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Makes the whole directory match the cache: every container's file as `desired` says,
/// and no file for an id the cache does not hold. Returns how many files DIR holds and
/// the first error (every file is still tried).
fn sync_dir(
    dir: &Path,
    fleet: &Fleet,
    selector: &Selector,
    term: Option<&Term>,
) -> (usize, Option<String>) {
    let mut first_error = None;
    let mut note = |e: String| {
        first_error.get_or_insert(e);
    };
    let mut files = 0;
    for c in fleet.list() {
        let content = desired(&c, c.host(), selector, term);
        files += usize::from(content.is_some());
        if let Err(e) = converge(dir, c.id(), content.as_deref(), term) {
            note(format!("{}: {e}", c.id()));
        }
    }
    if let Err(e) = remove_stale(dir, fleet) {
        note(e);
    }
    (files, first_error)
}

/// Removes the files of ids the cache does not hold, and temporary files an interrupted
/// write left. Returns the first error (every file is still tried).
fn remove_stale(dir: &Path, fleet: &Fleet) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut first_error = Ok(());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if is_id(&name) {
            fleet
                .hosts()
                .iter()
                .all(|host| fleet.get(host, &name).is_none())
        } else {
            name.starts_with('.') && name.ends_with(".tmp")
        };
        if stale
            && let Err(e) = std::fs::remove_file(entry.path())
            && first_error.is_ok()
        {
            first_error = Err(format!("{name}: {e}"));
        }
    }
    first_error
}

async fn run(args: Args) -> Result<(), String> {
    let run_for = common::optional_seconds("--run-for", args.run_for)?;
    let selector = Selector::parse(&args.label)?;
    let out_dir = match &args.out_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir =
                std::env::temp_dir().join(format!("hypersh-controller-{}", std::process::id()));
            common::stderr_line(format_args!(
                "no --out-dir given: writing the files to {}",
                dir.display()
            ));
            dir
        }
    };
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("--out-dir {}: {e}", out_dir.display()))?;
    // The server narrows the cache to the label; the controller checks it again (and the
    // state) for every request.
    let filters = Filters::new().label(args.label.clone());
    let fleet = common::fleet::builder("controller")
        .filters(filters)
        .build();
    let router = common::fleet::add_hosts(&fleet, &args.conn, &args.docker, "controller").await?;
    let controllers = common::fleet::controllers(&fleet, "proxy-files", |name| {
        ControllerConfig::new(name)
            .concurrency(args.concurrency)
            .backoff(Duration::from_millis(5), WRITE_BACKOFF_MAX)
            .shutdown_deadline(SHUTDOWN_DEADLINE)
    })?;
    // Under an election: each term starts with the sweep of stale files (once synced).
    let synced_flag = Arc::new(AtomicBool::new(false));
    let replica = args.elect.start({
        let (fleet, dir, synced) = (fleet.clone(), out_dir.clone(), Arc::clone(&synced_flag));
        move |term| {
            if synced.load(Ordering::SeqCst)
                && term.is_current()
                && let Err(e) = remove_stale(&dir, &fleet)
            {
                tracing::warn!(error = %e, "removing stale files");
            }
        }
    })?;
    let controllers = match &replica {
        Some(replica) => controllers
            .into_iter()
            .map(|c| c.with_leadership(replica.leadership()))
            .collect(),
        None => controllers,
    };
    let stop = common::sleep_opt(run_for);
    let interrupt = interrupted();
    tokio::pin!(stop, interrupt);
    // The queue fills from the cache meanwhile; nothing is written before the sync.
    let synced = tokio::select! {
        () = &mut stop => false,
        () = &mut interrupt => false,
        // No deadline of its own: Ctrl-C or --run-for end the wait.
        synced = fleet.wait_synced(Duration::MAX) => synced.is_ok(),
    };
    let mut running = None;
    if synced {
        // Files an earlier run left for containers gone since (before any write starts);
        // under an election, the leader's alone.
        synced_flag.store(true, Ordering::SeqCst);
        let leads = replica.as_ref().is_none_or(|r| r.current().is_some());
        if leads && let Err(e) = remove_stale(&out_dir, &fleet) {
            tracing::warn!(error = %e, "removing stale files");
        }
        say(&format!("synced: {} containers", fleet.len()));
        let files = Arc::new(Files {
            dir: out_dir.clone(),
            selector: selector.clone(),
        });
        running = Some(common::fleet::spawn_all(controllers, reconcile, files));
        tokio::select! {
            () = &mut stop => {}
            () = &mut interrupt => {}
        }
    }

    // Freeze the cache (this stops the controller too), let the running writes finish,
    // then make the directory match the frozen cache, retrying a failing write.
    fleet.shutdown().await;
    let report = match running {
        Some(task) => task
            .await
            .map_err(|e| format!("the controller failed: {e}"))??,
        None => return Err("stopped before the cache synced".to_owned()),
    };
    if !report.waiting.is_empty() || !report.abandoned.is_empty() {
        tracing::info!(
            waiting = report.waiting.len(),
            abandoned = report.abandoned.len(),
            "finishing what the controller left"
        );
    }
    // Under an election the final pass is the leader's (fenced by its term), then it
    // resigns; a standby leaves DIR alone.
    if let Some(replica) = replica {
        let line = match replica.current() {
            Some(term) => {
                let (files, error) = sync_dir(&out_dir, &fleet, &selector, Some(&term));
                if let Some(e) = error {
                    tracing::warn!(error = %e, "the final pass as leader");
                }
                format!("exit: {files} files")
            }
            None => "exit: standby".to_owned(),
        };
        replica.resign().await;
        say(&line);
        if let Some(router) = router {
            router.shutdown().await;
        }
        return Ok(());
    }
    let mut delay = Duration::from_millis(5);
    let files = loop {
        match sync_dir(&out_dir, &fleet, &selector, None) {
            (files, None) => break files,
            (_, Some(e)) if delay > WRITE_BACKOFF_MAX => {
                return Err(format!("cannot bring {} in line: {e}", out_dir.display()));
            }
            (_, Some(e)) => {
                tracing::warn!(error = %e, ?delay, "retrying the final pass");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    };
    say(&format!("exit: {files} files"));
    if let Some(router) = router {
        router.shutdown().await;
    }
    Ok(())
}

/// What every reconcile shares: where the files go, and which containers get one.
struct Files {
    dir: PathBuf,
    selector: Selector,
}

/// Makes the file of `req`'s container match the cache (a failed write is retried).
async fn reconcile(req: Request, files: Arc<Files>) -> Result<Action, ReconcileError> {
    let term = req.term().cloned();
    let host = req.host().unwrap_or_default();
    let content = req
        .container()
        .and_then(|c| desired(c, host, &files.selector, term.as_ref()));
    let id = req.id().to_owned();
    tokio::task::spawn_blocking(move || {
        converge(&files.dir, &id, content.as_deref(), term.as_ref())
    })
    .await??;
    Ok(Action::Done)
}

/// Ctrl-C, or SIGTERM on Unix.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
