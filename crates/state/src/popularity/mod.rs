//! Popular times: how many confirmed bookings each facility had per local weekday and hour.
//!
//! The counts feed "busy at this time" hints; they are advisory, so they are kept only here (not in
//! PostgreSQL) and a lost count costs nothing but a slightly less accurate hint. A facility has at
//! most 7 × 24 = 168 counters, so reading all of them is cheap.

mod memory;
mod redis;

use async_trait::async_trait;
use uuid::Uuid;

pub use self::{memory::MemoryPopularTimes, redis::RedisPopularTimes};
use crate::StateError;

/// One weekday-and-hour of a facility with its booking count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopularSlot {
    /// Local weekday, 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Local hour, 0–23.
    pub hour: u8,
    pub count: u64,
}

/// Where popular-times counts live.
#[async_trait]
pub trait PopularTimes: Send + Sync + 'static {
    /// Adds the confirmed booking `booking_id` at `weekday` (0 = Monday) and `hour` (0–23) in the
    /// facility's local time, once: reporting the same booking again (a redelivered outbox event)
    /// changes nothing, for at least [`COUNTED_FOR`]. Values out of range are not a time of the
    /// week: they are logged and ignored, so a bad caller cannot corrupt the counts.
    async fn record(
        &self,
        booking_id: Uuid,
        facility_id: Uuid,
        weekday: u8,
        hour: u8,
    ) -> Result<(), StateError>;

    /// The facility's busiest times, at most `limit`: highest count first, ties by weekday then hour.
    async fn top(&self, facility_id: Uuid, limit: usize) -> Result<Vec<PopularSlot>, StateError>;

    /// The count of one weekday and hour for each facility, in order (0 when never booked), in one
    /// round trip.
    async fn scores(
        &self,
        facility_ids: &[Uuid],
        weekday: u8,
        hour: u8,
    ) -> Result<Vec<u64>, StateError>;
}

/// How long a counted booking is remembered, so that a repeated report is recognised. Repeats come
/// from a relay retrying a batch, within seconds or minutes.
pub const COUNTED_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether `weekday` and `hour` name a time of the week.
pub(crate) fn in_range(weekday: u8, hour: u8) -> bool {
    weekday < 7 && hour < 24
}

/// Orders slots busiest first, ties by weekday then hour, and keeps the first `limit`.
pub(crate) fn rank(mut slots: Vec<PopularSlot>, limit: usize) -> Vec<PopularSlot> {
    slots.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.weekday.cmp(&b.weekday))
            .then(a.hour.cmp(&b.hour))
    });
    slots.truncate(limit);
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_breaks_ties_by_weekday_then_hour() {
        let slot = |weekday, hour, count| PopularSlot {
            weekday,
            hour,
            count,
        };
        let ranked = rank(
            vec![slot(3, 9, 2), slot(1, 19, 2), slot(1, 8, 2), slot(6, 23, 5)],
            3,
        );
        assert_eq!(ranked, vec![slot(6, 23, 5), slot(1, 8, 2), slot(1, 19, 2)]);
    }
}
