//! Single flight without keeping anything: callers that ask for one key while its computation is
//! running wait for that computation and share its answer; once it is done, the next caller
//! computes again. For answers that must be as fresh as the question (the free alternatives of a
//! slot just lost), where a cache's TTL would serve an old answer but a burst of identical
//! questions should still cost one computation.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::sync::OnceCell;

/// One computation in flight and the callers sharing it.
#[derive(Debug)]
struct Flight<V> {
    answer: OnceCell<Arc<V>>,
    callers: AtomicUsize,
}

/// Computations in flight, by key.
#[derive(Debug)]
pub struct Flights<K, V> {
    running: Mutex<HashMap<K, Arc<Flight<V>>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Flights<K, V> {
    /// `compute`'s answer for `key`, or the answer of the computation for `key` already running.
    /// A computation that fails, or whose caller goes away, hands over to the next waiter, which
    /// runs its own `compute`; an error is returned to its own caller only.
    pub async fn share<E, F, Fut>(&self, key: K, compute: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let flight = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            let flight = running.entry(key.clone()).or_insert_with(|| {
                Arc::new(Flight {
                    answer: OnceCell::new(),
                    callers: AtomicUsize::new(0),
                })
            });
            flight.callers.fetch_add(1, Ordering::SeqCst);
            flight.clone()
        };
        let answer = flight
            .answer
            .get_or_try_init(|| async { compute().await.map(Arc::new) })
            .await
            .cloned();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let left = flight.callers.fetch_sub(1, Ordering::SeqCst) - 1;
        // Answered, or failed with nobody left waiting: the next question for this key is a new
        // one. (Waiters still in an answered flight read the answer from their own handle.)
        if (answer.is_ok() || left == 0)
            && running.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight))
        {
            running.remove(&key);
        }
        answer
    }

    /// How many callers are in the flight for `key` right now (0 when none is running).
    pub fn callers(&self, key: &K) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map_or(0, |f| f.callers.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::{sync::atomic::AtomicUsize, time::Duration};

    use super::*;

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn callers_during_a_computation_share_it_and_a_later_one_computes_anew() {
        let flights: Arc<Flights<&str, usize>> = Arc::default();
        let computed = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let ask = || {
            let (flights, computed, mut released) =
                (flights.clone(), computed.clone(), released.clone());
            tokio::spawn(async move {
                flights
                    .share("slot", || async move {
                        let n = computed.fetch_add(1, Ordering::SeqCst) + 1;
                        released.wait_for(|r| *r).await.unwrap();
                        Ok::<_, ()>(n)
                    })
                    .await
            })
        };
        let callers: Vec<_> = (0..5).map(|_| ask()).collect();
        until("five callers in the flight", || {
            flights.callers(&"slot") == 5
        })
        .await;
        release.send(true).unwrap();
        for caller in callers {
            assert_eq!(
                *caller.await.unwrap().unwrap(),
                1,
                "one computation for all five"
            );
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert_eq!(flights.callers(&"slot"), 0, "nothing kept");

        let later = ask().await.unwrap().unwrap();
        assert_eq!(*later, 2, "a question after the answer is a new one");
    }

    #[tokio::test]
    async fn a_failed_computation_hands_over_to_the_next_waiter() {
        let flights: Arc<Flights<&str, &str>> = Arc::default();
        let (release, released) = tokio::sync::watch::channel(false);
        let first = {
            let (flights, mut released) = (flights.clone(), released.clone());
            tokio::spawn(async move {
                flights
                    .share("slot", || async move {
                        released.wait_for(|r| *r).await.unwrap();
                        Err::<&str, _>("the database went away")
                    })
                    .await
            })
        };
        until("the first caller in flight", || {
            flights.callers(&"slot") == 1
        })
        .await;
        let second = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .share("slot", || async { Ok::<_, &str>("computed by the second") })
                    .await
            })
        };
        until("the second caller waiting", || {
            flights.callers(&"slot") == 2
        })
        .await;
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap().unwrap_err(), "the database went away");
        assert_eq!(*second.await.unwrap().unwrap(), "computed by the second");
    }
}
