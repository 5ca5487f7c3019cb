//! `docker decode`: a Unix socket server (its own thread) writes `--events` Docker event
//! lines (NDJSON, the 20.10 frames of docs/docker: start, die, exec_*, health_status,
//! kill, rename, with labels) as one HTTP response, to each reader in turn:
//! - `line split`: the ceiling, a reader that only splits the socket's stream into lines
//!   (tokio `UnixStream`, a 64 KiB buffer, `memchr`) and counts them;
//! - `DockerSource::watch`: hyper, the line splitting and `WatchEvent::decode`;
//! - `naive owned`: `BufReader::read_line` and `serde_json::from_str` into an owned struct;
//! - `naive Value`: the same into a `serde_json::Value`.
//!
//! Each reads the whole stream from its own connection, `--runs` rounds, the readers in
//! turn within a round (noise hits them alike). Prints each reader's median events/s
//! (wall) and CPU per million events (the reader thread's; the machine may be shared),
//! then the issue's ratios, per round and their median: the source against the line
//! split (target ≥ 0.5) and against the naive owned decode (target ≥ 2). Last, the
//! decoders alone on lines in memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use hypersh_docker::{ApiVersion, DockerError, DockerHost, DockerSource};
use hypersh_reflector::Source;
use hypersh_watch::Filters;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

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
            // A `/_ping` (the source starts each session with one, and pings beside a
            // quiet stream) is answered and the connection read on; anything else gets
            // the events.
            loop {
                let end = loop {
                    if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                };
                let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                let ping = request_line.windows(7).any(|w| w == b"/_ping ");
                head.drain(..end);
                if !ping {
                    break;
                }
                let answer = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";
                if conn.write_all(answer).await.is_err() {
                    return;
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

/// The request every raw reader sends.
const REQUEST: &[u8] = b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n";

/// The ceiling: reads the response and splits it into lines, nothing else. Returns the
/// lines after the response head.
async fn split_only(socket: &Path) -> Result<usize, String> {
    let mut conn = UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    conn.write_all(REQUEST).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes at the start of `buf` that belong to a line not ended yet.
    let mut kept = 0;
    let mut lines = 0usize;
    let mut in_head = true;
    loop {
        let n = conn
            .read(&mut buf[kept..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(lines);
        }
        let filled = kept + n;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..filled]) {
            let line = &buf[start..end];
            if in_head {
                // The head ends with an empty line (`\r\n`).
                in_head = line != b"\r";
            } else if !line.is_empty() {
                lines += 1;
            }
            start = end + 1;
        }
        buf.copy_within(start..filled, 0);
        kept = filled - start;
        if kept == buf.len() {
            return Err("a line longer than the buffer".into());
        }
    }
}

async fn naive(socket: &Path, value: bool) -> Result<usize, String> {
    let mut conn = UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    conn.write_all(REQUEST).await.map_err(|e| e.to_string())?;
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

/// The readers, in the order each round runs them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    SplitOnly,
    Source,
    NaiveOwned,
    NaiveValue,
}

impl Reader {
    const ALL: [Self; 4] = [
        Self::SplitOnly,
        Self::Source,
        Self::NaiveOwned,
        Self::NaiveValue,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::SplitOnly => "line split only (the ceiling)",
            Self::Source => "DockerSource::watch",
            Self::NaiveOwned => "naive: read_line + serde_json owned struct",
            Self::NaiveValue => "naive: read_line + serde_json::Value",
        }
    }
}

/// One reader's run: wall seconds and the reader thread's CPU seconds.
#[derive(Clone, Copy)]
struct Run {
    seconds: f64,
    cpu: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn spread(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

pub(crate) async fn run(events: usize, runs: usize) -> Result<(), String> {
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
    println!(
        "stream: {events} events, {:.1} MB ({} bytes/event); {runs} rounds, readers in turn",
        body.len() as f64 / 1e6,
        body.len() / events
    );
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); Reader::ALL.len()];
    for _ in 0..runs {
        for (i, reader) in Reader::ALL.into_iter().enumerate() {
            let t = Instant::now();
            let cpu = thread_cpu_seconds();
            let n = match reader {
                Reader::SplitOnly => split_only(&socket).await?,
                Reader::Source => ours(&source).await?,
                Reader::NaiveOwned => naive(&socket, false).await?,
                Reader::NaiveValue => naive(&socket, true).await?,
            };
            let seconds = t.elapsed().as_secs_f64();
            let cpu = thread_cpu_seconds() - cpu;
            if n != events {
                return Err(format!("{}: read {n} of {events} events", reader.name()));
            }
            results[i].push(Run { seconds, cpu });
        }
    }
    let per_million = 1e6 / events as f64;
    for (reader, runs) in Reader::ALL.into_iter().zip(&results) {
        let rates: Vec<f64> = runs.iter().map(|r| events as f64 / r.seconds).collect();
        let cpus: Vec<f64> = runs.iter().map(|r| r.cpu * per_million).collect();
        let (lo, hi) = spread(&rates);
        println!(
            "{:<44} {:>10.0} events/s (runs {lo:.0}-{hi:.0}) | reader CPU {:.3} s per 1M events",
            reader.name(),
            median(rates.clone()),
            median(cpus),
        );
    }
    // The issue's ratios: of events/s, per round, then the median; and by CPU per event.
    let index = |r: Reader| Reader::ALL.iter().position(|x| *x == r).unwrap_or(0);
    let ratio = |a: Reader, b: Reader, target: f64, what: &str| {
        let (a, b) = (&results[index(a)], &results[index(b)]);
        let walls: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(x, y)| y.seconds / x.seconds)
            .collect();
        let cpus: Vec<f64> = a.iter().zip(b).map(|(x, y)| y.cpu / x.cpu).collect();
        let (lo, hi) = spread(&walls);
        let wall = median(walls);
        println!(
            "target: {what} = {wall:.2} (runs {lo:.2}-{hi:.2}; {:.2} by CPU per event), >= {target}: {}",
            median(cpus),
            if wall >= target { "met" } else { "not met" }
        );
    };
    ratio(
        Reader::Source,
        Reader::SplitOnly,
        0.5,
        "DockerSource::watch / line split",
    );
    ratio(
        Reader::Source,
        Reader::NaiveOwned,
        2.0,
        "DockerSource::watch / naive owned decode",
    );
    in_memory(&body, events, runs)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The decoders alone, on lines already in memory: what the I/O path adds.
fn in_memory(body: &[u8], events: usize, runs: usize) -> Result<(), String> {
    let all = bytes::Bytes::from(body.to_vec());
    let mut spans = Vec::with_capacity(events);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &all) {
        spans.push((start, end));
        start = end + 1;
    }
    for (name, which) in [
        ("in memory: WatchEvent::decode", 0),
        ("in memory: serde_json owned struct", 1),
    ] {
        let mut cpus = Vec::new();
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
            cpus.push(thread_cpu_seconds() - cpu);
        }
        let cpu = median(cpus);
        println!(
            "{name:<44} CPU {cpu:.3} s: {:>10.0} events per CPU-second",
            events as f64 / cpu
        );
    }
    Ok(())
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
