//! The benchmark driver run by `scripts/bench.sh`: starts the reference router as its own
//! process, runs each client process several times (interleaved, so machine noise hits
//! every client alike), takes medians, and merges its section into the results JSON.
//!
//! ```text
//! bench watch   --bins DIR --node-dir DIR --events N --runs R --out FILE
//! bench store   --bins DIR --runs R --out FILE
//! bench relist  --bins DIR --containers N --runs R --out FILE
//! bench latency --bins DIR --rate R --seconds S --runs R --out FILE
//! bench scale   --bins DIR --sizes 10000,100000,300000,1000000 --events E --runs R --out FILE
//! ```
//!
//! `bench watch` ends with the targets of issue 29, each a same-run ratio of events/s
//! (median over the runs): `target: WHAT = MEDIAN (runs LO-HI), >= T: met` (or `not met`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use clap::{Parser, Subcommand};
use hypersh_perf::Report;
use serde_json::{Map, Value, json};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
    /// Directory of the release binaries (apirouter and this project's).
    #[arg(long, global = true, default_value = "target/release")]
    bins: PathBuf,
    /// How many times each client runs.
    #[arg(long, global = true, default_value_t = 5)]
    runs: usize,
    /// The results file; this benchmark's section is replaced, the others kept.
    #[arg(long, global = true, default_value = "perf/results/results.json")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum What {
    /// Watch throughput over loopback TLS: read-only, naive decode, borrowed decode, watch
    /// stream, full informer, Node client.
    Watch {
        #[arg(long, default_value_t = 2_000_000)]
        events: u64,
        /// perf/node, with node_modules installed.
        #[arg(long, default_value = "perf/node")]
        node_dir: PathBuf,
        /// Containers the router starts with (the emitted events are about them). Odd, so
        /// each container goes through every action in turn and most events change it.
        #[arg(long, default_value_t = 31)]
        containers: usize,
    },
    /// Store apply and memory, hypersh-store against kube-runtime's Writer.
    Store,
    /// Relist of N containers into an empty and a full cache.
    Relist {
        #[arg(long, default_value_t = 100_000)]
        containers: usize,
    },
    /// Costs against the number of containers N: router start, the informer's first list
    /// and relist (seconds, peak and steady heap), heap per cached container, and events/s
    /// with N cached (against 31 cached).
    Scale {
        /// Container counts.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,100000,300000,1000000"
        )]
        sizes: Vec<usize>,
        /// Events per events/s measurement.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Frame-to-handler latency at a fixed event rate.
    Latency {
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// Builds the command that runs one client once.
type MakeCommand<'a> = Box<dyn Fn() -> Command + 'a>;

/// The router process; killed on drop.
struct Router {
    child: Child,
    url: String,
    /// Seconds from spawning it to its `listening on` line (its containers made).
    started_in: f64,
}

impl Router {
    fn start(bins: &Path, extra: &[String]) -> Result<Self, String> {
        let spawned = std::time::Instant::now();
        let mut child = Command::new(bins.join("apirouter"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--tls",
                "self-signed",
                "--credentials",
                "ak:sk",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bins.join("apirouter").display()))?;
        let stdout = child.stdout.take().ok_or("router stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected router output {line:?}"))?
            .to_owned();
        let started_in = spawned.elapsed().as_secs_f64();
        Ok(Self {
            child,
            url,
            started_in,
        })
    }

    /// The router's resident memory in MB (from /proc), NaN when unknown.
    fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kb| kb / 1e3)
    }

    /// CPU seconds the router has used so far (from /proc).
    fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.child.id())
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64);
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / hz,
        _ => f64::NAN,
    }
}

