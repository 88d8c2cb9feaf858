//! The in-process hold mirror: one instance, no Redis. Lost on restart, which only sends readers to
//! PostgreSQL.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{HoldMirror, MirroredHold};
use crate::StateError;

/// How often at most a `put` sweeps out expired mirrors that nobody read again.
const SWEEP_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Debug)]
struct Inner {
    /// Booking id → the hold.
    holds: HashMap<Uuid, MirroredHold>,
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
    async fn put(&self, hold: &MirroredHold) -> Result<(), StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        if now - inner.last_sweep >= SWEEP_EVERY {
            inner.holds.retain(|_, h| h.expires_at > now);
            inner.last_sweep = now;
        }
        if hold.expires_at <= now {
            inner.holds.remove(&hold.booking_id);
        } else {
            inner.holds.insert(hold.booking_id, *hold);
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
            Some(hold) if hold.expires_at > now => Ok(Some(hold.facility_id)),
            Some(_) => {
                inner.holds.remove(&booking_id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn on_facility(&self, facility_id: Uuid) -> Result<Vec<MirroredHold>, StateError> {
        let now = Utc::now();
        let mut live: Vec<MirroredHold> = self
            .lock()
            .holds
            .values()
            .filter(|h| h.facility_id == facility_id && h.expires_at > now)
            .copied()
            .collect();
        live.sort_by_key(|h| (h.start, h.booking_id));
        Ok(live)
    }
}
