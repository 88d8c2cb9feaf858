//! A mirror of active holds, for fast reads ("is this hold still live, and on which facility?").
//!
//! PostgreSQL stays the authority on holds: nothing decides a booking from the mirror. Each hold is
//! mirrored until its expiry, after which it disappears by itself; a mirror entry that was missed or
//! lost only sends the reader to PostgreSQL.

mod memory;
mod redis;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::{memory::MemoryHoldMirror, redis::RedisHoldMirror};
use crate::StateError;

/// One active hold as mirrored: which booking, on which facility, over which range, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirroredHold {
    pub booking_id: Uuid,
    pub facility_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Where active holds are mirrored.
#[async_trait]
pub trait HoldMirror: Send + Sync + 'static {
    /// Mirrors a hold until its expiry, replacing any earlier mirror of it. An expiry already past
    /// stores nothing (and drops an earlier mirror).
    async fn put(&self, hold: &MirroredHold) -> Result<(), StateError>;

    /// Drops the mirror of a hold (confirmed, cancelled or released); unknown ids are fine.
    async fn remove(&self, booking_id: Uuid) -> Result<(), StateError>;

    /// The facility of the hold while its mirror is live, `None` otherwise.
    async fn get(&self, booking_id: Uuid) -> Result<Option<Uuid>, StateError>;

    /// The live holds of a facility, by start: what a watcher sees held the moment it subscribes.
    async fn on_facility(&self, facility_id: Uuid) -> Result<Vec<MirroredHold>, StateError>;
}