/// Runs a client command and parses the JSON report it prints last.
fn run_client(mut cmd: Command) -> Result<Report, String> {
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{cmd:?} failed: {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("{cmd:?} printed no report"))?;
    serde_json::from_str(line).map_err(|e| format!("{cmd:?}: bad report {line:?}: {e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round(x: f64, digits: i32) -> Value {
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}

fn watch(args: &Args, events: u64, node_dir: &Path, containers: usize) -> Result<Value, String> {
    let router = Router::start(
        &args.bins,
        &[
            "--emit".into(),
            events.to_string(),
            "--containers".into(),
            containers.to_string(),
            "--shape".into(),
            "docker".into(),
        ],
    )?;
    eprintln!("router at {}", router.url);
    let target = |bin: &str| {
        let mut c = Command::new(args.bins.join(bin));
        c.args(["--url", &router.url, "--events", &events.to_string()]);
        c
    };
    let clients: Vec<(&str, MakeCommand<'_>)> = vec![
        (
            "read-only",
            Box::new(|| {
                let mut c = target("wsread");
                c.args(["--mode", "read"]);
                c
            }),
        ),
        (
            "naive-decode",
            Box::new(|| {
                let mut c = target("wsread");
                c.args(["--mode", "naive"]);
                c
            }),
        ),
        (
            "borrowed-decode",
            Box::new(|| {
                let mut c = target("wsread");
                c.args(["--mode", "borrowed"]);
                c
            }),
        ),
        ("watch-decode", Box::new(|| target("watchc"))),
        ("informer", Box::new(|| target("informerc"))),
        (
            "node",
            Box::new(|| {
                let mut c = Command::new("node");
                c.arg(node_dir.join("client.js")).args([
                    "--url",
                    &router.url,
                    "--events",
                    &events.to_string(),
                ]);
                c
            }),
        ),
    ];
    let mut per_client: Map<String, Value> = Map::new();
    let mut samples: Vec<Vec<(Report, f64)>> = vec![Vec::new(); clients.len()];
    for run in 0..args.runs {
        for (i, (name, make)) in clients.iter().enumerate() {
            let server_before = router.cpu_seconds();
            let report = run_client(make())?;
            let server_cpu = router.cpu_seconds() - server_before;
            eprintln!(
                "run {run} {name:16} {:>10.0} events/s  client cpu {:.2}s  server cpu {:.2}s  wall {:.2}s",
                report.events as f64 / report.seconds,
                report.cpu_seconds,
                server_cpu,
                report.seconds
            );
            samples[i].push((report, server_cpu));
        }
    }
    let rate = |r: &Report| r.events as f64 / r.seconds;
    let cpu_per_m = |r: &Report| r.cpu_seconds / (r.events as f64 / 1e6);
    for ((name, _), runs) in clients.iter().zip(&samples) {
        let rates: Vec<f64> = runs.iter().map(|(r, _)| rate(r)).collect();
        let cpus: Vec<f64> = runs.iter().map(|(r, _)| cpu_per_m(r)).collect();
        let server: Vec<f64> = runs
            .iter()
            .map(|(r, s)| s / (r.events as f64 / 1e6))
            .collect();
        // Server CPU per wall second: below 1.0 means the router was not saturated.
        let server_busy: Vec<f64> = runs.iter().map(|(r, s)| s / r.seconds).collect();
        per_client.insert(
            (*name).to_owned(),
            json!({
                "events_per_sec": round(median(rates.clone()), 0),
                "cpu_sec_per_million": round(median(cpus.clone()), 3),
                "server_cpu_sec_per_million": round(median(server), 3),
                "server_busy_fraction": round(median(server_busy), 3),
                "runs_events_per_sec": rates.iter().map(|r| round(*r, 0)).collect::<Vec<_>>(),
                "runs_cpu_sec_per_million": cpus.iter().map(|c| round(*c, 3)).collect::<Vec<_>>(),
            }),
        );
    }
    let index = |n: &str| clients.iter().position(|(c, _)| *c == n);
    // Ratios of events/s within the same run, one per run.
    let per_run = |a: &str, b: &str| -> Vec<f64> {
        let (Some(a), Some(b)) = (index(a), index(b)) else {
            return Vec::new();
        };
        samples[a]
            .iter()
            .zip(&samples[b])
            .map(|((x, _), (y, _))| rate(x) / rate(y))
            .collect()
    };
    // Their median.
    let ratio = |a: &str, b: &str| -> Value { round(median(per_run(a, b)), 3) };
    // The issue's targets (issue 29), each against its same-run baseline.
    let mut targets = Map::new();
    for (what, a, b, target) in [
        (
            "watch typed decode / read-only (b/a)",
            "watch-decode",
            "read-only",
            0.7,
        ),
        (
            "watch typed decode / Node (b/d)",
            "watch-decode",
            "node",
            4.0,
        ),
        (
            "full informer / read-only (c/a)",
            "informer",
            "read-only",
            0.5,
        ),
    ] {
        let runs = per_run(a, b);
        let lo = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mid = median(runs.clone());
        let met = mid >= target;
        println!(
            "target: {what} = {mid:.2} (runs {lo:.2}-{hi:.2}), >= {target}: {}",
            if met { "met" } else { "not met" }
        );
        targets.insert(
            what.to_owned(),
            json!({
                "median": round(mid, 3),
                "runs": runs.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
                "target": target,
                "met": met,
            }),
        );
    }
    Ok(json!({
        "events_per_run": events,
        "runs": args.runs,
        "containers": containers,
        "clients": per_client,
        "ratios": {
            "informer/read-only (c/a)": ratio("informer", "read-only"),
            "informer/naive-decode": ratio("informer", "naive-decode"),
            "informer/node (c/d)": ratio("informer", "node"),
            "watch-decode/naive-decode": ratio("watch-decode", "naive-decode"),
            "watch-decode/read-only (b/a)": ratio("watch-decode", "read-only"),
            "watch-decode/node (b/d)": ratio("watch-decode", "node"),
            "borrowed-decode/naive-decode": ratio("borrowed-decode", "naive-decode"),
        },
        "targets": targets,
    }))
}

/// Runs `bin` (with `args`) `runs` times; each prints a JSON object; returns them all.
fn repeat(args: &Args, bin: &str, extra: &[String]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for run in 0..args.runs {
        let mut cmd = Command::new(args.bins.join(bin));
        cmd.args(extra);
        let output = cmd
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{bin}: {e}"))?;
        if !output.status.success() {
            return Err(format!("{bin} failed: {}", output.status));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| format!("{bin} printed no report"))?;
        eprintln!("run {run} {bin}: {line}");
        out.push(serde_json::from_str(line).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// For each numeric field of the runs' objects (one level of nesting), the median.
fn medians(runs: &[Value]) -> Value {
    fn walk(runs: &[&Value]) -> Value {
        let Some(Value::Object(first)) = runs.first() else {
            return Value::Null;
        };
        let mut out = Map::new();
        for (k, v) in first {
            let column: Vec<&Value> = runs.iter().filter_map(|r| r.get(k)).collect();
            match v {
                Value::Number(_) => {
                    let nums: Vec<f64> = column.iter().filter_map(|x| x.as_f64()).collect();
                    out.insert(k.clone(), round(median(nums), 3));
                }
                Value::Object(_) => {
                    out.insert(k.clone(), walk(&column));
                }
                other => {
                    out.insert(k.clone(), other.clone());
                }
            }
        }
        Value::Object(out)
    }
    walk(&runs.iter().collect::<Vec<_>>())
}

fn save(path: &Path, section: &str, value: Value) -> Result<(), String> {
    let mut all: Map<String, Value> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.insert(section.to_owned(), value);
    all.insert(
        "machine".into(),
        json!({
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "note": "2-core VM shared with other builds: compare ratios within one run",
        }),
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(&Value::Object(all)).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

fn main() {
    let args = Args::parse();
    let result = match &args.what {
        What::Watch {
            events,
            node_dir,
            containers,
        } => watch(&args, *events, node_dir, *containers).and_then(|v| save(&args.out, "watch", v)),
        What::Store => repeat(&args, "storecmp", &[]).and_then(|runs| {
            save(
                &args.out,
                "store",
                json!({"runs": args.runs, "median": medians(&runs), "all": runs}),
            )
        }),
        What::Relist { containers } => {
            relist(&args, *containers).and_then(|v| save(&args.out, "relist", v))
        }
        What::Scale { sizes, events } => {
            scale(&args, sizes, *events).and_then(|v| save(&args.out, "scale", v))
        }
        What::Latency { rate, seconds } => {
            latency(&args, *rate, *seconds).and_then(|v| save(&args.out, "latency", v))
        }
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn relist(args: &Args, containers: usize) -> Result<Value, String> {
    let router = Router::start(&args.bins, &["--containers".into(), containers.to_string()])?;
    let runs = repeat(args, "relist", &["--url".into(), router.url.clone()])?;
    Ok(json!({"containers": containers, "runs": args.runs, "median": medians(&runs), "all": runs}))
}

fn latency(args: &Args, rate: u64, seconds: u64) -> Result<Value, String> {
    // Each workload: its own router, then RUNS latency clients against it.
    let measure = |router_args: &[String]| {
        let router = Router::start(&args.bins, router_args)?;
        repeat(
            args,
            "latency",
            &[
                "--url".into(),
                router.url.clone(),
                "--rate".into(),
                rate.to_string(),
                "--seconds".into(),
                seconds.to_string(),
            ],
        )
    };
    let runs = measure(&[
        "--containers".into(),
        "1000".into(),
        "--churn".into(),
        rate.to_string(),
    ])?;
    // The same rate of pre-serialised state changes about 31 known containers: no creates,
    // so no list calls; one connection lasts the whole run.
    let frames = rate * (seconds + 5);
    let paced_runs = measure(&[
        "--containers".into(),
        "31".into(),
        "--emit".into(),
        frames.to_string(),
        "--emit-rate".into(),
        rate.to_string(),
    ])?;
    Ok(json!({
        "rate": rate,
        "seconds": seconds,
        "runs": args.runs,
        "median": medians(&runs),
        "all": runs,
        "paced": {"median": medians(&paced_runs), "all": paced_runs},
    }))
}

/// The `scale` benchmark: for each N, one router with N containers for the relist client
/// (first list and relist, RUNS times), then one with N containers and `--emit` for the
/// informer client (events/s after the sync). Events/s with 31 containers cached, from a
/// router kept for the whole benchmark, is measured in the same runs, alternated with the
/// N-cached ones, and each run's ratio taken (machine noise hits both alike); each run
/// also measures the N-cached client with its heap on transparent huge pages.
fn scale(args: &Args, sizes: &[usize], events: u64) -> Result<Value, String> {
    let reference = EmitRouter::start(args, 31, events)?;
    let mut points = Vec::new();
    for &n in sizes {
        let router = Router::start(
            &args.bins,
            &[
                "--containers".into(),
                n.to_string(),
                "--churn".into(),
                "0".into(),
            ],
        )?;
        let (router_start, router_rss) = (router.started_in, router.rss_mb());
        eprintln!("N={n}: router ready in {router_start:.2} s, {router_rss:.0} MB");
        let runs = repeat(args, "relist", &["--url".into(), router.url.clone()])?;
        drop(router);
        // The client's default limits let the whole list through.
        if let Some(bad) = runs
            .iter()
            .find(|r| r["containers"].as_u64() != Some(n as u64))
        {
            return Err(format!(
                "N={n}: the informer cached {} containers",
                bad["containers"]
            ));
        }
        let m = medians(&runs);
        let f = |section: &str, key: &str| m[section][key].as_f64().unwrap_or(f64::NAN);
        let heap_per_container =
            (f("empty", "steady_mb") - m["base_mb"].as_f64().unwrap_or(0.0)) * 1e6 / n as f64;

        let cached = EmitRouter::start(args, n, events)?;
        let (mut rates, mut cpus, mut rate_ratios, mut cpu_ratios) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut reference_rates, mut reference_cpus) = (Vec::new(), Vec::new());
        let (mut huge_rate_ratios, mut huge_cpu_ratios) = (Vec::new(), Vec::new());
        let mut event_runs = Vec::new();
        for run in 0..args.runs {
            let (r_rate, r_cpu, _) = reference.run(run, false)?;
            let (rate, cpu, report) = cached.run(run, false)?;
            let (h_rate, h_cpu, _) = cached.run(run, true)?;
            rate_ratios.push(rate / r_rate);
            cpu_ratios.push(cpu / r_cpu);
            huge_rate_ratios.push(h_rate / r_rate);
            huge_cpu_ratios.push(h_cpu / r_cpu);
            rates.push(rate);
            cpus.push(cpu);
            reference_rates.push(r_rate);
            reference_cpus.push(r_cpu);
            event_runs.push(report);
        }
        drop(cached);
        let point = json!({
            "containers": n,
            "router_start_seconds": round(router_start, 3),
            "router_rss_mb": round(router_rss, 1),
            "first_list_seconds": round(f("empty", "seconds"), 3),
            "first_list_peak_mb": round(f("empty", "peak_mb"), 1),
            "first_list_steady_mb": round(f("empty", "steady_mb"), 1),
            "first_list_peak_over_steady": round(f("empty", "peak_over_steady"), 3),
            "relist_seconds": round(f("full", "seconds"), 3),
            "relist_peak_mb": round(f("full", "peak_mb"), 1),
            "relist_steady_mb": round(f("full", "steady_mb"), 1),
            "relist_peak_over_steady": round(f("full", "peak_over_steady"), 3),
            "heap_bytes_per_container": round(heap_per_container, 0),
            "events_per_sec": round(median(rates), 0),
            "cpu_us_per_event": round(median(cpus), 3),
            "reference_31_cached": {
                "events_per_sec": round(median(reference_rates), 0),
                "cpu_us_per_event": round(median(reference_cpus), 3),
            },
            "events_per_sec_over_31_cached": round(median(rate_ratios.clone()), 3),
            "cpu_per_event_over_31_cached": round(median(cpu_ratios.clone()), 3),
            "runs_events_per_sec_over_31_cached":
                rate_ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
            "runs_cpu_per_event_over_31_cached":
                cpu_ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
            // The same N-cached client with glibc's heap on transparent huge pages
            // (docs/operations.md, "Memory and large caches"), against the same reference.
            "huge_pages_events_per_sec_over_31_cached": round(median(huge_rate_ratios.clone()), 3),
            "huge_pages_cpu_per_event_over_31_cached": round(median(huge_cpu_ratios.clone()), 3),
            "runs_huge_pages_events_per_sec_over_31_cached":
                huge_rate_ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
            "relist_runs": runs,
            "events_runs": event_runs,
        });
        eprintln!("N={n}: {point}");
        points.push(point);
    }
    Ok(json!({
        "runs": args.runs,
        "events_per_run": events,
        "points": points,
    }))
}

/// A router with `n` containers and `--emit`, for the informer client: the frames are held
/// back until the client's first list is surely done, so they reach a synced cache.
struct EmitRouter<'a> {
    args: &'a Args,
    router: Router,
    n: usize,
    events: u64,
}

impl<'a> EmitRouter<'a> {
    fn start(args: &'a Args, n: usize, events: u64) -> Result<Self, String> {
        // The list of a million takes about 5 s here; the delay leaves room for a busy
        // machine (the client reports events that came before its sync, and that fails).
        let delay = 2.0 + 12.0 * n as f64 / 1e6;
        let router = Router::start(
            &args.bins,
            &[
                "--containers".into(),
                n.to_string(),
                "--churn".into(),
                "0".into(),
                "--emit".into(),
                events.to_string(),
                "--emit-delay".into(),
                format!("{delay:.1}"),
                "--shape".into(),
                "docker".into(),
            ],
        )?;
        Ok(Self {
            args,
            router,
            n,
            events,
        })
    }

    /// One informer client run: events/s and CPU µs per event after the sync, the report.
    /// With `huge_pages`, glibc puts the client's heap on transparent huge pages.
    fn run(&self, run: usize, huge_pages: bool) -> Result<(f64, f64, Value), String> {
        let n = self.n;
        let mut cmd = Command::new(self.args.bins.join("informerc"));
        if huge_pages {
            cmd.env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");
        }
        cmd.args([
            "--url",
            &self.router.url,
            "--events",
            &self.events.to_string(),
        ]);
        let report = run_client(cmd)?;
        let early = report
            .extra
            .get("events_before_sync")
            .and_then(Value::as_u64);
        if early != Some(0) {
            return Err(format!(
                "N={n}: {early:?} events arrived before the cache synced: raise the delay"
            ));
        }
        let get = |key: &str| {
            report
                .extra
                .get(key)
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN)
        };
        let (rate, cpu_us) = (get("synced_events_per_sec"), get("synced_cpu_us_per_event"));
        let pages = if huge_pages { ", huge pages" } else { "" };
        eprintln!(
            "run {run} N={n}: {rate:.0} events/s, {cpu_us:.3} µs CPU/event with {n} cached{pages}"
        );
        let report = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        Ok((rate, cpu_us, report))
    }
}
