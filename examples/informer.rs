//! The project's main job: an informer that keeps a local cache of containers in step with
//! an API router, shows events as they arrive and a live summary.
//!
//! ```text
//! cargo run --release --example informer                      # embedded router, churn
//! cargo run --release --example informer -- --addr HOST:PORT --access-key AK --secret-key SK
//!     [--insecure | --ca-cert F] [--filter label=app=web] [--run-for SECS] [--dump-cache FILE]
//! ```
//! With `--docker [URL]` it runs on a Docker Engine or Podman instead
//! (`unix:///var/run/docker.sock`, `unix:///run/podman/podman.sock`, `tcp://HOST:PORT`
//! (mutual TLS with `DOCKER_CERT_PATH`'s `ca.pem`, `cert.pem`, `key.pem` when
//! `DOCKER_TLS_VERIFY` is set, as the `docker` CLI) or `ssh://[USER@]HOST[:PORT]`;
//! without a URL, `DOCKER_HOST`, then the default socket):
//! `cargo run --release --example informer -- --docker --run-for 10 --dump-cache cache.json`.
//! A daemon that is not up yet is waited for (retried with backoff); once connected, a
//! line on stderr and the summary say which engine and API version serve the cache.
//! Without `--addr` it starts the reference router in-process (self-signed TLS, churning
//! containers; `--drop-every SECS` also drops the websocket now and then, to show the
//! reconnect and relist). Events go to stdout, one line each; the summary goes to stderr
//! every second (one live line where it cannot collide with the events, else plain
//! lines), with the phase and, while failing, the failed attempts and the last error.
//!
//! Stdout to a file or a pipe is written in blocks (up to 64 KiB, and at most 100 ms
//! after a line, so a trickle of events still shows at once): a first list of a million
//! containers costs a thousand writes, not a million. On a terminal each line is written
//! as it comes, and the first list shows its first 50 ADDED lines, then, once the list is
//! all in, `… and N more added` instead of the rest (later ADDED lines are all shown);
//! redirect stdout to see every line.
//!
//! Several sources make one fleet: `--docker URL` may be repeated and combined with
//! `--addr` (one Hyper.sh endpoint), e.g. `--docker unix:///run/a.sock --docker
//! tcp://b:2376 --addr region:443`. Each host has its own reflector; the summary adds one
//! part per host when there are several (`hosts: URL watching 12, URL retrying 3 (down
//! 14s)`), and event lines end with `@ URL`.
//!
//! The run ends at `--run-for`, Ctrl-C, SIGTERM or a closed stdout (`| head`); then
//! `--dump-cache FILE` writes the cache as a JSON array in the list endpoint's container
//! format, comparable with `GET /containers/json?all=1`, each container with `"Host"`:
//! its source's URL exactly as given on the command line (`--addr`'s value; a bare
//! `--docker`: the URL it resolved to; the embedded router: its base URL), with one source
//! too. Exit code: 0 only if every host's cache synced at least once during the run;
//! otherwise 1, with the last error on stderr.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use hypersh::reflector::fleet::Fleet;
use hypersh::store::Deleted;
use hypersh::watch::Container;

