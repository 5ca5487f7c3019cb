//! An informer whose metrics Prometheus can scrape.
//!
//! ```text
//! cargo run --release --example metrics                       # embedded router, churn
//! cargo run --release --example metrics -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] [--filter label=app=web] [--listen 127.0.0.1:9898]
//!     [--run-for SECS]
//! cargo run --release --example metrics -- --docker [URL]   # a Docker Engine instead
//! curl -s http://127.0.0.1:9898/metrics
//! ```
//! The reflector reports through the `metrics` facade (`hypersh_reflector_*`, listed in
//! `docs/operations.md`); this program installs `metrics-exporter-prometheus` as the
//! recorder, serves it on `--listen` (port 0: any free port; the printed URL carries the
//! bound one), and sets one gauge of its own every second: `hypersh_cache_containers`,
//! the number of cached containers. Every `hypersh_reflector_*` metric is there, with its
//! `# HELP`, from the start. Without `--addr` it starts the reference router in-process
//! (self-signed TLS, churning containers). With `--docker [URL]` the informer runs on a
//! Docker Engine (`unix:///PATH`, `tcp://HOST:PORT`, with TLS when `DOCKER_TLS_VERIFY` is
//! set, or `ssh://[USER@]HOST[:PORT]`; without a URL, `DOCKER_HOST`, then the default
//! socket). It stops at `--run-for`, Ctrl-C or SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh::{Client, Informer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let filters = common::parse_filters(&args.filter, hypersh::reflector::SELECTOR_KEYS)?;
    // Bind first, to print the real address (`--listen 127.0.0.1:0` picks a free port).
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot serve metrics on {}: {e}", args.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot serve metrics on {}: {e}", args.listen))?;
    // Install the recorder before the informer is built: metrics recorded (and
    // described) before it are lost.
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    // The reflector's metrics, described and at 0 before the first scrape can come
    // (building the informer does it too, but only after the connection is set up).
    hypersh::reflector::metrics::describe();
    metrics::describe_gauge!(
        "hypersh_cache_containers",
        "Containers in the informer's cache"
    );
    metrics::gauge!("hypersh_cache_containers").set(0.0);
    tokio::spawn(serve(listener, handle.clone()));
    common::stderr_line(format_args!("metrics on http://{bound}/metrics"));

    let (informer, router) = if let Some(url) = &args.docker {
        // Made without contacting the daemon: one that is not up yet is waited for.
        let source = common::docker_source(url)?;
        common::stderr_line(format_args!("informer on {}", source.host()));
        let informer = Informer::builder(source)
            .filters(filters)
            .build()
            .map_err(|e| e.to_string())?;
        (informer, None)
    } else {
        let (config, router) = args.conn.connect().await?;
        common::stderr_line(format_args!(
            "informer on {}",
            config.endpoint().http_url("")
        ));
        let informer = Informer::builder(Client::new(config).map_err(|e| e.to_string())?)
            .filters(filters)
            .build()
            .map_err(|e| e.to_string())?;
        (informer, router)
    };

    let started = Instant::now();
    let stop = common::sleep_opt(run_for);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut give_back = common::GiveBack::default();
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = signals.recv() => break,
            _ = tick.tick() => {
                give_back.after([&informer.status()]);
                #[allow(clippy::cast_precision_loss)] // exact below 2^53 containers
                let cached = informer.store().len() as f64;
                metrics::gauge!("hypersh_cache_containers").set(cached);
                handle.run_upkeep();
            }
        }
    }
    let status = informer.status();
    informer.shutdown().await;
    if let Some(router) = router {
        router.shutdown().await;
    }
    match common::never_synced(&status, started.elapsed()) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Answers every HTTP request on `listener` (any path) with the metrics in the
/// Prometheus text format.
async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, handle.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request head (up to 8 KiB, within 10 s) and writes the metrics.
async fn answer(mut stream: TcpStream, handle: PrometheusHandle) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        return;
    }
    let body = handle.render();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
