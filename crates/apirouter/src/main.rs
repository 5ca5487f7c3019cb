//! `apirouter`: the reference Hyper.sh API router as a program.
//!
//! ```text
//! apirouter --listen ADDR --tls self-signed|off --credentials AK:SK (repeatable) --region R
//!   --containers N --churn EVENTS_PER_SEC --churn-for SECS --seed S --shape docker|k8s
//!   --emit N [--emit-rate PER_SEC] [--emit-delay SECS] [--cert FILE --key FILE] [--max-watches-per-key N]
//!   [--header-read-timeout SECS] [--idle-timeout SECS] [--max-connections N]
//!   [--watch-send-timeout SECS] [--max-seen-signatures N]
//! ```
//!
//! The first stdout line is `listening on https://HOST:PORT` (`http://` with `--tls off`),
//! with the real port when ADDR has port 0. Logs go to stderr (`RUST_LOG`, default `info`).
//! Runs until Ctrl-C or SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hypersh_apirouter::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_SEEN_SIGNATURES, DEFAULT_MAX_WATCHES_PER_KEY, DEFAULT_REGION, DEFAULT_SEED,
    DEFAULT_WATCH_SEND_TIMEOUT, Router, RouterConfig, ServerTls, Shape,
};

/// The reference Hyper.sh API router: signed container list and /events/ws from a
/// simulated container runtime.
#[derive(Debug, Parser)]
#[command(name = "apirouter", version)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// TLS: a self-signed certificate (or --cert/--key), or plain HTTP.
    #[arg(long, value_enum, default_value_t = TlsArg::SelfSigned)]
    tls: TlsArg,
    /// Certificate chain (PEM) to serve instead of a self-signed one; needs --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PKCS#8 private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// An accepted credential, ACCESS_KEY:SECRET_KEY (repeatable; default ak:sk).
    #[arg(long = "credentials", value_name = "AK:SK", value_parser = parse_credential)]
    credentials: Vec<(String, String)>,
    /// Region of the credential scope requests must be signed for.
    #[arg(long, default_value = DEFAULT_REGION)]
    region: String,
    /// Containers the runtime starts with.
    #[arg(long, default_value_t = 0)]
    containers: usize,
    /// Random life-cycle actions per second (0: none).
    #[arg(long, value_name = "EVENTS_PER_SEC", default_value_t = 0.0)]
    churn: f64,
    /// Stop churning after this many seconds (default: never).
    #[arg(long, value_name = "SECS")]
    churn_for: Option<f64>,
    /// Seed of the simulated runtime (ids, names, churn).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Shape of event frames: docker or k8s (also kubernetes).
    #[arg(long, default_value_t = Shape::Docker)]
    shape: Shape,
    /// Benchmark mode: push N events to each new watch connection as fast as possible,
    /// then close it.
    #[arg(long, value_name = "N")]
    emit: Option<u64>,
    /// With --emit: send the events at this many per second instead of as fast as
    /// possible.
    #[arg(long, value_name = "PER_SEC", requires = "emit", value_parser = clap::value_parser!(u64).range(1..))]
    emit_rate: Option<u64>,
    /// With --emit: wait this many seconds on each new watch connection before sending
    /// the events (so a client's first list ends before they arrive).
    #[arg(long, value_name = "SECS", requires = "emit")]
    emit_delay: Option<f64>,
    /// Open watch connections allowed per access key (429 past it).
    #[arg(long, default_value_t = DEFAULT_MAX_WATCHES_PER_KEY)]
    max_watches_per_key: usize,
    /// Seconds a client has to send a request head (and body), counted from when the
    /// router waits for it; also the limit for a connection that sends nothing.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT.as_secs_f64())]
    header_read_timeout: f64,
    /// Seconds an HTTP connection may move no bytes while no request is being handled.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    idle_timeout: f64,
    /// Connections open at once; past it the router stops accepting until one closes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = positive)]
    max_connections: usize,
    /// Seconds one websocket send may take before the watch is closed with 1008.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_WATCH_SEND_TIMEOUT.as_secs_f64())]
    watch_send_timeout: f64,
    /// Accepted signatures remembered to refuse replays (a replay gets 403); at the cap,
    /// requests signed as early as the oldest dropped one get 503.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SEEN_SIGNATURES, value_parser = positive)]
    max_seen_signatures: usize,
}

/// A count of at least 1.
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A positive number of seconds as a duration.
fn seconds(flag: &str, secs: f64) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{flag} must be more than 0")),
        Err(e) => Err(format!("{flag} {secs}: {e}")),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TlsArg {
    /// A self-signed certificate for localhost, 127.0.0.1 and ::1.
    SelfSigned,
    /// Plain HTTP.
    Off,
}

fn parse_credential(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((ak, sk)) if !ak.is_empty() && !sk.is_empty() => Ok((ak.to_owned(), sk.to_owned())),
        _ => Err(format!("expected ACCESS_KEY:SECRET_KEY, got {s:?}")),
    }
}

