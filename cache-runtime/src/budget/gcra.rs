//! GCRA (generic cell rate algorithm) in integer microseconds: the same arithmetic as the Lua
//! script in `shared.rs`.

use super::Rate;

/// One rate limit of `limit` per `per`, as GCRA parameters.
///
/// Providers count requests per clock window (CoinGecko: 30 per calendar minute). A plain GCRA
/// with a burst of `limit` lets almost `2·limit` through one such window (a full burst at its
/// end, another at the start of the next). So the burst is a tenth of the limit (at least 1) and
/// the emission interval spreads the rest over the period: `I = per / (limit - burst)`. In any
/// window of length `per` at most `burst + per / I = limit` requests pass, whichever way the
/// provider aligns its windows; the sustained rate is `limit - burst` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Emission interval, rounded up to a whole microsecond (never looser than declared).
    pub(crate) interval_us: u64,
    /// `burst · I`: how far ahead of now the theoretical arrival time may run.
    pub(crate) window_us: u64,
}

impl Gcra {
    pub(crate) fn new(rate: Rate) -> Gcra {
        let per_us = u64::try_from(rate.per.as_micros()).unwrap_or(u64::MAX);
        let limit = u64::from(rate.limit.max(1));
        let burst = limit.div_ceil(10).max(1);
        let spread = (limit - burst).max(1);
        let interval_us = per_us.div_ceil(spread).max(1);
        Gcra { interval_us, window_us: interval_us.saturating_mul(burst) }
    }

    /// Checks a request of `weight` at `now_us` against the stored theoretical arrival time `tat`
    /// (0 when none): the new `tat` to store if allowed, else how long until it would be allowed.
    pub(crate) fn check(&self, tat: u64, now_us: u64, weight: u32) -> Result<u64, u64> {
        let tat = tat.max(now_us);
        let new_tat = tat.saturating_add(self.interval_us.saturating_mul(u64::from(weight)));
        let allow_at = new_tat.saturating_sub(self.window_us);
        if allow_at > now_us {
            Err(allow_at - now_us)
        } else {
            Ok(new_tat)
        }
    }

    /// Whether `weight` can ever pass (it fits in one full burst).
    pub(crate) fn fits(&self, weight: u32) -> bool {
        self.interval_us.saturating_mul(u64::from(weight)) <= self.window_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gcra(limit: u32, per_ms: u64) -> Gcra {
        Gcra::new(Rate { limit, per: Duration::from_millis(per_ms) })
    }

    #[test]
    fn parameters() {
        // 30/min: burst 3, then one per 60 s / 27.
        assert_eq!(gcra(30, 60_000), Gcra { interval_us: 2_222_223, window_us: 3 * 2_222_223 });
        // 6,000 weight/min: burst 600, one weight per 60 s / 5,400.
        assert_eq!(gcra(6_000, 60_000).interval_us, 11_112);
        assert_eq!(gcra(1, 1_000), Gcra { interval_us: 1_000_000, window_us: 1_000_000 });
    }

    /// Greedy callers asking every millisecond: no window of `per` (aligned or sliding) ever
    /// sees more than `limit`, and the sustained rate is `limit - burst`.
    #[test]
    fn never_more_than_limit_in_any_window() {
        for (limit, per_ms) in [(30u32, 60_000u64), (10, 1_000), (3, 7_000), (1, 1_000), (300, 60_000)] {
            let g = gcra(limit, per_ms);
            let mut tat = 0;
            let mut granted = Vec::new();
            let start = 1_000_000_000u64;
            for t in 0..(per_ms * 5) {
                let now = start + t * 1_000;
                if let Ok(n) = g.check(tat, now, 1) {
                    tat = n;
                    granted.push(now);
                }
            }
            let per_us = per_ms * 1_000;
            let max_in_window = granted
                .iter()
                .enumerate()
                .map(|(i, &t0)| granted[i..].iter().take_while(|&&t| t < t0 + per_us).count())
                .max()
                .unwrap();
            assert!(max_in_window <= limit as usize, "{limit}/{per_ms}ms: {max_in_window} in one window");
            let burst = (limit as usize).div_ceil(10).max(1);
            assert!(granted.len() >= (limit as usize - burst).max(1) * 5, "{limit}/{per_ms}ms: only {}", granted.len());
        }
    }

    #[test]
    fn weights() {
        let g = gcra(6_000, 60_000);
        let now = 5_000_000;
        let tat = g.check(0, now, 600).unwrap();
        assert!(g.check(tat, now, 1).is_err(), "the burst of 600 is spent");
        assert!(g.fits(600) && !g.fits(601), "one request can weigh at most the burst");
        assert_eq!(g.check(0, now, 0), Ok(now), "weight 0 only checks");
    }

    #[test]
    fn clock_going_back_is_conservative() {
        let g = gcra(2, 1_000);
        let tat = g.check(0, 10_000_000, 1).unwrap();
        assert!(g.check(tat, 9_000_000, 1).is_err(), "an earlier clock never frees capacity");
    }
}
