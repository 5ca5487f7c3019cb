//! Soak run: many events and many reconnects through one informer, watching memory, file
//! descriptors and tokio tasks. A plain binary (`harness = false`), not a criterion
//! benchmark; it prints numbers and asserts nothing.
//!
//! ```text
//! cargo bench --bench soak -- [--events N] [--reconnects N] [--tls] [...]
//! ```
//!
//! Two phases, each against an in-process router on 127.0.0.1:0:
//!
//! 1. **events**: a driver task cycles every container of the router's runtime through
//!    its life (start, pause, unpause, stop; every 100th step a stopped container is
//!    destroyed and a new one created), so nearly every event changes the cache; the
//!    connection is dropped abruptly every `--drop-every` seconds (each drop costs a
//!    relist). The driver stays at most a few thousand events ahead of the informer, and
//!    the phase ends when the informer has received `--events` events.
//! 2. **reconnects**: a router with live churn (`--churn` runtime actions per second:
//!    creates, destroys, state changes); the connection is dropped `--reconnects` times,
//!    each time waiting until the informer is connected and synced again.
//!
//! Every `--sample` seconds one line gives the RSS (`VmRSS` of `/proc/self/status`), the
//! open file descriptors (`/proc/self/fd`), the tokio tasks alive and the counters. At the
//! end, one `soak:` line per measure. A leak shows as RSS growing after warm-up, or more
//! descriptors or tasks after the reconnects than before them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh::Informer;
use hypersh::reflector::BackoffConfig;
use hypersh::reflector::StatusHandle;
use hypersh::watch::{Client, ClientConfig, ContainerState, TlsMode};
use hypersh_apirouter::{Router, RouterConfig, Runtime};

/// Soak-run settings.
#[derive(Parser, Debug, Clone)]
#[command(about = "Soak run of the informer against the reference router")]
struct Args {
    /// Events the informer must receive in the events phase.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Forced reconnects in the reconnects phase.
    #[arg(long, default_value_t = 200)]
    reconnects: u64,
    /// Containers in each router.
    #[arg(long, default_value_t = 500)]
    containers: usize,
    /// Runtime churn (actions per second) in the reconnects phase.
    #[arg(long, default_value_t = 200.0)]
    churn: f64,
    /// Seconds between abrupt connection drops in the events phase.
    #[arg(long, default_value_t = 5)]
    drop_every: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 2)]
    sample: u64,
    /// Speak TLS (self-signed certificate, trusted as a custom CA).
    #[arg(long)]
    tls: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Resident set size in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Tokio tasks alive in the current runtime.
fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// One sample of the curve.
#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    phase: &'static str,
    rss_kib: u64,
    fds: usize,
    tasks: usize,
    events: u64,
    reconnects: u64,
}

/// What the sampler reads and where it keeps the curve.
#[derive(Default)]
struct Shared {
    phase: std::sync::Mutex<&'static str>,
    events: AtomicU64,
    reconnects: AtomicU64,
    samples: std::sync::Mutex<Vec<Sample>>,
}

impl Shared {
    fn set_phase(&self, phase: &'static str) {
        *self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = phase;
    }

    fn sample(&self, start: Instant) -> Sample {
        let phase = *self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = Sample {
            secs: start.elapsed().as_secs_f64(),
            phase,
            rss_kib: rss_kib(),
            fds: fds(),
            tasks: tasks(),
            events: self.events.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        };
        println!(
            "sample t={:7.1}s phase={:<10} rss={:7} KiB fds={:4} tasks={:4} events={:>10} reconnects={:>5}",
            s.secs, s.phase, s.rss_kib, s.fds, s.tasks, s.events, s.reconnects
        );
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(s);
        s
    }
}

fn client(router: &Router, args: &Args) -> Client {
    let creds = router.credentials()[0].clone();
    let mut config = ClientConfig::new(&router.base_url(), creds)
        .expect("router URL parses")
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10));
    if let (true, Some(pem)) = (args.tls, router.ca_pem()) {
        config = config.tls(TlsMode::CustomCa(pem.as_bytes().to_vec()));
    }
    Client::new(config).expect("client builds")
}

fn backoff() -> BackoffConfig {
    BackoffConfig::default()
        .initial(Duration::from_millis(5))
        .max(Duration::from_millis(50))
        .jitter(false)
}

fn router_config(args: &Args) -> RouterConfig {
    let config = RouterConfig::default()
        .containers(args.containers)
        .seed(7)
        .max_watches_per_key(4);
    if args.tls {
        config
    } else {
        config.tls(hypersh_apirouter::ServerTls::Off)
    }
}

