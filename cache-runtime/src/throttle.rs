//! Rate limit of the `Cache ERROR` lines logged while a store is failing: during an outage every
//! call fails the same way, and one line per call would bury everything else in the log.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

/// Default interval between two `Cache ERROR` lines of one cache.
pub(crate) const DEFAULT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Lets one line through per interval and counts the ones held back.
#[derive(Debug)]
pub(crate) struct ErrorLog {
    interval_ms: u64,
    epoch: Instant,
    /// Milliseconds since `epoch` before which lines are held back.
    next_ms: AtomicU64,
    held: AtomicU64,
}

impl ErrorLog {
    /// One line per `interval`; zero lets every line through.
    pub(crate) fn new(interval: Duration) -> Self {
        ErrorLog {
            interval_ms: interval.as_millis().min(u64::MAX as u128) as u64,
            epoch: Instant::now(),
            next_ms: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// The interval.
    pub(crate) fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// `Some(lines held back since the last one)` when a line may be written now, else `None`
    /// (and the line is counted as held back).
    pub(crate) fn admit(&self) -> Option<u64> {
        if self.interval_ms == 0 {
            return Some(0);
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Acquire);
        if now >= next && self.next_ms.compare_exchange(next, now + self.interval_ms, AcqRel, Acquire).is_ok() {
            return Some(self.held.swap(0, AcqRel));
        }
        self.held.fetch_add(1, AcqRel);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let log = ErrorLog::new(Duration::from_millis(40));
        assert_eq!(log.admit(), Some(0));
        for _ in 0..99 {
            assert_eq!(log.admit(), None);
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(log.admit(), Some(99), "the next line carries the count");
        assert_eq!(log.admit(), None);
        let every = ErrorLog::new(Duration::ZERO);
        assert!((0..5).all(|_| every.admit() == Some(0)));
    }
}
