//! Calendar periods of the quotas: UTC days and months, in microseconds since the Unix epoch.

use super::QuotaPeriod;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const US_PER_SEC: u64 = 1_000_000;
const US_PER_DAY: u64 = 86_400 * US_PER_SEC;

/// Microseconds since the Unix epoch (0 before it, saturating far after it).
pub(crate) fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One calendar day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    /// `yyyymmdd` for a day, `yyyymm` for a month.
    pub(crate) id: u32,
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
}

impl Period {
    /// The period of `kind` containing `now_us`.
    pub(crate) fn of(kind: QuotaPeriod, now_us: u64) -> Period {
        let day = (now_us / US_PER_DAY) as i64;
        let (y, m, d) = civil_from_days(day);
        let ymd = |y: i64, m: u32, d: u32| (y.clamp(0, 9999) as u32) * 10_000 + m * 100 + d;
        let at = |days: i64| (days.max(0) as u64).saturating_mul(US_PER_DAY);
        match kind {
            QuotaPeriod::Day => Period { id: ymd(y, m, d), start_us: at(day), end_us: at(day + 1) },
            QuotaPeriod::Month => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Period {
                    id: ymd(y, m, d) / 100,
                    start_us: at(days_from_civil(y, m, 1)),
                    end_us: at(days_from_civil(ny, nm, 1)),
                }
            }
        }
    }

    /// The key suffix: `yyyymmdd` or `yyyymm`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn key_id(&self, kind: QuotaPeriod) -> String {
        match kind {
            QuotaPeriod::Day => format!("{:08}", self.id),
            QuotaPeriod::Month => format!("{:06}", self.id),
        }
    }

    pub(crate) fn len_us(&self) -> u64 {
        self.end_us - self.start_us
    }

    /// Milliseconds since the epoch at which the period ends.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn end_ms(&self) -> u64 {
        self.end_us / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: u64, min: u64, s: u64) -> u64 {
        (days_from_civil(y, m, d) as u64 * 86_400 + h * 3600 + min * 60 + s) * US_PER_SEC
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in -1000..40_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        }
    }

    #[test]
    fn day_boundaries() {
        let last = at(2024, 2, 29, 23, 59, 59) + 999_999;
        let p = Period::of(QuotaPeriod::Day, last);
        assert_eq!(p.id, 20240229);
        assert_eq!(p.start_us, at(2024, 2, 29, 0, 0, 0));
        assert_eq!(p.end_us, at(2024, 3, 1, 0, 0, 0));
        assert_eq!(p.key_id(QuotaPeriod::Day), "20240229");
        let next = Period::of(QuotaPeriod::Day, last + 1);
        assert_eq!(next.id, 20240301);
        assert_eq!(next.start_us, p.end_us);
        assert_eq!(p.len_us(), 86_400 * US_PER_SEC);
    }

    #[test]
    fn month_boundaries() {
        let feb = Period::of(QuotaPeriod::Month, at(2024, 2, 10, 12, 0, 0));
        assert_eq!((feb.id, feb.key_id(QuotaPeriod::Month)), (202402, "202402".to_owned()));
        assert_eq!(feb.start_us, at(2024, 2, 1, 0, 0, 0));
        assert_eq!(feb.end_us, at(2024, 3, 1, 0, 0, 0));
        assert_eq!(feb.len_us(), 29 * 86_400 * US_PER_SEC, "leap February");
        let dec = Period::of(QuotaPeriod::Month, at(2025, 12, 31, 23, 59, 59));
        assert_eq!(dec.id, 202512);
        assert_eq!(dec.end_us, at(2026, 1, 1, 0, 0, 0));
        let jan = Period::of(QuotaPeriod::Month, dec.end_us);
        assert_eq!((jan.id, jan.start_us), (202601, dec.end_us));
        assert_eq!(Period::of(QuotaPeriod::Month, 0).id, 197001);
        assert_eq!(dec.end_ms(), dec.end_us / 1000);
    }
}