/// An informer with one handler counting every notification.
fn informer(client: Client) -> (Informer, Arc<AtomicU64>) {
    let informer = Informer::builder(client)
        .backoff(backoff())
        .build()
        .expect("informer builds");
    let handled = Arc::new(AtomicU64::new(0));
    let count = |h: &Arc<AtomicU64>| {
        let h = Arc::clone(h);
        move || {
            h.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (a, u, d) = (count(&handled), count(&handled), count(&handled));
    informer.register(
        hypersh::store::FnHandler::new()
            .on_add(move |_| a())
            .on_update(move |_, _| u())
            .on_delete(move |_| d()),
    );
    (informer, handled)
}

/// Polls `cond` every millisecond (a benchmark may spin a little).
async fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct EventsResult {
    received: u64,
    handled: u64,
    elapsed: Duration,
    relists: u64,
    reconnects: u64,
    decode_errors: u64,
    drops: u64,
}

/// Drives the runtime: every container cycles through its life (start, pause, unpause,
/// stop, ...), and every 100th step one stopped container is destroyed and a new one
/// created. Keeps at most [`MAX_AHEAD`] events ahead of the informer so the router's
/// per-watch buffer does not overflow (which would close the watch).
async fn drive(runtime: Runtime, status: StatusHandle, target: u64, stop: Arc<AtomicBool>) {
    let mut step: u64 = 0;
    let mut next_name: u64 = 0;
    let start_count = runtime.event_count();
    let mut lost: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<String> = runtime
            .list(true)
            .into_iter()
            .map(|c| c.id().to_string())
            .collect();
        for id in ids {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // Wait while too far ahead. Events produced while the informer was away
            // (dropped, relisting) are never received: when nothing arrives for 50 ms,
            // count the excess as lost and go on.
            let mut waited = 0;
            let mut last_received = status.snapshot().events_received;
            loop {
                let produced = runtime.event_count() - start_count - lost;
                let received = status.snapshot().events_received;
                if produced <= received + MAX_AHEAD || stop.load(Ordering::Relaxed) {
                    break;
                }
                if received != last_received {
                    last_received = received;
                    waited = 0;
                } else if waited >= 50 {
                    lost += produced - received;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += 1;
            }
            step += 1;
            let Some(c) = runtime.get(&id) else { continue };
            let _ = match c.state() {
                ContainerState::Running if step.is_multiple_of(3) => runtime.pause(&id),
                ContainerState::Running => runtime.stop(&id),
                ContainerState::Paused => runtime.unpause(&id),
                ContainerState::Exited if step.is_multiple_of(100) => {
                    next_name += 1;
                    let _ = runtime.destroy(&id);
                    let new = runtime.create(
                        &format!("soak-{next_name}"),
                        "busybox:latest",
                        BTreeMap::from([("soak".to_owned(), "yes".to_owned())]),
                    );
                    runtime.start(&new)
                }
                _ => runtime.start(&id),
            };
            if step.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
            if runtime.event_count() - start_count >= target {
                return;
            }
        }
    }
}

/// How far the driver may run ahead of the informer, in events (the router buffers
/// 16384 per watch).
const MAX_AHEAD: u64 = 4_096;

/// How long the informer may take to sync on the embedded router.
const SYNC_PATIENCE: Duration = Duration::from_secs(60);

async fn events_phase(args: &Args, shared: &Shared) -> EventsResult {
    let router = Router::start(router_config(args))
        .await
        .expect("router starts");
    let (informer, handled) = informer(client(&router, args));
    informer
        .wait_synced(SYNC_PATIENCE)
        .await
        .expect("the informer syncs");
    let stop = Arc::new(AtomicBool::new(false));
    let driver = tokio::spawn(drive(
        router.runtime().clone(),
        informer.status_handle(),
        // Generous: events lost to drops are not received, so produce more than needed.
        args.events.saturating_mul(2),
        Arc::clone(&stop),
    ));
    let started = Instant::now();
    let mut drops = 0;
    let mut next_drop = Instant::now() + Duration::from_secs(args.drop_every);
    loop {
        let status = informer.status();
        shared
            .events
            .store(status.events_received, Ordering::Relaxed);
        shared
            .reconnects
            .store(status.reconnects, Ordering::Relaxed);
        if status.events_received >= args.events || driver.is_finished() {
            break;
        }
        if Instant::now() >= next_drop {
            router.faults().drop_connections();
            drops += 1;
            next_drop = Instant::now() + Duration::from_secs(args.drop_every);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = driver.await;
    let elapsed = started.elapsed();
    let status = informer.status();
    informer.shutdown().await;
    router.shutdown().await;
    EventsResult {
        received: status.events_received,
        handled: handled.load(Ordering::Relaxed),
        elapsed,
        relists: status.relists,
        reconnects: status.reconnects,
        decode_errors: status.decode_errors,
        drops,
    }
}

struct ReconnectsResult {
    done: u64,
    elapsed: Duration,
    fds_before: usize,
    fds_after: usize,
    tasks_before: usize,
    tasks_after: usize,
    rss_before: u64,
    rss_after: u64,
    converged: bool,
}

async fn reconnects_phase(args: &Args, shared: &Shared) -> ReconnectsResult {
    let router = Router::start(router_config(args).churn(args.churn))
        .await
        .expect("router starts");
    let (informer, _handled) = informer(client(&router, args));
    informer
        .wait_synced(SYNC_PATIENCE)
        .await
        .expect("the informer syncs");
    router.wait_for_active_watches(1).await;
    // Let the first connection settle before the "before" measure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, tasks_before, rss_before) = (fds(), tasks(), rss_kib());
    let started = Instant::now();
    for _ in 0..args.reconnects {
        let before = informer.status().reconnects;
        router.faults().drop_connections();
        wait_until(|| {
            let s = informer.status();
            s.reconnects > before && s.connected
        })
        .await;
        let s = informer.status();
        shared.events.store(s.events_received, Ordering::Relaxed);
        shared.reconnects.store(s.reconnects, Ordering::Relaxed);
    }
    let elapsed = started.elapsed();
    router.wait_for_active_watches(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_after, tasks_after, rss_after) = (fds(), tasks(), rss_kib());
    // The cache still matches the router (churn goes on, so compare a few times).
    let mut converged = false;
    for _ in 0..200 {
        let cache: BTreeMap<String, ContainerState> = informer
            .store()
            .list()
            .iter()
            .map(|c| (c.id().to_string(), c.state()))
            .collect();
        let truth: BTreeMap<String, ContainerState> = router
            .runtime()
            .list(true)
            .into_iter()
            .map(|c| (c.id().to_string(), c.state()))
            .collect();
        if cache == truth {
            converged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = informer.status().reconnects;
    informer.shutdown().await;
    router.shutdown().await;
    ReconnectsResult {
        done,
        elapsed,
        fds_before,
        fds_after,
        tasks_before,
        tasks_after,
        rss_before,
        rss_after,
        converged,
    }
}

async fn run(args: Args) {
    let start = Instant::now();
    let shared = Arc::new(Shared::default());
    let (fds_start, tasks_start, rss_start) = (fds(), tasks(), rss_kib());
    shared.set_phase("setup");
    println!("soak: {args:?}");

    let sampler = tokio::spawn({
        let shared = Arc::clone(&shared);
        let every = Duration::from_secs(args.sample.max(1));
        async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                shared.sample(start);
            }
        }
    });

    shared.set_phase("events");
    let events = events_phase(&args, &shared).await;
    let rss_events_end = shared.sample(start).rss_kib;

    shared.set_phase("reconnects");
    let reconnects = reconnects_phase(&args, &shared).await;

    shared.set_phase("shutdown");
    sampler.abort();
    let _ = sampler.await;
    // Give the runtime a moment to reap what shutdown ended.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_end, tasks_end, rss_end) = (fds(), tasks(), rss_kib());

    // The curve after warm-up: the events phase from 20% of its target on.
    let samples = shared
        .samples
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let warm: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == "events" && s.events >= args.events / 5)
        .collect();
    let warm_first = warm.first().map_or(0, |s| s.rss_kib);
    let warm_max = warm.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let warm_min = warm.iter().map(|s| s.rss_kib).min().unwrap_or(0);

    let secs = events.elapsed.as_secs_f64();
    println!(
        "soak: events received={} handled={} in {:.1}s ({:.0}/s), relists={} reconnects={} drops={} decode_errors={}",
        events.received,
        events.handled,
        secs,
        events.received as f64 / secs.max(1e-9),
        events.relists,
        events.reconnects,
        events.drops,
        events.decode_errors
    );
    println!(
        "soak: rss_kib start={rss_start} after_warmup={warm_first} warm_min={warm_min} warm_max={warm_max} events_end={rss_events_end} ({} samples after warm-up)",
        warm.len()
    );
    println!(
        "soak: reconnects={} in {:.1}s ({:.1} ms each), cache_matches_router={}",
        reconnects.done,
        reconnects.elapsed.as_secs_f64(),
        reconnects.elapsed.as_secs_f64() * 1000.0 / reconnects.done.max(1) as f64,
        reconnects.converged
    );
    println!(
        "soak: fds before_reconnects={} after_reconnects={} | process start={fds_start} end={fds_end}",
        reconnects.fds_before, reconnects.fds_after
    );
    println!(
        "soak: tasks before_reconnects={} after_reconnects={} | process start={tasks_start} end={tasks_end}",
        reconnects.tasks_before, reconnects.tasks_after
    );
    println!(
        "soak: rss_kib before_reconnects={} after_reconnects={} end={rss_end}",
        reconnects.rss_before, reconnects.rss_after
    );
    println!("soak: total {:.1}s", start.elapsed().as_secs_f64());
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(args));
}
