//! The sweeper: marks holds `expired` within about a second of their expiry without anyone asking,
//! so their slots show as free and their watchers hear of it. Every instance runs one; a
//! transaction-scoped advisory lock lets one sweep at a time.

use std::collections::HashMap;

use clubpulse_domain::BookingEventKind;
use clubpulse_storage::bookings::{self, Booking};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::AppState;

/// Starts the sweeper; it runs until the handle is aborted.
pub fn spawn(app: AppState) -> JoinHandle<()> {
    let interval = app.config.booking.sweep_interval();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = sweep(&app).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "sweeping expired holds failed; retrying"
                );
            }
        }
    })
}

/// One sweep: expire what is due, then update shared state and publish `expired` events.
pub async fn sweep(app: &AppState) -> anyhow::Result<usize> {
    let mut tx = app.db.begin().await?;
    let expired = bookings::sweep_expired(&mut tx).await?;
    tx.commit().await?;
    let mut by_facility: HashMap<Uuid, Vec<Booking>> = HashMap::new();
    for booking in &expired {
        by_facility
            .entry(booking.facility_id)
            .or_default()
            .push(booking.clone());
    }
    for (facility_id, expired) in by_facility {
        match super::load_any(&app.db, facility_id).await {
            Ok(ctx) => {
                super::after_commit(app, &ctx, &expired, BookingEventKind::Expired, None).await
            }
            Err(err) => {
                tracing::error!(?err, facility.id = %facility_id, "expired holds of an unreadable facility")
            }
        }
    }
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "expired holds released");
    }
    Ok(expired.len())
}
