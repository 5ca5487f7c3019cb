//! Measures failover on a private etcd: three electors, the leader killed (dropped without
//! a resign, as a crash) or resigned, and the time until another one leads. Prints each
//! run and the median.
//!
//! ```sh
//! cargo run -p hypersh-election --features etcd --example failover -- --runs 5
//! cargo run -p hypersh-election --features etcd --example failover -- --runs 5 --lease 3 --renew 2 --retry 0.5
//! ```
//! Needs `etcd` on the PATH (it starts its own, on free ports under /tmp).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use hypersh_election::etcd::{Elector, EtcdConfig};
use hypersh_election::{ElectionConfig, Timing};

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number of seconds, not {v:?}"))
        })
}

async fn leader(electors: &[Elector], within: Duration) -> Option<usize> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(i) = electors.iter().position(|e| e.leadership().is_leader()) {
            return Some(i);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = arg(&args, "--runs", 5.0) as usize;
    let timing = Timing::new(
        Duration::from_secs_f64(arg(&args, "--lease", 15.0)),
        Duration::from_secs_f64(arg(&args, "--renew", 10.0)),
        Duration::from_secs_f64(arg(&args, "--retry", 2.0)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let etcd = common::Etcd::start().unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    let endpoints = EtcdConfig::new([etcd.url()]).unwrap();
    println!(
        "etcd {} ; lease {:?}, renew deadline {:?}, retry {:?}; {runs} runs each",
        etcd.url(),
        timing.lease_duration(),
        timing.renew_deadline(),
        timing.retry_period()
    );
    let bound = timing.lease_duration() * 3;
    for mode in ["kill", "resign"] {
        let mut times = Vec::new();
        for run in 0..runs {
            let name = format!("failover-{mode}-{run}");
            let mut electors: Vec<Elector> = ["a", "b", "c"]
                .iter()
                .map(|id| {
                    let config = ElectionConfig::new(&name, *id).unwrap().with_timing(timing);
                    Elector::start(config, endpoints.clone()).unwrap()
                })
                .collect();
            let i = leader(&electors, bound).await.expect("no first leader");
            // Let the standbys' campaigns settle behind the leader.
            tokio::time::sleep(timing.retry_period()).await;
            let old = electors.remove(i);
            let t0 = Instant::now();
            if mode == "kill" {
                drop(old);
            } else {
                old.resign().await.expect("resign");
            }
            leader(&electors, bound).await.expect("no new leader");
            let took = t0.elapsed();
            println!("{mode} run {run}: a new leader after {took:?}");
            times.push(took);
            for e in electors {
                let _ = e.resign().await;
            }
        }
        println!("{mode}: median {:?} of {runs}", median(times));
    }
}
