//! A memory tier kept coherent across instances: every change to a shared entry (a write, an
//! invalidation, a refresh, a prefix removal) is announced on the Redis pub/sub channel
//! `{namespace}::inval`, and every other instance evicts that key from its memory tier.
//!
//! Messages carry keys, never values: `{instance:016x} {sent_unix_us} {kind} {key or prefix}`
//! with kind `k` (one key), `p` (a prefix) or `f` (everything). An instance skips its own.
//!
//! While the channel is lost (the subscriber is disconnected, or the Redis tier's breaker is
//! open), an instance may be missing evictions: a memory copy is then trusted only for
//! [`grace`](Coherence::grace) after the later of its insertion and the loss, then read again
//! from Redis. When the channel comes back the memory tier is emptied (what was missed is
//! unknown), and announcements that could not be sent are sent again.
//!
//! A read from Redis that raced with an eviction must not put the old value back into memory:
//! each key maps to one of [`STRIPES`] epochs, bumped by every eviction; a copy read from Redis
//! is remembered only if its epoch did not move during the read.

use super::memory::MemoryTier;
use crate::connection::RedisConn;
use crate::metrics::{Histogram, LatencySnapshot};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default bound on trusting memory copies while the channel is lost.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);
/// Epoch stripes.
pub const STRIPES: usize = 1024;
/// Announcements kept for resending while Redis is unreachable; beyond it, one "evict
/// everything" is sent instead.
const PENDING_CAP: usize = 1024;
/// How often the subscriber checks that its connection answers.
const PING_EVERY: Duration = Duration::from_millis(500);

/// Counters of the coherence channel, as read by [`Cache::coherence_stats`](crate::Cache::coherence_stats).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoherenceStats {
    /// Whether the channel is subscribed now.
    pub connected: bool,
    /// Announcements published by this instance.
    pub sent: u64,
    /// Announcements received from other instances.
    pub received: u64,
    /// Memory entries evicted because of them.
    pub evicted: u64,
    /// Times the channel was (re)subscribed (each one empties the memory tier).
    pub resyncs: u64,
    /// Announcements that could not be published (kept and sent again later).
    pub publish_failures: u64,
    /// Memory copies not served because the channel was lost for longer than the grace.
    pub distrusted: u64,
    /// From an announcement's sending to its handling here (clocks of one host: exact; across
    /// hosts: as good as their clock sync).
    pub lag: LatencySnapshot,
}

/// The coherence channel of one cache.
pub struct Coherence {
    me: Weak<Coherence>,
    instance: u64,
    channel: String,
    grace: Duration,
    conn: RedisConn,
    local: MemoryTier,
    origin: Instant,
    /// Milliseconds since `origin` + 1 from which the channel counts as lost (its last proof of
    /// life); 0 while it is up.
    lost_at: AtomicU64,
    /// Milliseconds since `origin` + 1 of the last message or answered ping.
    alive_at: AtomicU64,
    epochs: Box<[AtomicU64]>,
    global: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
    pending: Mutex<Pending>,
    started: OnceLock<()>,
    connected: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
    evicted: AtomicU64,
    resyncs: AtomicU64,
    publish_failures: AtomicU64,
    distrusted: AtomicU64,
    lag: Histogram,
}

#[derive(Default)]
struct Pending {
    messages: Vec<(char, String)>,
    overflow: bool,
}

