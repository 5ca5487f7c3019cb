//! Apply throughput and memory per cached object at 100k objects.
//!
//! Run with `cargo bench -p hypersh-store --bench apply`. Before the criterion runs, it prints
//! the heap bytes per cached object, measured with a counting global allocator (`cap`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cap::Cap;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use hypersh_store::{Change, Handler, HandlerOptions, Keyed, Store, StoreConfig, Writer, store};

#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// How many objects the benchmarks cache.
const N: usize = 100_000;

/// A small, realistic container summary: what an informer would keep per container.
#[derive(Debug, Clone, PartialEq)]
struct Container {
    id: String,
    name: String,
    image: String,
    state: String,
    labels: BTreeMap<String, String>,
}

impl Keyed for Container {
    fn key(&self) -> &str {
        &self.id
    }
}

fn container(i: usize, generation: usize) -> Container {
    let labels = [
        ("app", format!("web-{}", i % 50)),
        ("tier", "frontend".to_owned()),
        ("sh_hyper_instancetype", "s4".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Container {
        // Hyper.sh ids are 64 hex characters, like Docker's.
        id: format!("{i:064x}"),
        name: format!("web-{i}"),
        image: format!("nginx:1.{}", 20 + i % 8),
        state: if generation.is_multiple_of(2) {
            "running"
        } else {
            "exited"
        }
        .to_owned(),
        labels,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    }
}

/// A handler that only counts, so the benchmark measures the store's dispatch cost.
struct Count(Arc<AtomicUsize>);

impl Handler<Container> for Count {
    fn on_add(&mut self, _: &Arc<Container>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn on_update(&mut self, _: &Arc<Container>, _: &Arc<Container>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

struct Fixture {
    writer: Writer<Container>,
    store: Store<Container>,
    seen: Arc<AtomicUsize>,
}

/// A store (pre-filled with generation 0 if `prefill`) and `handlers` counting handlers.
fn fixture(rt: &tokio::runtime::Runtime, handlers: usize, prefill: bool) -> Fixture {
    rt.block_on(async {
        let (mut writer, store) = store::<Container>(StoreConfig::default());
        // The first relist marks the store synced, which handlers wait for to catch up.
        if prefill {
            writer.replace((0..N).map(|i| container(i, 0))).await;
        } else {
            writer.replace(Vec::new()).await;
        }
        let seen = Arc::new(AtomicUsize::new(0));
        for _ in 0..handlers {
            let handle = store.register(Count(Arc::clone(&seen)), HandlerOptions::default());
            if handle.wait_synced().await.is_err() {
                panic!("handler stopped");
            }
        }
        seen.store(0, Ordering::Relaxed);
        Fixture {
            writer,
            store,
            seen,
        }
    })
}

/// Applies `objects` and waits until every handler has seen every event.
fn apply_all(
    rt: &tokio::runtime::Runtime,
    f: &mut Fixture,
    objects: Vec<Container>,
    handlers: usize,
) {
    rt.block_on(async {
        for obj in objects {
            f.writer.apply(Change::Upsert(obj)).await;
        }
        while f.seen.load(Ordering::Relaxed) < N * handlers {
            tokio::task::yield_now().await;
        }
    });
}

fn apply_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("apply_100k_upserts");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    // Each iteration takes tens of milliseconds: flat sampling suits long routines.
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for (label, prefill) in [("adds", false), ("updates", true)] {
        for handlers in [0, 1] {
            group.bench_function(format!("{label}/{handlers}_handlers"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut f = fixture(&rt, handlers, prefill);
                        let objects: Vec<Container> = (0..N).map(|i| container(i, 1)).collect();
                        let start = Instant::now();
                        apply_all(&rt, &mut f, objects, handlers);
                        total += start.elapsed();
                        black_box(f.store.len());
                        // Dropped outside the timed section.
                        drop(f);
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

/// Net heap bytes allocated while `f` runs and its result is alive.
fn heap_bytes_of<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATOR.allocated();
    let out = f();
    (ALLOCATOR.allocated().saturating_sub(before), out)
}

fn memory_report() {
    let rt = runtime();
    let per = |bytes: usize| bytes as f64 / N as f64;

    let (objects, arcs) = heap_bytes_of(|| {
        (0..N)
            .map(|i| Arc::new(container(i, 0)))
            .collect::<Vec<_>>()
    });
    drop(arcs);
    let (cached, fixture_plain) = heap_bytes_of(|| {
        let mut f = fixture(&rt, 0, false);
        apply_all(&rt, &mut f, (0..N).map(|i| container(i, 0)).collect(), 0);
        f
    });
    let len = fixture_plain.store.len();
    drop(fixture_plain);
    let (indexed, fixture_indexed) = heap_bytes_of(|| {
        let f = fixture(&rt, 0, true);
        f.store
            .add_index("image", |c: &Container| vec![c.image.clone()]);
        f
    });
    drop(fixture_indexed);

    println!("memory per cached object at {N} objects (len {len}), counting allocator:");
    println!(
        "  the object alone (Arc<Container> + its strings, in a Vec): {:>7.1} B",
        per(objects)
    );
    println!(
        "  store, no index:                                         {:>7.1} B",
        per(cached)
    );
    println!(
        "  store overhead (store minus the object):                 {:>7.1} B",
        per(cached) - per(objects)
    );
    println!(
        "  store with one index (image):                           {:>7.1} B",
        per(indexed)
    );
}

criterion_group!(benches, apply_throughput);

fn main() {
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
