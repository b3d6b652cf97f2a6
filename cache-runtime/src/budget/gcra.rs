//! GCRA (generic cell rate algorithm) in integer microseconds: the same arithmetic as the Lua
//! script in `shared.rs`.

use super::Rate;

/// One rate limit of `limit` per `per`, as GCRA parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Emission interval `I = per / limit`, rounded up to a whole microsecond (never looser
    /// than declared).
    pub(crate) interval_us: u64,
    /// `limit · I`: how far ahead of now the theoretical arrival time may run (burst of `limit`).
    pub(crate) window_us: u64,
}

impl Gcra {
    pub(crate) fn new(rate: Rate) -> Gcra {
        let per_us = u64::try_from(rate.per.as_micros()).unwrap_or(u64::MAX);
        let limit = u64::from(rate.limit.max(1));
        let interval_us = per_us.div_ceil(limit).max(1);
        Gcra { interval_us, window_us: interval_us.saturating_mul(limit) }
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
        assert_eq!(gcra(30, 60_000), Gcra { interval_us: 2_000_000, window_us: 60_000_000 });
        assert_eq!(gcra(6_000, 60_000).interval_us, 10_000);
        // 7 per second does not divide: the interval rounds up, the window follows.
        let g = gcra(7, 1_000);
        assert_eq!(g.interval_us, 142_858);
        assert_eq!(g.window_us, 7 * 142_858);
    }

    #[test]
    fn burst_then_one_per_interval() {
        let g = gcra(10, 1_000);
        let now = 1_000_000_000;
        let mut tat = 0;
        for _ in 0..10 {
            tat = g.check(tat, now, 1).expect("burst of 10");
        }
        assert_eq!(tat, now + 1_000_000);
        assert_eq!(g.check(tat, now, 1), Err(100_000), "11th waits one interval");
        assert_eq!(g.check(tat, now + 99_999, 1), Err(1));
        let tat = g.check(tat, now + 100_000, 1).expect("one more after one interval");
        assert!(g.check(tat, now + 100_000, 1).is_err());
        // Idle for a full window: the whole burst is back.
        let mut tat2 = tat;
        for _ in 0..10 {
            tat2 = g.check(tat2, now + 2_100_000, 1).unwrap();
        }
        assert!(g.check(tat2, now + 2_100_000, 1).is_err());
    }

    #[test]
    fn weights() {
        let g = gcra(6_000, 60_000);
        let now = 5_000_000;
        let tat = g.check(0, now, 5_000).unwrap();
        assert_eq!(g.check(tat, now, 1_001), Err(10_000), "1,001 weight needs one more interval");
        assert!(g.check(tat, now, 1_000).is_ok());
        assert!(g.fits(6_000) && !g.fits(6_001));
        assert_eq!(g.check(0, now, 0), Ok(now), "weight 0 only checks");
    }

    #[test]
    fn clock_going_back_is_conservative() {
        let g = gcra(2, 1_000);
        let tat = g.check(0, 10_000_000, 2).unwrap();
        assert!(g.check(tat, 9_000_000, 1).is_err(), "an earlier clock never frees capacity");
    }
}
