//! Typed errors of the runtime.

use std::time::Duration;

/// A failure of a cache store (Redis or a custom [`Store`](crate::store::Store)).
///
/// Store errors never reach the caller of a cached function: the function body runs instead.
/// They are logged, counted and fed to the circuit breaker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operation did not finish within the configured per-operation timeout.
    #[error("store operation timed out after {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open: the store failed repeatedly and is skipped for a cool-down.
    #[error("circuit breaker open: store skipped until it recovers")]
    BreakerOpen,
    /// The backend failed (protocol, a failed authentication handshake, ...).
    #[error("store backend error: {0}")]
    Backend(String),
    /// The backend could not be reached (connection refused, reset or dropped).
    #[error("store connection error: {0}")]
    Connection(String),
    /// The server answered, with an error reply (`WRONGTYPE`, `OOM`, `READONLY`, `NOAUTH`,
    /// `NOPERM`, ...): the connection is healthy, so the circuit breaker does not count it, and
    /// the rest of the call keeps using the store (a write after a `WRONGTYPE` read replaces the
    /// foreign value).
    #[error("store replied with an error: {0}")]
    Reply(String),
}

impl StoreError {
    /// Whether this error says the store is unhealthy (and so should count towards the breaker).
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Timeout(_) | StoreError::Backend(_) | StoreError::Connection(_))
    }

    /// The `kind` label of this error in the exported metrics (`timeout`, `connection`,
    /// `server` (an error reply), `backend`, `breaker_open`).
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Timeout(_) => "timeout",
            StoreError::BreakerOpen => "breaker_open",
            StoreError::Backend(_) => "backend",
            StoreError::Connection(_) => "connection",
            StoreError::Reply(_) => "server",
        }
    }
}

/// A TTL that cannot be used: zero, negative, or too large.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TtlError {
    /// The TTL is zero: nothing would ever be served from the cache.
    #[error("TTL is zero")]
    Zero,
    /// The TTL expression produced a negative number.
    #[error("TTL is negative ({0})")]
    Negative(i64),
    /// More than ten years: almost certainly a unit mistake (milliseconds given as seconds?).
    #[error("TTL of {0:?} exceeds the maximum of ten years")]
    TooLong(Duration),
}

/// An error while building a [`Cache`](crate::Cache) from a builder or the environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The Redis URL could not be parsed or names an unsupported scheme.
    #[error("invalid Redis URL: {0}")]
    RedisUrl(String),
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable's name.
        var: &'static str,
        /// The value found.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A builder setting is out of range.
    #[error("invalid setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Redis support was requested but the `redis` feature is off.
    #[error("a Redis URL was given but syntra-cache was built without the `redis` feature")]
    RedisDisabled,
}

/// An error of the cache's own API (invalidation, key capture, default-cache set-up).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The future passed to [`key_of`](crate::key_of) / [`invalidate`](crate::invalidate) did
    /// not reach a `#[cached]` function on its first poll.
    #[error("the future did not call a #[cached] function")]
    NotCached,
    /// The store failed; nothing was changed or it is unknown whether it was.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The call's arguments give no key (an argument's `Serialize` failed).
    #[error(transparent)]
    Key(#[from] crate::key::KeyError),
    /// A prefix starting with `:` would reach the runtime's own keys (locks, budgets).
    #[error("invalid prefix {0:?}: it must not start with `:`")]
    InvalidPrefix(String),
    /// The operation needs something this cache does not have (e.g. rotation without Redis).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// [`set_default`](crate::set_default) was called after the default cache was first used.
    #[error("the default cache is already initialised")]
    DefaultAlreadySet,
}
