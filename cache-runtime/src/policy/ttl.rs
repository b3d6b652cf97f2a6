//! TTL values: what `ttl = EXPR` accepts.

use crate::error::TtlError;
use std::time::Duration;

const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Types usable as a TTL: whole seconds (unsigned or signed integers) or a [`Duration`].
pub trait IntoTtl {
    /// The TTL, or why it cannot be used.
    fn into_ttl(self) -> Result<Duration, TtlError>;
}

fn check(d: Duration) -> Result<Duration, TtlError> {
    if d.is_zero() {
        Err(TtlError::Zero)
    } else if d > MAX_TTL {
        Err(TtlError::TooLong(d))
    } else {
        Ok(d)
    }
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Duration, TtlError> {
        check(self)
    }
}

impl IntoTtl for &Duration {
    fn into_ttl(self) -> Result<Duration, TtlError> {
        check(*self)
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl IntoTtl for $t {
            fn into_ttl(self) -> Result<Duration, TtlError> {
                check(Duration::from_secs(self as u64))
            }
        }
    )*};
}
macro_rules! signed {
    ($($t:ty),*) => {$(
        impl IntoTtl for $t {
            fn into_ttl(self) -> Result<Duration, TtlError> {
                if self < 0 { Err(TtlError::Negative(self as i64)) } else { check(Duration::from_secs(self as u64)) }
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, usize);
signed!(i8, i16, i32, i64, isize);

/// Converts a TTL expression (see [`IntoTtl`]).
pub fn ttl<T: IntoTtl>(value: T) -> Result<Duration, TtlError> {
    value.into_ttl()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(ttl(90u64), Ok(Duration::from_secs(90)));
        assert_eq!(ttl(90), Ok(Duration::from_secs(90)));
        assert_eq!(ttl(Duration::from_millis(1500)), Ok(Duration::from_millis(1500)));
        assert_eq!(ttl(0u32), Err(TtlError::Zero));
        assert_eq!(ttl(-5i64), Err(TtlError::Negative(-5)));
        assert!(matches!(ttl(u64::MAX), Err(TtlError::TooLong(_))));
    }
}
