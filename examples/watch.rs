//! The original Hyper.sh websocket client, done right: connect to `/events/ws`, print each
//! event as received.
//!
//! ```text
//! cargo run --release --example watch -- --addr HOST:PORT [--access-key AK --secret-key SK]
//!     [--filter container=x,image=y,label=k=v,event=start] [--pretty] [--insecure]
//!     [--ca-cert F] [--max-events N] [--count]
//! ```
//! With `--docker [URL]` it prints a Docker Engine's or Podman's container events from
//! `GET /events` instead (`unix:///var/run/docker.sock`, `tcp://HOST:PORT` (TLS when
//! `DOCKER_TLS_VERIFY` is set) or `ssh://[USER@]HOST[:PORT]`; without a URL, `DOCKER_HOST`,
//! then the default socket), each line as received, after
//! `watching URL (ENGINE VERSION (API N), GET /vN/events)` on stderr.
//! Without `--addr` it starts the reference router in-process (self-signed TLS, churn) and
//! watches that. Output contract: `connecting to wss://...` on stderr; each event frame's
//! JSON on its own stdout line and nothing else on stdout; decode errors on stderr;
//! `--count` prints only `events=N seconds=S rate=R/s` at the end; an authentication
//! failure exits 1 with `authentication failed (HTTP 403): ...` on stderr. Ctrl-C and
//! SIGTERM close the watch cleanly; a closed stdout (`| head`) ends the run quietly.
//! A filter with an empty value is refused; an `event` Docker does not emit is warned
//! about.

mod common;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use futures_util::StreamExt;
use hypersh::docker::DockerSource;
use hypersh::reflector::{Source, SourceError};
use hypersh::watch::{Client, Filters, filters};

#[derive(Parser, Debug)]
#[command(about = "Print Hyper.sh container events from /events/ws")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Filters: container=x,image=y,label=k=v,event=start (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Pretty-print each event.
    #[arg(long)]
    pretty: bool,
    /// Exit 0 after this many decoded events.
    #[arg(long)]
    max_events: Option<u64>,
    /// Decode every event but print only a final `events=N seconds=S rate=R/s` line.
    #[arg(long)]
    count: bool,
    /// Watch a Docker Engine: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]
    /// (without a value: DOCKER_HOST, then unix:///var/run/docker.sock). The connection
    /// flags are ignored.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    docker: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(false, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let mut signals = common::Signals::new()?;
    let filters = common::parse_filters(&args.filter, filters::CLI_KEYS)?;
    if let Some(url) = &args.docker {
        return watch_docker(url, &filters, &args, &mut signals).await;
    }

    // Keep the embedded router (if any) alive for the whole run.
    let (config, _router) = args.conn.connect().await?;

    let url = config.endpoint().ws_url("/events/ws");
    common::stderr_line(format_args!("connecting to {url}"));
    let client = Client::new(config).map_err(|e| e.to_string())?;
    let mut events = client.watch(&filters).await.map_err(|e| with_hint(&e))?;
    print_events::<Client>(&mut events, &args, &mut signals).await
}

/// `--docker`: prints the container events of `GET /events` as they arrive.
async fn watch_docker(
    url: &str,
    filters: &Filters,
    args: &Args,
    signals: &mut common::Signals,
) -> Result<(), String> {
    let source = common::docker_source(url)?;
    let mut events = source.watch(filters).await.map_err(|e| e.to_string())?;
    // Said once the stream is open: what follows on stdout is every event from now on.
    let server = source
        .server_version()
        .map_or_else(|| "?".to_owned(), |s| s.to_string());
    let prefix = source
        .api_version()
        .map_or_else(String::new, |v| format!("/v{v}"));
    common::stderr_line(format_args!(
        "watching {} ({server}, GET {prefix}/events)",
        source.host(),
    ));
    print_events::<DockerSource>(&mut events, args, signals).await
}

/// Prints each event's frame as received until the stream ends, `--max-events`, a
/// signal or a closed stdout; then closes the watch politely and, with `--count`, prints
/// the summary.
async fn print_events<S: Source>(
    events: &mut S::Watch,
    args: &Args,
    signals: &mut common::Signals,
) -> Result<(), String> {
    let started = Instant::now();
    let mut decoded: u64 = 0;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        let item = tokio::select! {
            _ = signals.recv() => break,
            item = events.next() => item,
        };
        match item {
            Some(Ok(event)) => {
                decoded += 1;
                if !args.count {
                    match print_event(&mut out, event.event().raw_str(), args.pretty) {
                        Ok(()) => {}
                        // The reader went away (`| head`): the run is over.
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            S::close(events).await;
                            return Ok(());
                        }
                        Err(e) => return Err(format!("stdout: {e}")),
                    }
                }
                if args.max_events.is_some_and(|max| decoded >= max) {
                    break;
                }
            }
            Some(Err(e)) if e.is_frame_error() => common::stderr_line(&e),
            Some(Err(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    S::close(events).await;
    match out.flush() {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(format!("stdout: {e}")),
    }
    drop(out);
    if args.count {
        let seconds = started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            decoded as f64 / seconds
        } else {
            0.0
        };
        common::Stdout::default().line(format_args!(
            "events={decoded} seconds={seconds:.3} rate={rate:.0}/s"
        ));
    }
    Ok(())
}

/// The error, plus a hint when the certificate was not trusted.
fn with_hint(e: &hypersh::watch::Error) -> String {
    let text = e.to_string();
    if text.contains("certificate verify failed") {
        format!(
            "{text}\nhint: the server's certificate is not trusted: pass --ca-cert FILE, or --insecure"
        )
    } else {
        text
    }
}

fn print_event(out: &mut impl Write, frame: &str, pretty: bool) -> std::io::Result<()> {
    if pretty {
        match serde_json::from_str::<serde_json::Value>(frame)
            .and_then(|v| serde_json::to_string_pretty(&v))
        {
            Ok(text) => writeln!(out, "{text}")?,
            Err(_) => writeln!(out, "{frame}")?,
        }
    } else {
        writeln!(out, "{frame}")?;
    }
    out.flush()
}
