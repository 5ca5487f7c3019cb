//! The Docker Engine source, measured (docs/performance.md, "Docker Engine source").
//!
//! ```text
//! docker latency --host unix:///PATH/docker.sock [--actions 400]
//! docker decode [--events 1000000]
//! ```
//!
//! `latency`: an informer on a real daemon; one running container is paused and unpaused
//! with the `docker` CLI, one action at a time. For each action, the time to the
//! informer's update handler seeing the new state from (1) the event's own timestamp
//! (`timeNano`, read from a second raw watch; the daemon's clock is this machine's),
//! (2) the CLI starting, (3) the CLI returning (negative when the handler ran first: the
//! daemon sends the event before it answers the API call, and the CLI takes a while to
//! exit). Prints p50, p90, p99, min and max.
//!
//! `decode`: a Unix socket server writes `--events` Docker event lines (NDJSON, from the
//! 20.10 frames of docs/docker: start, die, exec_*, health_status, kill, rename, with
//! labels) as one HTTP response; read (1) with `DockerSource::watch` (line splitting and
//! `WatchEvent::decode`), (2) naively: `BufReader::read_line` and `serde_json::from_str`
//! into an owned struct per line, (3) the same into a `serde_json::Value`. Each reads the
//! whole stream from its own connection; prints events/s and MB/s (wall) and the reader
//! thread's CPU seconds (the machine may be shared), best of `--runs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use hypersh_docker::{ApiVersion, DockerError, DockerHost, DockerSource};
use hypersh_reflector::{Informer, Source};
use hypersh_watch::{ContainerState, Filters};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Handler latency on a real daemon.
    Latency {
        /// The daemon, unix:///PATH.
        #[arg(long)]
        host: String,
        /// How many actions (half pause, half unpause).
        #[arg(long, default_value_t = 400)]
        actions: usize,
    },
    /// Events-stream decode throughput on a synthetic local stream.
    Decode {
        /// Events in the stream.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Runs of each reader; the best is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match args.what {
        What::Latency { host, actions } => rt.block_on(latency(&host, actions)),
        What::Decode { events, runs } => rt.block_on(decode(events, runs)),
    }
}

async fn docker(host: &str, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn latency(host: &str, actions: usize) -> Result<(), String> {
    let image = docker(host, &["images", "-q"]).await?;
    let image = image
        .lines()
        .next()
        .ok_or("the daemon has no image")?
        .to_owned();
    let id = docker(
        host,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--stop-timeout",
            "1",
            "--label",
            "perf=latency",
            &image,
            "sleep",
            "3600",
        ],
    )
    .await?;
    let source = DockerSource::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    // A second, raw watch of the container gives each event's own timestamp (`timeNano`,
    // the daemon's clock on this machine).
    let mut raw = source
        .watch(&Filters::new().container(id.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    let informer = Informer::builder(source)
        .filters(Filters::new().label("perf=latency"))
        .build()
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watched = id.clone();
    informer.on_update(move |old, new| {
        if new.id() == watched && old.state() != new.state() {
            let _ = tx.send((new.state(), Instant::now(), SystemTime::now()));
        }
    });
    informer
        .wait_synced(hypersh_perf::SYNC_PATIENCE)
        .await
        .map_err(|e| e.to_string())?;
    let (mut from_return, mut from_start, mut from_event) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..actions {
        let (verb, want) = if i % 2 == 0 {
            ("pause", ContainerState::Paused)
        } else {
            ("unpause", ContainerState::Running)
        };
        let started = Instant::now();
        docker(host, &[verb, &id]).await?;
        let returned = Instant::now();
        let (seen, seen_wall) = loop {
            let (state, at, wall) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .map_err(|_| format!("no update within 5 s after {verb}"))?
                .ok_or("handler gone")?;
            if state == want {
                break (at, wall);
            }
        };
        let event_nano = loop {
            let event = tokio::time::timeout(Duration::from_secs(5), raw.next())
                .await
                .map_err(|_| format!("no raw event within 5 s after {verb}"))?
                .ok_or("raw watch ended")?
                .map_err(|e| e.to_string())?;
            if event.event().action() == verb {
                break event.event().time_nano();
            }
        };
        from_return.push(signed_micros(seen, returned));
        from_start.push(signed_micros(seen, started));
        let wall_nano = seen_wall
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_nanos() as f64;
        from_event.push((wall_nano - event_nano as f64) / 1000.0);
    }
    informer.shutdown().await;
    let _ = docker(host, &["rm", "-f", &id]).await;
    let early = from_return.iter().filter(|s| **s < 0.0).count();
    println!("actions={actions} (docker pause / unpause, one at a time)");
    report("daemon's event timestamp -> handler", &mut from_event);
    report("docker CLI started -> handler", &mut from_start);
    report("docker CLI returned -> handler", &mut from_return);
    println!("handler ran before the CLI returned: {early} of {actions}");
    Ok(())
}

/// `a - b` in microseconds, negative when `a` came first.
fn signed_micros(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64() * 1e6
    } else {
        -(b.duration_since(a).as_secs_f64() * 1e6)
    }
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize] / 1000.0;
    println!(
        "{what:<38} p50={:>7.2}ms p90={:>7.2}ms p99={:>7.2}ms min={:>7.2}ms max={:>7.2}ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.0),
        pct(1.0),
    );
}