impl std::fmt::Debug for Coherence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coherence")
            .field("channel", &self.channel)
            .field("connected", &self.connected.load(Relaxed))
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Coherence {
    /// The channel of one cache; subscribes at once when built inside a Tokio runtime, else on
    /// first use.
    pub(crate) fn new(conn: RedisConn, namespace: &str, local: MemoryTier, grace: Duration) -> Arc<Self> {
        let c = Arc::new_cyclic(|me| Coherence {
            me: me.clone(),
            instance: rand::random(),
            channel: format!("{namespace}::inval"),
            grace,
            conn,
            local,
            origin: Instant::now(),
            // Lost until first subscribed.
            lost_at: AtomicU64::new(1),
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            global: AtomicU64::new(0),
            hasher: Default::default(),
            pending: Mutex::new(Pending::default()),
            started: OnceLock::new(),
            connected: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            distrusted: AtomicU64::new(0),
            lag: Histogram::new(),
            alive_at: AtomicU64::new(0),
        });
        c.ensure_started();
        c
    }

    /// The channel's name (`{namespace}::inval`).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// How long memory copies are trusted while the channel is lost.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The counters.
    pub fn stats(&self) -> CoherenceStats {
        CoherenceStats {
            connected: self.connected.load(Relaxed),
            sent: self.sent.load(Relaxed),
            received: self.received.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            resyncs: self.resyncs.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
            distrusted: self.distrusted.load(Relaxed),
            lag: self.lag.snapshot(),
        }
    }

    /// Whether a memory copy inserted at `at` may be served: always while the channel is up
    /// (one atomic load), else for `grace` after the later of `at` and the loss. `breaker_open`:
    /// the Redis tier is being skipped, so announcements are not getting through either.
    #[inline]
    pub fn trusts(&self, at: Instant, breaker_open: bool) -> bool {
        let lost = self.lost_at.load(Relaxed);
        if lost == 0 && !breaker_open {
            return true;
        }
        let since = if lost == 0 { at } else { at.max(self.origin + Duration::from_millis(lost - 1)) };
        let ok = since.elapsed() < self.grace;
        if !ok {
            self.distrusted.fetch_add(1, Relaxed);
        }
        ok
    }

    /// The eviction epoch of `key`: read before a Redis read, compared by [`unmoved`](Self::unmoved).
    pub fn epoch(&self, key: &str) -> u64 {
        self.ensure_started();
        self.global.load(Acquire).wrapping_add(self.stripe(key).load(Acquire))
    }

    /// Whether no eviction touched `key` since `epoch` was read.
    pub fn unmoved(&self, key: &str, epoch: u64) -> bool {
        self.epoch(key) == epoch
    }

    fn stripe(&self, key: &str) -> &AtomicU64 {
        &self.epochs[(self.hasher.hash_one(key) as usize) % STRIPES]
    }

    /// Starts the subscriber (once; needs a Tokio runtime, so not at build time).
    pub(crate) fn ensure_started(&self) {
        if self.started.get().is_some() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        self.started.get_or_init(|| {
            rt.spawn(subscribe(self.me.clone()));
        });
    }

    /// Announces that `key` changed. The message is sent by a task of its own, so a caller
    /// cancelled after its write still tells the others; the returned handle completes when it
    /// was published (or queued for resending).
    pub(crate) fn announce_key(&self, key: &str) -> Option<tokio::task::JoinHandle<()>> {
        self.announce('k', key)
    }

    /// Announces that every key starting with `prefix` changed.
    pub(crate) fn announce_prefix(&self, prefix: &str) -> Option<tokio::task::JoinHandle<()>> {
        self.announce('p', prefix)
    }

    fn announce(&self, kind: char, key: &str) -> Option<tokio::task::JoinHandle<()>> {
        self.ensure_started();
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let me = self.me.upgrade()?;
        let key = key.to_owned();
        Some(rt.spawn(async move {
            if let Err(e) = me.publish(kind, &key).await {
                me.publish_failures.fetch_add(1, Relaxed);
                tracing::debug!(target: "syntra_cache", error = %e, "Coherence: announcement not sent; kept for resending");
                me.keep(kind, key);
            }
        }))
    }

    fn message(&self, kind: char, key: &str) -> String {
        format!("{:016x} {} {kind} {key}", self.instance, unix_us())
    }

    async fn publish(&self, kind: char, key: &str) -> Result<(), crate::StoreError> {
        let mut c = self.conn.link().await?;
        let msg = self.message(kind, key);
        self.conn.bounded(redis::cmd("PUBLISH").arg(&self.channel).arg(msg).query_async::<i64>(&mut c)).await?;
        self.sent.fetch_add(1, Relaxed);
        Ok(())
    }

    fn keep(&self, kind: char, key: String) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.messages.len() >= PENDING_CAP {
            p.overflow = true;
            p.messages.clear();
        }
        if !p.overflow {
            p.messages.push((kind, key));
        }
    }

    /// Sends what could not be sent earlier; stops at the first failure.
    async fn resend(&self) {
        let (messages, overflow) = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut p.messages), std::mem::take(&mut p.overflow))
        };
        let all: Vec<(char, String)> = if overflow { vec![('f', String::new())] } else { messages };
        for (i, (kind, key)) in all.iter().enumerate() {
            if self.publish(*kind, key).await.is_err() {
                for (kind, key) in all.into_iter().skip(i) {
                    self.keep(kind, key);
                }
                return;
            }
        }
    }

    fn has_pending(&self) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.overflow || !p.messages.is_empty()
    }

    fn lost(&self) {
        if self.connected.swap(false, AcqRel) {
            tracing::warn!(target: "syntra_cache", channel = %self.channel, "Coherence: invalidation channel lost; memory copies trusted for {:?} more", self.grace);
        }
        // Counted from the last proof of life, not from the moment the loss was noticed.
        let since = self.alive_at.load(Acquire).max(1);
        let _ = self.lost_at.compare_exchange(0, since, AcqRel, Relaxed);
    }

    fn alive(&self) {
        self.alive_at.store(self.origin.elapsed().as_millis() as u64 + 1, Release);
    }

    /// Subscribed again: what was missed is unknown, so memory starts empty.
    fn back(&self) {
        self.alive();
        self.global.fetch_add(1, AcqRel);
        self.local.clear();
        self.lost_at.store(0, Release);
        self.connected.store(true, Release);
        self.resyncs.fetch_add(1, Relaxed);
        tracing::info!(target: "syntra_cache", channel = %self.channel, "Coherence: invalidation channel subscribed");
    }

    fn handle(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else { return };
        let mut parts = text.splitn(4, ' ');
        let (Some(from), Some(sent), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if u64::from_str_radix(from, 16).ok() == Some(self.instance) {
            return;
        }
        self.received.fetch_add(1, Relaxed);
        if let Ok(sent) = sent.parse::<u64>() {
            self.lag.record(Duration::from_micros(unix_us().saturating_sub(sent)));
        }
        let evicted = match kind {
            "k" => {
                // Bumped before the removal: a read in flight will not put the old copy back.
                self.stripe(key).fetch_add(1, AcqRel);
                u64::from(self.local.remove(key))
            }
            "p" => {
                self.global.fetch_add(1, AcqRel);
                self.local.remove_prefix(key)
            }
            "f" => {
                self.global.fetch_add(1, AcqRel);
                let n = self.local.len();
                self.local.clear();
                n
            }
            _ => 0,
        };
        self.evicted.fetch_add(evicted, Relaxed);
    }
}

fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The subscriber: (re)subscribes with backoff, hands messages to [`Coherence::handle`], pings
/// to notice a server that hangs, and ends when the cache is dropped.
async fn subscribe(me: Weak<Coherence>) {
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 0usize;
    loop {
        let Some(c) = me.upgrade() else { return };
        attempt += 1;
        let t = c.conn.config().connect_timeout;
        let pubsub = async {
            let client = c.conn.pubsub_client(attempt).await.ok()?;
            let mut ps = tokio::time::timeout(t, client.get_async_pubsub()).await.ok()?.ok()?;
            tokio::time::timeout(t, ps.subscribe(&c.channel)).await.ok()?.ok()?;
            Some(ps)
        }
        .await;
        let Some(pubsub) = pubsub else {
            c.lost();
            drop(c);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(50);
        c.back();
        c.resend().await;
        let op_timeout = c.conn.config().op_timeout.max(Duration::from_millis(500));
        drop(c);
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        let Some(c) = me.upgrade() else { return };
                        c.alive();
                        c.handle(msg.get_payload_bytes());
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    let Some(c) = me.upgrade() else { return };
                    let alive = tokio::time::timeout(op_timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                    c.alive();
                    if c.has_pending() {
                        c.resend().await;
                    }
                }
            }
        }
        if let Some(c) = me.upgrade() {
            c.lost();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coherence() -> Arc<Coherence> {
        let conn = RedisConn::open("redis://127.0.0.1:1/0", Default::default()).unwrap();
        Coherence::new(conn, "t", MemoryTier::new(10, crate::DEFAULT_MEMORY_BYTES), Duration::from_millis(50))
    }

    #[test]
    fn copies_are_trusted_for_the_grace_only_while_the_channel_is_lost() {
        let c = coherence();
        c.lost_at.store(0, Relaxed);
        c.alive();
        let old = Instant::now() - Duration::from_secs(60);
        assert!(c.trusts(old, false), "channel up: any copy");
        assert!(!c.trusts(old, true), "breaker open: an old copy is not");
        assert!(c.trusts(Instant::now(), true), "breaker open: a fresh copy is, for the grace");
        c.lost();
        assert!(c.trusts(old, false), "just lost: trusted for the grace from the loss");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.trusts(old, false) && !c.trusts(Instant::now() - Duration::from_millis(55), false));
        assert!(c.trusts(Instant::now(), false), "a copy read after the loss: for the grace from its read");
        c.back();
        assert!(c.trusts(old, false));
        assert!(c.stats().distrusted >= 2);
    }

    #[test]
    fn evictions_move_the_epoch_and_own_messages_are_skipped() {
        let c = coherence();
        let e = c.epoch("a");
        c.handle(c.message('k', "a").as_bytes());
        assert!(c.unmoved("a", e), "own message skipped");
        let other = format!("{:016x} {} k a", c.instance ^ 1, unix_us());
        c.handle(other.as_bytes());
        assert!(!c.unmoved("a", e));
        let e = c.epoch("zz");
        c.handle(format!("{:016x} {} p z", c.instance ^ 1, unix_us()).as_bytes());
        assert!(!c.unmoved("zz", e), "a prefix moves every key");
        c.handle(b"garbage");
        c.handle(b"\xff\xfe");
        assert_eq!(c.stats().received, 2);
    }
}
