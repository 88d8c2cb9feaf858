//! The cache's rules, with real concurrency and a real PostgreSQL carrying invalidations between
//! two registries as it does between two instances.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use clubpulse_cache::{Cache, Caches, Policy};
use sqlx::PgPool;
use tokio::{sync::Semaphore, time::Instant};

const DEADLINE: Duration = Duration::from_secs(10);

fn policy(fresh: u64, stale: u64) -> Policy {
    Policy {
        fresh: Duration::from_secs(fresh),
        stale: Duration::from_secs(stale),
        capacity: NonZeroUsize::new(100).unwrap(),
    }
}

/// Polls `done` until it holds, failing the test after [`DEADLINE`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A loader that counts its calls and answers once `gate` lets it.
#[derive(Clone, Default)]
struct Loader {
    calls: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
}

impl Loader {
    fn gated() -> Self {
        Self {
            calls: Arc::default(),
            gate: Some(Arc::new(Semaphore::new(0))),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn open(&self, loads: usize) {
        if let Some(gate) = &self.gate {
            gate.add_permits(loads);
        }
    }

    fn load(&self, value: &str) -> impl Future<Output = Result<String, String>> + Send + 'static {
        let this = self.clone();
        let value = value.to_owned();
        async move {
            let n = this.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(gate) = &this.gate {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
            }
            Ok(format!("{value}#{n}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_key_run_one_load() {
    let cache: Cache<String> = Cache::new("test", policy(60, 0));
    let loader = Loader::gated();
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loader) = (cache.clone(), loader.clone());
            tokio::spawn(async move { cache.get_or_load("k", || loader.load("v")).await })
        })
        .collect();
    until("every reader waits on the one load", || {
        cache.waiting("k") == 50
    })
    .await;
    assert_eq!(loader.calls(), 1);
    loader.open(1);
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), "v#1");
    }
    assert_eq!(loader.calls(), 1);
    assert_eq!(
        cache.waiting("k"),
        0,
        "the key's lock is gone once nobody waits"
    );
}

