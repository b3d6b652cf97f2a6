//! Curve points as the bench writes them (`bench/results/curves.csv`) and the chart example
//! reads them.
//!
//! One row per point: which curve and tier, the x value, ours and the anchor in `unit`, and the
//! spread of the per-block ratios ours / anchor (p25, median, p75). For `ns/call` and `B/entry`
//! below 1 means ours is cheaper; for `ops/s` above 1 means ours is faster.

use crate::stats::Spread;
use std::fmt::Write as _;

/// The header line of the CSV.
pub const CSV_HEADER: &str =
    "curve,tier,x,x_label,unit,ours_label,anchor_label,ours,anchor,ratio_p25,ratio_median,ratio_p75,rounds,note";

/// One point of a curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    /// `live_keys`, `value_size`, `concurrency`, `memory_per_entry`.
    pub curve: String,
    /// `memory` or `redis`.
    pub tier: String,
    pub x: f64,
    pub x_label: String,
    /// `ns/call`, `ops/s` or `B/entry`.
    pub unit: String,
    pub ours_label: String,
    pub anchor_label: String,
    pub ours: f64,
    pub anchor: f64,
    pub ratio: Spread,
    /// Paired blocks behind the ratio (1 for a single measurement).
    pub rounds: usize,
    /// Anything else measured at this point (`GETs/call=1.00`, `MEMORY USAGE …`).
    pub note: String,
}

/// CSV fields here never need quoting: commas and line breaks become `;` and spaces.
fn field(s: &str) -> String {
    s.replace(',', ";").replace(['\n', '\r'], " ")
}

/// The CSV text of `points`, header first.
pub fn to_csv(points: &[CurvePoint]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for p in points {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{:.3},{:.3},{:.4},{:.4},{:.4},{},{}",
            field(&p.curve),
            field(&p.tier),
            p.x,
            field(&p.x_label),
            field(&p.unit),
            field(&p.ours_label),
            field(&p.anchor_label),
            p.ours,
            p.anchor,
            p.ratio.p25,
            p.ratio.median,
            p.ratio.p75,
            p.rounds,
            field(&p.note)
        );
    }
    out
}

/// Parses what `to_csv` wrote.
pub fn from_csv(text: &str) -> Result<Vec<CurvePoint>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(h) if h.trim() == CSV_HEADER => {}
        other => return Err(format!("not a curves CSV (header {other:?})")),
    }
    lines
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 14 {
                return Err(format!("line {}: {} fields, expected 14", i + 2, f.len()));
            }
            let num = |j: usize| f[j].trim().parse::<f64>().map_err(|e| format!("line {}: field {j}: {e}", i + 2));
            Ok(CurvePoint {
                curve: f[0].into(),
                tier: f[1].into(),
                x: num(2)?,
                x_label: f[3].into(),
                unit: f[4].into(),
                ours_label: f[5].into(),
                anchor_label: f[6].into(),
                ours: num(7)?,
                anchor: num(8)?,
                ratio: Spread { p25: num(9)?, median: num(10)?, p75: num(11)? },
                rounds: num(12)? as usize,
                note: f[13].into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip() {
        let p = CurvePoint {
            curve: "live_keys".into(),
            tier: "memory".into(),
            x: 1000.0,
            x_label: "1k".into(),
            unit: "ns/call".into(),
            ours_label: "#[cached] memory".into(),
            anchor_label: "moka get + clone".into(),
            ours: 2400.5,
            anchor: 1900.25,
            ratio: Spread { p25: 1.2, median: 1.25, p75: 1.3 },
            rounds: 21,
            note: "GETs/call=0.00, others 0".into(),
        };
        let back = from_csv(&to_csv(std::slice::from_ref(&p))).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].note, "GETs/call=0.00; others 0");
        assert_eq!(back[0].ratio, p.ratio);
        assert_eq!(back[0].x, 1000.0);
    }
}
