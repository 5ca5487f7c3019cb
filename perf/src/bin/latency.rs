//! Latency of the full informer at a fixed event rate: from the moment the reflector has an
//! event in hand (the frame read and decoded by the watch stream) to the moment the handler
//! is called with its effect.
//!
//! The router churns its runtime at `--rate` events/s. The instants are taken without
//! touching the library: a `metrics` recorder sees the reflector's
//! `hypersh_reflector_events_total` counter (incremented when an event arrives) and its
//! `hypersh_reflector_events_applied_total` counter (incremented after an event changed the
//! store and its notification was queued); the reflector handles events one at a time, so
//! each applied event's arrival instant is queued, and the handler's calls (one per applied
//! event, in order) take them off the queue. Events that needed a fetch (a list call for a
//! container the cache lacks: creates) are reported apart as well.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh_perf::runtime;
use hypersh_reflector::Informer;
use hypersh_store::{Deleted, Handler, Store};
use hypersh_watch::{Client, ClientConfig, Container, Credentials, TlsMode};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Router base URL (started with `--churn RATE`).
    #[arg(long)]
    url: String,
    /// Seconds measured (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The router's churn rate, for the report.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
}

/// Shared between the recorder (reflector side) and the handler.
#[derive(Default)]
struct Probe {
    /// Arrival instant of the event being handled, and whether it needed a fetch.
    current: Mutex<Option<(Instant, bool)>>,
    /// Arrival instants of applied events whose handler call is still to come.
    queue: Mutex<VecDeque<(Instant, bool)>>,
    /// Handler calls the first relist produced (set when it completes).
    sync_calls: OnceLock<u64>,
    store: OnceLock<Store<Container>>,
    received: AtomicU64,
}

struct Hook {
    probe: Arc<Probe>,
    which: Which,
}

#[derive(Clone, Copy)]
enum Which {
    Received,
    Fetched,
    Applied,
    Relisted,
}

impl CounterFn for Hook {
    fn increment(&self, _value: u64) {
        let p = &self.probe;
        let mut current = p.current.lock().unwrap_or_else(|e| e.into_inner());
        match self.which {
            Which::Received => {
                p.received.fetch_add(1, Ordering::Relaxed);
                *current = Some((Instant::now(), false));
            }
            Which::Fetched => {
                if let Some((_, fetched)) = current.as_mut() {
                    *fetched = true;
                }
            }
            Which::Applied => {
                if let Some(c) = current.take() {
                    p.queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back(c);
                }
            }
            Which::Relisted => {
                if let Some(store) = p.store.get() {
                    let _ = p.sync_calls.set(store.len() as u64);
                }
            }
        }
    }

    fn absolute(&self, _value: u64) {}
}

struct ProbeRecorder(Arc<Probe>);

impl Recorder for ProbeRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let which = match key.name() {
            "hypersh_reflector_events_total" => Which::Received,
            "hypersh_reflector_fetches_total" => Which::Fetched,
            "hypersh_reflector_events_applied_total" => Which::Applied,
            "hypersh_reflector_relists_total" => Which::Relisted,
            _ => return Counter::noop(),
        };
        Counter::from_arc(Arc::new(Hook {
            probe: Arc::clone(&self.0),
            which,
        }))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Records, per handler call after the first relist, the time since the event arrived.
struct Measure {
    probe: Arc<Probe>,
    calls: u64,
    record_after: Instant,
    samples: Arc<Mutex<Vec<(u64, bool)>>>,
}

impl Measure {
    fn call(&mut self) {
        self.calls += 1;
        let Some(&sync_calls) = self.probe.sync_calls.get() else {
            return;
        };
        if self.calls <= sync_calls {
            return;
        }
        let popped = self
            .probe
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        if let Some((at, fetched)) = popped
            && at >= self.record_after
        {
            let nanos = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((nanos, fetched));
        }
    }
}

impl Handler<Container> for Measure {
    fn on_add(&mut self, _: &Arc<Container>) {
        self.call();
    }
    fn on_update(&mut self, _: &Arc<Container>, _: &Arc<Container>) {
        self.call();
    }
    fn on_delete(&mut self, _: &Deleted<Container>) {
        self.call();
    }
}

fn percentiles(mut v: Vec<u64>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i.min(v.len() - 1)] as f64 / 1e3
    };
    json!({
        "samples": v.len(),
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": at(1.0),
    })
}

fn main() {
    let args = Args::parse();
    let probe = Arc::new(Probe::default());
    if metrics::set_global_recorder(ProbeRecorder(Arc::clone(&probe))).is_err() {
        eprintln!("latency: a metrics recorder is already set");
        std::process::exit(1);
    }
    let result = runtime().block_on(async {
        let config = ClientConfig::new(&args.url, Credentials::new("ak", "sk"))
            .map_err(|e| e.to_string())?
            .tls(TlsMode::InsecureSkipVerify);
        let client = Client::new(config).map_err(|e| e.to_string())?;
        let informer = Informer::builder(client)
            .build()
            .map_err(|e| e.to_string())?;
        let _ = probe.store.set(informer.store().clone());
        let samples = Arc::new(Mutex::new(Vec::new()));
        let warm_up = Duration::from_secs(1);
        let record_after = Instant::now() + warm_up;
        informer.register(Measure {
            probe: Arc::clone(&probe),
            calls: 0,
            record_after,
            samples: Arc::clone(&samples),
        });
        informer.wait_until_ready().await;
        tokio::time::sleep_until((record_after).into()).await;
        let received_before = probe.received.load(Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        let received = probe.received.load(Ordering::Relaxed) - received_before;
        let elapsed = started.elapsed().as_secs_f64();
        informer.shutdown().await;
        let all = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let plain: Vec<u64> = all.iter().filter(|(_, f)| !f).map(|(n, _)| *n).collect();
        let fetched: Vec<u64> = all.iter().filter(|(_, f)| *f).map(|(n, _)| *n).collect();
        Ok::<_, String>(json!({
            "target_rate": args.rate,
            "received_per_sec": (received as f64 / elapsed).round(),
            "all": percentiles(all.iter().map(|(n, _)| *n).collect()),
            "without_fetch": percentiles(plain),
            "with_fetch": percentiles(fetched),
        }))
    });
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("latency: {e}");
            std::process::exit(1);
        }
    }
}
