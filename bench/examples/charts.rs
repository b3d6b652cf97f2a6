//! Renders the curves the anchors bench wrote (`SYNTRA_BENCH_CURVES=1`) as PNG charts, one per
//! curve, next to the CSV:
//!
//! ```text
//! cargo run -p syntra-bench --example charts                                  # bench/results/curves.csv -> bench/results/*.png
//! cargo run -p syntra-bench --example charts -- bench/results/quick/curves.csv  # a quick run's points -> bench/results/quick/*.png
//! cargo run -p syntra-bench --example charts -- IN.csv OUT_DIR
//! ```
//!
//! Each chart has two panels: the per-call cost (or throughput, or bytes per entry) of ours and of
//! its anchor for both tiers, log-log; below, the ratio ours / anchor with the interquartile range
//! of the paired blocks as bars and parity (1.0) as a line.
//!
//! plotters draws with its bitmap backend only (no SVG, GIF, chrono or font-kit); its text goes
//! through ab_glyph with DejaVu Sans embedded by the `dejavu` crate, so the charts render the same
//! on a machine without any system font or fontconfig.

use plotters::prelude::*;
use plotters::style::register_font;
use std::path::{Path, PathBuf};
use syntra_bench::curves::{from_csv, CurvePoint};
use syntra_bench::fmt_bytes;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// (curve, title, x axis).
const CURVES: &[(&str, &str, &str)] = &[
    ("live_keys", "Hit cost against live keys", "live keys (log)"),
    ("value_size", "Hit cost against value size", "value size, JSON (log)"),
    ("concurrency", "Throughput against concurrent tasks (2 worker threads)", "concurrent tasks (log)"),
    ("memory_per_entry", "Memory per cached entry", "value size, JSON (log)"),
];

const FONT: &str = "sans-serif";

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let csv = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results").join("curves.csv"));
    let out_dir =
        args.next().map(PathBuf::from).unwrap_or_else(|| csv.parent().unwrap_or(Path::new(".")).to_path_buf());
    register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).map_err(|_| "DejaVu Sans: not a font")?;
    register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(|_| "DejaVu Sans Bold: not a font")?;
    let text = std::fs::read_to_string(&csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let points = from_csv(&text)?;
    std::fs::create_dir_all(&out_dir)?;
    let mut drawn = 0;
    for &(curve, title, x_desc) in CURVES {
        let pts: Vec<&CurvePoint> = points.iter().filter(|p| p.curve == curve).collect();
        if pts.is_empty() {
            continue;
        }
        let path = out_dir.join(format!("{curve}.png"));
        draw(&path, curve, title, x_desc, &pts)?;
        println!("wrote {}", path.display());
        drawn += 1;
    }
    if drawn == 0 {
        return Err(format!("{}: no curve points", csv.display()).into());
    }
    Ok(())
}

fn fmt_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn fmt_x(curve: &str, x: f64) -> String {
    match curve {
        "value_size" | "memory_per_entry" => fmt_bytes(x),
        _ => fmt_count(x),
    }
}

/// `250 ns`, `2.5 µs`, `100 µs`, `1 ms` (axis labels: no trailing zeros).
fn fmt_time(ns: f64) -> String {
    let (v, u) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    format!("{} {u}", trim(v))
}