#[derive(Parser, Debug)]
#[command(about = "Run an informer and show its cache live")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Cache only these containers: container=x,image=y,label=k=v (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Stop cleanly after this many seconds.
    #[arg(long)]
    run_for: Option<f64>,
    /// Write the cache at exit to FILE as a JSON array of containers.
    #[arg(long)]
    dump_cache: Option<PathBuf>,
    /// Embedded router: drop every websocket this often (seconds), to show reconnects.
    #[arg(long)]
    drop_every: Option<f64>,
    /// Do not print each event, only the summary.
    #[arg(long)]
    quiet: bool,
    /// Run on a Docker Engine: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]
    /// (without a value: DOCKER_HOST, then unix:///var/run/docker.sock). Repeat it for
    /// several engines; with `--addr` too, the Hyper.sh endpoint joins them (without
    /// `--addr`, no embedded router is started).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    docker: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::main_with(true, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let mut signals = common::Signals::new()?;
    let run_for = common::optional_seconds("--run-for", args.run_for)?;
    let drop_every = common::optional_seconds("--drop-every", args.drop_every)?;
    let filters = common::parse_filters(&args.filter, hypersh::reflector::SELECTOR_KEYS)?;
    let fleet = common::fleet::builder("informer").filters(filters).build();
    let router = common::fleet::add_hosts(&fleet, &args.conn, &args.docker, "informer").await?;
    let several = fleet.hosts().len() > 1;

    let out = common::Stdout::default();
    // On a terminal, the first list's ADDED lines past one screen are counted, not shown.
    let first_list = Arc::new(Mutex::new(FirstList::new(if out.is_terminal() {
        FIRST_LIST_SHOWN
    } else {
        usize::MAX
    })));
    let mut first_sync = None;
    if !args.quiet {
        // One handler: it sees each container's changes in the order the cache made them.
        let (added, updated, deleted) = (out.clone(), out.clone(), out.clone());
        let gate = Arc::clone(&first_list);
        let at = move |host: &str| {
            if several {
                format!(" @ {host}")
            } else {
                String::new()
            }
        };
        fleet
            .handler()
            .on_add(move |host: &str, c: &Arc<Container>| {
                let show = lock(&gate).added();
                match show {
                    Show::Line => {
                        added.line(format_args!("ADDED     {}{}", describe(c), at(host)));
                    }
                    Show::Nothing => {}
                    Show::Summary(more) => {
                        added.line(more_added(more));
                    }
                }
            })
            .on_update(
                move |host: &str, old: &Arc<Container>, new: &Arc<Container>| {
                    if old.state() != new.state() || !old.names().eq(new.names()) {
                        updated.line(format_args!(
                            "MODIFIED  {} (was {}){}",
                            describe(new),
                            old.state(),
                            at(host)
                        ));
                    }
                },
            )
            .on_delete(move |host: &str, d: &Deleted<Container>| {
                let note = if d.is_final_state_unknown() {
                    " (missed while away)"
                } else {
                    ""
                };
                deleted.line(format_args!(
                    "DELETED   {}{note}{}",
                    describe(d.last()),
                    at(host)
                ));
            })
            .register();
        if out.is_terminal() {
            // Once every host synced, the cache holds what the first lists added.
            let (fleet, gate, out) = (fleet.clone(), Arc::clone(&first_list), out.clone());
            first_sync = Some(tokio::spawn(async move {
                if fleet.wait_synced(Duration::MAX).await.is_ok()
                    && let Some(more) = lock(&gate).synced(fleet.len())
                {
                    out.line(more_added(more));
                }
            }));
        }
    }

    if let (Some(router), Some(every)) = (&router, drop_every) {
        let faults = router.faults().clone();
        let period = every.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                faults.drop_connections();
            }
        });
    }

    let started = Instant::now();
    let deadline = run_for.map(|d| started + d);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let status_line = common::StatusLine::new(!args.quiet);
    let mut attempts: BTreeMap<String, common::Attempts> = BTreeMap::new();
    let mut last_events = 0;
    let mut last_at = Instant::now();
    let mut servers: BTreeMap<String, String> = BTreeMap::new();
    let mut give_back = common::GiveBack::default();
    let ended_by = loop {
        let until_deadline = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            signal = signals.recv() => break signal,
            () = common::sleep_opt(until_deadline) => break "--run-for",
            () = out.closed() => break "closed stdout",
            _ = tick.tick() => {
                let statuses = fleet.statuses();
                give_back.after(statuses.iter().map(|(_, s)| s));
                for (host, status) in &statuses {
                    if let Some(s) = &status.server
                        && servers.get(host) != Some(s)
                    {
                        servers.insert(host.clone(), s.clone());
                        status_line.finish();
                        if several {
                            common::stderr_line(format_args!("connected to {s} at {host}"));
                        } else {
                            common::stderr_line(format_args!("connected to {s}"));
                        }
                    }
                }
                let events: u64 = statuses.iter().map(|(_, s)| s.events_received).sum();
                let rate = events.saturating_sub(last_events) as f64
                    / last_at.elapsed().as_secs_f64().max(1e-3);
                last_events = events;
                last_at = Instant::now();
                status_line.show(summary(&fleet, rate, &statuses, &mut attempts));
            }
        }
    };
    status_line.finish();
    // The reflectors' own status says whether each ever synced: read it before shutdown.
    let statuses = fleet.statuses();
    fleet.shutdown().await;
    if let Some(task) = first_sync {
        task.abort();
    }
    if let Some(more) = lock(&first_list).end() {
        out.line(more_added(more));
    }
    // Every line is out before the summary and the dump.
    out.flush();
    let ran_for = started.elapsed();
    common::stderr_line(format_args!(
        "stopped ({ended_by}) after {:.1}s with {} containers cached",
        ran_for.as_secs_f64(),
        fleet.len()
    ));
    if let Some(path) = &args.dump_cache {
        let json = common::fleet::dump(&fleet)?;
        std::fs::write(path, json).map_err(|e| format!("--dump-cache {}: {e}", path.display()))?;
        common::stderr_line(format_args!("cache written to {}", path.display()));
    }
    if let Some(router) = router {
        router.shutdown().await;
    }
    match common::fleet::fleet_never_synced(&statuses, ran_for) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// ADDED lines of the first list shown on a terminal before the rest are counted.
