//! The in-process hold mirror: one instance, no Redis. Lost on restart, which only sends readers to
//! PostgreSQL.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::HoldMirror;
use crate::StateError;

/// How often at most a `put` sweeps out expired mirrors that nobody read again.
const SWEEP_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Debug)]
struct Inner {
    /// Booking id → (facility id, expiry).
    holds: HashMap<Uuid, (Uuid, DateTime<Utc>)>,
    last_sweep: DateTime<Utc>,
}

/// Holds in a mutex-guarded map, expiry judged against `Utc::now`; the lock is never held across an
/// await.
#[derive(Debug)]
pub struct MemoryHoldMirror {
    inner: Mutex<Inner>,
}

impl Default for MemoryHoldMirror {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                holds: HashMap::new(),
                last_sweep: Utc::now(),
            }),
        }
    }
}

impl MemoryHoldMirror {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is a single map operation, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl HoldMirror for MemoryHoldMirror {
    async fn put(
        &self,
        booking_id: Uuid,
        facility_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        if now - inner.last_sweep >= SWEEP_EVERY {
            inner.holds.retain(|_, (_, expires)| *expires > now);
            inner.last_sweep = now;
        }
        if expires_at <= now {
            inner.holds.remove(&booking_id);
        } else {
            inner.holds.insert(booking_id, (facility_id, expires_at));
        }
        Ok(())
    }

    async fn remove(&self, booking_id: Uuid) -> Result<(), StateError> {
        self.lock().holds.remove(&booking_id);
        Ok(())
    }

    async fn get(&self, booking_id: Uuid) -> Result<Option<Uuid>, StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        match inner.holds.get(&booking_id) {
            Some(&(facility_id, expires_at)) if expires_at > now => Ok(Some(facility_id)),
            Some(_) => {
                inner.holds.remove(&booking_id);
                Ok(None)
            }
            None => Ok(None),
        }
    }
}