/// Event lines as a 20.10 engine writes them, varied ids and actions.
fn lines(n: usize) -> Vec<u8> {
    let actions = [
        ("start", ""),
        ("die", r#","exitCode":"137""#),
        (
            "exec_create: /bin/sh -c true",
            r#","execID":"8ba43afa25b54e44f3afdb0616fc99e941fb24e8d492596bf695e6d86c2528e1""#,
        ),
        (
            "exec_die",
            r#","execID":"8ba43afa25b54e44f3afdb0616fc99e941fb24e8d492596bf695e6d86c2528e1","exitCode":"0""#,
        ),
        ("health_status: healthy", ""),
        ("kill", r#","signal":"15""#),
        ("rename", r#","oldName":"/h1""#),
        ("stop", ""),
    ];
    let mut out = Vec::with_capacity(n * 420);
    for i in 0..n {
        let (action, extra) = actions[i % actions.len()];
        let id = format!("{:064x}", i % 1000 + 0xc414_0a06);
        let t = 1_796_462_788_031_704_372u64 + i as u64 * 1000;
        out.extend_from_slice(
            format!(
                r#"{{"status":"{action}","id":"{id}","from":"localbb:1","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"app":"web","empty":"","image":"localbb:1","name":"h{}"{extra}}}}},"scope":"local","time":{},"timeNano":{t}}}"#,
                i % 1000,
                t / 1_000_000_000
            )
            .as_bytes(),
        );
        out.push(b'\n');
    }
    out
}

async fn serve(listener: UnixListener, body: Arc<Vec<u8>>) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let body = body.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            // Delimited by the end of the connection, as a stream that never ends is.
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                .await;
            for chunk in body.chunks(64 * 1024) {
                if conn.write_all(chunk).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// An owned event, as a hand-rolled client would decode it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct NaiveEvent {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Actor")]
    actor: NaiveActor,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct NaiveActor {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Attributes")]
    attributes: HashMap<String, String>,
}

async fn naive(socket: &PathBuf, value: bool) -> Result<usize, String> {
    let mut conn = UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut n = 0;
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(n);
        }
        if value {
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            if v["Type"] == "container" {
                n += 1;
            }
        } else {
            let e: NaiveEvent = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            if e.kind == "container" {
                n += 1;
            }
        }
    }
}

async fn ours(source: &DockerSource) -> Result<usize, String> {
    let mut watch = source
        .watch(&Filters::new())
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    while let Some(item) = watch.next().await {
        match item {
            Ok(event) => {
                std::hint::black_box(&event);
                n += 1;
            }
            Err(DockerError::StreamEnded { .. }) => return Ok(n),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(n)
}

async fn decode(events: usize, runs: usize) -> Result<(), String> {
    let body = Arc::new(lines(events));
    let dir = std::env::temp_dir().join(format!("hd-perf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let socket = dir.join("d.sock");
    let listener = UnixListener::bind(&socket).map_err(|e| e.to_string())?;
    // The server runs on its own thread, so the reader's thread only reads.
    let server_body = body.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = listener;
            serve(listener, server_body).await;
        });
    });
    let host =
        DockerHost::parse(&format!("unix://{}", socket.display())).map_err(|e| e.to_string())?;
    let source = DockerSource::builder(host)
        .api_version(ApiVersion::new(1, 41))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mb = body.len() as f64 / 1e6;
    println!(
        "stream: {events} events, {mb:.1} MB ({} bytes/event)",
        body.len() / events
    );
    for (name, which) in [
        ("DockerSource::watch (WatchEvent::decode)", 0),
        ("naive: read_line + serde_json owned struct", 1),
        ("naive: read_line + serde_json::Value", 2),
    ] {
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            let cpu = thread_cpu_seconds();
            let n = match which {
                0 => ours(&source).await?,
                1 => naive(&socket, false).await?,
                _ => naive(&socket, true).await?,
            };
            let s = t.elapsed().as_secs_f64();
            let cpu = thread_cpu_seconds() - cpu;
            if n != events {
                return Err(format!("{name}: read {n} of {events} events"));
            }
            best = best.min(s);
            best_cpu = best_cpu.min(cpu);
        }
        println!(
            "{name:<44} {:>10.0} events/s {:>7.1} MB/s ({best:.3}s wall) | reader CPU {best_cpu:.3}s: {:>10.0} events per CPU-second",
            events as f64 / best,
            mb / best,
            events as f64 / best_cpu
        );
    }
    // The decoders alone, on lines already in memory: what the I/O path adds.
    let all = bytes::Bytes::from(body.as_ref().clone());
    let spans: Vec<(usize, usize)> = {
        let mut out = Vec::with_capacity(events);
        let mut start = 0;
        for end in memchr_iter(&all) {
            out.push((start, end));
            start = end + 1;
        }
        out
    };
    for (name, which) in [
        ("in memory: WatchEvent::decode", 0),
        ("in memory: serde_json owned struct", 1),
    ] {
        let mut best = f64::MAX;
        for _ in 0..runs {
            let cpu = thread_cpu_seconds();
            let mut n = 0usize;
            for &(a, b) in &spans {
                let ok = if which == 0 {
                    hypersh_watch::WatchEvent::decode(all.slice(a..b))
                        .map(std::hint::black_box)
                        .is_ok()
                } else {
                    std::str::from_utf8(&all[a..b])
                        .ok()
                        .and_then(|l| serde_json::from_str::<NaiveEvent>(l).ok())
                        .map(std::hint::black_box)
                        .is_some()
                };
                n += usize::from(ok);
            }
            if n != events {
                return Err(format!("{name}: decoded {n} of {events} events"));
            }
            best = best.min(thread_cpu_seconds() - cpu);
        }
        println!(
            "{name:<44} CPU {best:.3}s: {:>10.0} events per CPU-second",
            events as f64 / best
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The offsets of the newlines in `b`.
fn memchr_iter(b: &[u8]) -> impl Iterator<Item = usize> + '_ {
    b.iter()
        .enumerate()
        .filter(|(_, c)| **c == b'\n')
        .map(|(i, _)| i)
}

/// User + system CPU seconds of the calling thread (the reader: the runtime is
/// current-thread, the server has its own thread).
fn thread_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => f64::NAN,
    }
}
