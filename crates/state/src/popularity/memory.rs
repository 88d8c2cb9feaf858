//! The in-process popular times: one instance, no Redis. Lost on restart, like a Redis without
//! persistence; the counts then start over.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use uuid::Uuid;

use super::{PopularSlot, PopularTimes, in_range, rank};
use crate::StateError;

/// How many counted bookings are remembered, to recognise a repeated report.
const REMEMBERED: usize = 100_000;

/// Facility → (weekday, hour) → confirmed bookings, and the bookings counted lately.
#[derive(Debug, Default)]
struct Counts {
    slots: HashMap<Uuid, HashMap<(u8, u8), u64>>,
    counted: HashSet<Uuid>,
    /// `counted` in the order it was filled, to forget the oldest first.
    order: VecDeque<Uuid>,
}

/// Counts in a mutex-guarded map; the lock is never held across an await.
#[derive(Debug, Default)]
pub struct MemoryPopularTimes {
    counts: Mutex<Counts>,
}

impl MemoryPopularTimes {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        // An increment cannot be half done, so a poisoned lock is simply taken over.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl PopularTimes for MemoryPopularTimes {
    async fn record(
        &self,
        booking_id: Uuid,
        facility_id: Uuid,
        weekday: u8,
        hour: u8,
    ) -> Result<(), StateError> {
        if !in_range(weekday, hour) {
            tracing::warn!(%facility_id, weekday, hour, "ignoring a popular-times record out of range");
            return Ok(());
        }
        let mut counts = self.lock();
        if !counts.counted.insert(booking_id) {
            return Ok(());
        }
        counts.order.push_back(booking_id);
        if counts.order.len() > REMEMBERED
            && let Some(oldest) = counts.order.pop_front()
        {
            counts.counted.remove(&oldest);
        }
        let count = counts
            .slots
            .entry(facility_id)
            .or_default()
            .entry((weekday, hour))
            .or_default();
        *count = count.saturating_add(1);
        Ok(())
    }

    async fn top(&self, facility_id: Uuid, limit: usize) -> Result<Vec<PopularSlot>, StateError> {
        let slots = self
            .lock()
            .slots
            .get(&facility_id)
            .map(|slots| {
                slots
                    .iter()
                    .map(|(&(weekday, hour), &count)| PopularSlot {
                        weekday,
                        hour,
                        count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(rank(slots, limit))
    }

    async fn scores(
        &self,
        facility_ids: &[Uuid],
        weekday: u8,
        hour: u8,
    ) -> Result<Vec<u64>, StateError> {
        let counts = self.lock();
        Ok(facility_ids
            .iter()
            .map(|id| {
                counts
                    .slots
                    .get(id)
                    .and_then(|slots| slots.get(&(weekday, hour)))
                    .copied()
                    .unwrap_or(0)
            })
            .collect())
    }
}
