//! Decoding one event frame, and one container list element, without the network: the
//! parts of the watch and list pipelines that cost most per event and per container (see
//! docs/performance.md). Each list element is decoded both by `Container::from_list_element`
//! and by plain serde (`serde_json::from_slice`), side by side.
//!
//! Run with `cargo bench -p hypersh-watch --bench decode`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hypersh_watch::list::{ArraySplitter, SplitError};
use hypersh_watch::{Container, ContainerState, WatchEvent};

const ID: &str = "4f1c2a9d8e7b6c5a4f1c2a9d8e7b6c5a4f1c2a9d8e7b6c5a4f1c2a9d8e7b6c5a";

/// A `die` event as the reference router sends it in the Docker shape (388 bytes).
fn docker_frame() -> Bytes {
    Bytes::from(format!(
        r#"{{"status":"die","id":"{ID}","from":"nginx:1.25","Type":"container","Action":"die","Actor":{{"ID":"{ID}","Attributes":{{"app":"web","env":"prod","exitCode":"0","image":"nginx:1.25","name":"brave_curie","tier":"frontend"}}}},"time":1700000000,"timeNano":1700000000123456789}}"#
    ))
}

/// The same event in the Kubernetes shape, whose labels are a map of their own.
fn kubernetes_frame() -> Bytes {
    Bytes::from(format!(
        r#"{{"Action":"MODIFIED","Status":"Failed","Id":"{ID}","From":"nginx:1.25","Type":"container","Actor":{{"Id":"{ID}","Attributes":{{"ExitCode":"137","Image":"nginx:1.25","Name":"brave_curie","Labels":{{"app":"web","env":"prod","tier":"frontend"}}}}}},"Time":1700000000,"TimeNano":1700000000123456789}}"#
    ))
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, frame) in [
        ("docker", docker_frame()),
        ("kubernetes", kubernetes_frame()),
    ] {
        assert!(
            WatchEvent::decode(frame.clone()).is_ok(),
            "{name} frame decodes"
        );
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| WatchEvent::decode(black_box(frame.clone())));
        });
    }
    group.finish();
}

/// A container as the API router lists it (serde's serialisation of its `Container`:
/// three labels, no ports, networks or mounts; 653 bytes).
fn router_element() -> Vec<u8> {
    let c = Container::builder(ID)
        .name("brave_curie")
        .image("nginx:1.25")
        .image_id("sha256:6457d53fb065d6f250e1504b9bc42d5b6c65941d57532c072d929dd0628977d0")
        .command("nginx -g 'daemon off;'")
        .created(1_700_000_000)
        .state(ContainerState::Running)
        .status("Up 3 minutes")
        .label("app", "web")
        .label("env", "prod")
        .label("tier", "frontend")
        .build();
    serde_json::to_vec(&c).expect("a container encodes")
}

/// A running container with a published port and an address, as Docker 20.10 listed it
/// (`tests/data/lists/`, 1 KiB).
fn docker_element() -> Vec<u8> {
    let body = include_bytes!("../tests/data/lists/docker-20.10.24.json");
    let mut elements = Vec::new();
    let mut splitter = ArraySplitter::new(usize::MAX);
    splitter
        .feed(body, |e| {
            elements.push(e.to_vec());
            Ok::<_, SplitError>(())
        })
        .expect("a list");
    elements.swap_remove(1)
}

fn list_element(c: &mut Criterion) {
    let mut group = c.benchmark_group("list_element");
    for (name, element) in [("router", router_element()), ("docker", docker_element())] {
        let by_serde: Container = serde_json::from_slice(&element).expect("decodes");
        assert_eq!(
            Container::from_list_element(&element).expect("decodes"),
            by_serde,
            "{name}"
        );
        group.throughput(Throughput::Bytes(element.len() as u64));
        group.bench_function(format!("{name}/from_list_element"), |b| {
            b.iter(|| Container::from_list_element(black_box(&element)));
        });
        group.bench_function(format!("{name}/serde"), |b| {
            b.iter(|| serde_json::from_slice::<Container>(black_box(&element)));
        });
    }
    group.finish();
}

criterion_group!(benches, decode, list_element);
criterion_main!(benches);
