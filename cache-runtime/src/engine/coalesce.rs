//! Coalescing: in-process single-flight and the cross-instance lock, both as guards.
//!
//! - A [`Leader`] is the one caller per process computing a key. Dropping it without
//!   publishing (cancelled, panicked) closes its channel: waiting followers join again and the
//!   first of them takes over as leader (moka's `get_with` does the same), so a cancelled leader
//!   neither strands its followers nor lets them all call upstream at once.
//! - A [`ClusterLock`] is this instance's `SET NX PX` lock on a key. It is armed *before* the
//!   `SET` is sent and releases itself (compare-and-delete, spawned) when dropped, so a caller
//!   cancelled at any await point never leaves the lock held until its lease runs out.

use crate::store::tiered::Remote;
use crate::store::Store as _;
use std::any::Any;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What a finished flight hands its followers.
#[derive(Clone)]
pub(crate) enum Shared {
    /// A fresh value (`V`).
    Value(Arc<dyn Any + Send + Sync>),
    /// A stale value served because the computation failed or the budget said no.
    Stale(Arc<dyn Any + Send + Sync>),
    /// A cached negative entry.
    Negative,
    /// A whole outcome that was not cached (`R`, an error), for followers to clone.
    Outcome(Arc<dyn Any + Send + Sync>),
    /// Nothing shareable: followers compute themselves.
    Nothing,
}

type Slot = watch::Receiver<Option<Shared>>;

/// A flight in the map: its id, and the channel to its followers, created by the first follower
/// (a leader nobody waits for, the common case, allocates no channel).
struct Flight {
    id: u64,
    tx: Option<watch::Sender<Option<Shared>>>,
}

/// The flights in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Flight>>,
    next_id: AtomicU64,
}

pub(crate) enum Join<'a> {
    Leader(Leader<'a>),
    Follower(Slot),
}

/// The leadership of one key's flight. Publishing or dropping it ends the flight.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: &'a str,
    id: u64,
    left: bool,
}

impl Flights {
    /// Leads the flight of `key`, or follows the one in progress (one map look-up).
    pub(crate) fn join<'a>(&'a self, key: &'a str) -> Join<'a> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.next_id.fetch_add(1, Relaxed);
        match map.entry(key.to_owned()) {
            Entry::Occupied(mut e) => {
                let tx = e.get_mut().tx.get_or_insert_with(|| watch::channel(None).0);
                return Join::Follower(tx.subscribe());
            }
            Entry::Vacant(e) => {
                e.insert(Flight { id, tx: None });
            }
        }
        Join::Leader(Leader { flights: self, key, id, left: false })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

impl Leader<'_> {
    /// Ends the flight and, if anyone is waiting, hands them `make()`; with no followers (the
    /// common case) nothing is built, so a hit costs no extra clone.
    pub(crate) fn publish(mut self, make: impl FnOnce() -> Shared) {
        // Followers subscribe under the map's lock and the flight has left the map, so nobody
        // can start waiting after this.
        if let Some(tx) = self.leave() {
            tx.send_replace(Some(make()));
        }
    }

    /// Takes the flight out of the map; its channel, if a follower created one.
    fn leave(&mut self) -> Option<watch::Sender<Option<Shared>>> {
        if std::mem::replace(&mut self.left, true) {
            return None;
        }
        let mut map = self.flights.map.lock().unwrap_or_else(|e| e.into_inner());
        let flight = map.remove(self.key)?;
        if flight.id != self.id {
            // Not ours (cannot happen while leaders leave on drop; kept safe): put it back.
            map.insert(self.key.to_owned(), flight);
            return None;
        }
        flight.tx
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // Dropped without publishing: the channel's sender is dropped here, so followers see it
        // closed and join again.
        drop(self.leave());
    }
}

/// Waits for the leader; `None` if it went away without a result.
pub(crate) async fn wait(mut rx: Slot) -> Option<Shared> {
    match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}

/// This instance's hold on the cross-instance lock of a key (see the module docs).
pub(crate) struct ClusterLock {
    remote: Remote,
    key: String,
    token: String,
    armed: bool,
}

impl ClusterLock {
    /// Tries to take the lock for `lease`: `Ok(Some(lock))` when taken, `Ok(None)` when another
    /// instance holds it.
    pub(crate) async fn acquire(
        remote: &Remote,
        key: String,
        lease: Duration,
    ) -> Result<Option<ClusterLock>, crate::StoreError> {
        // Armed before the SET: if this future is dropped while the SET is in flight, the drop
        // still deletes the lock should the SET have landed.
        let mut lock = ClusterLock { remote: remote.clone(), key, token: random_token(), armed: true };
        match remote.set_nx(&lock.key, &lock.token, lease).await {
            Ok(true) => Ok(Some(lock)),
            Ok(false) => {
                lock.armed = false;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Releases the lock now (compare-and-delete: never another holder's lock).
    pub(crate) async fn release(mut self) {
        if self.remote.delete_if_eq(&self.key, &self.token).await.is_ok() {
            self.armed = false;
        }
        // On error or cancellation `armed` stays set and the drop tries once more.
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (remote, key, token) =
                (self.remote.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.token));
            // A lock left behind makes every other instance wait for it (up to the lock wait):
            // retry while the store is failing or skipped (a killed connection opens the
            // breaker), within the lease after which Redis drops it anyway.
            runtime.spawn(async move {
                for pause in [0, 100, 400, 1_000, 2_000] {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    if remote.delete_if_eq(&key, &token).await.is_ok() {
                        return;
                    }
                }
            });
        }
    }
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_leader_hands_over_to_one_follower() {
        let flights = Flights::default();
        let Join::Leader(first) = flights.join("k") else { panic!("first caller leads") };
        let Join::Follower(rx) = flights.join("k") else { panic!("second caller follows") };
        drop(first); // cancelled
        assert!(wait(rx).await.is_none(), "the follower learns the leader is gone");
        let Join::Leader(second) = flights.join("k") else { panic!("the follower takes over") };
        assert!(matches!(flights.join("k"), Join::Follower(_)), "and others follow it");
        second.publish(|| Shared::Negative);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn publish_reaches_followers_and_leaves_the_map() {
        let flights = Flights::default();
        let Join::Leader(l) = flights.join("k") else { panic!() };
        let Join::Follower(rx) = flights.join("k") else { panic!() };
        l.publish(|| Shared::Value(Arc::new(5u8)));
        let Some(Shared::Value(v)) = wait(rx).await else { panic!() };
        assert_eq!(v.downcast_ref::<u8>(), Some(&5));
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join("k"), Join::Leader(_)));
    }
}
