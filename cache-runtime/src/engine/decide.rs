//! Freshness decisions as pure functions of (what a tier returned, now, the policy): no I/O, no
//! clock. The async steps only carry them out.

use super::Policy;
use crate::codec::Meta;
use std::time::Duration;

/// How far in the future a writer's clock may be before its `at` is not believed.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// What to do with what a tier returned.
#[derive(Debug, PartialEq)]
pub enum Decision<V> {
    /// A fresh value: answer with it.
    Serve(V),
    /// A fresh negative entry, and the return type has a negative answer.
    ServeNegative,
    /// A fresh value inside the early-refresh window: answer with it, and let one caller
    /// recompute it.
    ServeAndRefresh(V, Meta),
    /// Nothing to serve: compute. `stale` is a value that may still answer if the computation
    /// fails (inside its stale-if-error window); `expired` says an expired entry was seen.
    Compute {
        /// The last value, kept for stale-if-error.
        stale: Option<(V, Meta)>,
        /// An expired entry was seen.
        expired: bool,
    },
}

/// What a tier returned: a decoded entry (`None` value = a negative entry) or nothing.
pub type Found<V> = Option<(Option<V>, Meta)>;

/// Judges a found entry at `now_ms`. `negative_ok`: the return type can answer a negative entry.
pub fn decide<V>(found: Found<V>, now_ms: u64, policy: &Policy, negative_ok: bool) -> Decision<V> {
    let Some((value, meta)) = found else { return Decision::Compute { stale: None, expired: false } };
    let fresh_left = meta.fresh_left(now_ms);
    match value {
        None if !fresh_left.is_zero() && negative_ok => Decision::ServeNegative,
        None => Decision::Compute { stale: None, expired: fresh_left.is_zero() },
        Some(v) if fresh_left.is_zero() => {
            let keep = !meta.keep_left(now_ms).is_zero();
            Decision::Compute { stale: keep.then_some((v, meta)), expired: true }
        }
        Some(v) if !policy.refresh.is_zero() && fresh_left <= policy.refresh => Decision::ServeAndRefresh(v, meta),
        Some(v) => Decision::Serve(v),
    }
}

/// The longest TTLs a writer following this site's policy can have written (budget pacing may
/// stretch a TTL up to `stretch` times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Longest TTL of a value.
    pub ttl: Duration,
    /// Longest TTL of a negative entry.
    pub none_ttl: Duration,
    /// Longest stale window.
    pub stale: Duration,
}

impl Limits {
    /// The limits of `policy`; `stretch` is the budget's TTL-stretch ceiling (1 without a budget).
    pub fn of(policy: &Policy, stretch: Option<f64>) -> Limits {
        let ttl = stretch.map_or(policy.ttl, |s| policy.stretched_ttl(s));
        // A budgeted entry is kept one more (stretched) TTL so that a denial has something to serve.
        let stale = if stretch.is_some() { policy.stale.max(ttl) } else { policy.stale };
        Limits { ttl, none_ttl: policy.none_ttl.unwrap_or(policy.ttl), stale }
    }
}

/// Why stored metadata was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrust {
    /// Written further in the future than clock skew explains.
    FutureWrite {
        /// How far ahead of `now`.
        ahead: Duration,
    },
}

/// Metadata read from a shared tier, brought within what this site's own policy could have
/// written: a TTL or stale window beyond the limits is cut to them, an `at` in the future beyond
/// [`MAX_CLOCK_SKEW`] is not believed at all.
pub fn trust(meta: Meta, now_ms: u64, limits: &Limits) -> Result<Meta, Distrust> {
    let ahead = meta.written_at_ms.saturating_sub(now_ms);
    if ahead > MAX_CLOCK_SKEW.as_millis() as u64 {
        return Err(Distrust::FutureWrite { ahead: Duration::from_millis(ahead) });
    }
    let (ttl, stale) = if meta.negative { (limits.none_ttl, Duration::ZERO) } else { (limits.ttl, limits.stale) };
    Ok(Meta { ttl: meta.ttl.min(ttl), stale: meta.stale.min(stale), ..meta })
}