const FIRST_LIST_SHOWN: usize = 50;

/// What to print for an ADDED line.
#[derive(Debug, PartialEq, Eq)]
enum Show {
    /// The line.
    Line,
    /// Nothing: the line is counted.
    Nothing,
    /// `… and N more added` instead of the line: it was the first list's last.
    Summary(usize),
}

/// Which of the first list's ADDED lines are shown: the first `shown` of them, then
/// none, and once the list's last one is in (the cache held `expected` containers when
/// every host first synced), or at the end of the run, how many were not shown. Later
/// ADDED lines are all shown.
#[derive(Debug)]
struct FirstList {
    limit: usize,
    shown: usize,
    hidden: usize,
    expected: Option<usize>,
    over: bool,
}

impl FirstList {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            shown: 0,
            hidden: 0,
            expected: None,
            over: false,
        }
    }

    /// One more ADDED line.
    fn added(&mut self) -> Show {
        if self.over {
            return Show::Line;
        }
        let show = if self.shown < self.limit {
            self.shown += 1;
            Show::Line
        } else {
            self.hidden += 1;
            Show::Nothing
        };
        match self.check_over() {
            Some(more) => Show::Summary(more),
            None => show,
        }
    }

    /// Every host synced, with `cached` containers: the first list's ADDED lines are
    /// that many. The count of lines not shown, when they are all in.
    fn synced(&mut self, cached: usize) -> Option<usize> {
        if self.over {
            return None;
        }
        self.expected = Some(cached);
        self.check_over()
    }

    /// The run ends: the count of lines not shown, if not said yet.
    fn end(&mut self) -> Option<usize> {
        self.expected = Some(0);
        self.check_over()
    }

    fn check_over(&mut self) -> Option<usize> {
        let seen = self.shown + self.hidden;
        if self.over || self.expected.is_none_or(|expected| seen < expected) {
            return None;
        }
        self.over = true;
        (self.hidden > 0).then_some(self.hidden)
    }
}

fn more_added(more: usize) -> String {
    format!("… and {more} more added")
}

fn lock(gate: &Mutex<FirstList>) -> MutexGuard<'_, FirstList> {
    gate.lock().unwrap_or_else(PoisonError::into_inner)
}

fn describe(c: &Container) -> String {
    format!(
        "{:<24} {:<16} {:<10} {}",
        c.name().unwrap_or("-"),
        c.image(),
        c.state(),
        short(c.id())
    )
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The status line: the whole fleet's phase (the one furthest from watching), counts
/// and rates, then, with several hosts, one part per host.
fn summary(
    fleet: &Fleet,
    rate: f64,
    statuses: &[(String, hypersh::reflector::Status)],
    attempts: &mut BTreeMap<String, common::Attempts>,
) -> String {
    let cached = fleet.list();
    let mut by_state: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in &cached {
        *by_state.entry(c.state().as_str()).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{s}={n}")).collect();
    let sum = |f: fn(&hypersh::reflector::Status) -> u64| -> u64 {
        statuses.iter().map(|(_, s)| f(s)).sum()
    };
    let server = match statuses {
        [(_, only)] => only
            .server
            .as_deref()
            .map(|s| format!(" {s} |"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let mut line = format!(
        "[{}]{server} {} containers ({}) | {rate:.1} events/s | reconnects={} relists={} decode_errors={}",
        common::phase_word(common::fleet::worst_phase(statuses)),
        cached.len(),
        states.join(" "),
        sum(|s| s.reconnects),
        sum(|s| s.relists),
        sum(|s| s.decode_errors),
    );
    let failing: Vec<String> = statuses
        .iter()
        .filter_map(|(host, status)| {
            let failing = attempts.entry(host.clone()).or_default().failing(status)?;
            Some(if statuses.len() > 1 {
                format!("{host}: {failing}")
            } else {
                failing
            })
        })
        .collect();
    if statuses.len() > 1 {
        let hosts: Vec<String> = statuses
            .iter()
            .map(|(host, status)| {
                let n = cached.iter().filter(|c| c.host() == host).count();
                let down = status
                    .down_since
                    .filter(|_| status.synced)
                    .and_then(|since| since.elapsed().ok())
                    .map(|d| format!(" (down {}s)", d.as_secs()))
                    .unwrap_or_default();
                format!("{host} {} {n}{down}", common::phase_word(status.phase))
            })
            .collect();
        line.push_str(" | hosts: ");
        line.push_str(&hosts.join(", "));
    }
    for part in failing {
        line.push_str(" | ");
        line.push_str(&part);
    }
    line
}
