//! A cache of per-facility, per-local-day slot bitmaps, kept coherent with PostgreSQL by a
//! generation protocol.
//!
//! PostgreSQL is the authority on which slots are held or booked; this cache only saves the query
//! that computes a day's bitmaps. It must never serve a bitmap that misses a booking committed before
//! the read started, and it cannot see PostgreSQL transactions, so coherence rests on a per-day
//! counter, the *generation*:
//!
//! 1. A writer commits its booking change in PostgreSQL, then calls [`AvailabilityCache::invalidate`]
//!    for every day it touched. That bumps each day's generation (and drops its cached bitmaps).
//! 2. A reader calls [`AvailabilityCache::get_days`]. A day is a [`Cached::Hit`] only when its bitmaps
//!    were stored under the day's *current* generation; otherwise it is a
//!    [`Cached::Miss`] carrying that current generation.
//! 3. On a miss the reader queries PostgreSQL *after* having read the generation, and offers the
//!    result with [`AvailabilityCache::store_day`] together with the generation it read. The store
//!    happens only if the generation is still the same, atomically with the check.
//!
//! Why that is enough: the reader's PostgreSQL query started after it read generation `g`. A write
//! the query may have missed committed after the query's snapshot, so its `invalidate` runs after
//! that commit, i.e. after the reader read `g`, and moves the generation past `g`. Either it does so
//! before the reader's `store_day`, which is then refused, or after it, and then the bump makes the
//! freshly stored bitmaps stop being served. Either way no stale answer outlives the writer's
//! `invalidate`. A writer that crashes between its commit and its `invalidate` leaves stale entries
//! until their TTL runs out, which bounds the damage.
//!
//! Generations are opaque tokens, compared only for equality. A day that was never invalidated (or
//! whose counter has expired) is at generation 0. A counter that starts anew does not start at 1
//! but at the current time in milliseconds, so it never hands out a value an in-flight reader may
//! still hold from the counter's previous life (which would let that reader's stale result in).

mod memory;
mod redis;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

pub use self::{memory::MemoryAvailabilityCache, redis::RedisAvailabilityCache};
use crate::StateError;

/// How long a day's generation counter lives after its last bump (longer when bitmaps stored under
/// it live longer): long enough that any reader that read it has finished, short enough that days
/// nobody looks at any more do not accumulate.
pub(crate) const GENERATION_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);

/// One facility on one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayKey {
    pub facility_id: Uuid,
    /// The day in the facility's local time zone.
    pub date: NaiveDate,
}

impl DayKey {
    /// The day `date` (local) of `facility_id`.
    pub fn new(facility_id: Uuid, date: NaiveDate) -> Self {
        Self { facility_id, date }
    }
}

/// The slot bitmaps of one day: bit `i` is slot `i`, most significant bit first within each byte
/// (the order of Redis `SETBIT`/`GETBIT`). A day with no slots (closed) has empty bitmaps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayBits {
    /// Slots covered by a live hold.
    pub held: Vec<u8>,
    /// Slots covered by a confirmed booking.
    pub booked: Vec<u8>,
}

impl DayBits {
    /// Empty bitmaps with room for `bits` slots (whole bytes, the unused tail bits clear).
    pub fn with_len(bits: u32) -> Self {
        let bytes = usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX);
        Self {
            held: vec![0; bytes],
            booked: vec![0; bytes],
        }
    }

    /// Marks slot `i` as held, growing the bitmap if it is too short (as `SETBIT` does).
    pub fn set_held(&mut self, i: u32) {
        set_bit(&mut self.held, i);
    }

    /// Marks slot `i` as booked, growing the bitmap if it is too short (as `SETBIT` does).
    pub fn set_booked(&mut self, i: u32) {
        set_bit(&mut self.booked, i);
    }

    /// Whether slot `i` is held; slots past the end are not.
    pub fn is_held(&self, i: u32) -> bool {
        get_bit(&self.held, i)
    }

    /// Whether slot `i` is booked; slots past the end are not.
    pub fn is_booked(&self, i: u32) -> bool {
        get_bit(&self.booked, i)
    }
}

