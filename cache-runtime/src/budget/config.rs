//! Declarations: [`Budget`], the [`Budgets`] registry, environment overrides and the seed's
//! defaults.

use super::QuotaPeriod;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Default ceiling of [`Budget::max_ttl_stretch`]: high enough that the seed's quotas can hold
/// (CoinGecko's 10,000 calls a month against tens of thousands of TTL-bound misses a day needs
/// about 50x); each endpoint bounds its own staleness with a freshness floor
/// ([`Policy::max_ttl`](crate::engine::Policy::max_ttl), `max_ttl = ..` in `#[cached]`).
pub const DEFAULT_MAX_TTL_STRETCH: f64 = 64.0;
/// Default of [`Budget::max_wait`].
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2);

/// A rate limit: `limit` requests (or units of weight) per `per`.
///
/// Displays as `30/min`, `10/s`, `300/5s`, `6000/min`; the same forms parse in
/// `SYNTRA_BUDGET_<NAME>_RATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Requests (or weight) allowed per window; at least 1.
    pub limit: u32,
    /// The window; at least 1 ms.
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.limit)?;
        let ms = self.per.as_millis();
        let (n, unit) = if ms == 0 || !self.per.subsec_nanos().is_multiple_of(1_000_000) {
            (self.per.as_micros(), "us")
        } else if ms.is_multiple_of(86_400_000) {
            (ms / 86_400_000, "day")
        } else if ms.is_multiple_of(3_600_000) {
            (ms / 3_600_000, "h")
        } else if ms.is_multiple_of(60_000) {
            (ms / 60_000, "min")
        } else if ms.is_multiple_of(1_000) {
            (ms / 1_000, "s")
        } else {
            (ms, "ms")
        };
        if n == 1 {
            f.write_str(unit)
        } else {
            write!(f, "{n}{unit}")
        }
    }
}

/// What a provider allows: rate limits, day and month quotas, and how to pace and wait.
///
/// Built with [`Budget::new`] and the chainable setters; checked by [`Budget::validate`] (which
/// [`Budgets::new`] calls).
///
/// ```
/// use std::time::Duration;
/// use syntra_cache_runtime::budget::Budget;
/// let cg = Budget::new("coingecko").rate(30, Duration::from_secs(60)).quota_month(10_000);
/// assert_eq!(cg.rates[0].to_string(), "30/min");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Budget {
    /// The budget's name, used by cached functions (`budget = "coingecko"`), in Redis keys and in
    /// environment variables: 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
    pub name: String,
    /// Rate limits; all must allow a request.
    pub rates: Vec<Rate>,
    /// Quota per calendar day (UTC).
    pub quota_day: Option<u64>,
    /// Quota per calendar month (UTC).
    pub quota_month: Option<u64>,
    /// Ceiling of [`ttl_stretch`](super::BudgetEnforcer::ttl_stretch) (default 64; 1.0 turns
    /// pacing off).
    pub max_ttl_stretch: f64,
    /// How long [`acquire_or_wait`](super::BudgetEnforcer::acquire_or_wait) may wait for a permit
    /// (default 2 s; zero never waits).
    pub max_wait: Duration,
}

