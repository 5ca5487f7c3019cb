//! The project's main job: an informer that keeps a local cache of containers in step with
//! an API router, shows events as they arrive and a live summary.
//!
//! ```text
//! cargo run --release --example informer                      # embedded router, churn
//! cargo run --release --example informer -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] [--filter label=app=web] [--run-for SECS] [--dump-cache FILE]
//! ```
//! With `--docker [URL]` it runs on a Docker Engine or Podman instead
//! (`unix:///var/run/docker.sock`, `unix:///run/podman/podman.sock`, `tcp://HOST:PORT`
//! (mutual TLS with `DOCKER_CERT_PATH`'s `ca.pem`, `cert.pem`, `key.pem` when
//! `DOCKER_TLS_VERIFY` is set, as the `docker` CLI) or `ssh://[USER@]HOST[:PORT]`;
//! without a URL, `DOCKER_HOST`, then the default socket):
//! `cargo run --release --example informer -- --docker --run-for 10 --dump-cache cache.json`.
//! A daemon that is not up yet is waited for (retried with backoff); once connected, a
//! line on stderr and the summary say which engine and API version serve the cache.
//! Without `--addr` it starts the reference router in-process (self-signed TLS, churning
//! containers; `--drop-every SECS` also drops the websocket now and then, to show the
//! reconnect and relist). Events go to stdout, one line each; the summary goes to stderr
//! every second (one live line where it cannot collide with the events, else plain
//! lines), with the phase and, while failing, the failed attempts and the last error.
//!
//! The run ends at `--run-for`, Ctrl-C, SIGTERM or a closed stdout (`| head`); then
//! `--dump-cache FILE` writes the cache as a JSON array in the list endpoint's container
//! format, comparable with `GET /containers/json?all=1`. Exit code: 0 only if the cache
//! synced at least once during the run; otherwise 1, with the last error on stderr.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh::Informer;
use hypersh::store::Deleted;
use hypersh::watch::{Client, Container, Filters};