fn fmt_y(unit: &str, y: f64) -> String {
    match unit {
        "ns/call" => fmt_time(y),
        "B/entry" => fmt_bytes(y),
        _ => fmt_count(y),
    }
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// Log-axis bounds around `v` (a margin either side; one point still gets a range).
fn log_bounds(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let v: Vec<f64> = v.filter(|v| positive(*v)).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then(|| (lo / 1.6, hi * 1.6))
}

/// Colours of (ours, anchor) per tier.
fn colors(tier: &str) -> (RGBColor, RGBColor) {
    match tier {
        "memory" => (RGBColor(31, 90, 200), RGBColor(120, 175, 235)),
        _ => (RGBColor(200, 45, 35), RGBColor(240, 150, 60)),
    }
}

fn draw(path: &Path, curve: &str, title: &str, x_desc: &str, pts: &[&CurvePoint]) -> Res<()> {
    let unit = pts[0].unit.clone();
    let root = BitMapBackend::new(path, (1100, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 28).into_font().style(FontStyle::Bold))?;
    let (top, bottom) = root.split_vertically(480);
    let (top, top_legend) = top.split_horizontally(800);
    let (bottom, bottom_legend) = bottom.split_horizontally(800);
    let mut top_entries: Vec<(String, ShapeStyle, Marker)> = Vec::new();
    let mut bottom_entries: Vec<(String, ShapeStyle, Marker)> = Vec::new();
    let (xmin, xmax) = log_bounds(pts.iter().map(|p| p.x)).ok_or("no positive x")?;
    let (ymin, ymax) = log_bounds(pts.iter().flat_map(|p| [p.ours, p.anchor])).unwrap_or((1.0, 10.0));
    let tiers: Vec<&str> = ["memory", "redis"].into_iter().filter(|t| pts.iter().any(|p| p.tier == *t)).collect();
    let by_tier = |tier: &str| {
        let mut v: Vec<&CurvePoint> = pts.iter().copied().filter(|p| p.tier == tier).collect();
        v.sort_by(|a, b| a.x.total_cmp(&b.x));
        v
    };

    // Top: ours and the anchor, both tiers.
    let what = match unit.as_str() {
        "ns/call" => "time per call (paired medians; lower is cheaper)",
        "ops/s" => "calls per second (paired medians; higher is faster)",
        _ => "bytes per entry (lower is smaller)",
    };
    let mut ch = ChartBuilder::on(&top)
        .margin(14)
        .caption(what, (FONT, 18))
        .x_label_area_size(46)
        .y_label_area_size(92)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())?;
    ch.configure_mesh()
        .x_desc(x_desc)
        .y_desc(unit.as_str())
        .x_label_formatter(&|x| fmt_x(curve, *x))
        .y_label_formatter(&|y| fmt_y(&unit, *y))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .y_labels(8)
        .draw()?;
    for &tier in &tiers {
        let tp = by_tier(tier);
        let (c_ours, c_anchor) = colors(tier);
        for (is_ours, color) in [(true, c_ours), (false, c_anchor)] {
            let label = if is_ours { &tp[0].ours_label } else { &tp[0].anchor_label };
            let series: Vec<(f64, f64)> = tp
                .iter()
                .map(|p| (p.x, if is_ours { p.ours } else { p.anchor }))
                .filter(|&(x, y)| positive(x) && positive(y))
                .collect();
            if series.is_empty() {
                continue;
            }
            let style = color.stroke_width(if is_ours { 3 } else { 2 });
            ch.draw_series(LineSeries::new(series.clone(), style))?;
            let marker = if is_ours { Marker::Circle } else { Marker::Triangle };
            top_entries.push((format!("{tier}: {label}"), style, marker));
            if is_ours {
                ch.draw_series(series.iter().map(|&p| Circle::new(p, 5, color.filled())))?;
            } else {
                ch.draw_series(series.iter().map(|&p| TriangleMarker::new(p, 6, color.filled())))?;
            }
        }
    }
    legend(&top_legend, &top_entries)?;

    // Bottom: ratio ours / anchor, median and p25–p75 of the paired blocks.
    let finite: Vec<f64> =
        pts.iter().flat_map(|p| [p.ratio.p25, p.ratio.median, p.ratio.p75]).filter(|v| v.is_finite()).collect();
    let rmin = finite.iter().copied().fold(1.0_f64, f64::min);
    let rmax = finite.iter().copied().fold(1.0_f64, f64::max);
    let pad = ((rmax - rmin) * 0.12).max(0.05);
    let (rmin, rmax) = ((rmin - pad).max(0.0), rmax + pad);
    let ratio_what = match unit.as_str() {
        "ops/s" => "ours / anchor throughput (above 1: ours faster); bars: p25–p75 of the paired blocks",
        "B/entry" => "ours / anchor bytes per entry (below 1: ours smaller); one measurement per point",
        _ => "ours / anchor (below 1: ours cheaper); bars: p25–p75 of the paired blocks",
    };
    let mut ch = ChartBuilder::on(&bottom)
        .margin(14)
        .caption(ratio_what, (FONT, 18))
        .x_label_area_size(46)
        .y_label_area_size(92)
        .build_cartesian_2d((xmin..xmax).log_scale(), rmin..rmax)?;
    ch.configure_mesh()
        .x_desc(x_desc)
        .y_desc("ratio ours / anchor")
        .x_label_formatter(&|x| fmt_x(curve, *x))
        .y_label_formatter(&|y| format!("{y:.2}x"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    let parity = RGBColor(90, 90, 90).stroke_width(1);
    ch.draw_series(LineSeries::new(vec![(xmin, 1.0), (xmax, 1.0)], parity))?;
    bottom_entries.push(("parity (1.00x)".into(), parity, Marker::None));
    for &tier in &tiers {
        let tp = by_tier(tier);
        let (color, _) = colors(tier);
        // Nudge the tiers apart on x so that their bars do not overlap.
        let nudge = if tier == "memory" { 0.96 } else { 1.04 };
        let pts: Vec<&CurvePoint> = tp.into_iter().filter(|p| positive(p.x) && p.ratio.median.is_finite()).collect();
        if pts.is_empty() {
            continue;
        }
        let style = color.stroke_width(2);
        ch.draw_series(LineSeries::new(pts.iter().map(|p| (p.x * nudge, p.ratio.median)), style))?;
        let what = if unit == "B/entry" { "ratio" } else { "median, p25–p75" };
        bottom_entries.push((format!("{tier}: {what}"), style, Marker::Circle));
        ch.draw_series(pts.iter().map(|p| {
            ErrorBar::new_vertical(p.x * nudge, p.ratio.p25, p.ratio.median, p.ratio.p75, color.stroke_width(2), 12)
        }))?;
        ch.draw_series(pts.iter().map(|p| Circle::new((p.x * nudge, p.ratio.median), 4, color.filled())))?;
    }
    legend(&bottom_legend, &bottom_entries)?;
    root.present()?;
    Ok(())
}

/// The marker a legend entry shows on its line.
#[derive(Clone, Copy)]
enum Marker {
    None,
    Circle,
    Triangle,
}

/// A legend in its own column beside the plot: a line, its marker, and the label (wrapped at
/// `: ` when long), one entry under the other.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, ShapeStyle, Marker)],
) -> Res<()>
where
    DB::ErrorType: 'static,
{
    let font = (FONT, 14).into_font();
    let mut y = 70;
    for (label, style, marker) in entries {
        area.draw(&PathElement::new(vec![(8, y), (40, y)], *style))?;
        let fill = ShapeStyle { color: style.color, filled: true, stroke_width: 1 };
        match marker {
            Marker::Circle => area.draw(&Circle::new((24, y), 5, fill))?,
            Marker::Triangle => area.draw(&TriangleMarker::new((24, y), 6, fill))?,
            Marker::None => {}
        }
        let lines: Vec<String> = match label.split_once(": ") {
            Some((tier, rest)) if label.len() > 30 => vec![format!("{tier}:"), rest.to_owned()],
            _ => vec![label.clone()],
        };
        for (i, l) in lines.iter().enumerate() {
            area.draw(&Text::new(l.clone(), (48, y - 8 + 17 * i as i32), font.clone()))?;
        }
        y += 17 * lines.len() as i32 + 14;
    }
    Ok(())
}
