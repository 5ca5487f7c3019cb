//! On a real Docker Engine with a bridge (a private daemon in a network namespace of its
//! own): the cache holds each container's addresses, ports and mounts as the engine lists
//! them, through create, start, pause, stop, a restart that gets another address, and
//! `--network none`, kept by events and the fetches they lead to, with no relist.

mod common;

use std::time::{Duration, Instant};

use common::{Engine, IMAGE, networked_engine_or_skip};
use hypersh_docker::{DockerHost, DockerSource};
use hypersh_reflector::{Informer, Source};
use hypersh_watch::{Container, Filters};
use tokio::task::block_in_place;

/// How long the cache may take to match the engine after an action.
const CONVERGE: Duration = Duration::from_secs(30);

async fn source(engine: &Engine) -> DockerSource {
    DockerSource::builder(DockerHost::parse(&engine.url()).expect("socket url"))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to the private daemon")
}

fn sh(engine: &Engine, args: &[&str]) -> String {
    block_in_place(|| engine.must(args))
}

/// A container as compared: everything the list says but the aging status text.
fn comparable(c: &Container) -> Container {
    c.clone().into_builder().status("").build()
}

/// The engine's list (the same decoder, a fresh call) for the label `addr`.
async fn listed(source: &DockerSource) -> Vec<Container> {
    let mut out = Vec::new();
    source
        .list(&Filters::new().label("addr"), |c| out.push(comparable(&c)))
        .await
        .expect("list");
    out.sort_by(|a, b| a.id().cmp(b.id()));
    out
}

fn cached(informer: &Informer) -> Vec<Container> {
    let mut out: Vec<Container> = informer
        .store()
        .list()
        .iter()
        .map(|c| comparable(c))
        .collect();
    out.sort_by(|a, b| a.id().cmp(b.id()));
    out
}

/// Waits until the cache equals a fresh list of the engine; returns it.
async fn converge(informer: &Informer, source: &DockerSource, after: &str) -> Vec<Container> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let want = listed(source).await;
        let got = cached(informer);
        if want == got {
            assert_eq!(informer.status().relists, 1, "{after}: no relist needed");
            return want;
        }
        assert!(
            Instant::now() < deadline,
            "{after}: the cache did not match the engine within {CONVERGE:?}\n\
             engine: {want:#?}\ncache: {got:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn by_name<'a>(list: &'a [Container], name: &str) -> &'a Container {
    list.iter()
        .find(|c| c.name() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {list:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_addresses_ports_and_mounts_through_the_life_cycle() {
    let Some(engine) = networked_engine_or_skip("addresses") else {
        return;
    };
    let source = source(&engine).await;
    let informer = Informer::builder(source.clone())
        .filters(Filters::new().label("addr"))
        .build()
        .expect("informer");
    informer
        .wait_synced(Duration::from_secs(20))
        .await
        .expect("ready");
    let html = engine.dir.join("html");
    std::fs::create_dir_all(&html).expect("a directory to bind");
    let bind = format!("{}:/www:ro", html.display());

    // Created: on the bridge without an address, no ports, its mounts listed.
    let web = [
        "create",
        "--name",
        "web",
        "--label",
        "addr=1",
        "--stop-timeout",
        "1",
        "-p",
        "8080:80",
        "--expose",
        "9000",
        "-v",
        "data:/data",
        "-v",
        &bind,
        IMAGE,
        "sleep",
        "1000",
    ];
    sh(&engine, &web);
    let list = converge(&informer, &source, "create").await;
    let created = by_name(&list, "web");
    assert_eq!(created.network("bridge").map(|n| n.ip_address()), Some(""));
    assert!(created.ports().is_empty());
    assert_eq!(created.mounts().len(), 2);

    // Started: its address, gateway and ports reach the cache through the fetch.
    sh(&engine, &["start", "web"]);
    let list = converge(&informer, &source, "start").await;
    let running = by_name(&list, "web");
    let first_ip = running.network("bridge").map(|n| n.ip_address().to_owned());
    assert!(first_ip.as_deref().is_some_and(|ip| !ip.is_empty()));
    let published: Vec<String> = running.ports().iter().map(ToString::to_string).collect();
    assert!(
        published.contains(&"0.0.0.0:8080->80/tcp".to_owned()),
        "{published:?}"
    );
    assert!(published.contains(&"9000/tcp".to_owned()), "{published:?}");

    // Paused and unpaused: nothing of it changes.
    sh(&engine, &["pause", "web"]);
    converge(&informer, &source, "pause").await;
    sh(&engine, &["unpause", "web"]);
    converge(&informer, &source, "unpause").await;

    // Stopped: no address, no ports; the network keeps its id.
    sh(&engine, &["stop", "web"]);
    let list = converge(&informer, &source, "stop").await;
    let stopped = by_name(&list, "web");
    assert_eq!(stopped.network("bridge").map(|n| n.ip_address()), Some(""));
    assert!(stopped.ports().is_empty());

    // Another container takes the address meanwhile: the restart gets another one.
    sh(
        &engine,
        &[
            "run", "-d", "--name", "other", "--label", "addr=1", IMAGE, "sleep", "1000",
        ],
    );
    sh(&engine, &["start", "web"]);
    let list = converge(&informer, &source, "restart elsewhere").await;
    let again = by_name(&list, "web")
        .network("bridge")
        .map(|n| n.ip_address().to_owned());
    let other = by_name(&list, "other")
        .network("bridge")
        .map(|n| n.ip_address().to_owned());
    assert_ne!(again, other);
    assert!(again.as_deref().is_some_and(|ip| !ip.is_empty()));

    // `--network none`: no address ever; its network's id arrives at the first start.
    sh(
        &engine,
        &[
            "run",
            "-d",
            "--name",
            "alone",
            "--network",
            "none",
            "--label",
            "addr=1",
            IMAGE,
            "sleep",
            "1000",
        ],
    );
    let list = converge(&informer, &source, "run --network none").await;
    let alone = by_name(&list, "alone");
    assert_eq!(alone.networks().len(), 1);
    assert_eq!(alone.networks()[0].ip(), None);
    assert!(!alone.networks()[0].network_id().is_empty());

    sh(&engine, &["rm", "-f", "web", "other", "alone"]);
    let list = converge(&informer, &source, "rm").await;
    assert!(list.is_empty());
    assert_eq!(informer.status().relists, 1);
    informer.shutdown().await;
}
