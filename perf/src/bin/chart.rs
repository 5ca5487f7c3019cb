//! Draws `docs/performance.svg` from the results JSON: events/s per watch client, and heap
//! bytes per cached container (hypersh-store against kube-runtime), side by side.
//!
//! `chart --results perf/results/results.json --out docs/performance.svg`

use std::path::PathBuf;

use clap::Parser;
use plotters::prelude::*;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "perf/results/results.json")]
    results: PathBuf,
    #[arg(long, default_value = "docs/performance.svg")]
    out: PathBuf,
}

/// One bar: label, value, value as text, colour.
type Bar = (String, f64, String, RGBColor);

const OURS: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const REFERENCE: RGBColor = RGBColor(0xaa, 0xaa, 0xaa);
const PEER: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    bars: &[Bar],
) -> Result<(), String> {
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0);
    let n = bars.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..max * 1.6, 0.0..n)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_labels(5)
        .x_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, value, text, colour)) in bars.iter().enumerate() {
        let y = n - i as f64 - 1.0;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.15), (*value, y + 0.85)],
                colour.filled(),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{label}: {text}"),
                (value + max * 0.02, y + 0.62),
                ("sans-serif", 14),
            )))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn main() {
    let args = Args::parse();
    let results: Value = hypersh_perf::read_results(&args.results, "chart");
    let mut watch_bars: Vec<Bar> = Vec::new();
    for (name, colour) in [
        ("read-only", REFERENCE),
        ("naive-decode", REFERENCE),
        ("borrowed-decode", REFERENCE),
        ("watch-decode", OURS),
        ("informer", OURS),
        ("node", PEER),
    ] {
        if let Some(rate) = results["watch"]["clients"][name]["events_per_sec"].as_f64() {
            watch_bars.push((name.to_owned(), rate, format!("{}/s", human(rate)), colour));
        }
    }
    let mut heap_bars: Vec<Bar> = Vec::new();
    for (key, label, colour) in [
        ("hypersh", "hypersh-store", OURS),
        ("kube_runtime", "kube-runtime Writer", PEER),
    ] {
        if let Some(bytes) = results["store"]["median"][key]["heap_bytes_per_container"].as_f64() {
            heap_bars.push((label.to_owned(), bytes, format!("{bytes:.0} B"), colour));
        }
    }
    let root = SVGBackend::new(&args.out, (1100, 360)).into_drawing_area();
    let drawn = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|()| {
        let (left, right) = root.split_horizontally(640);
        panel(
            &left,
            "Watch throughput over TLS (events/s, median)",
            &watch_bars,
        )?;
        panel(&right, "Heap per cached container (bytes)", &heap_bars)?;
        root.present().map_err(|e| e.to_string())
    });
    if let Err(e) = drawn {
        eprintln!("chart: {e}");
        std::process::exit(1);
    }
    eprintln!("wrote {}", args.out.display());
}
