//! The sweeper: marks holds `expired` within about a second of their expiry without anyone asking,
//! so their slots show as free and their watchers hear of it (the outbox carries the `expired`
//! events). A transaction-scoped advisory lock lets one instance sweep at a time.

use clubpulse_storage::bookings;

use crate::{Bookings, Result};

impl Bookings {
    /// One sweep: expires every hold past its expiry; returns how many.
    pub async fn sweep(&self) -> Result<usize> {
        let mut tx = self.db().begin().await?;
        let expired = bookings::sweep_expired(&mut tx).await?;
        tx.commit().await?;
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "expired holds released");
        }
        Ok(expired.len())
    }
}
