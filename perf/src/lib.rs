//! Shared pieces of the benchmark clients: what they are told (server URL, credentials,
//! how many events) and what they print (one JSON line: events, seconds, CPU seconds).

use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use http::Method;
use hypersh_watch::{ClientConfig, Credentials, TlsMode};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// How long a client waits for its informer's first list before it gives up (1M
/// containers take a few seconds; a wrong address or key never syncs).
pub const SYNC_PATIENCE: Duration = Duration::from_secs(300);

/// What every watch client is given.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Base URL of the router (`https://127.0.0.1:PORT`).
    #[arg(long)]
    pub url: String,
    /// Access key.
    #[arg(long, default_value = "ak")]
    pub ak: String,
    /// Secret key.
    #[arg(long, default_value = "sk")]
    pub sk: String,
    /// Stop after this many events (the router's `--emit`).
    #[arg(long)]
    pub events: u64,
}

impl Target {
    /// A client configuration for the library clients (self-signed certificate accepted).
    pub fn config(&self) -> Result<ClientConfig, String> {
        Ok(ClientConfig::new(
            &self.url,
            Credentials::new(self.ak.as_str(), self.sk.as_str()),
        )
        .map_err(|e| e.to_string())?
        .tls(TlsMode::InsecureSkipVerify)
        .with_idle_timeout(Duration::from_secs(60)))
    }
}

/// One measurement, printed by a client as a single JSON line on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Which client.
    pub client: String,
    /// Events (frames) processed.
    pub events: u64,
    /// Wall-clock seconds from before connecting until the last event was processed.
    pub seconds: f64,
    /// User + system CPU seconds of the client process (getrusage), whole run.
    pub cpu_seconds: f64,
    /// Extra numbers (handler calls, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// Prints the report as one JSON line.
    pub fn print(&self) {
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("cannot serialise the report: {e}"),
        }
    }
}

/// User + system CPU seconds this process has used so far.
pub fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => f64::NAN,
    }
}

/// Times a run and builds its report.
pub struct Stopwatch {
    started: Instant,
    cpu: f64,
}

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    /// Wall-clock seconds since the start.
    pub fn elapsed_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The report for `events` processed by `client`.
    pub fn report(&self, client: &str, events: u64) -> Report {
        Report {
            client: client.to_owned(),
            events,
            seconds: self.started.elapsed().as_secs_f64(),
            cpu_seconds: cpu_seconds() - self.cpu,
            extra: serde_json::Map::new(),
        }
    }
}

/// The websocket the raw clients read: `/events/ws`, signed with Sign4, TLS without
/// certificate verification, no frame size limit beyond tungstenite's default.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a signed `/events/ws` connection with plain tokio-tungstenite.
pub async fn connect_raw(target: &Target) -> Result<Ws, String> {
    let ws_url = format!(
        "{}/events/ws",
        target
            .url
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    );
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let uri = request.uri().clone();
    // The router accepts each signature once: connections opened in one second differ.
    request.headers_mut().insert(
        hypersh_watch::sign4::NONCE_HEADER,
        hypersh_watch::sign4::nonce().map_err(|e| e.to_string())?,
    );
    hypersh_watch::sign4::sign(
        &Method::GET,
        &uri,
        request.headers_mut(),
        b"",
        &Credentials::new(target.ak.as_str(), target.sk.as_str()),
        "us-west-1",
        SystemTime::now(),
    )
    .map_err(|e| e.to_string())?;
    let tls = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true)
        .build()
        .map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        true,
        Some(Connector::NativeTls(tls)),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// A current-thread runtime (every client runs on one thread, like the Node client).
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot build a runtime: {e}");
            std::process::exit(1);
        }
    }
}

/// The results JSON at `path`; `tool` names the program in the message when it cannot be
/// read, and the program exits with 1.
#[must_use]
pub fn read_results(path: &std::path::Path, tool: &str) -> serde_json::Value {
    match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{tool}: {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// A handler that counts every call it gets, for the clients that wait until the cache's
/// changes have all reached a handler.
pub struct CountCalls(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

impl CountCalls {
    fn count(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl hypersh_store::Handler<hypersh_watch::Container> for CountCalls {
    fn on_add(&mut self, _: &std::sync::Arc<hypersh_watch::Container>) {
        self.count();
    }
    fn on_update(
        &mut self,
        _: &std::sync::Arc<hypersh_watch::Container>,
        _: &std::sync::Arc<hypersh_watch::Container>,
    ) {
        self.count();
    }
    fn on_delete(&mut self, _: &hypersh_store::Deleted<hypersh_watch::Container>) {
        self.count();
    }
}
