//! The informer's per-event cache work with N containers cached, without the network: what
//! a large cache costs each event (hash tables and containers far larger than the CPU's
//! caches), measured apart from the decode and the socket.
//!
//! It caches `--cached N` realistic containers (64-hex ids, `sha256:` image ids, labels),
//! decodes a pool of Docker `create`/`start`/`die`/... frames about `--touched K` of them
//! taken evenly over the cache (8 actions each, as the router's `--emit` does), then
//! applies `--events M` of them the way the reflector does (`Batch::update` with
//! `Event::changes`, a commit every 64, one handler counting its calls). Prints one JSON
//! line: `ns_per_event` (wall), `cpu_ns_per_event` and `peak_rss_mb`.
//!
//! `cachesize --cached 1000000 --touched 4095` against `--cached 31 --touched 31` is the
//! scale benchmark's comparison; `--cached 4095 --touched 4095` separates the cost of the
//! events' spread from that of the cache's size.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh_perf::{CountCalls, cpu_seconds, runtime};
use hypersh_store::{Change, HandlerOptions, StoreConfig, store};
use hypersh_watch::event::WatchEvent;
use hypersh_watch::{Container, ContainerState};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Containers in the cache.
    #[arg(long)]
    cached: usize,
    /// Containers the events are about, taken evenly over the cache.
    #[arg(long, default_value_t = 4095)]
    touched: usize,
    /// Events applied.
    #[arg(long, default_value_t = 2_000_000)]
    events: usize,
}

/// How long the handler may take to see the first list, and to catch up at the end.
const PATIENCE: Duration = Duration::from_secs(120);

/// The reflector applies runs of this many events in one batch.
const RUN: usize = 64;

/// The actions an emitting router cycles through.
const ACTIONS: &[&str] = &[
    "create", "start", "pause", "unpause", "kill", "die", "restart", "stop",
];

/// Container `i`'s id: 64 hex characters spread over the hash space like real ids.
fn id(i: usize) -> String {
    format!(
        "{:016x}{:048x}",
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i
    )
}

/// A container as the reference router makes them.
fn container(i: usize) -> Container {
    let images = [
        ("nginx:1.25", "nginx -g 'daemon off;'"),
        ("redis:7", "redis-server"),
        ("python:3.12-slim", "python -m http.server 8000"),
    ];
    let (image, command) = images[i % images.len()];
    Container::builder(&id(i))
        .name(&format!("/happy_turing_{i}"))
        .image(image)
        .image_id(&format!("sha256:{:064x}", i % 97))
        .command(command)
        .created(1_700_000_000 + i as i64)
        .state(ContainerState::Running)
        .status("Up 2 minutes")
        .label("app", &format!("web-{}", i % 50))
        .label("tier", "frontend")
        .label("sh_hyper_instancetype", "s4")
        .build()
}

/// A Docker event frame.
fn frame(id: &str, action: &str, n: usize) -> String {
    json!({
        "status": action, "id": id, "from": "nginx:1.25", "Type": "container",
        "Action": action,
        "Actor": {"ID": id, "Attributes": {"image": "nginx:1.25", "name": "happy_turing"}},
        "scope": "local", "time": 1_700_000_000 + n,
        "timeNano": 1_700_000_000_000_000_000u64 + n as u64,
    })
    .to_string()
}

/// The process's peak resident set (`VmHWM`), in MB: what huge pages add, if anything.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0).round())
}

fn main() {
    let args = Args::parse();
    let cached = args.cached.max(1);
    let touched = args.touched.clamp(1, cached);
    let result = runtime().block_on(async {
        let (mut writer, reader) = store::<Container>(StoreConfig::default());
        let calls = Arc::new(AtomicU64::new(0));
        let _handle = reader.register(CountCalls(Arc::clone(&calls)), HandlerOptions::default());
        writer.replace((0..cached).map(container)).await;
        // As the router's emit pool: the touched containers (one fewer when their count
        // is a multiple of 8, so that each goes through every action), 8 events each.
        let step = cached / touched;
        let mut ids: Vec<String> = (0..touched).map(|k| id(k * step)).collect();
        if ids.len() > ACTIONS.len() && ids.len().is_multiple_of(ACTIONS.len()) {
            ids.pop();
        }
        let pool: Vec<WatchEvent> = (0..ids.len() * ACTIONS.len())
            .map(|n| {
                let f = frame(&ids[n % ids.len()], ACTIONS[n % ACTIONS.len()], n);
                WatchEvent::decode(f).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        // The handler sees the first list before the clock starts.
        let first_list = async {
            while calls.load(Ordering::Relaxed) < cached as u64 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(PATIENCE, first_list)
            .await
            .map_err(|_| format!("the handler did not see the first list in {PATIENCE:?}"))?;
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let (mut changed, mut applied) = (0u64, 0usize);
        let mut events = pool.iter().cycle();
        while applied < args.events {
            let mut batch = writer.batch().await;
            for ev in events.by_ref().take(RUN) {
                let e = ev.event();
                if batch.update(e.id(), |c| c.and_then(|c| e.changes(c)).map(Change::Upsert)) {
                    changed += 1;
                }
            }
            batch.commit().await;
            applied += RUN;
        }
        let caught_up = async {
            while calls.load(Ordering::Relaxed) < cached as u64 + changed {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(PATIENCE, caught_up)
            .await
            .map_err(|_| format!("the handler did not see every change in {PATIENCE:?}"))?;
        let (seconds, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        Ok::<_, String>(json!({
            "cached": cached,
            "touched": ids.len(),
            "events": applied,
            "changed": changed,
            "ns_per_event": (seconds / applied as f64 * 1e9).round(),
            "cpu_ns_per_event": (cpu / applied as f64 * 1e9).round(),
            "peak_rss_mb": peak_rss_mb(),
        }))
    });
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("cachesize: {e}");
            std::process::exit(1);
        }
    }
}
