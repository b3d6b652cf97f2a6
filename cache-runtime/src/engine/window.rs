//! Coalescing single-item loads into batch calls: [`Coalescer`].
//!
//! A single-item cached function whose upstream also answers many items per call
//! (`/simple/price?ids=…`) loads through a [`Coalescer`]: concurrent misses for different items
//! (`price("bitcoin")`, `price("ethereum")` from different users) become one upstream call, and
//! every item is still cached under its own key by the single-item function.
//!
//! The rule is Nagle's: a load goes out **at once** when no load of this coalescer is in flight
//! (a lone miss never waits); while one is in flight, further items queue, and the queue goes
//! out as one call when that load ends or after `window`, whichever is first. The wait is
//! bounded by `window`, never added to hits (only a miss's body loads), and at most `max_batch`
//! items go per call.
//!
//! **Refresh in batches** ([`Coalescer::companions`]): a coalescer may remember the items asked
//! recently and load them along with every call (the upstream charges per call, not per item).
//! A later miss of such an item is answered from that load, without an upstream call, while
//! its value is younger than a share of the TTL in force; the engine stores it for what is
//! left of its TTL. The entries of items loaded together thus expire together, and the next
//! refresh of all of them is one call instead of one call per item. Values a load returns
//! beyond the items it was given (a cross product of ids and currencies) are kept the same way.
//!
//! **Cancellation.** The caller that sends a queue runs the load in its own future. If it is
//! dropped mid-load, the other callers of that load see their reply channel close and queue
//! again; one of them sends.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

type Reply<V, E> = oneshot::Sender<Result<Option<V>, E>>;

/// Tells the engine that the cached body running on this task made no upstream call (its load
/// was refused by a budget before anything was sent, say): its call is not counted in
/// `upstream_calls`. Outside a cached body it does nothing.
pub fn not_sent() {
    crate::scope::rode_along();
}

/// Merges concurrent single-item loads into batch loads (see the [module docs](self)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::collections::{HashMap, HashSet};
/// use std::time::Duration;
/// use syntra_cache_runtime::engine::Coalescer;
///
/// let prices = Coalescer::new(Duration::from_millis(50), 250);
/// let load = |ids: Vec<String>| async move {
///     tokio::time::sleep(Duration::from_millis(10)).await; // the upstream's round trip
///     Ok::<_, String>(ids.into_iter().map(|id| (id, 1.0)).collect::<HashMap<_, _>>())
/// };
/// let (a, b, c) = tokio::join!(
///     prices.load("bitcoin".to_string(), load),
///     prices.load("ethereum".to_string(), load),
///     prices.load("solana".to_string(), load),
/// );
/// assert_eq!((a, b, c), (Ok(Some(1.0)), Ok(Some(1.0)), Ok(Some(1.0))));
/// // bitcoin went at once, alone; ethereum and solana queued behind it and went together.
/// assert_eq!((prices.calls(), prices.items()), (2, 3));
/// # }
/// ```
pub struct Coalescer<I, V, E> {
    window: Duration,
    max_batch: usize,
    /// Refresh in batches: how many recently asked items ride along (0: off), and the share of
    /// the TTL in force within which their values answer later misses.
    keep: usize,
    share: f64,
    state: Mutex<State<I, V, E>>,
    /// Rung when a load ends: queued callers may send.
    ended: Notify,
}

struct State<I, V, E> {
    in_flight: usize,
    queue: Vec<(I, Reply<V, E>)>,
    calls: u64,
    items: u64,
    /// Items asked recently, with the order of their last ask (at most `keep`).
    asked: HashMap<I, u64>,
    asks: u64,
    /// Values loaded along with other items' calls, and when.
    ready: HashMap<I, (V, Instant)>,
    companions: u64,
    served_ahead: u64,
}

impl<I: Eq + Hash + Clone, V, E> State<I, V, E> {
    fn note_asked(&mut self, item: &I, keep: usize) {
        if keep == 0 {
            return;
        }
        self.asks += 1;
        self.asked.insert(item.clone(), self.asks);
        if self.asked.len() > keep {
            // The least recently asked goes (a linear scan: `keep` is a few hundred at most).
            if let Some(oldest) = self.asked.iter().min_by_key(|(_, &n)| n).map(|(i, _)| i.clone()) {
                self.asked.remove(&oldest);
                self.ready.remove(&oldest);
            }
        }
    }
}

