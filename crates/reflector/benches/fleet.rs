//! A fleet of in-process hosts against one informer of the same containers: heap per
//! container, time to the first sync, and the cost of each batch of hosts added.
//!
//! `cargo bench -p hypersh-reflector --bench fleet -- [HOSTS] [PER_HOST] [MODE]` (defaults
//! 200 hosts × 5 000 containers; MODE `both` (default), `single` or `fleet`). Each host is
//! a source that lists fresh containers (built as a list decodes them: new strings each
//! time) and whose watch stays open and quiet. Prints one line per measure:
//! - `single`: one informer of HOSTS × PER_HOST containers: sync seconds, heap bytes per
//!   container (the heap after the sync minus before, over the containers);
//! - `fleet`: the same containers on HOSTS hosts of one fleet, all added at once: sync
//!   seconds, heap bytes per container;
//! - `step`: the fleet grown in four equal batches of hosts, each batch's sync seconds
//!   and heap bytes (linear if each batch costs the same).
//!
//! MODE `isolation`: HOSTS − 1 healthy hosts of PER_HOST containers, each churning (a
//! `die` or `start` of one of its containers every 100 ms), measured for 10 s: the
//! handler latency (event out of the source to the fleet handler's call) p50/p99/max,
//! first alone, then with three bad hosts added: one that stalls (its list never
//! answers), one that floods (events as fast as it is polled) and one whose list never
//! ends (100 000 containers a second); with the heap before and after.

use std::alloc::System;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cap::Cap;
use futures_util::StreamExt;
use futures_util::stream::{BoxStream, pending};
use hypersh_reflector::fleet::Fleet;
use hypersh_reflector::{Informer, Source, SourceError};
use hypersh_watch::{Container, ContainerState, Filters, WatchEvent};

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// How long a sync may take before the run fails.
const PATIENCE: Duration = Duration::from_secs(600);

/// A source of `n` containers numbered from `first`, whose watch behaves as `kind`.
#[derive(Clone)]
struct Generated {
    first: usize,
    n: usize,
    kind: Kind,
}

/// How a generated host behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Lists, then a quiet watch.
    Quiet,
    /// Lists, then a `die` or `start` of one of its containers every 100 ms, each
    /// event's send time noted for the latency.
    Churning,
    /// Lists, then events as fast as the watch is polled.
    Flooding,
    /// The list never answers.
    Stalled,
    /// The list never ends.
    EndlessList,
}

/// When each churning host's last event about a container left its source, by id.
static SENT: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
/// Event-to-handler latencies, in microseconds.
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// The frame of `action` about container `i`.
fn frame(action: &str, i: usize) -> WatchEvent {
    let c = container(i);
    WatchEvent::decode(
        serde_json::json!({
            "Type": "container",
            "Action": action,
            "id": c.id(),
            "from": c.image(),
            "Actor": {"ID": c.id(), "Attributes": {"name": c.name(), "image": c.image()}},
        })
        .to_string(),
    )
    .expect("a valid frame")
}

/// The number a container's id carries (its last 48 hex digits).
fn number(id: &str) -> Option<usize> {
    usize::from_str_radix(id.get(16..)?, 16).ok()
}

/// The generated source never fails.
#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

impl SourceError for Never {
    fn is_auth(&self) -> bool {
        false
    }

    fn is_frame_error(&self) -> bool {
        false
    }
}

impl Source for Generated {
    type Error = Never;
    type Watch = BoxStream<'static, Result<WatchEvent, Never>>;

    fn endpoint(&self) -> String {
        format!("generated-{}", self.first)
    }

