//! In-process caches with one set of rules, invalidated on every instance.
//!
//! A [`Cache`] is cache-aside: a read asks [`Cache::get_or_load`] with the loader that would
//! answer it without a cache, and the cache decides whether to call it.
//!
//! - **Per-kind TTLs.** Each cache has a [`Policy`]: how long an entry is fresh, how much longer
//!   it may be served stale while one background load refreshes it (stale-while-revalidate), and
//!   how many entries it keeps (least recently used first out).
//! - **Single flight.** Concurrent misses of one key wait for one load instead of each running
//!   their own; a waiter whose load fails, or is cancelled, hands the turn to the next waiter.
//! - **Invalidation by key or by prefix, on every instance.** Every cache of a process is
//!   registered in one [`Caches`]. A writer calls [`Caches::invalidate`] after its commit: the
//!   entries go at once in this process, and a PostgreSQL notification on [`CHANNEL`] carries the
//!   prefix to every other instance's [`Caches::listen`]. PostgreSQL is the one service every
//!   instance (and the command line) reaches, with or without Redis, so the same path serves the
//!   single-process default, a fleet, and `clubpulse cache clear`.
//! - **No stale entry outlives an invalidation.** A load that was running when an invalidation
//!   of its cache arrived may have read the old row, so its result is handed to its callers but
//!   not stored (a generation counter per cache tells). A listener that loses its connection may
//!   have missed notifications, so it empties every cache before it listens again.
//! - **Counted.** `clubpulse_cache_requests_total{cache, result}` counts hits, stale hits and
//!   misses, `clubpulse_cache_entries{cache}` the entries kept, and
//!   `clubpulse_cache_invalidations_total{cache}` the invalidations that reached each cache.
//!
//! [`Flights`] is single flight without a cache: callers asking for one key while its computation
//! runs share its answer, and nothing is kept afterwards.
//!
//! Keys are text. A cache named `facility` keeps `<id>` under the full key `facility:<id>`; the
//! prefix `facility:` invalidates all of it, `facility:<id>` one entry, and the empty prefix every
//! cache.

use std::{
    collections::HashMap,
    fmt::Display,
    future::Future,
    num::NonZeroUsize,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

mod flight;

pub use flight::Flights;
use lru::LruCache;
use sqlx::{
    PgExecutor, PgPool,
    postgres::{PgListener, PgPoolOptions},
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

/// The PostgreSQL notification channel that carries invalidated prefixes.
pub const CHANNEL: &str = "clubpulse_cache";

/// How one kind of entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long after its load an entry is served as it is.
    pub fresh: Duration,
    /// How long after `fresh` an entry may still be served while one background load replaces
    /// it; zero turns stale-while-revalidate off.
    pub stale: Duration,
    /// Most entries kept; the least recently used goes first.
    pub capacity: NonZeroUsize,
}

impl Policy {
    /// Entries that never go stale (values that are a pure function of their key), bounded only
    /// by `capacity`.
    pub fn forever(capacity: NonZeroUsize) -> Self {
        Self {
            fresh: Duration::MAX,
            stale: Duration::ZERO,
            capacity,
        }
    }
}

/// How a read was answered, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Stale,
    Miss,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Stale => "stale",
            Self::Miss => "miss",
        }
    }
}

/// One cache: cheap to clone, every clone the same entries.
pub struct Cache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for Cache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

struct Inner<V> {
    name: &'static str,
    /// `name:`, the prefix of every full key of this cache.
    scope: String,
    policy: Policy,
    entries: Mutex<LruCache<String, Entry<V>>>,
    /// One async lock per key being loaded; waiters hold clones.
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped by every invalidation that reaches this cache.
    generation: AtomicU64,
}

struct Entry<V> {
    value: V,
    loaded: Instant,
}

enum Peek<V> {
    Fresh(V),
    Stale(V),
    Absent,
}

