//! `docker latency`: an informer on a real daemon; one running container is paused and
//! unpaused with the `docker` CLI, one action at a time. For each action, the time to
//! the informer's update handler seeing the new state from (1) the event's own timestamp
//! (`timeNano`, read from a second raw watch; the daemon's clock is this machine's),
//! (2) the CLI starting, (3) the CLI returning (negative when the handler ran first: the
//! daemon sends the event before it answers the API call, and the CLI takes a while to
//! exit). Prints p50, p90, p99, min and max.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hypersh_docker::DockerSource;
use hypersh_reflector::{Informer, Source};
use hypersh_watch::{ContainerState, Filters};

async fn docker(host: &str, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(crate) async fn run(host: &str, actions: usize) -> Result<(), String> {
    let image = docker(host, &["images", "-q"]).await?;
    let image = image
        .lines()
        .next()
        .ok_or("the daemon has no image")?
        .to_owned();
    let id = docker(
        host,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--stop-timeout",
            "1",
            "--label",
            "perf=latency",
            &image,
            "sleep",
            "3600",
        ],
    )
    .await?;
    let source = DockerSource::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    // A second, raw watch of the container gives each event's own timestamp (`timeNano`,
    // the daemon's clock on this machine).
    let mut raw = source
        .watch(&Filters::new().container(id.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    let informer = Informer::builder(source)
        .filters(Filters::new().label("perf=latency"))
        .build()
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watched = id.clone();
    informer.on_update(move |old, new| {
        if new.id() == watched && old.state() != new.state() {
            let _ = tx.send((new.state(), Instant::now(), SystemTime::now()));
        }
    });
    informer
        .wait_synced(hypersh_perf::SYNC_PATIENCE)
        .await
        .map_err(|e| e.to_string())?;
    let (mut from_return, mut from_start, mut from_event) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..actions {
        let (verb, want) = if i % 2 == 0 {
            ("pause", ContainerState::Paused)
        } else {
            ("unpause", ContainerState::Running)
        };
        let started = Instant::now();
        docker(host, &[verb, &id]).await?;
        let returned = Instant::now();
        let (seen, seen_wall) = loop {
            let (state, at, wall) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .map_err(|_| format!("no update within 5 s after {verb}"))?
                .ok_or("handler gone")?;
            if state == want {
                break (at, wall);
            }
        };
        let event_nano = loop {
            let event = tokio::time::timeout(Duration::from_secs(5), raw.next())
                .await
                .map_err(|_| format!("no raw event within 5 s after {verb}"))?
                .ok_or("raw watch ended")?
                .map_err(|e| e.to_string())?;
            if event.event().action() == verb {
                break event.event().time_nano();
            }
        };
        from_return.push(signed_micros(seen, returned));
        from_start.push(signed_micros(seen, started));
        let wall_nano = seen_wall
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_nanos() as f64;
        from_event.push((wall_nano - event_nano as f64) / 1000.0);
    }
    informer.shutdown().await;
    let _ = docker(host, &["rm", "-f", &id]).await;
    let early = from_return.iter().filter(|s| **s < 0.0).count();
    println!("actions={actions} (docker pause / unpause, one at a time)");
    report("daemon's event timestamp -> handler", &mut from_event);
    report("docker CLI started -> handler", &mut from_start);
    report("docker CLI returned -> handler", &mut from_return);
    println!("handler ran before the CLI returned: {early} of {actions}");
    Ok(())
}

/// `a - b` in microseconds, negative when `a` came first.
fn signed_micros(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64() * 1e6
    } else {
        -(b.duration_since(a).as_secs_f64() * 1e6)
    }
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize] / 1000.0;
    println!(
        "{what:<38} p50={:>7.2}ms p90={:>7.2}ms p99={:>7.2}ms min={:>7.2}ms max={:>7.2}ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.0),
        pct(1.0),
    );
}
