//! Draws `docs/scale.svg` from the `scale` benchmark's results: how each cost grows with the
//! number of containers N, on log–log axes, with a dashed linear reference (cost ∝ N,
//! through each series' smallest N) so a line steeper than it is worse than linear.
//!
//! Three panels: seconds (router start, first list, relist), heap in MB (steady after the
//! first list, peak during the relist, the router's RSS), and events/s with N cached
//! against 31 cached in the same runs (flat is as it should be: no linear reference).
//!
//! `scalechart --results perf/results/scale.json --out docs/scale.svg`

use std::path::PathBuf;

use clap::Parser;
use plotters::coord::Shift;
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::prelude::*;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "perf/results/scale.json")]
    results: PathBuf,
    #[arg(long, default_value = "docs/scale.svg")]
    out: PathBuf,
}

/// One series: name, colour, (N, value) points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// The (N, value) points of `pointer` (a JSON pointer, `/events_per_sec`) in the results'
/// points.
fn points(results: &Value, pointer: &str) -> Vec<(f64, f64)> {
    results["scale"]["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["containers"].as_f64()?, p.pointer(pointer)?.as_f64()?)))
        .filter(|(n, v)| *n > 0.0 && *v > 0.0 && v.is_finite())
        .collect()
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Dashes of a straight segment from `a` to `b` in log–log coordinates: `count` pieces
/// drawn, every other one left out.
fn dashes(a: (f64, f64), b: (f64, f64), count: usize) -> Vec<Vec<(f64, f64)>> {
    let at = |t: f64| (a.0 * (b.0 / a.0).powf(t), a.1 * (b.1 / a.1).powf(t));
    (0..count)
        .step_by(2)
        .map(|i| {
            let t0 = i as f64 / count as f64;
            let t1 = (i + 1) as f64 / count as f64;
            vec![at(t0), at(t1)]
        })
        .collect()
}

/// One log–log panel of `series`, each with its dashed linear reference when `linear`.
/// A chart over N on a log axis (events/s or costs on the other).
type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, Y>>;

/// Each series as a line with its points, labelled for the legend.
fn draw_lines<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    series: &[Series],
) -> Result<(), String> {
    for (name, colour, pts) in series {
        let style = ShapeStyle::from(colour).stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(pts.clone(), style)))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, colour.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The legend, at `position`.
fn draw_legend<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(GREY)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    unit: &str,
    series: &[Series],
    linear: bool,
) -> Result<(), String> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, 0.0f64, f64::MAX, 0.0f64);
    for (x, y) in &all {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if linear {
        // Room for the linear references, which may end above the data.
        for (_, _, pts) in series {
            if let (Some(first), Some(last)) = (pts.first(), pts.last()) {
                y1 = y1.max(first.1 * last.0 / first.0);
            }
        }
    }
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(52)
        .build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("containers (N)")
        .y_desc(unit)
        .x_label_formatter(&|v| human(*v))
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    draw_lines(&mut chart, series)?;
    for (_, colour, pts) in series {
        if linear && let (Some(first), Some(last)) = (pts.first(), pts.last()) {
            let end = (last.0, first.1 * last.0 / first.0);
            chart
                .draw_series(
                    dashes(*first, end, 15)
                        .into_iter()
                        .map(|d| PathElement::new(d, colour.mix(0.5).stroke_width(1))),
                )
                .map_err(|e| e.to_string())?;
        }
    }
    if linear {
        chart
            .draw_series(std::iter::once(PathElement::new(
                Vec::<(f64, f64)>::new(),
                GREY.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?
            .label("dashed: linear (∝ N)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREY.stroke_width(1)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The events/s panel: N on a log axis, events/s on a linear one from zero.
fn rate_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    series: &[Series],
) -> Result<(), String> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    let x0 = all.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let x1 = all.iter().map(|p| p.0).fold(0.0, f64::max);
    let y1 = all.iter().map(|p| p.1).fold(0.0, f64::max);
    if all.is_empty() {
        return Ok(());
    }
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(52)
        .build_cartesian_2d((x0 / 1.5..x1 * 1.5).log_scale(), 0.0..y1 * 1.4)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("containers (N)")
        .y_desc("events/s")
        .x_label_formatter(&|v| human(*v))
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    draw_lines(&mut chart, series)?;
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn main() {
    let args = Args::parse();
    let results: Value = hypersh_perf::read_results(&args.results, "scalechart");
    let seconds: Vec<Series> = vec![
        (
            "router start",
            GREY,
            points(&results, "/router_start_seconds"),
        ),
        ("first list", BLUE, points(&results, "/first_list_seconds")),
        (
            "relist into full cache",
            ORANGE,
            points(&results, "/relist_seconds"),
        ),
    ];
    let heap: Vec<Series> = vec![
        (
            "steady heap",
            BLUE,
            points(&results, "/first_list_steady_mb"),
        ),
        (
            "relist peak heap",
            ORANGE,
            points(&results, "/relist_peak_mb"),
        ),
        ("router RSS", GREY, points(&results, "/router_rss_mb")),
    ];
    let rates: Vec<Series> = vec![
        ("N cached", GREEN, points(&results, "/events_per_sec")),
        (
            "31 cached, same runs",
            GREY,
            points(&results, "/reference_31_cached/events_per_sec"),
        ),
    ];
    let root = SVGBackend::new(&args.out, (1260, 400)).into_drawing_area();
    let drawn = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|()| {
        let panels = root.split_evenly((1, 3));
        panel(&panels[0], "Time against N", "seconds", &seconds, true)?;
        panel(&panels[1], "Memory against N", "MB", &heap, true)?;
        rate_panel(&panels[2], "Watch throughput with N cached", &rates)?;
        root.present().map_err(|e| e.to_string())
    });
    if let Err(e) = drawn {
        eprintln!("scalechart: {e}");
        std::process::exit(1);
    }
    eprintln!("wrote {}", args.out.display());
}
