//! The list splitter alone: a body of real Docker and Podman list elements (the captured
//! lists in `tests/data/lists/`), repeated to 8 MB and fed in 16 KiB chunks.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hypersh_watch::list::{ArraySplitter, SplitError};

/// The elements of both captured lists, repeated into one array of about `bytes`.
fn body(bytes: usize) -> Vec<u8> {
    let mut elements = Vec::new();
    for list in [
        include_str!("../tests/data/lists/docker-20.10.24.json"),
        include_str!("../tests/data/lists/podman-4.3.1.json"),
    ] {
        let values: Vec<serde_json::Value> = serde_json::from_str(list).expect("a captured list");
        elements.extend(values.iter().map(|v| serde_json::to_vec(v).expect("JSON")));
    }
    let mut body = b"[".to_vec();
    for element in elements.iter().cycle() {
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(element);
        if body.len() >= bytes {
            break;
        }
    }
    body.push(b']');
    body
}

fn split(c: &mut Criterion) {
    let body = body(8 << 20);
    let mut group = c.benchmark_group("split");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("list_8mb_16k_chunks", |b| {
        b.iter(|| {
            let mut splitter = ArraySplitter::new(1 << 20);
            let mut n = 0usize;
            for chunk in body.chunks(16 * 1024) {
                splitter
                    .feed(chunk, |element| {
                        n += element.len();
                        Ok::<_, SplitError>(())
                    })
                    .expect("splits");
            }
            splitter.finish().expect("closed");
            black_box(n)
        });
    });
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
