//! The project's main job: an informer that keeps a local cache of containers in step with
//! an API router, shows events as they arrive and a live summary.
//!
//! ```text
//! cargo run --release --example informer                      # embedded router, churn
//! cargo run --release --example informer -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] [--filter label=app=web] [--run-for SECS] [--dump-cache FILE]
//! ```
//! With `--docker [URL]` it runs on a Docker Engine instead (`unix:///var/run/docker.sock`
//! or `tcp://HOST:PORT`; without a URL, `DOCKER_HOST`, then the default socket):
//! `cargo run --release --example informer -- --docker --run-for 10 --dump-cache cache.json`.
//! Without `--addr` it starts the reference router in-process (self-signed TLS, churning
//! containers; `--drop-every SECS` also drops the websocket now and then, to show the
//! reconnect and relist). Events go to stdout, one line each; the live summary goes to
//! stderr. `--dump-cache FILE` writes the cache at exit as a JSON array in the list
//! endpoint's container format, comparable with `GET /containers/json?all=1`.

mod common;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh::docker::DockerSource;
use hypersh::watch::{Client, Container, Filters};
use hypersh::{Deleted, Informer};

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
    /// Run on a Docker Engine: unix:///PATH or tcp://HOST:PORT (without a value:
    /// DOCKER_HOST, then unix:///var/run/docker.sock). The connection flags are ignored.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    docker: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(true, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let run_for = common::optional_seconds("--run-for", args.run_for)?;
    let drop_every = common::optional_seconds("--drop-every", args.drop_every)?;
    let filters = Filters::parse_cli(&args.filter.join(",")).map_err(|e| e.to_string())?;
    let (informer, router) = if let Some(url) = &args.docker {
        (docker_informer(url, filters).await?, None)
    } else {
        let (config, router) = args.conn.connect().await?;
        eprintln!("informer on {}", config.endpoint().http_url(""));
        let client = Client::new(config).map_err(|e| e.to_string())?;
        let informer = Informer::builder(client)
            .filters(filters)
            .build()
            .map_err(|e| e.to_string())?;
        (informer, router)
    };

    if !args.quiet {
        informer.on_add(|c: &Arc<Container>| println!("ADDED     {}", describe(c)));
        informer.on_update(|old: &Arc<Container>, new: &Arc<Container>| {
            if old.state != new.state || old.names != new.names {
                println!("MODIFIED  {} (was {})", describe(new), old.state);
            }
        });
        informer.on_delete(|d: &Deleted<Container>| {
            let note = if d.is_final_state_unknown() {
                " (missed while away)"
            } else {
                ""
            };
            println!("DELETED   {}{note}", describe(d.last()));
        });
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
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let tty = std::io::stderr().is_terminal();
    let mut last_events = 0;
    let mut last_at = Instant::now();
    loop {
        let until_deadline = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = &mut ctrl_c => break,
            () = common::sleep_opt(until_deadline) => break,
            _ = tick.tick() => {
                let status = informer.status();
                let rate = (status.events_received - last_events) as f64
                    / last_at.elapsed().as_secs_f64().max(1e-3);
                last_events = status.events_received;
                last_at = Instant::now();
                let line = summary(&informer, rate, &status);
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }
    if tty {
        eprintln!();
    }
    informer.shutdown().await;
    let cached = informer.store().list();
    eprintln!(
        "stopped after {:.1}s with {} containers cached",
        started.elapsed().as_secs_f64(),
        cached.len()
    );
    if let Some(path) = &args.dump_cache {
        let mut containers: Vec<&Container> = cached.iter().map(AsRef::as_ref).collect();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        let json = serde_json::to_vec_pretty(&containers).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("--dump-cache {}: {e}", path.display()))?;
        eprintln!("cache written to {}", path.display());
    }
    if let Some(router) = router {
        router.shutdown().await;
    }
    Ok(())
}

/// An informer on the Docker Engine at `url` (empty: `DOCKER_HOST`, then the default socket).
async fn docker_informer(url: &str, filters: Filters) -> Result<Informer, String> {
    let source = if url.is_empty() {
        DockerSource::from_env().await
    } else {
        DockerSource::connect(url).await
    }
    .map_err(|e| e.to_string())?;
    eprintln!(
        "informer on {} (Docker API {})",
        source.host(),
        source.api_version()
    );
    Informer::builder(source)
        .filters(filters)
        .build()
        .map_err(|e| e.to_string())
}

fn describe(c: &Container) -> String {
    format!(
        "{:<24} {:<16} {:<10} {}",
        c.name().unwrap_or("-"),
        c.image,
        c.state,
        short(&c.id)
    )
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn summary(informer: &Informer, rate: f64, status: &hypersh::Status) -> String {
    let mut by_state: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in informer.store().list() {
        *by_state.entry(c.state.as_str()).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{s}={n}")).collect();
    format!(
        "[{}] {} containers ({}) | {rate:.1} events/s | reconnects={} relists={} decode_errors={}",
        if status.connected {
            "connected"
        } else {
            "disconnected"
        },
        informer.store().len(),
        states.join(" "),
        status.reconnects,
        status.relists,
        status.decode_errors,
    )
}
