//! A small controller on the informer: it caches the containers that carry a label,
//! indexes them by that label's value, reacts to every change, counts restarts, and
//! prints a report from the index now and then.
//!
//! ```text
//! cargo run --release --example controller                    # embedded router, churn
//! cargo run --release --example controller -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] [--label app] [--filter image=nginx] [--report-every SECS]
//!     [--run-for SECS]
//! ```
//! Without `--addr` it starts the reference router in-process (self-signed TLS, churning
//! containers). What it does goes to stdout: one line per change (`ADDED`, `STATE`,
//! `RESTARTED`, `RENAMED`, `DELETED`), a `synced:` line once the first list is in, and a
//! `report:` line every `--report-every` seconds and at exit. A restart is a move from
//! exited to running (a `start` or `restart` of a stopped container).
//!
//! ```text
//! report: containers=17 restarts=2 | app=api 2/3 running | app=web 4/5 running | ...
//! ```

mod common;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use hypersh::store::Handler;
use hypersh::{Client, Container, ContainerState, Deleted, Filters, Informer};

#[derive(Parser, Debug)]
#[command(about = "React to containers carrying a label, count their restarts")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Watch containers that carry this label key; the report groups them by its value.
    #[arg(long, default_value = "app")]
    label: String,
    /// Narrow further: container=x,image=y,label=k=v (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Print a report this often (seconds).
    #[arg(long, default_value_t = 5.0)]
    report_every: f64,
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    run_for: Option<f64>,
}

/// The controller's reactions. The informer calls it on its own task, in order, so it
/// can keep plain (unlocked) state; what the report needs is shared through an atomic.
struct RestartCounter {
    label: String,
    restarts: HashMap<String, u64>,
    total: Arc<AtomicU64>,
}

impl Handler<Container> for RestartCounter {
    fn on_add(&mut self, c: &Arc<Container>) {
        println!(
            "ADDED     {} {}={} ({})",
            name(c),
            self.label,
            self.value(c),
            c.state()
        );
    }

    fn on_update(&mut self, old: &Arc<Container>, new: &Arc<Container>) {
        if old.state() == ContainerState::Exited && new.state() == ContainerState::Running {
            let n = self.restarts.entry(new.id().to_owned()).or_default();
            *n += 1;
            self.total.fetch_add(1, Ordering::Relaxed);
            println!("RESTARTED {} (restart #{n})", name(new));
        } else if old.state() != new.state() {
            println!("STATE     {} {} -> {}", name(new), old.state(), new.state());
        } else if !old.names().eq(new.names()) {
            println!("RENAMED   {} -> {}", name(old), name(new));
        }
    }

    fn on_delete(&mut self, d: &Deleted<Container>) {
        self.restarts.remove(d.key());
        let note = if d.is_final_state_unknown() {
            " (missed while away)"
        } else {
            ""
        };
        println!("DELETED   {}{note}", name(d.last()));
    }
}

impl RestartCounter {
    fn value<'c>(&self, c: &'c Container) -> &'c str {
        c.label(&self.label).unwrap_or_default()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(true, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let run_for = common::optional_seconds("--run-for", args.run_for)?;
    let period =
        common::seconds("--report-every", args.report_every)?.max(Duration::from_millis(100));
    let filters = Filters::parse_cli(&args.filter.join(","))
        .map_err(|e| e.to_string())?
        .label(args.label.clone());
    let (config, router) = args.conn.connect().await?;
    eprintln!("controller on {}", config.endpoint().http_url(""));

    // A custom index: one entry per container, its value of the label
    // (`hypersh::watch::container::index::by_label` would index every `key=value`).
    let key = args.label.clone();
    let informer = Informer::builder(Client::new(config).map_err(|e| e.to_string())?)
        .filters(filters)
        .index(key.clone(), move |c: &Container| {
            c.label(&key).map(ToString::to_string).into_iter().collect()
        })
        .build()
        .map_err(|e| e.to_string())?;
    let total = Arc::new(AtomicU64::new(0));
    informer.register(RestartCounter {
        label: args.label.clone(),
        restarts: HashMap::new(),
        total: Arc::clone(&total),
    });

    let stop = common::sleep_opt(run_for);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(stop, ctrl_c);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut synced = false;
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = &mut ctrl_c => break,
            () = informer.wait_until_ready(), if !synced => {
                synced = true;
                println!("synced: {} containers with label {}", informer.store().len(), args.label);
            }
            _ = tick.tick(), if synced => println!("{}", report(&informer, &args.label, &total)),
        }
    }
    informer.shutdown().await;
    println!("{}", report(&informer, &args.label, &total));
    if let Some(router) = router {
        router.shutdown().await;
    }
    Ok(())
}

/// One line from the index: how many containers have each value of the label, and how
/// many of those are running.
fn report(informer: &Informer, label: &str, restarts: &AtomicU64) -> String {
    let store = informer.store();
    let mut parts = vec![format!(
        "report: containers={} restarts={}",
        store.len(),
        restarts.load(Ordering::Relaxed)
    )];
    for value in store.index_values(label).unwrap_or_default() {
        let group = store.by_index(label, &value).unwrap_or_default();
        let running = group
            .iter()
            .filter(|c| c.state() == ContainerState::Running)
            .count();
        parts.push(format!("{label}={value} {running}/{} running", group.len()));
    }
    parts.join(" | ")
}

fn name(c: &Container) -> &str {
    c.name().unwrap_or(c.id())
}
