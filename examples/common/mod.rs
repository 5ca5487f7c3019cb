//! What the examples share: the connection flags (an embedded reference router, or
//! `--addr` with credentials and a TLS choice), `--filter` parsing, logging to stderr,
//! `main`'s frame, and the ways a run ends: Ctrl-C or SIGTERM ([`Signals`]), a closed
//! stdout ([`Stdout`], which also makes a million lines cheap), and an exit code that says whether the cache ever synced
//! ([`never_synced`]). Status lines go to stderr through [`StatusLine`].
// Each example uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fleet;
mod stdout;

// Not every example prints through it.
#[allow(unused_imports)]
pub use stdout::Stdout;

use std::fmt::Display;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hypersh::Filters;
use hypersh::reflector::{Phase, Status};
use hypersh::watch::{ClientConfig, Credentials, TlsMode};
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
        if self.access_key.is_some() || self.secret_key.is_some() {
            stderr_line(
                "note: --access-key/--secret-key (or HYPER_ACCESS_KEY/HYPER_SECRET_KEY) are \
                 ignored without --addr: the embedded router is used, with its own credentials",
            );
        }
        let router = Router::start(
            RouterConfig::default()
                .containers(self.containers)
                .churn(self.churn),
        )
        .await
        .map_err(|e| format!("cannot start the embedded router: {e}"))?;
        stderr_line(format_args!(
            "embedded API router on {} (self-signed TLS)",
            router.base_url()
        ));
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
            stderr_line(format_args!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            stderr_line(message);
            ExitCode::FAILURE
        }
    }
}

/// Writes a line to stderr, ignoring errors: a closed stderr must not panic the program
/// (`eprintln!` would).
pub fn stderr_line(text: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// The Docker source of `--docker [URL]` (empty: `DOCKER_HOST`, then the default
/// socket), made without contacting the daemon: an informer waits for one that is not
/// up yet, retrying with backoff, and shows the engine in its status once connected. A
/// `tcp://` URL speaks TLS as the `docker` CLI does when `DOCKER_TLS_VERIFY` is set (the
/// files of `DOCKER_CERT_PATH`, read now).
pub fn docker_source(url: &str) -> Result<hypersh::docker::DockerSource, String> {
    use hypersh::docker::{DockerHost, DockerSource};
    let host = if url.is_empty() {
        DockerHost::from_env()
    } else {
        DockerHost::parse(url)
    }
    .map_err(|e| e.to_string())?;
    DockerSource::builder(host)
        .tls_from_env()
        .build()
        .map_err(|e| e.to_string())
}

/// Parses `--filter` values (each `NAME=VALUE[,NAME=VALUE...]`) accepting only `keys`;
/// refuses an empty value (`container=` matches nothing) and warns on stderr about an
/// `event` Docker does not emit (`event=strat`).
pub fn parse_filters(items: &[String], keys: &[&str]) -> Result<Filters, String> {
    let filters = Filters::parse_cli_keys(&items.join(","), keys).map_err(|e| e.to_string())?;
    for key in filters.keys() {
        if filters
            .get(key)
            .is_some_and(|values| values.iter().any(|v| v.trim().is_empty()))
        {
            return Err(format!(
                "bad filter \"{key}=\": the value is empty and would match nothing; \
                 give a value (--filter {key}=VALUE) or leave the filter out"
            ));
        }
    }
    for event in filters.unknown_events() {
        stderr_line(format_args!(
            "warning: --filter event={event}: Docker emits no such container event, so it \
             matches nothing (known: {})",
            hypersh::watch::event::DOCKER_CONTAINER_ACTIONS.join(", ")
        ));
    }
    Ok(filters)
}

/// Ctrl-C and SIGTERM (sent by `timeout`, `docker stop`, systemd), listened for from the
/// moment this is made: make it first thing in `run`, so that neither signal kills the
/// program before it can clean up.
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening. Must be called inside the tokio runtime.
    pub fn new() -> Result<Self, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| format!("cannot listen for {name}: {e}"))
            };
            Ok(Self {
                interrupt: listen(SignalKind::interrupt(), "Ctrl-C")?,
                terminate: listen(SignalKind::terminate(), "SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for the next Ctrl-C or SIGTERM and names it.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// How status lines are drawn on stderr: one live line redrawn in place (`\r`) only
/// where it cannot collide with other output (stderr is a terminal, and events are not
/// printed to a terminal too); otherwise plain lines, one per update.
#[derive(Clone, Copy, Debug)]
pub struct StatusLine {
    live: bool,
}

impl StatusLine {
    /// Chooses the style: `events_on_stdout` tells whether lines are printed to stdout
    /// while the status is shown.
    pub fn new(events_on_stdout: bool) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let stdout_tty = std::io::stdout().is_terminal();
        Self {
            live: stderr_tty && !(events_on_stdout && stdout_tty),
        }
    }

    /// True when the line is redrawn in place.
    pub fn is_live(self) -> bool {
        self.live
    }

    /// Shows `text`: redraws the live line, or prints a line.
    pub fn show(self, text: impl Display) {
        let mut err = std::io::stderr().lock();
        let _ = if self.live {
            write!(err, "\r\x1b[2K{text}").and_then(|()| err.flush())
        } else {
            writeln!(err, "{text}")
        };
    }

    /// Ends the live line (a newline), so what follows starts on a line of its own.
    pub fn finish(self) {
        if self.live {
            stderr_line("");
        }
    }
}

/// The phase of a reflector as a word for a status line.
pub fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Connecting => "connecting",
        Phase::Listing => "listing",
        Phase::Watching => "watching",
        Phase::Backoff => "retrying",
        Phase::Stopped => "stopped",
    }
}