impl<I, V, E> std::fmt::Debug for Coalescer<I, V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").field("window", &self.window).field("max_batch", &self.max_batch).finish()
    }
}

/// Ends a load's in-flight mark however the load ends.
struct InFlight<'a, I, V, E>(&'a Coalescer<I, V, E>);

impl<I, V, E> Drop for InFlight<'_, I, V, E> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner()).in_flight -= 1;
        self.0.ended.notify_waiters();
    }
}

impl<I, V, E> Coalescer<I, V, E>
where
    I: Eq + Hash + Clone,
    V: Clone,
    E: Clone,
{
    /// Queued items wait at most `window` for a load in flight to end; at most `max_batch`
    /// items (at least 1) go per call.
    pub fn new(window: Duration, max_batch: usize) -> Self {
        Coalescer {
            window,
            max_batch: max_batch.max(1),
            keep: 0,
            share: 0.0,
            state: Mutex::new(State {
                in_flight: 0,
                queue: Vec::new(),
                calls: 0,
                items: 0,
                asked: HashMap::new(),
                asks: 0,
                ready: HashMap::new(),
                companions: 0,
                served_ahead: 0,
            }),
            ended: Notify::new(),
        }
    }

    /// Refresh in batches (see the [module docs](self)): every call also loads up to `keep` of
    /// the items asked most recently (within `max_batch`), and a later miss of one of them is
    /// answered from that load while the value is younger than `share` (0..=1) of the TTL in
    /// force for it. Outside a `#[cached]` body (no TTL known) nothing is answered ahead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use syntra_cache_runtime::engine::Coalescer;
    ///
    /// let prices = Coalescer::new(Duration::from_millis(5), 250).companions(100, 0.5);
    /// let load = |ids: Vec<&'static str>| async move {
    ///     Ok::<_, String>(ids.into_iter().map(|id| (id, 1.0)).collect::<HashMap<_, _>>())
    /// };
    /// prices.load("bitcoin", load).await.unwrap();
    /// prices.load("ethereum", load).await.unwrap(); // bitcoin rides along
    /// assert_eq!((prices.calls(), prices.items(), prices.companions_loaded()), (2, 3, 1));
    /// # }
    /// ```
    pub fn companions(mut self, keep: usize, share: f64) -> Self {
        self.keep = keep;
        self.share = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<I, V, E>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Upstream calls made so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Items loaded so far, companions included (over [`calls`](Self::calls): the mean batch size).
    pub fn items(&self) -> u64 {
        self.lock().items
    }

    /// Items loaded as companions of other items' calls ([`companions`](Self::companions)).
    pub fn companions_loaded(&self) -> u64 {
        self.lock().companions
    }

    /// Misses answered from a companion load, without an upstream call of their own.
    pub fn served_ahead(&self) -> u64 {
        self.lock().served_ahead
    }

    /// `item`'s value (`None`: the upstream did not return it), loaded by `load` alone or
    /// together with concurrent callers' items. A failed load's error goes to every item in it.
    pub async fn load<L, F>(&self, item: I, load: L) -> Result<Option<V>, E>
    where
        L: Fn(Vec<I>) -> F,
        F: Future<Output = Result<HashMap<I, V>, E>>,
    {
        if let Some(answer) = self.answer_ahead(&item) {
            return Ok(Some(answer));
        }
        loop {
            let (tx, mut rx) = oneshot::channel();
            let deadline = tokio::time::Instant::now() + self.window;
            let go_now = {
                let mut st = self.lock();
                st.queue.push((item.clone(), tx));
                st.in_flight == 0
            };
            // Whether this caller made an upstream call (else it rode along on others').
            let mut sent = go_now && self.send(&load).await;
            loop {
                let ended = self.ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                match rx.try_recv() {
                    Ok(answer) => return self.answered(answer, sent),
                    // The caller that took our item was dropped mid-load: queue again.
                    Err(oneshot::error::TryRecvError::Closed) => break,
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
                let due = tokio::time::Instant::now() >= deadline || self.lock().in_flight == 0;
                if due && self.lock().queue.iter().any(|(_, tx)| !tx.is_closed()) {
                    sent |= self.send(&load).await;
                    continue;
                }
                tokio::select! {
                    answer = &mut rx => match answer {
                        Ok(answer) => return self.answered(answer, sent),
                        Err(_) => break,
                    },
                    _ = ended => {}
                    _ = tokio::time::sleep_until(deadline), if tokio::time::Instant::now() < deadline => {}
                }
            }
        }
    }

    /// Notes `item` as asked; its value if a companion load brought it recently enough.
    fn answer_ahead(&self, item: &I) -> Option<V> {
        if self.keep == 0 {
            return None;
        }
        let mut st = self.lock();
        st.note_asked(item, self.keep);
        let max_age = crate::scope::ttl_in_force()?.mul_f64(self.share);
        let (value, at) = st.ready.remove(item)?;
        let age = at.elapsed();
        if age > max_age {
            return None;
        }
        st.served_ahead += 1;
        drop(st);
        crate::scope::rode_along();
        crate::scope::aged(age);
        Some(value)
    }

    /// An answer to return; a body that rode along on another caller's call says so to the
    /// engine, which then counts no upstream call for it.
    fn answered(&self, answer: Result<Option<V>, E>, sent: bool) -> Result<Option<V>, E> {
        if !sent {
            crate::scope::rode_along();
        }
        answer
    }

    /// Values a load returned beyond the items it was given (an upstream answering a cross
    /// product: `/simple/price?ids=a,b&vs_currencies=usd,eur` prices `(a, eur)` too when asked
    /// for `(a, usd)` and `(b, eur)`) answer later misses like companions. At most twice `keep`
    /// values are held; the oldest go first.
    fn keep_extras(&self, extras: HashMap<I, V>, now: Instant) {
        if extras.is_empty() {
            return;
        }
        let mut st = self.lock();
        for (id, v) in extras {
            st.ready.insert(id, (v, now));
        }
        let over = st.ready.len().saturating_sub(self.keep.saturating_mul(2));
        if over > 0 {
            let mut by_age: Vec<(I, Instant)> = st.ready.iter().map(|(i, (_, at))| (i.clone(), *at)).collect();
            by_age.sort_unstable_by_key(|(_, at)| *at);
            for (id, _) in by_age.into_iter().take(over) {
                st.ready.remove(&id);
            }
        }
    }

    /// Takes up to `max_batch` queued items and loads them in one call; whether there was any.
    async fn send<L, F>(&self, load: &L) -> bool
    where
        L: Fn(Vec<I>) -> F,
        F: Future<Output = Result<HashMap<I, V>, E>>,
    {
        let batch: Vec<(I, Reply<V, E>)> = {
            let mut st = self.lock();
            // Callers that went away (cancelled) are not loaded for.
            st.queue.retain(|(_, tx)| !tx.is_closed());
            let n = st.queue.len().min(self.max_batch);
            if n == 0 {
                return false;
            }
            st.in_flight += 1;
            st.calls += 1;
            st.items += n as u64;
            st.queue.drain(..n).collect()
        };
        let _in_flight = InFlight(self);
        let mut seen = HashSet::with_capacity(batch.len());
        let mut ids: Vec<I> = batch.iter().filter(|(id, _)| seen.insert(id)).map(|(id, _)| id.clone()).collect();
        let asked = ids.len();
        if self.keep > 0 && ids.len() < self.max_batch {
            let st = self.lock();
            let mut recent: Vec<(&I, u64)> =
                st.asked.iter().filter(|(i, _)| !seen.contains(i)).map(|(i, &n)| (i, n)).collect();
            recent.sort_unstable_by_key(|r| std::cmp::Reverse(r.1));
            let room = self.max_batch - ids.len();
            ids.extend(recent.into_iter().take(room).map(|(i, _)| i.clone()));
        }
        let companions: Vec<I> = ids[asked..].to_vec();
        if !companions.is_empty() {
            let mut st = self.lock();
            st.items += companions.len() as u64;
            st.companions += companions.len() as u64;
        }
        match load(ids).await {
            Ok(mut found) => {
                let now = Instant::now();
                if !companions.is_empty() {
                    let mut st = self.lock();
                    for id in companions {
                        // Only items still remembered (one asked meanwhile may have gone).
                        if let (Some(v), true) = (found.remove(&id), st.asked.contains_key(&id)) {
                            st.ready.insert(id, (v, now));
                        }
                    }
                }
                let mut answered = Vec::with_capacity(batch.len());
                for (id, tx) in batch {
                    let _ = tx.send(Ok(found.get(&id).cloned()));
                    answered.push(id);
                }
                if self.keep > 0 {
                    for id in &answered {
                        found.remove(id);
                    }
                    self.keep_extras(found, now);
                }
            }
            Err(e) => {
                for (_, tx) in batch {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        }
        true
    }
}
