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
    /// Hands `shared` to every follower and ends the flight.
    pub(crate) fn publish(self, shared: Shared) {
        self.tx.send_replace(Some(shared));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut map = self.flights.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&self.key).is_some_and(|rx| rx.same_channel(&self.tx.subscribe())) {
            map.remove(&self.key);
        }
        // A leader dropped without publishing (cancelled, panicked) closes the channel: its
        // followers see `None` and compute themselves.
    }
}

/// Waits for the leader; `None` if it went away without a result.
pub(crate) async fn wait(mut rx: Slot) -> Option<Shared> {
    match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}
