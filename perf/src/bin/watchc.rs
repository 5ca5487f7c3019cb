//! Client (b) of the throughput benchmark: `hypersh_watch::Client::watch`, every frame
//! decoded into a typed `WatchEvent`, counted.

use clap::Parser;
use futures_util::StreamExt;
use hypersh_perf::{Stopwatch, Target, runtime};
use hypersh_watch::{Client, Filters};

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
        let mut stream = client
            .watch(&Filters::new())
            .await
            .map_err(|e| e.to_string())?;
        let mut events = 0u64;
        let mut errors = 0u64;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    std::hint::black_box(&event);
                }
                Err(e) if e.is_frame_error() => errors += 1,
                Err(e) => return Err(e.to_string()),
            }
            events += 1;
            if events >= args.target.events {
                break;
            }
        }
        let mut report = watch.report("watch-decode", events);
        report.extra.insert("errors".into(), errors.into());
        Ok(report)
    });
    match result {
        Ok(report) => report.print(),
        Err(e) => {
            eprintln!("watch-decode: {e}");
            std::process::exit(1);
        }
    }
}