/// Counts the failed attempts since the informer was last connected, for status lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempts {
    failures_when_connected: u64,
}

impl Attempts {
    /// `None` while connected or before anything failed; otherwise the failing part of
    /// a status line: `3 failed attempts, last error: ...`.
    pub fn failing(&mut self, status: &Status) -> Option<String> {
        if status.connected {
            self.failures_when_connected = status.failures;
            return None;
        }
        let error = status.last_error.as_deref()?;
        let failed = status.failures.saturating_sub(self.failures_when_connected);
        let plural = if failed == 1 { "" } else { "s" };
        Some(format!(
            "{failed} failed attempt{plural}, last error: {error}"
        ))
    }
}

/// The error a run that never synced its cache ends with: what happened, the last
/// error, and a hint; `None` when the cache synced at least once.
pub fn never_synced(status: &Status, ran_for: Duration) -> Option<String> {
    if status.synced {
        return None;
    }
    let plural = if status.failures == 1 { "" } else { "s" };
    let mut message = format!(
        "the cache never synced in {:.1}s ({} failed attempt{plural})",
        ran_for.as_secs_f64(),
        status.failures
    );
    match &status.last_error {
        Some(error) => {
            message.push_str(&format!("; last error: {error}"));
            if let Some(hint) = hint(status, error) {
                message.push_str(&format!("\nhint: {hint}"));
            }
        }
        None => message.push_str(": it was still connecting, with no error yet"),
    }
    Some(message)
}

/// What to do about `error`, when it is one of the usual setup mistakes.
fn hint(status: &Status, error: &str) -> Option<&'static str> {
    if status.auth_failing || error.contains("authentication failed") {
        Some(
            "the server refused the credentials: check --access-key and --secret-key \
             (or HYPER_ACCESS_KEY and HYPER_SECRET_KEY)",
        )
    } else if error.contains("certificate verify failed") {
        Some("the server's certificate is not trusted: pass --ca-cert FILE, or --insecure")
    } else if error.contains("failed to lookup address")
        || error.contains("Name or service not known")
        || error.contains("name resolution")
        || error.contains("dns error")
    {
        Some("the host name in --addr does not resolve: check its spelling (and the DNS)")
    } else if error.contains("Connection refused") {
        Some("nothing answers at --addr: check the host and port")
    } else {
        None
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

/// Gives the allocator's free memory back to the system once after each failed session
/// or overflow (the reflector's `failures` or `overflows` grew: the list or the events
/// it was holding have been dropped): glibc keeps freed small blocks in its arenas, so a refused
/// list of two million containers otherwise leaves the process at its peak (about
/// 1 GiB) with two cached. Only on Linux with glibc (`malloc_trim`); elsewhere nothing.
#[derive(Debug, Default)]
pub struct GiveBack {
    seen: u64,
}

impl GiveBack {
    /// Called on each tick with the status of each reflector (one per host).
    pub fn after<'a>(&mut self, statuses: impl IntoIterator<Item = &'a Status>) {
        let failed: u64 = statuses.into_iter().map(|s| s.failures + s.overflows).sum();
        if failed == self.seen {
            return;
        }
        self.seen = failed;
        release_free_memory();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: `malloc_trim` only returns free pages of glibc's arenas to the system; it
    // takes no pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