impl Budget {
    /// A budget with no limits yet, a stretch ceiling of [`DEFAULT_MAX_TTL_STRETCH`] and a maximum wait of 2 s.
    pub fn new(name: impl Into<String>) -> Self {
        Budget {
            name: name.into(),
            rates: Vec::new(),
            quota_day: None,
            quota_month: None,
            max_ttl_stretch: DEFAULT_MAX_TTL_STRETCH,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// Adds a rate limit of `limit` requests (or units of weight) per `per`. Several may be
    /// given (e.g. 10/s and 500/min); a request needs all of them.
    pub fn rate(mut self, limit: u32, per: Duration) -> Self {
        self.rates.push(Rate { limit, per });
        self
    }

    /// Sets the quota per calendar day (UTC).
    pub fn quota_day(mut self, n: u64) -> Self {
        self.quota_day = Some(n);
        self
    }

    /// Sets the quota per calendar month (UTC).
    pub fn quota_month(mut self, n: u64) -> Self {
        self.quota_month = Some(n);
        self
    }

    /// Sets the pacing ceiling: effective TTLs are stretched at most this much (>= 1.0).
    pub fn max_ttl_stretch(mut self, ceiling: f64) -> Self {
        self.max_ttl_stretch = ceiling;
        self
    }

    /// Sets how long a caller may wait for a permit.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The quota of `period`, if any.
    pub fn quota(&self, period: QuotaPeriod) -> Option<u64> {
        match period {
            QuotaPeriod::Day => self.quota_day,
            QuotaPeriod::Month => self.quota_month,
        }
    }

    /// Whether the budget has no limit at all (acquire only honours 429 holds).
    pub fn is_unlimited(&self) -> bool {
        self.rates.is_empty() && self.quota_day.is_none() && self.quota_month.is_none()
    }

    /// Checks the declaration.
    pub fn validate(&self) -> Result<(), BudgetError> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
        if !ok_name {
            return Err(BudgetError::InvalidName { name: self.name.clone() });
        }
        for r in &self.rates {
            let reason = if r.limit == 0 {
                Some("the limit must be at least 1")
            } else if r.per < Duration::from_millis(1) {
                Some("the window must be at least 1 ms")
            } else if r.per > Duration::from_secs(366 * 86_400) {
                Some("the window must be at most a year (use a quota for longer periods)")
            } else if u128::from(r.limit) > r.per.as_micros() {
                Some("more than one request per microsecond")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(BudgetError::InvalidRate { budget: self.name.clone(), rate: r.to_string(), reason });
            }
        }
        for period in [QuotaPeriod::Day, QuotaPeriod::Month] {
            if self.quota(period) == Some(0) {
                return Err(BudgetError::ZeroQuota { budget: self.name.clone(), period });
            }
        }
        if !self.max_ttl_stretch.is_finite() || self.max_ttl_stretch < 1.0 {
            return Err(BudgetError::InvalidStretch { budget: self.name.clone(), value: self.max_ttl_stretch });
        }
        Ok(())
    }

    /// The prefix of this budget's environment variables: `SYNTRA_BUDGET_` and the name in upper
    /// case with `-` and `.` as `_` (`dexscreener_profiles` → `SYNTRA_BUDGET_DEXSCREENER_PROFILES`).
    pub fn env_prefix(&self) -> String {
        let name: String =
            self.name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("SYNTRA_BUDGET_{name}")
    }
}

/// A declaration that cannot be used, an unknown budget, or a bad enforcer setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The name is empty, too long or has characters other than letters, digits, `_`, `-`, `.`.
    #[error("invalid budget name {name:?}: use 1 to 64 ASCII letters, digits, `_`, `-` or `.`")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Two budgets share a name.
    #[error("budget {name:?} is declared twice")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A rate limit that cannot be enforced (zero limit, window out of range).
    #[error("budget {budget:?}: invalid rate {rate}: {reason}")]
    InvalidRate {
        /// The budget.
        budget: String,
        /// The rate, as declared.
        rate: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A quota of zero (remove the quota instead, or use a tiny one).
    #[error("budget {budget:?}: the {period} quota must be at least 1")]
    ZeroQuota {
        /// The budget.
        budget: String,
        /// Day or month.
        period: QuotaPeriod,
    },
    /// `max_ttl_stretch` below 1.0 or not finite.
    #[error("budget {budget:?}: max_ttl_stretch must be a finite number >= 1.0, got {value}")]
    InvalidStretch {
        /// The budget.
        budget: String,
        /// The value given.
        value: f64,
    },
    /// No budget of that name is declared.
    #[error("unknown budget {name:?} (declared: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The declared names, comma-separated.
        known: String,
    },
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable's name.
        var: String,
        /// The value found.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An enforcer setting is out of range (namespace, timeouts, Redis URL).
    #[error("invalid setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

/// The declared budgets, by name. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    list: Vec<Budget>,
    index: HashMap<String, usize>,
}

impl Budgets {
    /// The budgets, validated (names unique, every declaration valid).
    pub fn new(budgets: Vec<Budget>) -> Result<Self, BudgetError> {
        let mut index = HashMap::with_capacity(budgets.len());
        for (i, b) in budgets.iter().enumerate() {
            b.validate()?;
            if index.insert(b.name.clone(), i).is_some() {
                return Err(BudgetError::Duplicate { name: b.name.clone() });
            }
        }
        Ok(Budgets { list: budgets, index })
    }