/// After a failed computation: whether the last value may answer. An early refresh always falls
/// back to its still-fresh value; otherwise only inside the stale-if-error window.
pub fn stale_usable(meta: &Meta, now_ms: u64, policy: &Policy, early: bool) -> bool {
    early
        || (!policy.stale.is_zero()
            && now_ms < meta.written_at_ms.saturating_add((meta.ttl + policy.stale).as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn meta(at: u64, ttl_s: u64, stale_s: u64, negative: bool) -> Meta {
        Meta { written_at_ms: at, ttl: Duration::from_secs(ttl_s), stale: Duration::from_secs(stale_s), negative }
    }

    fn policy() -> Policy {
        Policy::new(Duration::from_secs(90)).stale(Duration::from_secs(60)).refresh(Duration::from_secs(10))
    }

    #[test]
    fn decisions_table() {
        let p = policy();
        let t0 = 1_000_000;
        /// (case, what the tier returned, now, the type has a negative answer, expected decision)
        type Case = (&'static str, Found<u8>, u64, bool, Decision<u8>);
        let cases: Vec<Case> = vec![
            ("nothing", None, t0, false, Decision::Compute { stale: None, expired: false }),
            ("fresh", Some((Some(7), meta(t0, 90, 60, false))), t0 + 10 * S, false, Decision::Serve(7)),
            (
                "refresh window",
                Some((Some(7), meta(t0, 90, 60, false))),
                t0 + 85 * S,
                false,
                Decision::ServeAndRefresh(7, meta(t0, 90, 60, false)),
            ),
            (
                "expired, inside stale window",
                Some((Some(7), meta(t0, 90, 60, false))),
                t0 + 100 * S,
                false,
                Decision::Compute { stale: Some((7, meta(t0, 90, 60, false))), expired: true },
            ),
            (
                "expired past stale window",
                Some((Some(7), meta(t0, 90, 60, false))),
                t0 + 151 * S,
                false,
                Decision::Compute { stale: None, expired: true },
            ),
            ("negative, Option", Some((None, meta(t0, 30, 0, true))), t0 + S, true, Decision::ServeNegative),
            (
                "negative, not Option",
                Some((None, meta(t0, 30, 0, true))),
                t0 + S,
                false,
                Decision::Compute { stale: None, expired: false },
            ),
            (
                "negative expired",
                Some((None, meta(t0, 30, 0, true))),
                t0 + 31 * S,
                true,
                Decision::Compute { stale: None, expired: true },
            ),
        ];
        for (name, found, now, negative_ok, want) in cases {
            assert_eq!(decide(found, now, &p, negative_ok), want, "{name}");
        }
    }

    #[test]
    fn no_refresh_window_means_serve_until_expiry() {
        let p = Policy::new(Duration::from_secs(90));
        assert_eq!(decide(Some((Some(1u8), meta(0, 90, 0, false))), 89_999, &p, false), Decision::Serve(1));
    }

    #[test]
    fn stored_metadata_is_clamped_to_the_policy() {
        let p = policy();
        let limits = Limits::of(&p, None);
        let now = 10_000_000;
        // A huge TTL planted in the store is cut to the site's own TTL.
        let m = trust(meta(now, 1_000_000, 1_000_000, false), now, &limits).unwrap();
        assert_eq!((m.ttl, m.stale), (Duration::from_secs(90), Duration::from_secs(60)));
        assert_eq!(
            decide(Some((Some(1u8), m)), now + 91 * S, &p, false),
            Decision::Compute { stale: Some((1, m)), expired: true }
        );
        // A far-future write is not believed; a little skew is.
        assert!(matches!(trust(meta(now + 3600 * S, 90, 0, false), now, &limits), Err(Distrust::FutureWrite { .. })));
        assert!(trust(meta(now + 2 * S, 90, 0, false), now, &limits).is_ok());
        // Negative entries: at most the none TTL (the TTL without one), never a stale window.
        let n = trust(meta(now, 1_000, 50, true), now, &limits).unwrap();
        assert_eq!((n.ttl, n.stale), (Duration::from_secs(90), Duration::ZERO));
        // Budget pacing may stretch TTLs: up to the ceiling, no further.
        let stretched = Limits::of(&p, Some(4.0));
        assert_eq!(trust(meta(now, 300, 0, false), now, &stretched).unwrap().ttl, Duration::from_secs(300));
        assert_eq!(trust(meta(now, 400, 0, false), now, &stretched).unwrap().ttl, Duration::from_secs(360));
    }

    #[test]
    fn stale_fallback() {
        let p = policy();
        let m = meta(0, 90, 60, false);
        assert!(stale_usable(&m, 149 * S, &p, false));
        assert!(!stale_usable(&m, 151 * S, &p, false));
        assert!(stale_usable(&m, 10_000 * S, &p, true), "an early refresh keeps its value");
        assert!(!stale_usable(&m, 91 * S, &Policy::new(Duration::from_secs(90)), false));
    }
}
