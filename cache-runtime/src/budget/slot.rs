//! One budget as the enforcer holds it: its declaration, its Redis keys, its local state and its
//! counters.

use super::config::Budget;
use super::local::{Compiled, LocalState};
use super::stats::Counters;
use std::sync::{Mutex, MutexGuard};

/// One budget's declaration, keys, local state and counters.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) c: Compiled,
    /// `{ns}::budget:{name}:hold`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) hold_key: String,
    /// `{ns}::budget:{name}:rate:{i}`, one per rate limit.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) rate_keys: Vec<String>,
    /// `{ns}::budget:{name}`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) prefix: String,
    state: Mutex<LocalState>,
    pub(crate) counters: Counters,
}

impl Slot {
    /// The slot of budget `b` under namespace `ns`.
    pub(crate) fn new(ns: &str, b: &Budget) -> Self {
        // The name is the hash tag: on a cluster every key of one budget (one script call) is in
        // one slot.
        let prefix = format!("{ns}::budget:{{{}}}", b.name);
        Slot {
            hold_key: format!("{prefix}:hold"),
            rate_keys: (0..b.rates.len()).map(|i| format!("{prefix}:rate:{i}")).collect(),
            prefix,
            state: Mutex::new(LocalState::new(b.rates.len())),
            counters: Counters::default(),
            c: Compiled::new(b.clone()),
        }
    }

    /// The budget's name.
    pub(crate) fn name(&self) -> &str {
        &self.c.budget.name
    }

    /// The key of the local state in the disk tier's state table.
    pub(crate) fn state_key(&self) -> String {
        format!("{}:local", self.prefix)
    }

    /// Restores the local state saved by an earlier process, if it fits this declaration.
    pub(crate) fn restore(&self, bytes: &[u8]) -> bool {
        match LocalState::from_bytes(bytes, self.rate_keys.len()) {
            Some(state) => {
                *self.lock() = state;
                true
            }
            None => false,
        }
    }

    /// The local state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