    /// The free tiers of the seed's providers (figures from its caching strategy), each with the
    /// default stretch ceiling (64) and maximum wait (2 s):
    ///
    /// | budget | rates | day | month |
    /// |---|---|---|---|
    /// | `coingecko` | 30/min | | 10,000 |
    /// | `coinmarketcap` | | 333 | 10,000 |
    /// | `dexscreener` | 300/min | | |
    /// | `dexscreener_profiles` | 60/min | | |
    /// | `binance` | 6,000 weight/min | | |
    /// | `cryptopanic` | 60/min (generous guard: no published limit) | | |
    /// | `feargreed` | 60/min (generous guard: public API, updated daily) | | |
    ///
    /// Binance's separate 3,000 requests/min is implied by 6,000 weight/min for every endpoint of
    /// weight 2 or more; declare a second budget if single-weight calls dominate. The guards of
    /// CryptoPanic and Fear & Greed are far above what their cached TTLs need and only stop a
    /// runaway loop.
    pub fn seed_defaults() -> Self {
        let min = Duration::from_secs(60);
        Budgets::new(vec![
            Budget::new("coingecko").rate(30, min).quota_month(10_000),
            Budget::new("coinmarketcap").quota_day(333).quota_month(10_000),
            Budget::new("dexscreener").rate(300, min),
            Budget::new("dexscreener_profiles").rate(60, min),
            Budget::new("binance").rate(6_000, min),
            Budget::new("cryptopanic").rate(60, min),
            Budget::new("feargreed").rate(60, min),
        ])
        .unwrap_or_default()
    }

    /// The budget called `name`.
    pub fn get(&self, name: &str) -> Option<&Budget> {
        self.index.get(name).map(|&i| &self.list[i])
    }

    /// The budget called `name`, or [`BudgetError::Unknown`] listing the declared names (for
    /// checking a cached function's `budget = "..."` at start-up).
    pub fn require(&self, name: &str) -> Result<&Budget, BudgetError> {
        self.get(name).ok_or_else(|| BudgetError::Unknown { name: name.to_owned(), known: self.names().join(", ") })
    }

    /// The declared names, in declaration order.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|b| b.name.as_str()).collect()
    }

    /// The budgets, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &Budget> {
        self.list.iter()
    }

    /// How many budgets are declared.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no budget is declared.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds `budget`, or replaces the one of the same name.
    pub fn with(mut self, budget: Budget) -> Result<Self, BudgetError> {
        budget.validate()?;
        match self.index.get(&budget.name) {
            Some(&i) => self.list[i] = budget,
            None => {
                self.index.insert(budget.name.clone(), self.list.len());
                self.list.push(budget);
            }
        }
        Ok(self)
    }

    /// Applies the environment's overrides, see [`with_vars`](Self::with_vars).
    pub fn with_env(self) -> Result<Self, BudgetError> {
        self.with_vars(|k| std::env::var(k).ok())
    }

    /// Applies overrides from `get` (a variable source; [`with_env`](Self::with_env) reads the
    /// process environment). For each declared budget, with `<NAME>` its name in upper case and
    /// `-`/`.` as `_` ([`Budget::env_prefix`]):
    ///
    /// | variable | value | example |
    /// |---|---|---|
    /// | `SYNTRA_BUDGET_<NAME>_RATE` | replaces every rate limit: comma-separated `<limit>/<window>`, the window a count and a unit (`ms`, `s`, `min` or `m`, `h`, `day` or `d`; count 1 if omitted); `none` removes them | `30/60s`, `30/min`, `10/s,500/min` |
    /// | `SYNTRA_BUDGET_<NAME>_DAY` | quota per UTC day; `none` removes it | `333` |
    /// | `SYNTRA_BUDGET_<NAME>_MONTH` | quota per UTC month; `none` removes it | `10000` |
    /// | `SYNTRA_BUDGET_<NAME>_MAX_WAIT` | longest wait for a permit: a count and a unit | `500ms`, `2s` |
    /// | `SYNTRA_BUDGET_<NAME>_MAX_STRETCH` | pacing ceiling (>= 1.0) | `4` |
    ///
    /// Empty variables are ignored; numbers may use `_` as a separator (`10_000`). A bad value is
    /// a [`BudgetError::Env`] naming the variable; the result is validated again.
    pub fn with_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self, BudgetError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        for b in &mut self.list {
            let prefix = b.env_prefix();
            let err = |var: &str, value: &str, reason: String| BudgetError::Env {
                var: var.to_owned(),
                value: value.to_owned(),
                reason,
            };
            let var = format!("{prefix}_RATE");
            if let Some(v) = get(&var) {
                b.rates = parse_rates(&v).map_err(|r| err(&var, &v, r))?;
            }
            for (suffix, period) in [("_DAY", QuotaPeriod::Day), ("_MONTH", QuotaPeriod::Month)] {
                let var = format!("{prefix}{suffix}");
                if let Some(v) = get(&var) {
                    let q = if is_none(&v) { None } else { Some(parse_count(&v).map_err(|r| err(&var, &v, r))?) };
                    match period {
                        QuotaPeriod::Day => b.quota_day = q,
                        QuotaPeriod::Month => b.quota_month = q,
                    }
                }
            }
            let var = format!("{prefix}_MAX_WAIT");
            if let Some(v) = get(&var) {
                b.max_wait = parse_window(&v).map_err(|r| err(&var, &v, r))?;
            }
            let var = format!("{prefix}_MAX_STRETCH");
            if let Some(v) = get(&var) {
                b.max_ttl_stretch = v.parse::<f64>().map_err(|e| err(&var, &v, e.to_string()))?;
            }
            b.validate().map_err(|e| BudgetError::Env {
                var: format!("{prefix}_*"),
                value: String::new(),
                reason: e.to_string(),
            })?;
        }
        Ok(self)
    }
}