#[derive(Parser, Debug)]
#[command(about = "Run an informer and show its cache live")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Cache only these containers: container=x,image=y,label=k=v (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    run_for: Option<f64>,
    /// Write the cache at exit to FILE as a JSON array of containers.
    #[arg(long)]
    dump_cache: Option<PathBuf>,
    /// Embedded router: drop every websocket this often (seconds), to show reconnects.
    #[arg(long)]
    drop_every: Option<f64>,
    /// Do not print each event, only the summary.
    #[arg(long)]
    quiet: bool,
    /// Run on a Docker Engine: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]
    /// (without a value: DOCKER_HOST, then unix:///var/run/docker.sock). The connection
    /// flags are ignored.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    docker: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(true, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let mut signals = common::Signals::new()?;
    let run_for = common::optional_seconds("--run-for", args.run_for)?;
    let drop_every = common::optional_seconds("--drop-every", args.drop_every)?;
    let filters = common::parse_filters(&args.filter, hypersh::reflector::SELECTOR_KEYS)?;
    let (informer, router) = if let Some(url) = &args.docker {
        (docker_informer(url, filters).await?, None)
    } else {
        let (config, router) = args.conn.connect().await?;
        common::stderr_line(format_args!(
            "informer on {}",
            config.endpoint().http_url("")
        ));
        let client = Client::new(config).map_err(|e| e.to_string())?;
        let informer = Informer::builder(client)
            .filters(filters)
            .build()
            .map_err(|e| e.to_string())?;
        (informer, router)
    };

    let out = common::Stdout::default();
    if !args.quiet {
        // One handler: it sees each container's changes in the order the cache made them.
        let (added, updated, deleted) = (out.clone(), out.clone(), out.clone());
        informer
            .handler()
            .on_add(move |c: &Arc<Container>| {
                added.line(format_args!("ADDED     {}", describe(c)));
            })
            .on_update(move |old: &Arc<Container>, new: &Arc<Container>| {
                if old.state() != new.state() || !old.names().eq(new.names()) {
                    updated.line(format_args!(
                        "MODIFIED  {} (was {})",
                        describe(new),
                        old.state()
                    ));
                }
            })
            .on_delete(move |d: &Deleted<Container>| {
                let note = if d.is_final_state_unknown() {
                    " (missed while away)"
                } else {
                    ""
                };
                deleted.line(format_args!("DELETED   {}{note}", describe(d.last())));
            })
            .register();
    }

    if let (Some(router), Some(every)) = (&router, drop_every) {
        let faults = router.faults().clone();
        let period = every.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                faults.drop_connections();
            }
        });
    }

    let started = Instant::now();
    let deadline = run_for.map(|d| started + d);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let status_line = common::StatusLine::new(!args.quiet);
    let mut attempts = common::Attempts::default();
    let mut last_events = 0;
    let mut last_at = Instant::now();
    let mut server: Option<String> = None;
    let mut give_back = common::GiveBack::default();
    let ended_by = loop {
        let until_deadline = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            signal = signals.recv() => break signal,
            () = common::sleep_opt(until_deadline) => break "--run-for",
            () = out.closed() => break "closed stdout",
            _ = tick.tick() => {
                let status = informer.status();
                give_back.after(&status);
                if status.server.is_some() && status.server != server {
                    server.clone_from(&status.server);
                    if let Some(s) = &server {
                        status_line.finish();
                        common::stderr_line(format_args!("connected to {s}"));
                    }
                }
                let rate = (status.events_received - last_events) as f64
                    / last_at.elapsed().as_secs_f64().max(1e-3);
                last_events = status.events_received;
                last_at = Instant::now();
                status_line.show(summary(&informer, rate, &status, &mut attempts));
            }
        }
    };
    status_line.finish();
    // The reflector's own status says whether it ever synced: read it before shutdown.
    let status = informer.status();
    informer.shutdown().await;
    let cached = informer.store().list();
    let ran_for = started.elapsed();
    common::stderr_line(format_args!(
        "stopped ({ended_by}) after {:.1}s with {} containers cached",
        ran_for.as_secs_f64(),
        cached.len()
    ));
    if let Some(path) = &args.dump_cache {
        let mut containers: Vec<&Container> = cached.iter().map(AsRef::as_ref).collect();
        containers.sort_by(|a, b| a.id().cmp(b.id()));
        let json = serde_json::to_vec_pretty(&containers).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("--dump-cache {}: {e}", path.display()))?;
        common::stderr_line(format_args!("cache written to {}", path.display()));
    }
    if let Some(router) = router {
        router.shutdown().await;
    }
    match common::never_synced(&status, ran_for) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// An informer on the Docker Engine or Podman at `url` (empty: `DOCKER_HOST`, then the
/// default socket). The daemon is not contacted here: the informer connects (and waits
/// for a daemon that is not up yet) in the background.
async fn docker_informer(url: &str, filters: Filters) -> Result<Informer, String> {
    let source = common::docker_source(url)?;
    common::stderr_line(format_args!("informer on {}", source.host()));
    Informer::builder(source)
        .filters(filters)
        .build()
        .map_err(|e| e.to_string())
}

fn describe(c: &Container) -> String {
    format!(
        "{:<24} {:<16} {:<10} {}",
        c.name().unwrap_or("-"),
        c.image(),
        c.state(),
        short(c.id())
    )
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn summary(
    informer: &Informer,
    rate: f64,
    status: &hypersh::reflector::Status,
    attempts: &mut common::Attempts,
) -> String {
    let mut by_state: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in informer.store().list() {
        *by_state.entry(c.state().as_str()).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{s}={n}")).collect();
    let server = status
        .server
        .as_deref()
        .map(|s| format!(" {s} |"))
        .unwrap_or_default();
    let mut line = format!(
        "[{}]{server} {} containers ({}) | {rate:.1} events/s | reconnects={} relists={} decode_errors={}",
        common::phase_word(status.phase),
        informer.store().len(),
        states.join(" "),
        status.reconnects,
        status.relists,
        status.decode_errors,
    );
    if let Some(failing) = attempts.failing(status) {
        line.push_str(" | ");
        line.push_str(&failing);
    }
    line
}
