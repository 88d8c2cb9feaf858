//! The in-process availability cache: one instance, no Redis. Same protocol and expiry rules as the
//! Redis cache, with every operation on a day done under one lock (the atomicity the Lua scripts give
//! in Redis). Lost on restart, which only costs cache misses.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::Utc;

use super::{AvailabilityCache, Cached, DayBits, DayKey, GENERATION_TTL, fresh_generation};
use crate::StateError;

/// How often at most a write sweeps out days whose counter and bitmaps have both expired.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// `now + d`; `None` means never (a duration too long to represent).
fn deadline(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

fn alive(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_none_or(|d| d > now)
}

#[derive(Debug)]
struct Stored {
    generation: u64,
    bits: DayBits,
    expires: Option<Instant>,
}

#[derive(Debug, Default)]
struct Day {
    /// The counter; meaningful only while `generation_expires` has not passed (then it reads as 0).
    generation: u64,
    generation_expires: Option<Instant>,
    cached: Option<Stored>,
}

impl Day {
    fn current_generation(&self, now: Instant) -> u64 {
        if self.generation != 0 && alive(self.generation_expires, now) {
            self.generation
        } else {
            0
        }
    }

    fn live_cached(&self, now: Instant) -> Option<&Stored> {
        self.cached.as_ref().filter(|s| alive(s.expires, now))
    }

    /// Whether anything in the day is still alive.
    fn is_alive(&self, now: Instant) -> bool {
        self.current_generation(now) != 0 || self.live_cached(now).is_some()
    }

    /// Keeps the counter alive at least until `until` (`None`: forever), like `PEXPIRE` only when
    /// the remaining TTL is shorter.
    fn extend_generation(&mut self, until: Option<Instant>) {
        let longer = match (self.generation_expires, until) {
            (_, None) | (None, _) => None,
            (Some(a), Some(b)) => Some(a.max(b)),
        };
        self.generation_expires = longer;
    }
}

#[derive(Debug)]
struct Inner {
    days: HashMap<DayKey, Day>,
    last_sweep: Instant,
}

impl Inner {
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.days.retain(|_, day| day.is_alive(now));
            self.last_sweep = now;
        }
    }
}

/// Availability bitmaps in a mutex-guarded map; the lock is never held across an await.
#[derive(Debug)]
pub struct MemoryAvailabilityCache {
    inner: Mutex<Inner>,
}

impl Default for MemoryAvailabilityCache {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                days: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl MemoryAvailabilityCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves each day consistent before the next statement can panic, so a
        // poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl AvailabilityCache for MemoryAvailabilityCache {
    async fn clear(&self) -> Result<u64, StateError> {
        let mut inner = self.lock();
        let cleared = inner
            .days
            .values_mut()
            .filter_map(|day| day.cached.take())
            .count();
        Ok(u64::try_from(cleared).unwrap_or(u64::MAX))
    }

    async fn get_days(&self, keys: &[DayKey]) -> Result<Vec<Cached>, StateError> {
        let now = Instant::now();
        let inner = self.lock();
        Ok(keys
            .iter()
            .map(|key| {
                let Some(day) = inner.days.get(key) else {
                    return Cached::Miss { generation: 0 };
                };
                let generation = day.current_generation(now);
                match day.live_cached(now) {
                    Some(stored) if stored.generation == generation => {
                        Cached::Hit(stored.bits.clone())
                    }
                    _ => Cached::Miss { generation },
                }
            })
            .collect())
    }

    async fn store_day(
        &self,
        key: &DayKey,
        generation: u64,
        bits: &DayBits,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        if ttl < Duration::from_millis(1) {
            return Ok(false);
        }
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep(now);
        let current = inner
            .days
            .get(key)
            .map_or(0, |day| day.current_generation(now));
        if current != generation {
            return Ok(false);
        }
        let expires = deadline(now, ttl);
        let day = inner.days.entry(*key).or_default();
        day.cached = Some(Stored {
            generation,
            bits: bits.clone(),
            expires,
        });
        if current != 0 {
            day.extend_generation(expires);
        }
        Ok(true)
    }

    async fn invalidate(&self, keys: &[DayKey]) -> Result<(), StateError> {
        let now = Instant::now();
        let now_ms = Utc::now().timestamp_millis();
        let mut inner = self.lock();
        inner.sweep(now);
        for key in keys {
            let day = inner.days.entry(*key).or_default();
            let current = day.current_generation(now);
            if current == 0 {
                day.generation = fresh_generation(now_ms);
                day.generation_expires = deadline(now, GENERATION_TTL);
            } else {
                day.generation = current.saturating_add(1);
                day.extend_generation(deadline(now, GENERATION_TTL));
            }
            day.cached = None;
        }
        Ok(())
    }
}
