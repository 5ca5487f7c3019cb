//! The Docker Engine source, measured (docs/performance.md, "Docker Engine source").
//!
//! ```text
//! docker latency --host unix:///PATH/docker.sock [--actions 400]
//! docker decode [--events 1000000] [--runs 5]
//! ```
//!
//! `latency` ([`latency`]): an informer on a real daemon, the time from each action to
//! its handler call. `decode` ([`decode`]): the events stream of a scripted socket, read
//! by `DockerSource::watch` and by reference readers, with the issue's ratios.

use clap::{Parser, Subcommand};

mod decode;
mod latency;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Handler latency on a real daemon.
    Latency {
        /// The daemon, unix:///PATH.
        #[arg(long)]
        host: String,
        /// How many actions (half pause, half unpause).
        #[arg(long, default_value_t = 400)]
        actions: usize,
    },
    /// Events-stream decode throughput on a synthetic local stream.
    Decode {
        /// Events in the stream.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Rounds; each runs every reader once, in turn (medians are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match args.what {
        What::Latency { host, actions } => rt.block_on(latency::run(&host, actions)),
        What::Decode { events, runs } => rt.block_on(decode::run(events, runs)),
    }
}
