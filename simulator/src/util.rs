//! Small helpers: query strings, replies, time formatting.

use serde_json::Value;

/// Decoded query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Query(
            q.map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
                .unwrap_or_default(),
        )
    }

    /// First value of `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(v) => v.eq_ignore_ascii_case("true"),
            None => default,
        }
    }

    /// Comma-separated list parameter, trimmed, without empty items.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// A response before it is turned into HTTP.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Self {
        Reply { status, body: v.to_string(), headers: Vec::new() }
    }

    pub fn ok(v: &Value) -> Self {
        Reply::json(200, v)
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// `YYYY-MM-DD` of a unix-seconds instant (UTC).
pub(crate) fn civil(secs: i64) -> (i64, u32, u32) {
    let days = secs.div_euclid(86_400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ISO-8601 with milliseconds, as CoinGecko / CoinMarketCap print: `2025-01-01T00:00:00.000Z`.
pub(crate) fn iso_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil(secs);
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// ISO-8601 without milliseconds: `2025-01-01T00:00:00Z`.
pub(crate) fn iso_s(secs: i64) -> String {
    let (y, mo, d) = civil(secs);
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// `YYYY-MM-DD`.
pub(crate) fn date(secs: i64) -> String {
    let (y, mo, d) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// A decimal string with 8 places, as Binance prints prices and quantities.
pub(crate) fn dec8(x: f64) -> String {
    format!("{x:.8}")
}

/// Significant-digit rounding for JSON numbers.
pub(crate) fn num(x: f64) -> Value {
    Value::from(crate::market::round_sig(x, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_735_689_600_123), "2025-01-01T00:00:00.123Z");
        assert_eq!(iso_s(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(date(951_782_400), "2000-02-29");
    }
}
