//! What the examples share: the connection flags (an embedded reference router, or
//! `--addr` with credentials and a TLS choice), logging to stderr, and `main`'s frame.
// Each example uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hypersh::{ClientConfig, Credentials, TlsMode};
use hypersh_apirouter::{Router, RouterConfig};

/// Where to connect: `--addr` with credentials, or (without it) an embedded router.
#[derive(clap::Args, Debug)]
pub struct Connection {
    /// API router address, HOST:PORT (or https://HOST:PORT). Without it, an embedded
    /// reference router is started (self-signed TLS, churning containers).
    #[arg(long)]
    pub addr: Option<String>,
    /// Access key (or HYPER_ACCESS_KEY).
    #[arg(long, env = "HYPER_ACCESS_KEY")]
    pub access_key: Option<String>,
    /// Secret key (or HYPER_SECRET_KEY).
    #[arg(long, env = "HYPER_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Accept any certificate (as the original client's InsecureSkipVerify).
    #[arg(long)]
    pub insecure: bool,
    /// Trust this CA certificate (PEM).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Embedded router: containers at start.
    #[arg(long, default_value_t = 30)]
    pub containers: usize,
    /// Embedded router: container events per second.
    #[arg(long, default_value_t = 10.0)]
    pub churn: f64,
}

impl Connection {
    /// The client configuration, and the embedded router when one was started (keep it
    /// alive for the whole run).
    pub async fn connect(&self) -> Result<(ClientConfig, Option<Router>), String> {
        if let Some(addr) = &self.addr {
            let (Some(ak), Some(sk)) = (&self.access_key, &self.secret_key) else {
                return Err("--access-key and --secret-key (or HYPER_ACCESS_KEY and \
                            HYPER_SECRET_KEY) are required with --addr"
                    .to_owned());
            };
            let config = ClientConfig::new(addr, Credentials::new(ak.as_str(), sk.as_str()))
                .map_err(|e| e.to_string())?
                .tls(self.tls_mode()?);
            return Ok((config, None));
        }
        let router = Router::start(
            RouterConfig::default()
                .containers(self.containers)
                .churn(self.churn),
        )
        .await
        .map_err(|e| format!("cannot start the embedded router: {e}"))?;
        eprintln!(
            "embedded API router on {} (self-signed TLS)",
            router.base_url()
        );
        let creds = router.credentials()[0].clone();
        let ca = router.ca_pem().unwrap_or_default().as_bytes().to_vec();
        let config = ClientConfig::new(&router.base_url(), creds)
            .map_err(|e| e.to_string())?
            .tls(TlsMode::CustomCa(ca));
        Ok((config, Some(router)))
    }

    fn tls_mode(&self) -> Result<TlsMode, String> {
        match (&self.ca_cert, self.insecure) {
            (Some(_), true) => Err("--ca-cert and --insecure exclude each other".to_owned()),
            (Some(path), false) => std::fs::read(path)
                .map(TlsMode::CustomCa)
                .map_err(|e| format!("--ca-cert {}: {e}", path.display())),
            (None, true) => Ok(TlsMode::InsecureSkipVerify),
            (None, false) => Ok(TlsMode::Verify),
        }
    }
}

/// Logs to stderr (`RUST_LOG`, default `warn`), in colour only on a terminal.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

/// Runs `run` on a tokio runtime (one thread, or the multi-thread default) and turns
/// its error into a message on stderr and a failing exit code.
pub fn main_with<F>(multi_thread: bool, run: F) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    init_tracing();
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// A `--flag SECONDS` value as a duration, refusing negative or non-finite numbers.
pub fn seconds(flag: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{flag} {s}: expected a number of seconds"))
}

/// An optional `--flag SECONDS` value, checked as [`seconds`] does.
pub fn optional_seconds(flag: &str, s: Option<f64>) -> Result<Option<Duration>, String> {
    s.map(|s| seconds(flag, s)).transpose()
}

/// Sleeps for `d`, or forever without one.
pub async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