impl<V: Clone + Send + Sync + 'static> Cache<V> {
    /// A cache of its own, not registered for invalidation (see [`Caches::cache`]).
    pub fn new(name: &'static str, policy: Policy) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                scope: format!("{name}:"),
                policy,
                entries: Mutex::new(LruCache::new(policy.capacity)),
                flights: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The value of `key`: the cached one while fresh; the stale one while a background `load`
    /// refreshes it; otherwise `load`'s answer, one load per key at a time. Failed loads are not
    /// cached.
    pub async fn get_or_load<E, F, Fut>(&self, key: &str, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        match self.peek(key) {
            Peek::Fresh(value) => {
                self.count(Outcome::Hit);
                return Ok(value);
            }
            Peek::Stale(value) => {
                self.count(Outcome::Stale);
                self.refresh(key, load());
                return Ok(value);
            }
            Peek::Absent => {}
        }
        let flight = Flight::join(self, key);
        let _turn = flight.lock.lock().await;
        // Whoever had the turn before may have stored it.
        if let Peek::Fresh(value) | Peek::Stale(value) = self.peek(key) {
            self.count(Outcome::Hit);
            return Ok(value);
        }
        self.count(Outcome::Miss);
        let generation = self.generation();
        let value = load().await?;
        self.store(generation, key, value.clone());
        Ok(value)
    }

    /// The cached values of `keys` (fresh or stale; a stale one is served, not refreshed) and
    /// the keys it does not have, for a caller that loads many at once and hands them back with
    /// [`Cache::store`] under the [`Cache::generation`] it read before loading.
    pub fn get_many<'k>(&self, keys: &[&'k str]) -> (Vec<(&'k str, V)>, Vec<&'k str>) {
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for &key in keys {
            match self.peek(key) {
                Peek::Fresh(value) => {
                    self.count(Outcome::Hit);
                    found.push((key, value));
                }
                Peek::Stale(value) => {
                    self.count(Outcome::Stale);
                    found.push((key, value));
                }
                Peek::Absent => {
                    self.count(Outcome::Miss);
                    missing.push(key);
                }
            }
        }
        (found, missing)
    }

    /// The invalidation generation: read it before loading, store under it after.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Keeps `value` under `key`, unless an invalidation reached this cache since `generation`
    /// was read (the value may then predate the write that invalidated it). Returns whether it
    /// was kept.
    pub fn store(&self, generation: u64, key: &str, value: V) -> bool {
        let mut entries = self.lock_entries();
        // Checked under the entries' lock, which invalidations take too.
        if self.generation() != generation {
            return false;
        }
        entries.put(
            key.to_owned(),
            Entry {
                value,
                loaded: Instant::now(),
            },
        );
        self.gauge(entries.len());
        true
    }

    /// Drops the entries whose key starts with `prefix` (the key within this cache, without
    /// `name:`); returns how many went.
    pub fn invalidate(&self, prefix: &str) -> usize {
        let mut entries = self.lock_entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        let doomed: Vec<String> = entries
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &doomed {
            entries.pop(key);
        }
        self.gauge(entries.len());
        metrics::counter!("clubpulse_cache_invalidations_total", "cache" => self.inner.name)
            .increment(1);
        doomed.len()
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.lock_entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many callers are waiting for, or running, a load of `key`.
    pub fn waiting(&self, key: &str) -> usize {
        self.lock_flights()
            .get(key)
            .map_or(0, |lock| Arc::strong_count(lock) - 1)
    }

    fn peek(&self, key: &str) -> Peek<V> {
        let mut entries = self.lock_entries();
        let Some(entry) = entries.get(key) else {
            return Peek::Absent;
        };
        let age = entry.loaded.elapsed();
        let policy = self.inner.policy;
        if age < policy.fresh {
            Peek::Fresh(entry.value.clone())
        } else if age < policy.fresh.saturating_add(policy.stale) {
            Peek::Stale(entry.value.clone())
        } else {
            entries.pop(key);
            self.gauge(entries.len());
            Peek::Absent
        }
    }

    /// Runs `load` in the background and stores its answer, unless a load of `key` is already
    /// running (that one will).
    fn refresh<E, Fut>(&self, key: &str, load: Fut)
    where
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let flight = Flight::join(self, key);
        let Ok(turn) = Arc::clone(&flight.lock).try_lock_owned() else {
            return;
        };
        let cache = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let _flight = flight;
            let _turn = turn;
            let generation = cache.generation();
            match load.await {
                Ok(value) => {
                    cache.store(generation, &key, value);
                }
                Err(err) => {
                    tracing::warn!(cache = cache.inner.name, key, error = %err, "refreshing a stale cache entry failed; it is served until it expires");
                }
            }
        });
    }

    fn count(&self, outcome: Outcome) {
        metrics::counter!(
            "clubpulse_cache_requests_total",
            "cache" => self.inner.name,
            "result" => outcome.as_str(),
        )
        .increment(1);
    }

    fn gauge(&self, len: usize) {
        #[allow(clippy::cast_precision_loss)] // entry counts are far below 2^52
        metrics::gauge!("clubpulse_cache_entries", "cache" => self.inner.name).set(len as f64);
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, LruCache<String, Entry<V>>> {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_flights(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A caller's share of the loads of one key; the last one out removes the key's lock.
struct Flight<V: Clone + Send + Sync + 'static> {
    cache: Cache<V>,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<V: Clone + Send + Sync + 'static> Flight<V> {
    fn join(cache: &Cache<V>, key: &str) -> Self {
        let lock = Arc::clone(cache.lock_flights().entry(key.to_owned()).or_default());
        Self {
            cache: cache.clone(),
            key: key.to_owned(),
            lock,
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Drop for Flight<V> {
    fn drop(&mut self) {
        let mut flights = self.cache.lock_flights();
        // Ours and the map's: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            flights.remove(&self.key);
        }
    }
}

/// Something [`Caches`] can invalidate.
trait Invalidate: Send + Sync {
    fn scope(&self) -> &str;
    fn invalidate(&self, prefix: &str) -> usize;
}

impl<V: Clone + Send + Sync + 'static> Invalidate for Cache<V> {
    fn scope(&self) -> &str {
        &self.inner.scope
    }

    fn invalidate(&self, prefix: &str) -> usize {
        Cache::invalidate(self, prefix)
    }
}

/// A cache kept elsewhere, cleared whole.
struct Hook {
    scope: String,
    clear: Box<dyn Fn() + Send + Sync>,
}

impl Invalidate for Hook {
    fn scope(&self) -> &str {
        &self.scope
    }

    fn invalidate(&self, _prefix: &str) -> usize {
        (self.clear)();
        0
    }
}

/// Every registered cache of a process. Cheap to clone; clones share the caches.
#[derive(Clone, Default)]
pub struct Caches {
    members: Arc<Mutex<Vec<Arc<dyn Invalidate>>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members = self.lock();
        f.debug_list()
            .entries(members.iter().map(|m| m.scope().to_owned()))
            .finish()
    }
}

impl Caches {
    /// A new cache called `name`, registered here for invalidation.
    pub fn cache<V: Clone + Send + Sync + 'static>(
        &self,
        name: &'static str,
        policy: Policy,
    ) -> Cache<V> {
        let cache = Cache::new(name, policy);
        self.register(&cache);
        cache
    }

    /// Runs `clear` whenever an invalidation reaches any part of `name` (a cache kept elsewhere,
    /// such as one whose entries cannot be dropped by key here). Its entries are not counted in
    /// what [`Caches::invalidate_local`] returns.
    pub fn on_invalidate(&self, name: &str, clear: impl Fn() + Send + Sync + 'static) {
        self.lock().push(Arc::new(Hook {
            scope: format!("{name}:"),
            clear: Box::new(clear),
        }));
    }

    /// Registers a cache made with [`Cache::new`].
    pub fn register<V: Clone + Send + Sync + 'static>(&self, cache: &Cache<V>) {
        self.lock().push(Arc::new(cache.clone()));
    }

    /// Drops, in this process, every entry whose full key (`name:key`) starts with `prefix`;
    /// returns how many went.
    pub fn invalidate_local(&self, prefix: &str) -> usize {
        let members = self.lock().clone();
        members
            .iter()
            .map(|cache| {
                let scope = cache.scope();
                if scope.starts_with(prefix) {
                    cache.invalidate("")
                } else if let Some(within) = prefix.strip_prefix(scope) {
                    cache.invalidate(within)
                } else {
                    0
                }
            })
            .sum()
    }

    /// Invalidates `prefix` here at once and on every instance through `db` (in a transaction,
    /// the others hear of it when it commits).
    pub async fn invalidate(&self, db: impl PgExecutor<'_>, prefix: &str) -> sqlx::Result<()> {
        self.invalidate_local(prefix);
        notify(db, prefix).await
    }

    /// Listens for the invalidations of every instance on its own connection to `db`'s server,
    /// until the returned [`Listening`] is dropped. It reconnects on its own, emptying every cache
    /// first (notifications sent while it was away are lost).
    pub fn listen(&self, db: &PgPool) -> Listening {
        let options = (*db.connect_options())
            .clone()
            .application_name("clubpulse-cache-listener");
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        let (ready_tx, ready) = watch::channel(false);
        let caches = self.clone();
        let task = tokio::spawn(async move { caches.listen_on(pool, ready_tx).await });
        Listening { task, ready }
    }

    async fn listen_on(self, pool: PgPool, ready: watch::Sender<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        self.invalidate_local("");
                        ready.send_replace(true);
                        self.serve(&mut listener, &ready).await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not listen for cache invalidations")
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, "could not connect to listen for cache invalidations");
                }
            }
            ready.send_replace(false);
            self.invalidate_local("");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Applies notifications until the listener fails to reconnect.
    async fn serve(&self, listener: &mut PgListener, ready: &watch::Sender<bool>) {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let dropped = self.invalidate_local(notification.payload());
                    tracing::debug!(
                        prefix = notification.payload(),
                        dropped,
                        "cache invalidated"
                    );
                }
                Ok(None) => {
                    // The connection was lost; the next call reconnects and listens again.
                    ready.send_replace(false);
                    self.invalidate_local("");
                    tracing::warn!(
                        "lost the cache invalidation listener's connection; reconnecting"
                    );
                    if listener.listen(CHANNEL).await.is_err() {
                        return;
                    }
                    self.invalidate_local("");
                    ready.send_replace(true);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the cache invalidation listener failed");
                    return;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn Invalidate>>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tells every instance's [`Caches::listen`] to invalidate `prefix` (delivered at commit when
/// `db` is a transaction).
pub async fn notify(db: impl PgExecutor<'_>, prefix: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(prefix)
        .execute(db)
        .await
        .map(drop)
}

/// A running [`Caches::listen`]; dropping it stops listening.
#[derive(Debug)]
pub struct Listening {
    task: JoinHandle<()>,
    ready: watch::Receiver<bool>,
}

impl Listening {
    /// Waits until the listener is connected and listening (again), at most `timeout`; returns
    /// whether it is.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.clone();
        tokio::time::timeout(timeout, ready.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether the listener is listening now.
    pub fn is_listening(&self) -> bool {
        *self.ready.borrow()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}
