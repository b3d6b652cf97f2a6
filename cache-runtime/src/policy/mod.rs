//! Settings of the policies the [engine](crate::engine) applies: TTL values and the
//! cross-instance stampede lock.

pub mod ttl;

use std::time::Duration;

/// Settings of the cross-instance stampede lock (`SET NX PX` with a random token).
#[derive(Debug, Clone, Copy)]
pub struct LockConfig {
    /// How long a lock holder may compute before the lock lapses.
    pub lease: Duration,
    /// How long other instances wait for the holder's value before computing themselves.
    pub wait: Duration,
    /// How often waiters look for the value.
    pub poll: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig { lease: Duration::from_secs(5), wait: Duration::from_secs(3), poll: Duration::from_millis(20) }
    }
}
