//! An informer whose metrics Prometheus can scrape.
//!
//! ```text
//! cargo run --release --example metrics                       # embedded router, churn
//! cargo run --release --example metrics -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] [--filter label=app=web] [--listen 127.0.0.1:9898]
//!     [--run-for SECS]
//! curl -s http://127.0.0.1:9898/metrics
//! ```
//! The reflector reports through the `metrics` facade (`hypersh_reflector_*`, listed in
//! `docs/operations.md`); this program installs `metrics-exporter-prometheus` as the
//! recorder, with its HTTP listener on `--listen`, and sets one gauge of its own every
//! second: `hypersh_cache_containers`, the number of cached containers. Without `--addr`
//! it starts the reference router in-process (self-signed TLS, churning containers).

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hypersh::{Client, Filters, Informer};
use metrics_exporter_prometheus::PrometheusBuilder;

#[derive(Parser, Debug)]
#[command(about = "Run an informer and serve its metrics in the Prometheus text format")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Cache only these containers: container=x,image=y,label=k=v (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Where to serve the metrics (any path answers).
    #[arg(long, default_value = "127.0.0.1:9898")]
    listen: SocketAddr,
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    run_for: Option<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(true, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let run_for = common::optional_seconds("--run-for", args.run_for)?;
    let filters = Filters::parse_cli(&args.filter.join(",")).map_err(|e| e.to_string())?;
    // Install the recorder first: metrics recorded before it are lost. Inside a tokio
    // runtime, `install` binds the listener now and serves it on this runtime.
    PrometheusBuilder::new()
        .with_http_listener(args.listen)
        .install()
        .map_err(|e| format!("cannot serve metrics on {}: {e}", args.listen))?;
    metrics::describe_gauge!(
        "hypersh_cache_containers",
        "Containers in the informer's cache"
    );
    eprintln!("metrics on http://{}/metrics", args.listen);

    let (config, router) = args.conn.connect().await?;
    eprintln!("informer on {}", config.endpoint().http_url(""));
    let informer = Informer::builder(Client::new(config).map_err(|e| e.to_string())?)
        .filters(filters)
        .build()
        .map_err(|e| e.to_string())?;

    let stop = common::sleep_opt(run_for);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(stop, ctrl_c);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = &mut ctrl_c => break,
            _ = tick.tick() => {
                #[allow(clippy::cast_precision_loss)] // exact below 2^53 containers
                let cached = informer.store().len() as f64;
                metrics::gauge!("hypersh_cache_containers").set(cached);
            }
        }
    }
    informer.shutdown().await;
    if let Some(router) = router {
        router.shutdown().await;
    }
    Ok(())
}