    async fn watch(&self, _: &Filters) -> Result<Self::Watch, Never> {
        let (first, n) = (self.first, self.n.max(1));
        Ok(match self.kind {
            Kind::Churning => futures_util::stream::unfold(0usize, move |k| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let i = first + k % n;
                let action = if (k / n) % 2 == 0 { "die" } else { "start" };
                let event = frame(action, i);
                if let Some(sent) = SENT.lock().unwrap().as_mut() {
                    sent.insert(event.id().to_owned(), Instant::now());
                }
                Some((Ok(event), k + 1))
            })
            .boxed(),
            Kind::Flooding => futures_util::stream::iter(0usize..)
                .map(move |k| {
                    let action = if k % 2 == 0 { "die" } else { "start" };
                    Ok(frame(action, first + k % n))
                })
                .boxed(),
            Kind::Quiet | Kind::Stalled | Kind::EndlessList => pending().boxed(),
        })
    }

    async fn list(&self, _: &Filters, mut sink: impl FnMut(Container) + Send) -> Result<(), Never> {
        match self.kind {
            Kind::Stalled => std::future::pending().await,
            Kind::EndlessList => {
                for i in self.first.. {
                    sink(container(i));
                    if i % 1000 == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            _ => {
                for i in self.first..self.first + self.n {
                    sink(container(i));
                }
            }
        }
        Ok(())
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<Container>, Never> {
        Ok(ids
            .iter()
            .filter_map(|id| number(id))
            .filter(|i| (self.first..self.first + self.n).contains(i))
            .map(container)
            .collect())
    }
}

/// A container as the reference router makes them (64-hex id, labels, image id).
fn container(i: usize) -> Container {
    let images = [
        ("nginx:1.25", "nginx -g 'daemon off;'"),
        ("redis:7", "redis-server"),
        ("python:3.12-slim", "python -m http.server 8000"),
    ];
    let (image, command) = images[i % images.len()];
    Container::builder(&format!(
        "{:016x}{:048x}",
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        i
    ))
    .name(&format!("/happy_turing_{i}"))
    .image(image)
    .image_id(&format!("sha256:{:064x}", i % 97))
    .command(command)
    .created(1_700_000_000 + i as i64)
    .state(ContainerState::Running)
    .status("Up 2 minutes")
    .label("app", &format!("web-{}", i % 50))
    .label("tier", "frontend")
    .build()
}

async fn single(hosts: usize, per_host: usize) {
    let total = hosts * per_host;
    let before = HEAP.allocated();
    let started = Instant::now();
    let informer = Informer::builder(Generated {
        first: 0,
        n: total,
        kind: Kind::Quiet,
    })
    .build()
    .expect("an informer");
    informer.wait_synced(PATIENCE).await.expect("synced");
    let secs = started.elapsed().as_secs_f64();
    let heap = HEAP.allocated().saturating_sub(before);
    assert_eq!(informer.store().len(), total);
    println!(
        "single containers={total} sync_s={secs:.2} heap_per_container={:.0}",
        heap as f64 / total as f64
    );
    informer.shutdown().await;
}

/// Adds hosts `from..to` of `per_host` containers each.
fn add(fleet: &Fleet, from: usize, to: usize, per_host: usize) {
    add_kind(fleet, from, to, per_host, Kind::Quiet);
}

/// Adds hosts `from..to` of `per_host` containers each, behaving as `kind`.
fn add_kind(fleet: &Fleet, from: usize, to: usize, per_host: usize, kind: Kind) {
    for h in from..to {
        let source = Generated {
            first: h * per_host,
            n: per_host,
            kind,
        };
        fleet
            .add_host(format!("host-{h:03}"), source)
            .expect("a new host");
    }
}

async fn fleet(hosts: usize, per_host: usize) {
    let total = hosts * per_host;
    let before = HEAP.allocated();
    let started = Instant::now();
    let fleet = Fleet::builder().build();
    add(&fleet, 0, hosts, per_host);
    fleet.wait_synced(PATIENCE).await.expect("synced");
    let secs = started.elapsed().as_secs_f64();
    let heap = HEAP.allocated().saturating_sub(before);
    assert_eq!(fleet.len(), total);
    println!(
        "fleet hosts={hosts} containers={total} sync_s={secs:.2} heap_per_container={:.0}",
        heap as f64 / total as f64
    );
    fleet.shutdown().await;
    drop(fleet);

    // Grown in four batches: each batch's time and heap.
    let fleet = Fleet::builder().build();
    let batch = hosts.div_ceil(4);
    let mut from = 0;
    while from < hosts {
        let to = (from + batch).min(hosts);
        let before = HEAP.allocated();
        let started = Instant::now();
        add(&fleet, from, to, per_host);
        fleet.wait_synced(PATIENCE).await.expect("synced");
        let secs = started.elapsed().as_secs_f64();
        let heap = HEAP.allocated().saturating_sub(before);
        println!(
            "step hosts={from}..{to} sync_s={secs:.2} heap_mb={:.1} heap_per_host_mb={:.2}",
            heap as f64 / 1e6,
            heap as f64 / 1e6 / (to - from) as f64
        );
        from = to;
    }
    fleet.shutdown().await;
}

/// Collects the healthy hosts' handler latencies for `d`: p50, p99, max (µs), count.
async fn latencies(d: Duration) -> (u64, u64, u64, usize) {
    LATENCIES.lock().unwrap().clear();
    tokio::time::sleep(d).await;
    let mut all = std::mem::take(&mut *LATENCIES.lock().unwrap());
    all.sort_unstable();
    let at = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)));
    (
        at(0.5).copied().unwrap_or(0),
        at(0.99).copied().unwrap_or(0),
        all.last().copied().unwrap_or(0),
        all.len(),
    )
}

async fn isolation(hosts: usize, per_host: usize) {
    *SENT.lock().unwrap() = Some(HashMap::new());
    let fleet = Fleet::builder().build();
    fleet
        .handler()
        .on_update(|_, _, new| {
            let sent = SENT
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|s| s.remove(new.id()));
            if let Some(sent) = sent {
                LATENCIES
                    .lock()
                    .unwrap()
                    .push(sent.elapsed().as_micros() as u64);
            }
        })
        .register();
    let healthy = hosts.saturating_sub(1).max(1);
    add_kind(&fleet, 0, healthy, per_host, Kind::Churning);
    fleet.wait_synced(PATIENCE).await.expect("synced");
    let window = Duration::from_secs(10);
    let heap = HEAP.allocated();
    let (p50, p99, max, n) = latencies(window).await;
    println!(
        "isolation healthy={healthy} bad=0 events={n} p50_us={p50} p99_us={p99} max_us={max} heap_mb={:.0}",
        heap as f64 / 1e6
    );
    let bad = [Kind::Stalled, Kind::Flooding, Kind::EndlessList];
    for (k, kind) in bad.into_iter().enumerate() {
        add_kind(&fleet, healthy + k, healthy + k + 1, per_host, kind);
    }
    let (p50, p99, max, n) = latencies(window).await;
    println!(
        "isolation healthy={healthy} bad=3 events={n} p50_us={p50} p99_us={p99} max_us={max} heap_mb={:.0}",
        HEAP.allocated() as f64 / 1e6
    );
    for (host, status) in fleet.statuses().into_iter().skip(healthy) {
        println!(
            "bad host={host} phase={:?} synced={} events={} overflows={} cached={}",
            status.phase,
            status.synced,
            status.events_received,
            status.overflows,
            fleet.by_host(&host).map_or(0, |l| l.len())
        );
    }
    fleet.shutdown().await;
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are the first free arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let hosts = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let per_host = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let mode = args.get(2).map_or("both", String::as_str).to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        if mode == "isolation" {
            isolation(hosts, per_host).await;
            return;
        }
        if mode != "fleet" {
            single(hosts, per_host).await;
        }
        if mode != "single" {
            fleet(hosts, per_host).await;
        }
    });
}
