//! Client (c) of the throughput benchmark: the full informer (watch -> reflector -> store)
//! with one handler that counts its calls. Done when the reflector has received `--events`
//! events and the handler has been called for everything they changed.
//!
//! Besides the whole run (connect, list, events), it reports the events/s after the cache
//! synced (`synced_events_per_sec`: from the first event seen after the sync to the end),
//! which is what the `scale` benchmark compares across cache sizes; the router is then
//! started with `--emit-delay` longer than the list (`events_before_sync` says if not).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh_perf::{CountCalls, Stopwatch, Target, cpu_seconds, runtime};
use hypersh_reflector::Informer;
use hypersh_watch::Client;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    target: Target,
}

fn main() {
    let args = Args::parse();
    let result = runtime().block_on(async {
        let watch = Stopwatch::start();
        let client = Client::new(args.target.config()?).map_err(|e| e.to_string())?;
        let informer = Informer::builder(client)
            .build()
            .map_err(|e| e.to_string())?;
        let calls = Arc::new(AtomicU64::new(0));
        informer.register(CountCalls(Arc::clone(&calls)));
        informer
            .wait_synced(hypersh_perf::SYNC_PATIENCE)
            .await
            .map_err(|e| e.to_string())?;
        let synced_seconds = watch.elapsed_seconds();
        let cached = informer.store().len() as u64;
        let events_before_sync = informer.status().events_received;
        // The first poll that sees events after the sync: (events, when, CPU seconds).
        let mut first_seen: Option<(u64, Instant, f64)> = None;
        // Polled every 5 ms: at most 5 ms late, at a negligible cost to the measured thread.
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let status = loop {
            tick.tick().await;
            let status = informer.status();
            if first_seen.is_none() && status.events_received > events_before_sync {
                first_seen = Some((status.events_received, Instant::now(), cpu_seconds()));
            }
            if status.events_received >= args.target.events
                && calls.load(Ordering::Relaxed) >= cached + status.events_applied
            {
                break status;
            }
            if status.failures > 0 {
                return Err(format!("the reflector failed: {:?}", status.last_error));
            }
        };
        let mut report = watch.report("informer", status.events_received);
        report
            .extra
            .insert("handler_calls".into(), calls.load(Ordering::Relaxed).into());
        report
            .extra
            .insert("events_applied".into(), status.events_applied.into());
        report.extra.insert("cached".into(), cached.into());
        report
            .extra
            .insert("synced_seconds".into(), synced_seconds.into());
        report
            .extra
            .insert("events_before_sync".into(), events_before_sync.into());
        if let Some((events, at, cpu)) = first_seen {
            let seconds = at.elapsed().as_secs_f64();
            let measured = (status.events_received - events) as f64;
            let rate = measured / seconds;
            // CPU per event: what a busy shared machine disturbs least.
            let cpu_us = (cpu_seconds() - cpu) / measured * 1e6;
            if rate.is_finite() && cpu_us.is_finite() {
                report
                    .extra
                    .insert("synced_events_per_sec".into(), rate.round().into());
                report.extra.insert(
                    "synced_cpu_us_per_event".into(),
                    ((cpu_us * 1e3).round() / 1e3).into(),
                );
            }
        }
        informer.shutdown().await;
        Ok::<_, String>(report)
    });
    match result {
        Ok(report) => report.print(),
        Err(e) => {
            eprintln!("informer: {e}");
            std::process::exit(1);
        }
    }
}
