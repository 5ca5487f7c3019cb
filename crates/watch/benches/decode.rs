//! Decoding one event frame, without the network: the part of the watch pipeline that
//! costs most per event (see docs/performance.md).
//!
//! Run with `cargo bench -p hypersh-watch --bench decode`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hypersh_watch::WatchEvent;

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

criterion_group!(benches, decode);
criterion_main!(benches);