#[tokio::test]
async fn a_failed_load_is_not_cached_and_the_next_reader_loads_again() {
    let cache: Cache<String> = Cache::new("test", policy(60, 0));
    let failed: Result<String, String> = cache
        .get_or_load("k", || async { Err("down".to_owned()) })
        .await;
    assert_eq!(failed.unwrap_err(), "down");
    assert!(cache.is_empty());
    let loader = Loader::default();
    assert_eq!(
        cache.get_or_load("k", || loader.load("v")).await.unwrap(),
        "v#1"
    );
    assert_eq!(
        cache.get_or_load("k", || loader.load("v")).await.unwrap(),
        "v#1"
    );
    assert_eq!(loader.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_load_hands_the_turn_to_the_next_waiter() {
    let cache: Cache<String> = Cache::new("test", policy(60, 0));
    let stuck = Loader::gated();
    let first = {
        let (cache, stuck) = (cache.clone(), stuck.clone());
        tokio::spawn(async move { cache.get_or_load("k", || stuck.load("old")).await })
    };
    until("the first load runs", || stuck.calls() == 1).await;
    let loader = Loader::default();
    let second = {
        let (cache, loader) = (cache.clone(), loader.clone());
        tokio::spawn(async move { cache.get_or_load("k", || loader.load("v")).await })
    };
    until("the second reader waits", || cache.waiting("k") == 2).await;
    first.abort();
    assert_eq!(second.await.unwrap().unwrap(), "v#1");
    assert_eq!(loader.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stale_entry_is_served_while_one_background_load_replaces_it() {
    let cache: Cache<String> = Cache::new("test", policy(10, 30));
    let loader = Loader::default();
    assert_eq!(
        cache.get_or_load("k", || loader.load("v")).await.unwrap(),
        "v#1"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    // Stale: served at once, and refreshed in the background once however many readers.
    let gated = Loader::gated();
    for _ in 0..5 {
        assert_eq!(
            cache.get_or_load("k", || gated.load("v")).await.unwrap(),
            "v#1"
        );
    }
    until("the refresh runs", || gated.calls() == 1).await;
    gated.open(1);
    until("the refreshed value is stored", || cache.waiting("k") == 0).await;
    assert_eq!(
        cache.get_or_load("k", || loader.load("v")).await.unwrap(),
        "v#1"
    );
    assert_eq!(gated.calls(), 1);
    // Past fresh and stale together, the entry is gone and a reader waits for a load.
    tokio::time::advance(Duration::from_secs(41)).await;
    assert_eq!(
        cache.get_or_load("k", || loader.load("v")).await.unwrap(),
        "v#2"
    );
}

#[tokio::test]
async fn the_least_recently_used_entry_goes_first() {
    let cache: Cache<String> = Cache::new("test", Policy::forever(NonZeroUsize::new(2).unwrap()));
    let loader = Loader::default();
    for key in ["a", "b"] {
        cache.get_or_load(key, || loader.load(key)).await.unwrap();
    }
    cache.get_or_load("a", || loader.load("a")).await.unwrap();
    cache.get_or_load("c", || loader.load("c")).await.unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(loader.calls(), 3);
    cache.get_or_load("a", || loader.load("a")).await.unwrap();
    assert_eq!(loader.calls(), 3, "a was used last, so b went");
    cache.get_or_load("b", || loader.load("b")).await.unwrap();
    assert_eq!(loader.calls(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_an_invalidation_overtook_is_answered_but_not_kept() {
    let caches = Caches::default();
    let cache: Cache<String> = caches.cache("facility", policy(60, 0));
    let old = Loader::gated();
    let reader = {
        let (cache, old) = (cache.clone(), old.clone());
        tokio::spawn(async move { cache.get_or_load("1", || old.load("old")).await })
    };
    until("the load runs", || old.calls() == 1).await;
    // The write commits and invalidates while the load (which read the old row) is running.
    caches.invalidate_local("facility:1");
    old.open(1);
    assert_eq!(reader.await.unwrap().unwrap(), "old#1");
    assert!(cache.is_empty(), "the overtaken answer was not kept");
    let loader = Loader::default();
    assert_eq!(
        cache.get_or_load("1", || loader.load("new")).await.unwrap(),
        "new#1"
    );
}

#[tokio::test]
async fn prefixes_pick_one_key_a_whole_cache_or_everything() {
    let caches = Caches::default();
    let facilities: Cache<String> = caches.cache("facility", policy(60, 0));
    let clubs: Cache<String> = caches.cache("club", policy(60, 0));
    let loader = Loader::default();
    for key in ["1", "2", "10"] {
        facilities
            .get_or_load(key, || loader.load(key))
            .await
            .unwrap();
        clubs.get_or_load(key, || loader.load(key)).await.unwrap();
    }
    assert_eq!(caches.invalidate_local("facility:1"), 2, "1 and 10");
    assert_eq!((facilities.len(), clubs.len()), (1, 3));
    assert_eq!(caches.invalidate_local("club:"), 3);
    assert_eq!(caches.invalidate_local("nothing:"), 0);
    assert_eq!((facilities.len(), clubs.len()), (1, 0));
    let cleared = Arc::new(AtomicUsize::new(0));
    let hook = Arc::clone(&cleared);
    caches.on_invalidate("availability", move || {
        hook.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(caches.invalidate_local("facility:"), 1);
    assert_eq!(cleared.load(Ordering::SeqCst), 0, "another cache's prefix");
    caches.invalidate_local("availability:0190");
    assert_eq!(cleared.load(Ordering::SeqCst), 1, "a hook is cleared whole");
    caches.invalidate_local("");
    assert_eq!(cleared.load(Ordering::SeqCst), 2);
}

/// Two registries on one database, as two instances are.
async fn two_instances() -> (
    PgPool,
    [(Caches, Cache<String>, clubpulse_cache::Listening); 2],
) {
    let url = clubpulse_storage::testing::fresh_database().await;
    let db = PgPool::connect(&url).await.unwrap();
    let instance = || {
        let caches = Caches::default();
        let cache = caches.cache("facility", policy(60, 0));
        let listening = caches.listen(&db);
        (caches, cache, listening)
    };
    let instances = [instance(), instance()];
    for (_, _, listening) in &instances {
        assert!(listening.ready(DEADLINE).await, "the listener listens");
    }
    (db, instances)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_on_one_instance_reaches_the_other_through_postgres() {
    let (db, [(a, a_cache, _a), (_b, b_cache, _b_listening)]) = two_instances().await;
    let loader = Loader::default();
    for key in ["1", "2"] {
        a_cache.get_or_load(key, || loader.load(key)).await.unwrap();
        b_cache.get_or_load(key, || loader.load(key)).await.unwrap();
    }
    a.invalidate(&db, "facility:1").await.unwrap();
    assert_eq!(a_cache.len(), 1, "gone here at once");
    until("the other instance drops it", || b_cache.len() == 1).await;
    // Inside a transaction, the others hear of it when it commits, not before.
    let mut tx = db.begin().await.unwrap();
    clubpulse_cache::notify(&mut *tx, "facility:")
        .await
        .unwrap();
    let probe = Loader::default();
    b_cache.get_or_load("3", || probe.load("3")).await.unwrap();
    // A notification sent after the transaction's, outside it: were the transaction's delivered
    // before its commit, it would have arrived first.
    clubpulse_cache::notify(&db, "facility:3").await.unwrap();
    until("the later notification arrives", || b_cache.len() == 1).await;
    assert_eq!(b_cache.get_many(&["2"]).1.len(), 0, "2 is still there");
    tx.commit().await.unwrap();
    until("the committed invalidation arrives", || b_cache.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_loses_its_connection_empties_its_caches_and_listens_again() {
    let (db, [(a, a_cache, _a), (_b, b_cache, b_listening)]) = two_instances().await;
    let loader = Loader::default();
    b_cache.get_or_load("1", || loader.load("1")).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'clubpulse-cache-listener' AND datname = current_database()",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(killed, vec![true, true], "both listeners' connections");
    until("the caches are emptied", || b_cache.is_empty()).await;
    assert!(b_listening.ready(DEADLINE).await, "listening again");
    b_cache.get_or_load("2", || loader.load("2")).await.unwrap();
    a.invalidate(&db, "facility:2").await.unwrap();
    until("invalidations arrive again", || b_cache.is_empty()).await;
    assert!(a_cache.is_empty());
}