fn config(args: &Args) -> Result<RouterConfig, String> {
    let tls = match (args.tls, &args.cert, &args.key) {
        (TlsArg::Off, None, None) => ServerTls::Off,
        (TlsArg::Off, _, _) => return Err("--cert/--key make no sense with --tls off".into()),
        (TlsArg::SelfSigned, Some(cert), Some(key)) => ServerTls::Pem {
            cert: std::fs::read_to_string(cert).map_err(|e| format!("{}: {e}", cert.display()))?,
            key: std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?,
        },
        (TlsArg::SelfSigned, _, _) => ServerTls::SelfSigned,
    };
    let churn_for = match args.churn_for {
        None => None,
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs).map_err(|e| format!("--churn-for {secs}: {e}"))?,
        ),
    };
    let mut config = RouterConfig::default()
        .listen(args.listen)
        .tls(tls)
        .with_region(args.region.clone())
        .containers(args.containers)
        .churn(args.churn)
        .seed(args.seed)
        .shape(args.shape)
        .emit(args.emit)
        .emit_rate(args.emit_rate)
        .max_watches_per_key(args.max_watches_per_key)
        .header_read_timeout(seconds("--header-read-timeout", args.header_read_timeout)?)
        .idle_timeout(seconds("--idle-timeout", args.idle_timeout)?)
        .max_connections(args.max_connections)
        .watch_send_timeout(seconds("--watch-send-timeout", args.watch_send_timeout)?)
        .max_seen_signatures(args.max_seen_signatures);
    if let Some(duration) = churn_for {
        config = config.churn_for(duration);
    }
    if let Some(secs) = args.emit_delay {
        config = config.emit_delay(seconds("--emit-delay", secs)?);
    }
    for (ak, sk) in &args.credentials {
        config = config.credential(ak.clone(), sk.clone());
    }
    Ok(config)
}

/// Waits for Ctrl-C or SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log piped to a file or a CI log stays plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("apirouter: {message}");
            return ExitCode::from(2);
        }
    };
    let router = match Router::start(config).await {
        Ok(router) => router,
        Err(error) => {
            eprintln!("apirouter: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on {}", router.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("apirouter: cannot write to stdout");
    }
    drop(stdout);
    for c in router.credentials() {
        eprintln!(
            "credentials: {}:{}",
            c.access_key(),
            c.secret_key().expose()
        );
    }
    terminated().await;
    tracing::info!("terminating");
    router.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_contract_parses() {
        let args = Args::try_parse_from([
            "apirouter",
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "off",
            "--credentials",
            "a:b",
            "--credentials",
            "c:d:e",
            "--region",
            "r",
            "--containers",
            "5",
            "--churn",
            "2.5",
            "--churn-for",
            "3",
            "--seed",
            "7",
            "--shape",
            "k8s",
            "--emit",
            "100",
            "--emit-rate",
            "20000",
        ])
        .unwrap();
        assert_eq!(
            args.credentials,
            [("a".into(), "b".into()), ("c".into(), "d:e".into())]
        );
        assert!(matches!(args.tls, TlsArg::Off));
        assert_eq!(args.shape, Shape::Kubernetes);
        assert_eq!((args.containers, args.seed, args.emit), (5, 7, Some(100)));
        assert_eq!(args.emit_rate, Some(20_000));
        assert!(config(&args).is_ok());

        let defaults = Args::try_parse_from(["apirouter"]).unwrap();
        assert_eq!(defaults.shape, Shape::Docker);
        assert!(matches!(defaults.tls, TlsArg::SelfSigned));
        assert!(defaults.credentials.is_empty());

        assert!(Args::try_parse_from(["apirouter", "--credentials", "nocolon"]).is_err());
        assert!(Args::try_parse_from(["apirouter", "--shape", "yaml"]).is_err());
        let long = Args::try_parse_from(["apirouter", "--shape", "kubernetes"]).unwrap();
        assert_eq!(long.shape, Shape::Kubernetes);
        assert!(
            Args::try_parse_from(["apirouter", "--emit-rate", "10"]).is_err(),
            "--emit-rate needs --emit"
        );
        assert!(Args::try_parse_from(["apirouter", "--emit", "1", "--emit-rate", "0"]).is_err());
        assert!(
            Args::try_parse_from(["apirouter", "--emit-delay", "1"]).is_err(),
            "--emit-delay needs --emit"
        );
        let delayed =
            Args::try_parse_from(["apirouter", "--emit", "1", "--emit-delay", "2.5"]).unwrap();
        assert!(config(&delayed).is_ok());
        let zero = Args::try_parse_from(["apirouter", "--emit", "1", "--emit-delay", "0"]).unwrap();
        assert!(config(&zero).is_err());
        assert!(
            Args::try_parse_from(["apirouter", "--cert", "c.pem"]).is_err(),
            "--cert needs --key"
        );
        let negative = Args::try_parse_from(["apirouter", "--churn-for=-1"]).unwrap();
        assert!(config(&negative).is_err());

        let limits = Args::try_parse_from([
            "apirouter",
            "--header-read-timeout",
            "2.5",
            "--idle-timeout",
            "7",
            "--max-connections",
            "10",
            "--watch-send-timeout",
            "0.5",
            "--max-seen-signatures",
            "500",
        ])
        .unwrap();
        assert_eq!(limits.max_connections, 10);
        assert_eq!(limits.max_seen_signatures, 500);
        assert_eq!(defaults.max_seen_signatures, DEFAULT_MAX_SEEN_SIGNATURES);
        assert!(config(&limits).is_ok());
        assert_eq!(
            defaults.header_read_timeout,
            DEFAULT_HEADER_READ_TIMEOUT.as_secs_f64()
        );
        let zero = Args::try_parse_from(["apirouter", "--idle-timeout", "0"]).unwrap();
        assert!(config(&zero).is_err());
        assert!(Args::try_parse_from(["apirouter", "--max-connections", "0"]).is_err());
        assert!(Args::try_parse_from(["apirouter", "--max-seen-signatures", "0"]).is_err());
    }
}
