//! Latency of the full informer at a fixed event rate: from the moment the reflector has an
//! event in hand (the frame read and decoded by the watch stream) to the moment the handler
//! is called with its effect.
//!
//! The router churns its runtime at `--rate` events/s. The instants are taken without
//! touching the library: the reflector logs every event it receives as a `TRACE` event of
//! target `hypersh_reflector::events` (with the container id and the action), and a
//! `tracing` layer here notes when each arrived, per container. The handler then pairs
//! each call with the event that caused it: for an update, the latest pending event of
//! that container whose action implies the new state (`die` for exited, `start` for
//! running, ...), or `rename` for a new name; for a delete, its `destroy`; for an add, its
//! `create` (such containers are fetched with a list call first: they are reported apart
//! as well). Earlier events of the container that changed nothing (`kill`, `stop` after
//! `die`, `exec_*`, events skipped while the container was being fetched) are dropped at
//! that point. A start or stop of a networked container is applied at once and the
//! container then fetched (for its addresses, or its ports): the call that brings them is
//! timed from the same event and reported with the fetched ones.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh_perf::runtime;
use hypersh_reflector::Informer;
use hypersh_store::{Deleted, Handler};
use hypersh_watch::event::DockerAction;
use hypersh_watch::{Client, ClientConfig, Container, ContainerState, Credentials, TlsMode};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

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

/// Arrivals not yet paired with a handler call, per container id, oldest first.
#[derive(Default)]
struct Probe {
    arrivals: Mutex<HashMap<String, VecDeque<(Instant, String)>>>,
    /// Per container, the arrival its last handler call was timed from: a start or stop
    /// of a networked container is applied at once and the container then fetched for
    /// its addresses, so a second call (the addresses) follows from the same event.
    timed: Mutex<HashMap<String, Instant>>,
    received: AtomicU64,
    /// Handler calls with no recorded arrival (should stay 0).
    unmatched: AtomicU64,
}

impl Probe {
    /// Takes the arrival of the latest event `wanted` picks among `id`'s pending ones (the
    /// latest of all when none fits), dropping those before it. The latest, not the
    /// first: an event about a container being fetched changes nothing by itself (the
    /// fetch covers it) and stays pending here, and a later event of the same kind must
    /// not be timed from it.
    fn take(&self, id: &str, wanted: impl Fn(&str) -> bool) -> Option<Instant> {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let pending = arrivals.get_mut(id)?;
        let at = pending
            .iter()
            .rposition(|(_, action)| wanted(action))
            .unwrap_or(pending.len().saturating_sub(1));
        let (instant, _) = pending
            .drain(..=at.min(pending.len().checked_sub(1)?))
            .next_back()?;
        if pending.is_empty() {
            arrivals.remove(id);
        }
        self.timed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), instant);
        Some(instant)
    }

    /// The arrival `id`'s last call was timed from, once: for the call that brings what
    /// was fetched after it.
    fn take_timed(&self, id: &str) -> Option<Instant> {
        self.timed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }
}

/// Notes the arrival of every event the reflector logs.
struct Arrivals(Arc<Probe>);

#[derive(Default)]
struct EventFields {
    id: Option<String>,
    action: Option<String>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "id" => self.id = Some(value.to_owned()),
            "action" => self.action = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Arrivals {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target() == "hypersh_reflector::events"
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let now = Instant::now();
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if let (Some(id), Some(action)) = (fields.id, fields.action) {
            self.0.received.fetch_add(1, Ordering::Relaxed);
            self.0
                .arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id)
                .or_default()
                .push_back((now, action));
        }
    }
}

/// Records, per handler call after the warm-up, the time since its event arrived, and
/// whether the container had to be fetched (an add).
struct Measure {
    probe: Arc<Probe>,
    record_after: Instant,
    samples: Arc<Mutex<Vec<(u64, bool)>>>,
}

impl Measure {
    fn record(&self, arrived: Option<Instant>, fetched: bool) {
        let Some(at) = arrived else {
            self.probe.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if at >= self.record_after {
            let nanos = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((nanos, fetched));
        }
    }
}

fn implies(action: &str, state: ContainerState) -> bool {
    DockerAction::parse(action).implied_state() == Some(state)
}

impl Handler<Container> for Measure {
    fn on_add(&mut self, c: &Arc<Container>) {
        // The adds of the first list have no event: nothing pending, nothing recorded.
        let arrived = self.probe.take(c.id(), |a| a == "create");
        if arrived.is_some() {
            self.record(arrived, true);
        }
    }

    fn on_update(&mut self, old: &Arc<Container>, new: &Arc<Container>) {
        let arrived = if new.state() != old.state() {
            self.probe.take(new.id(), |a| implies(a, new.state()))
        } else if !new.names().eq(old.names()) {
            self.probe.take(new.id(), |a| a == "rename")
        } else {
            self.probe.take(new.id(), |_| true)
        };
        match arrived {
            // What a fetch after the event the last call was timed from brought (the
            // addresses after a start, the ports after a stop).
            None => self.record(self.probe.take_timed(new.id()), true),
            arrived => self.record(arrived, false),
        }
    }

    fn on_delete(&mut self, d: &Deleted<Container>) {
        let arrived = self.probe.take(d.key(), |a| a == "destroy");
        self.probe.take_timed(d.key());
        self.record(arrived, false);
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
    let subscriber = Registry::default().with(Arrivals(Arc::clone(&probe)));
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("latency: a tracing subscriber is already set");
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
        let samples = Arc::new(Mutex::new(Vec::new()));
        let warm_up = Duration::from_secs(1);
        let record_after = Instant::now() + warm_up;
        informer.register(Measure {
            probe: Arc::clone(&probe),
            record_after,
            samples: Arc::clone(&samples),
        });
        informer
            .wait_synced(hypersh_perf::SYNC_PATIENCE)
            .await
            .map_err(|e| e.to_string())?;
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
            "unmatched_calls": probe.unmatched.load(Ordering::Relaxed),
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
