//! Store benchmark: the same sequence of 1M upserts over 100k containers applied to
//! `hypersh_store::Writer<Container>` and to kube-runtime's `reflector::store::Writer` of
//! `DynamicObject`s carrying the same fields; heap bytes per cached container (counting
//! allocator); and a relist of the same 100k into the full store (peak heap over steady).
//!
//! Prints one JSON object.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh_store::{Change, Keyed, StoreConfig, store};
use hypersh_watch::{Container, ContainerState, Labels};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::{ApiResource, DynamicObject, GroupVersionKind, TypeMeta};
use kube_runtime::watcher::Event;
use peak_alloc::PeakAlloc;
use serde_json::json;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

#[derive(Parser)]
struct Args {
    /// Containers.
    #[arg(long, default_value_t = 100_000)]
    containers: usize,
    /// Upserts (cycling over the containers, each round a new generation).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
}

/// Container `i` in generation `g`: every generation flips the state and its status text.
fn container(i: usize, g: usize) -> Container {
    let running = g.is_multiple_of(2);
    let (state, status) = if running {
        (ContainerState::Running, format!("Up {g} minutes"))
    } else {
        (
            ContainerState::Exited,
            "Exited (0) 3 seconds ago".to_owned(),
        )
    };
    Container::builder(&format!("{:064x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .name(&format!("web-{i}"))
        .image(&format!("nginx:1.{}", 20 + i % 8))
        .image_id(&format!("sha256:{:064x}", i % 8))
        .command("nginx -g 'daemon off;'")
        .created(1_700_000_000 + i as i64)
        .labels(Labels::from_iter([
            ("app", format!("web-{}", i % 50).as_str()),
            ("tier", "frontend"),
            ("sh_hyper_instancetype", "s4"),
        ]))
        .state(state)
        .status(&status)
        .build()
}

/// The same container as a `DynamicObject`: id as the name, labels as labels, the rest as
/// data, as a kube-rs user would model an API without a Rust type.
fn dynamic(c: Container) -> DynamicObject {
    DynamicObject {
        types: Some(TypeMeta {
            api_version: "v1".to_owned(),
            kind: "Container".to_owned(),
        }),
        metadata: ObjectMeta {
            name: Some(c.id().to_string()),
            labels: Some(
                c.labels()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        },
        data: json!({
            "Names": c.names().collect::<Vec<_>>(),
            "Image": c.image(),
            "ImageID": c.image_id(),
            "Command": c.command(),
            "Created": c.created(),
            "State": c.state().as_str(),
            "Status": c.status(),
        }),
    }
}

fn api_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Container"))
}

struct Numbers {
    applies_per_sec: f64,
    /// hypersh only: with upserts built as the reflector builds them.
    applies_per_sec_shared: Option<f64>,
    heap_bytes_per_container: f64,
    relist_full_seconds: f64,
    relist_full_peak_over_steady: f64,
}

impl Numbers {
    fn json(&self) -> serde_json::Value {
        let mut v = json!({
            "applies_per_sec": self.applies_per_sec.round(),
            "heap_bytes_per_container": self.heap_bytes_per_container.round(),
            "relist_full_seconds": (self.relist_full_seconds * 1e3).round() / 1e3,
            "relist_full_peak_over_steady": (self.relist_full_peak_over_steady * 1e3).round() / 1e3,
        });
        if let Some(shared) = self.applies_per_sec_shared {
            v["applies_per_sec_shared"] = json!(shared.round());
        }
        v
    }
}

fn hypersh(args: &Args) -> Numbers {
    let rt = hypersh_perf::runtime();
    rt.block_on(async {
        let n = args.containers;
        // Heap per cached container: an empty store, then n adds made on the fly.
        let (mut writer, reader) = store::<Container>(StoreConfig::default());
        let before = HEAP.current_usage();
        for i in 0..n {
            writer.apply(Change::Upsert(container(i, 0))).await;
        }
        let per = HEAP.current_usage().saturating_sub(before) as f64 / n as f64;
        assert_eq!(reader.len(), n);

        // Relist of the same containers into the full store.
        HEAP.reset_peak_usage();
        let steady_all = HEAP.current_usage();
        let start = Instant::now();
        writer.replace((0..n).map(|i| container(i, 0))).await;
        let relist = start.elapsed().as_secs_f64();
        let peak = HEAP.peak_usage();
        drop(writer);
        drop(reader);

        Numbers {
            applies_per_sec: applies_per_sec(args, Build::Scratch).await,
            applies_per_sec_shared: Some(applies_per_sec(args, Build::Shared).await),
            heap_bytes_per_container: per,
            relist_full_seconds: relist,
            relist_full_peak_over_steady: peak as f64 / steady_all as f64,
        }
    })
}

/// How the hypersh upserts are built (before the clock runs).
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// Every version from scratch, as for kube-runtime.
    Scratch,
    /// As the reflector builds a new version (`Keyed::share_unchanged` against the
    /// cached one): the fields that did not change are shared, not copied.
    Shared,
}

/// The whole sequence into a fresh store: upserts per second.
async fn applies_per_sec(args: &Args, build: Build) -> f64 {
    let n = args.containers;
    let (mut writer, reader) = store::<Container>(StoreConfig::default());
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    let mut generation = 0;
    while done < args.events {
        let batch: Vec<Container> = (0..n.min(args.events - done))
            .map(|i| {
                let mut c = container(i, generation);
                if build == Build::Shared
                    && let Some(cached) = reader.get(c.id())
                {
                    c.share_unchanged(&cached);
                }
                c
            })
            .collect();
        done += batch.len();
        let start = Instant::now();
        for c in batch {
            writer.apply(Change::Upsert(c)).await;
        }
        elapsed += start.elapsed();
        generation += 1;
    }
    assert_eq!(reader.len(), n);
    args.events as f64 / elapsed.as_secs_f64()
}

fn kube(args: &Args) -> Numbers {
    let n = args.containers;
    let mut writer = kube_runtime::reflector::store::Writer::<DynamicObject>::new(api_resource());
    let reader = writer.as_reader();
    let before = HEAP.current_usage();
    for i in 0..n {
        writer.apply_watcher_event(&Event::Apply(dynamic(container(i, 0))));
    }
    let per = HEAP.current_usage().saturating_sub(before) as f64 / n as f64;
    assert_eq!(reader.len(), n);

    HEAP.reset_peak_usage();
    let steady_all = HEAP.current_usage();
    let start = Instant::now();
    writer.apply_watcher_event(&Event::Init);
    for i in 0..n {
        writer.apply_watcher_event(&Event::InitApply(dynamic(container(i, 0))));
    }
    writer.apply_watcher_event(&Event::InitDone);
    let relist = start.elapsed().as_secs_f64();
    let peak = HEAP.peak_usage();
    drop(writer);
    drop(reader);

    let mut writer = kube_runtime::reflector::store::Writer::<DynamicObject>::new(api_resource());
    let reader = writer.as_reader();
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    let mut generation = 0;
    while done < args.events {
        let events: Vec<Event<DynamicObject>> = (0..n.min(args.events - done))
            .map(|i| Event::Apply(dynamic(container(i, generation))))
            .collect();
        done += events.len();
        let start = Instant::now();
        for e in &events {
            writer.apply_watcher_event(e);
        }
        elapsed += start.elapsed();
        drop(events);
        generation += 1;
    }
    assert_eq!(reader.len(), n);
    Numbers {
        applies_per_sec: args.events as f64 / elapsed.as_secs_f64(),
        applies_per_sec_shared: None,
        heap_bytes_per_container: per,
        relist_full_seconds: relist,
        relist_full_peak_over_steady: peak as f64 / steady_all as f64,
    }
}

fn main() {
    let args = Args::parse();
    let ours = hypersh(&args);
    let theirs = kube(&args);
    println!(
        "{}",
        json!({
            "containers": args.containers,
            "events": args.events,
            "hypersh": ours.json(),
            "kube_runtime": theirs.json(),
            "apply_ratio": ((ours.applies_per_sec / theirs.applies_per_sec) * 1e3).round() / 1e3,
            "apply_ratio_shared": ((ours.applies_per_sec_shared.unwrap_or(f64::NAN) / theirs.applies_per_sec) * 1e3).round() / 1e3,
            "heap_ratio": ((ours.heap_bytes_per_container / theirs.heap_bytes_per_container) * 1e3).round() / 1e3,
        })
    );
}