fn is_none(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "none" | "off" | "unlimited")
}

fn parse_count(v: &str) -> Result<u64, String> {
    let digits: String = v.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err("expected a whole number".into());
    }
    digits.parse::<u64>().map_err(|e| e.to_string())
}

/// `60s`, `min`, `5m`, `500ms`, `1h`, `day`.
pub(crate) fn parse_window(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '_')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n = if num.is_empty() { 1 } else { parse_count(num)? };
    let unit_ms: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "" => return Err("a duration needs a unit: ms, s, min, h or day".into()),
        other => return Err(format!("unknown unit {other:?}: use ms, s, min, h or day")),
    };
    n.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(|| "duration too large".into())
}

/// `30/min`, `30/60s`, `10/s,500/min`, `none`.
pub(crate) fn parse_rates(v: &str) -> Result<Vec<Rate>, String> {
    if is_none(v.trim()) {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|part| {
            let (limit, window) =
                part.split_once('/').ok_or_else(|| format!("{:?}: expected <limit>/<window>", part.trim()))?;
            let limit = u32::try_from(parse_count(limit.trim())?).map_err(|_| "limit too large".to_owned())?;
            Ok(Rate { limit, per: parse_window(window)? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn rate_display_and_parse_round_trip() {
        let cases = [(30, 60_000, "30/min"), (10, 1_000, "10/s"), (300, 5_000, "300/5s"), (5, 250, "5/250ms")];
        for (limit, ms, text) in cases {
            let r = Rate { limit, per: Duration::from_millis(ms) };
            assert_eq!(r.to_string(), text);
            assert_eq!(parse_rates(text).unwrap(), vec![r]);
        }
        assert_eq!(Rate { limit: 1, per: Duration::from_secs(7_200) }.to_string(), "1/2h");
        assert_eq!(Rate { limit: 1, per: Duration::from_secs(86_400) }.to_string(), "1/day");
    }

    #[test]
    fn env_rate_forms() {
        let min = Duration::from_secs(60);
        assert_eq!(parse_rates("30/60s").unwrap(), vec![Rate { limit: 30, per: min }]);
        assert_eq!(parse_rates("30/min").unwrap(), vec![Rate { limit: 30, per: min }]);
        assert_eq!(parse_rates("30 / 1m").unwrap(), vec![Rate { limit: 30, per: min }]);
        assert_eq!(parse_rates("6_000/min").unwrap()[0].limit, 6_000);
        assert_eq!(
            parse_rates("10/s, 500/min").unwrap(),
            vec![Rate { limit: 10, per: Duration::from_secs(1) }, Rate { limit: 500, per: min }]
        );
        assert_eq!(parse_rates("none").unwrap(), vec![]);
        for bad in ["30", "30/", "x/min", "30/60", "30/fortnight", "-1/s", "99999999999/s", ""] {
            assert!(parse_rates(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn env_overrides() {
        let budgets = Budgets::seed_defaults()
            .with_vars(vars(&[
                ("SYNTRA_BUDGET_COINGECKO_RATE", "25/60s"),
                ("SYNTRA_BUDGET_COINGECKO_MONTH", "9_000"),
                ("SYNTRA_BUDGET_COINMARKETCAP_DAY", "none"),
                ("SYNTRA_BUDGET_DEXSCREENER_PROFILES_RATE", "30/min"),
                ("SYNTRA_BUDGET_BINANCE_MAX_WAIT", "500ms"),
                ("SYNTRA_BUDGET_BINANCE_MAX_STRETCH", "2.5"),
                ("SYNTRA_BUDGET_FEARGREED_RATE", " "),
            ]))
            .unwrap();
        let cg = budgets.get("coingecko").unwrap();
        assert_eq!(cg.rates, vec![Rate { limit: 25, per: Duration::from_secs(60) }]);
        assert_eq!(cg.quota_month, Some(9_000));
        assert_eq!(budgets.get("coinmarketcap").unwrap().quota_day, None);
        assert_eq!(budgets.get("dexscreener_profiles").unwrap().rates[0].limit, 30);
        assert_eq!(budgets.get("dexscreener").unwrap().rates[0].limit, 300, "untouched");
        let bn = budgets.get("binance").unwrap();
        assert_eq!((bn.max_wait, bn.max_ttl_stretch), (Duration::from_millis(500), 2.5));
        assert_eq!(budgets.get("feargreed").unwrap().rates[0].limit, 60, "empty values are ignored");

        let bad = Budgets::seed_defaults().with_vars(vars(&[("SYNTRA_BUDGET_COINGECKO_DAY", "lots")]));
        assert!(
            matches!(bad, Err(BudgetError::Env { ref var, .. }) if var == "SYNTRA_BUDGET_COINGECKO_DAY"),
            "{bad:?}"
        );
        let zero = Budgets::seed_defaults().with_vars(vars(&[("SYNTRA_BUDGET_COINGECKO_RATE", "0/min")]));
        assert!(matches!(zero, Err(BudgetError::Env { .. })), "{zero:?}");
        let stretch = Budgets::seed_defaults().with_vars(vars(&[("SYNTRA_BUDGET_BINANCE_MAX_STRETCH", "0.5")]));
        assert!(stretch.is_err());
        assert_eq!(Budget::new("dex-screener.v2").env_prefix(), "SYNTRA_BUDGET_DEX_SCREENER_V2");
    }

    #[test]
    fn declaration_errors() {
        let min = Duration::from_secs(60);
        let err = |b: Budget| Budgets::new(vec![b]).unwrap_err();
        assert!(matches!(err(Budget::new("")), BudgetError::InvalidName { .. }));
        assert!(matches!(err(Budget::new("coin gecko")), BudgetError::InvalidName { .. }));
        assert!(matches!(err(Budget::new("a").rate(0, min)), BudgetError::InvalidRate { .. }));
        assert!(matches!(err(Budget::new("a").rate(1, Duration::ZERO)), BudgetError::InvalidRate { .. }));
        assert!(matches!(err(Budget::new("a").rate(5_000, Duration::from_millis(1))), BudgetError::InvalidRate { .. }));
        assert!(matches!(err(Budget::new("a").quota_day(0)), BudgetError::ZeroQuota { period: QuotaPeriod::Day, .. }));
        assert!(matches!(err(Budget::new("a").max_ttl_stretch(f64::NAN)), BudgetError::InvalidStretch { .. }));
        assert!(matches!(err(Budget::new("a").max_ttl_stretch(0.9)), BudgetError::InvalidStretch { .. }));
        let dup = Budgets::new(vec![Budget::new("a"), Budget::new("a")]).unwrap_err();
        assert_eq!(dup, BudgetError::Duplicate { name: "a".into() });
        let budgets = Budgets::new(vec![Budget::new("a"), Budget::new("b")]).unwrap();
        let unknown = budgets.require("c").unwrap_err();
        assert_eq!(unknown.to_string(), "unknown budget \"c\" (declared: a, b)");
    }

    #[test]
    fn seed_defaults() {
        let b = Budgets::seed_defaults();
        assert_eq!(
            b.names(),
            [
                "coingecko",
                "coinmarketcap",
                "dexscreener",
                "dexscreener_profiles",
                "binance",
                "cryptopanic",
                "feargreed"
            ]
        );
        let cg = b.get("coingecko").unwrap();
        assert_eq!((cg.rates[0].to_string(), cg.quota_month), ("30/min".to_owned(), Some(10_000)));
        let cmc = b.get("coinmarketcap").unwrap();
        assert_eq!((cmc.quota_day, cmc.quota_month, cmc.rates.len()), (Some(333), Some(10_000), 0));
        assert_eq!(b.get("binance").unwrap().rates[0].limit, 6_000);
        assert!(b.iter().all(|b| b.max_ttl_stretch == DEFAULT_MAX_TTL_STRETCH && b.max_wait == Duration::from_secs(2)));
        let b = b.with(Budget::new("coingecko").rate(10, Duration::from_secs(60))).unwrap();
        assert_eq!((b.len(), b.get("coingecko").unwrap().quota_month), (7, None), "replaced");
    }
}
