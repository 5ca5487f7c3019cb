//! The examples' sources as one fleet: every `--docker URL` (repeatable) and `--addr` (one
//! Hyper.sh endpoint), or the embedded router when neither is given. Each host is named
//! by its URL exactly as given on the command line (`--addr`'s value for the Hyper.sh
//! endpoint); a bare `--docker` is named by the URL it resolves to (`DOCKER_HOST`, else
//! `unix:///var/run/docker.sock`), and the embedded router by its base URL
//! (`https://127.0.0.1:PORT`): what the run prints as "... on URL".

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hypersh::controller::{Action, ControllerConfig, ReconcileError, Request, ShutdownReport};
use hypersh::reflector::fleet::{Fleet, FleetBuilder};
use hypersh::reflector::{Phase, Status};
use hypersh::{Client, Controller};
use hypersh_apirouter::Router;
use tokio::task::JoinHandle;

use super::{Connection, docker_source, never_synced, stderr_line};

/// Adds the hosts the flags name to `fleet` (saying `"{role} on URL"` on stderr for each)
/// and returns the embedded router when one was started (keep it for the whole run).
pub async fn add_hosts(
    fleet: &Fleet,
    conn: &Connection,
    docker: &[String],
    role: &str,
) -> Result<Option<Router>, String> {
    for url in docker {
        let source = docker_source(url)?;
        let name = if url.is_empty() {
            source.host().to_string()
        } else {
            url.clone()
        };
        stderr_line(format_args!("{role} on {}", source.host()));
        fleet
            .add_host(name, source)
            .map_err(|e| format!("--docker {url}: {e}"))?;
    }
    if conn.addr.is_none() && !docker.is_empty() {
        return Ok(None);
    }
    let (config, router) = conn.connect().await?;
    let name = match &conn.addr {
        Some(addr) => addr.clone(),
        None => config.endpoint().http_url(""),
    };
    stderr_line(format_args!("{role} on {}", config.endpoint().http_url("")));
    let client = Client::new(config).map_err(|e| e.to_string())?;
    fleet
        .add_host(name, client)
        .map_err(|e| format!("--addr: {e}"))?;
    Ok(router)
}

/// A new fleet builder with the examples' settings (named `name` in the metrics).
pub fn builder(name: &str) -> FleetBuilder {
    Fleet::builder().name(name)
}

/// The phase a status line shows for the whole fleet: the one furthest from watching.
pub fn worst_phase(statuses: &[(String, Status)]) -> Phase {
    let rank = |p: Phase| match p {
        Phase::Watching => 0,
        Phase::Listing => 1,
        Phase::Connecting => 2,
        Phase::Backoff => 3,
        Phase::Stopped => 4,
    };
    statuses
        .iter()
        .map(|(_, s)| s.phase)
        .max_by_key(|p| rank(*p))
        .unwrap_or(Phase::Connecting)
}

/// The error of a run in which some host's cache never synced (each named when there
/// are several); `None` when every host synced at least once.
pub fn fleet_never_synced(statuses: &[(String, Status)], ran_for: Duration) -> Option<String> {
    let failed: Vec<(String, String)> = statuses
        .iter()
        .filter_map(|(host, s)| never_synced(s, ran_for).map(|e| (host.clone(), e)))
        .collect();
    match failed.as_slice() {
        [] => None,
        [(_, only)] if statuses.len() == 1 => Some(only.clone()),
        _ => Some(
            failed
                .iter()
                .map(|(host, e)| format!("host {host}: {e}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

/// The cache as one JSON array in the list endpoint's format, each container with
/// `"Host"` (its host's name), sorted by host then id.
pub fn dump(fleet: &Fleet) -> Result<Vec<u8>, String> {
    let mut cached = fleet.list();
    cached.sort_by(|a, b| (a.host(), a.id()).cmp(&(b.host(), b.id())));
    let mut out = Vec::with_capacity(cached.len());
    for c in &cached {
        let mut value = serde_json::to_value(c.container().as_ref()).map_err(|e| e.to_string())?;
        if let Some(object) = value.as_object_mut() {
            object.insert("Host".to_owned(), c.host().into());
        }
        out.push(value);
    }
    serde_json::to_vec_pretty(&out).map_err(|e| e.to_string())
}

/// One controller per host of `fleet` (each host its own queue, retries and concurrency:
/// a flood on one host never delays another's reconciles; a request's
/// [`host`](hypersh::controller::Request::host) names its host), configured by
/// `config(name)`: `name` is `base` with one host, `base@HOST` with several (the metrics'
/// `controller` label).
pub fn controllers(
    fleet: &Fleet,
    base: &str,
    config: impl Fn(String) -> ControllerConfig,
) -> Result<Vec<Controller>, String> {
    let hosts = fleet.hosts();
    let several = hosts.len() > 1;
    hosts
        .iter()
        .map(|host| {
            let informer = fleet
                .informer(host)
                .ok_or_else(|| format!("host {host} left the fleet"))?;
            let name = if several {
                format!("{base}@{host}")
            } else {
                base.to_owned()
            };
            Controller::new(&informer, config(name)).map_err(|e| format!("{host}: {e}"))
        })
        .collect()
}

/// Runs every controller on its own task with the same reconcile and context; the
/// task ends when they all have (the fleet's shutdown stops them), with their reports
/// merged.
pub fn spawn_all<C, R, F, E>(
    controllers: Vec<Controller>,
    reconcile: R,
    context: Arc<C>,
) -> JoinHandle<Result<ShutdownReport, String>>
where
    C: Send + Sync + 'static,
    R: FnMut(Request, Arc<C>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Action, E>> + Send + 'static,
    E: Into<ReconcileError> + Send + 'static,
{
    let tasks: Vec<_> = controllers
        .into_iter()
        .map(|controller| tokio::spawn(controller.run(reconcile.clone(), Arc::clone(&context))))
        .collect();
    tokio::spawn(async move {
        let mut merged = ShutdownReport::default();
        for task in tasks {
            let report = task
                .await
                .map_err(|e| format!("the controller failed: {e}"))?;
            merged.waiting.extend(report.waiting);
            merged.abandoned.extend(report.abandoned);
            merged.finished += report.finished;
        }
        Ok(merged)
    })
}
