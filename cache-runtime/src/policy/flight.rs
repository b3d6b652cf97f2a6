//! In-process single-flight: concurrent misses on one key run the body once.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What a finished flight hands its followers.
#[derive(Clone)]
pub(crate) enum Shared {
    /// The cached value (`Arc<V>`).
    Value(Arc<dyn Any + Send + Sync>),
    /// A cached negative entry.
    Negative,
    /// A whole outcome that was not cached (`Arc<R>`, an error), for followers to clone.
    Outcome(Arc<dyn Any + Send + Sync>),
    /// Nothing shareable: followers compute themselves.
    Nothing,
}

type Slot = watch::Receiver<Option<Shared>>;

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Slot>>,
}

pub(crate) enum Join<'a> {
    Leader(Leader<'a>),
    Follower(Slot),
}

pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    tx: watch::Sender<Option<Shared>>,
}

impl Flights {
    pub(crate) fn join(&self, key: &str) -> Join<'_> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = map.get(key) {
            if rx.has_changed().is_ok() {
                return Join::Follower(rx.clone());
            }
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), rx);
        Join::Leader(Leader { flights: self, key: key.to_owned(), tx })
    }
}

impl Leader<'_> {
    /// Ends the flight and, if anyone is waiting, hands them `make()`; with no followers
    /// (the common case) nothing is built, so a hit costs no extra clone.
    pub(crate) fn publish(self, make: impl FnOnce() -> Shared) {
        self.leave();
        // Followers clone the receiver under the map's lock and the flight has left the map,
        // so nobody can start waiting after this count.
        if self.tx.receiver_count() > 0 {
            self.tx.send_replace(Some(make()));
        }
    }

    fn leave(&self) {
        let mut map = self.flights.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&self.key).is_some_and(|rx| rx.same_channel(&self.tx.subscribe())) {
            map.remove(&self.key);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // A leader dropped without publishing (cancelled, panicked) closes the channel: its
        // followers see `None` and compute themselves.
        self.leave();
    }
}

/// Waits for the leader; `None` if it went away without a result.
pub(crate) async fn wait(mut rx: Slot) -> Option<Shared> {
    match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}