/// The byte holding bit `i` and the mask of that bit within it.
fn position(i: u32) -> (usize, u8) {
    let byte = usize::try_from(i / 8).unwrap_or(usize::MAX);
    (byte, 0x80 >> (i % 8))
}

fn set_bit(bits: &mut Vec<u8>, i: u32) {
    let (byte, mask) = position(i);
    if bits.len() <= byte {
        bits.resize(byte + 1, 0);
    }
    if let Some(b) = bits.get_mut(byte) {
        *b |= mask;
    }
}

fn get_bit(bits: &[u8], i: u32) -> bool {
    let (byte, mask) = position(i);
    bits.get(byte).is_some_and(|b| b & mask != 0)
}

/// What the cache holds for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Bitmaps computed under the day's current generation: safe to serve.
    Hit(DayBits),
    /// Nothing usable. Compute the day from PostgreSQL and offer it back with this generation.
    Miss { generation: u64 },
}

/// The availability cache; see the module docs for the generation protocol it implements.
#[async_trait]
pub trait AvailabilityCache: Send + Sync + 'static {
    /// One answer per key, in order, in one round trip (one pipeline / concurrent batch).
    async fn get_days(&self, keys: &[DayKey]) -> Result<Vec<Cached>, StateError>;

    /// Stores bitmaps computed from PostgreSQL, but only if no write happened since `generation` was
    /// read (returns whether it stored). TTL `ttl` on every key of the day; a `ttl` under one
    /// millisecond stores nothing.
    async fn store_day(
        &self,
        key: &DayKey,
        generation: u64,
        bits: &DayBits,
        ttl: std::time::Duration,
    ) -> Result<bool, StateError>;

    /// Marks days as changed (called after a booking write commits): their cached bitmaps stop being
    /// served, and any `store_day` still holding an older generation is refused.
    async fn invalidate(&self, keys: &[DayKey]) -> Result<(), StateError>;

    /// Drops every cached day (`clubpulse cache clear`), keeping the generations, so a reader
    /// in flight stores its answer as if nothing happened (a clear is not a write). Returns how
    /// many days went. On a cluster, every seed node is scanned: list every primary as a seed.
    async fn clear(&self) -> Result<u64, StateError>;
}

/// The first value of a counter that starts anew: the current time in milliseconds, above anything
/// the counter's previous life could have reached (see the module docs). Never 0.
pub(crate) fn fresh_generation(now_ms: i64) -> u64 {
    u64::try_from(now_ms).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_most_significant_first_like_redis() {
        let mut bits = DayBits::with_len(10);
        assert_eq!(bits.held.len(), 2);
        bits.set_held(0);
        bits.set_held(9);
        bits.set_booked(7);
        assert_eq!(bits.held, vec![0b1000_0000, 0b0100_0000]);
        assert_eq!(bits.booked, vec![0b0000_0001, 0]);
        assert!(bits.is_held(0) && bits.is_held(9) && !bits.is_held(1));
        assert!(bits.is_booked(7) && !bits.is_booked(8));
        assert!(!bits.is_held(1000));
    }

    #[test]
    fn setting_past_the_end_grows_the_bitmap() {
        let mut bits = DayBits::with_len(0);
        assert!(bits.held.is_empty() && bits.booked.is_empty());
        bits.set_booked(17);
        assert_eq!(bits.booked, vec![0, 0, 0b0100_0000]);
        assert!(bits.is_booked(17));
        assert!(bits.held.is_empty());
    }

    #[test]
    fn fresh_generations_are_never_zero() {
        assert_eq!(fresh_generation(-5), 1);
        assert_eq!(fresh_generation(0), 1);
        assert_eq!(fresh_generation(1_700_000_000_000), 1_700_000_000_000);
    }
}
