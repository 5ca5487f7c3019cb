//! Relist benchmark: the informer's first list of N containers into an empty cache, then a
//! periodic relist of the same N into the full cache. Reports seconds and the peak heap
//! against the steady heap (counting allocator) for each.
//!
//! The relist into the full cache is timed from when the relist timer fires (one period
//! after the cache synced) to when the reflector counts the relist done; the status is
//! polled every millisecond.

use std::time::{Duration, Instant};

use clap::Parser;
use hypersh_perf::runtime;
use hypersh_reflector::Informer;
use hypersh_watch::{Client, ClientConfig, Credentials, TlsMode};
use peak_alloc::PeakAlloc;
use serde_json::json;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

#[derive(Parser)]
struct Args {
    /// Router base URL (started with `--containers N`).
    #[arg(long)]
    url: String,
}

fn main() {
    let args = Args::parse();
    let result = runtime().block_on(async {
        let config = ClientConfig::new(&args.url, Credentials::new("ak", "sk"))
            .map_err(|e| e.to_string())?
            .tls(TlsMode::InsecureSkipVerify)
            .request_timeout(Duration::from_secs(120));
        let client = Client::new(config).map_err(|e| e.to_string())?;
        let period = Duration::from_secs(2);
        HEAP.reset_peak_usage();
        let base = HEAP.current_usage();
        let started = Instant::now();
        let informer = Informer::builder(client)
            .relist(period)
            .build()
            .map_err(|e| e.to_string())?;
        informer
            .wait_synced(hypersh_perf::SYNC_PATIENCE)
            .await
            .map_err(|e| e.to_string())?;
        let empty_seconds = started.elapsed().as_secs_f64();
        let synced_at = Instant::now();
        let containers = informer.store().len();
        let steady = HEAP.current_usage();
        let empty_peak = HEAP.peak_usage();

        HEAP.reset_peak_usage();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        loop {
            tick.tick().await;
            let status = informer.status();
            if status.relists >= 2 {
                break;
            }
            if synced_at.elapsed() > Duration::from_secs(120) {
                return Err("the periodic relist did not finish".to_owned());
            }
        }
        let full_seconds = (synced_at.elapsed().saturating_sub(period)).as_secs_f64();
        let full_peak = HEAP.peak_usage();
        let steady_after = HEAP.current_usage();
        informer.shutdown().await;
        let mb = |b: usize| (b as f64 / 1e6 * 10.0).round() / 10.0;
        let ratio = |p: usize, s: usize| ((p as f64 / s as f64) * 1e3).round() / 1e3;
        Ok::<_, String>(json!({
            "containers": containers,
            "empty": {
                "seconds": (empty_seconds * 1e3).round() / 1e3,
                "peak_mb": mb(empty_peak),
                "steady_mb": mb(steady),
                "peak_over_steady": ratio(empty_peak, steady),
            },
            "full": {
                "seconds": (full_seconds * 1e3).round() / 1e3,
                "peak_mb": mb(full_peak),
                "steady_mb": mb(steady_after),
                "peak_over_steady": ratio(full_peak, steady_after),
            },
            "base_mb": mb(base),
        }))
    });
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("relist: {e}");
            std::process::exit(1);
        }
    }
}
