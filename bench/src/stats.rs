//! Paired measurements and their spread.
//!
//! `paired` times ours and its anchor in alternating blocks of equal call counts (A B B A …), so
//! that load from other processes on a shared machine hits both sides of each block alike. Every
//! block gives one ratio ours / anchor; a result is the median of those ratios **with their
//! interquartile range** (p25–p75), and a verdict against a target reads the whole range: a
//! target inside it is "within noise", not "met".

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// p25, median and p75 of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
}

impl Spread {
    /// A single value (a count, one measurement): no spread.
    pub fn exact(v: f64) -> Spread {
        Spread { p25: v, median: v, p75: v }
    }

    /// `1 / x` of every quantile (a time ratio turned into a throughput ratio): the order flips.
    pub fn inverse(self) -> Spread {
        Spread { p25: 1.0 / self.p75, median: 1.0 / self.median, p75: 1.0 / self.p25 }
    }

    /// `1.20x [1.15–1.26]`.
    pub fn fmt_ratio(&self) -> String {
        format!("{:.2}x [{:.2}–{:.2}]", self.median, self.p25, self.p75)
    }
}

/// The `q` quantile (0..=1) of `v` by linear interpolation between order statistics (the
/// usual "type 7" definition); NaN for an empty sample.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// p25, median, p75 of `v`.
pub fn spread(v: &[f64]) -> Spread {
    Spread { p25: quantile(v, 0.25), median: quantile(v, 0.5), p75: quantile(v, 0.75) }
}

/// A target read against a spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interquartile range is on the right side of the target.
    Met,
    /// The target lies inside the interquartile range: this run cannot tell.
    WithinNoise,
    /// The whole interquartile range is on the wrong side.
    NotMet,
}

impl Verdict {
    /// For "ours / anchor at most `target`" (times, bytes).
    pub fn at_most(s: &Spread, target: f64) -> Verdict {
        if s.p75 <= target {
            Verdict::Met
        } else if s.p25 > target {
            Verdict::NotMet
        } else {
            Verdict::WithinNoise
        }
    }

    /// For "ours / anchor at least `target`" (throughput).
    pub fn at_least(s: &Spread, target: f64) -> Verdict {
        if s.p25 >= target {
            Verdict::Met
        } else if s.p75 < target {
            Verdict::NotMet
        } else {
            Verdict::WithinNoise
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::WithinNoise => "within noise",
            Verdict::NotMet => "not met",
        }
    }
}

/// The blocks of one paired measurement: per-call (or per-iteration) nanoseconds of ours and
/// of the anchor, block by block.
#[derive(Debug, Clone, Default)]
pub struct Paired {
    pub ours: Vec<f64>,
    pub anchor: Vec<f64>,
}

impl Paired {
    pub fn rounds(&self) -> usize {
        self.ours.len()
    }

    /// Median per-call time of ours (ns).
    pub fn ours_ns(&self) -> f64 {
        quantile(&self.ours, 0.5)
    }

    /// Median per-call time of the anchor (ns).
    pub fn anchor_ns(&self) -> f64 {
        quantile(&self.anchor, 0.5)
    }

    /// Spread of the per-block ratios ours / anchor.
    pub fn ratio(&self) -> Spread {
        let r: Vec<f64> = self.ours.iter().zip(&self.anchor).map(|(a, b)| a / b).collect();
        spread(&r)
    }

    /// Spread of the per-block differences ours − anchor (ns).
    pub fn diff(&self) -> Spread {
        let d: Vec<f64> = self.ours.iter().zip(&self.anchor).map(|(a, b)| a - b).collect();
        spread(&d)
    }
}

/// Runs `f` `k` times in a row; the elapsed time.
pub async fn time_block<F, Fut, T>(f: &F, k: u64) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let start = Instant::now();
    for _ in 0..k {
        black_box(f().await);
    }
    start.elapsed()
}

/// Measures `a` (ours) and `b` (its anchor) in `rounds` alternating blocks (ABBA…) of equal call
/// counts, each block about `block` long (at least one call). Bounded: `rounds` × 2 blocks after
/// a calibration of at most 11 calls each.
pub fn paired<FA, A, TA, FB, B, TB>(rt: &Runtime, rounds: usize, block: Duration, a: &FA, b: &FB) -> Paired
where
    FA: Fn() -> A,
    A: Future<Output = TA>,
    FB: Fn() -> B,
    B: Future<Output = TB>,
{
    rt.block_on(async {
        // Calibrate on one call each; only calls shorter than a block need a closer estimate.
        let one = time_block(a, 1).await.max(time_block(b, 1).await);
        let per = if one >= block { one } else { time_block(a, 10).await.max(time_block(b, 10).await) / 10 };
        let k = (block.as_nanos() / per.as_nanos().max(1)).clamp(1, 10_000_000) as u64;
        let mut p = Paired::default();
        for i in 0..rounds.max(1) {
            let (x, y) = if i % 2 == 0 {
                let x = time_block(a, k).await;
                (x, time_block(b, k).await)
            } else {
                let y = time_block(b, k).await;
                (time_block(a, k).await, y)
            };
            p.ours.push(x.as_nanos() as f64 / k as f64);
            p.anchor.push(y.as_nanos() as f64 / k as f64);
        }
        p
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(spread(&v), Spread { p25: 2.0, median: 3.0, p75: 4.0 });
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(quantile(&[7.0], 0.25), 7.0);
    }

    #[test]
    fn verdicts_read_the_range() {
        let s = Spread { p25: 1.05, median: 1.08, p75: 1.12 };
        assert_eq!(Verdict::at_most(&s, 1.10), Verdict::WithinNoise);
        assert_eq!(Verdict::at_most(&s, 1.12), Verdict::Met);
        assert_eq!(Verdict::at_most(&s, 1.00), Verdict::NotMet);
        assert_eq!(Verdict::at_least(&s.inverse(), 0.80), Verdict::Met);
        assert_eq!(Verdict::at_least(&s.inverse(), 0.96), Verdict::NotMet);
        assert_eq!(Verdict::at_least(&s.inverse(), 1.0 / 1.08), Verdict::WithinNoise);
    }
}
