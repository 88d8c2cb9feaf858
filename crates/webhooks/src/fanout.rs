//! The fan-out from the outbox: every outbox event a webhook carries becomes one delivery per
//! enabled endpoint subscribed to its type, recorded in the relay's transaction, and one delivery
//! job per new delivery.
//!
//! Deliveries are unique per endpoint and event, so a batch the relay delivers again (its first
//! transaction rolled back after this ran) records nothing twice; the jobs carry a unique key per
//! delivery, so one queued by a rolled-back batch and queued again is one job. A job can run
//! before the relay's transaction commits: it then waits for the relay (see
//! [`crate::delivery`]).

use clubpulse_jobs::{JobSpec, Queue};
use clubpulse_storage::{outbox::OutboxEvent, webhooks};
use sqlx::PgConnection;

use crate::{delivery::DeliverWebhook, events};

/// Why deliveries could not be recorded or queued; the relay's batch then fails and is retried.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error("recording webhook deliveries: {0}")]
    Storage(#[from] clubpulse_storage::StorageError),
    #[error("queueing webhook deliveries: {0}")]
    Jobs(#[from] clubpulse_jobs::JobError),
}

/// Records the deliveries `events` owe in `tx` and queues a job for each new one; returns how many
/// were new.
pub async fn record(
    tx: &mut PgConnection,
    jobs: &Queue,
    events: &[OutboxEvent],
) -> Result<usize, FanOutError> {
    let made: Vec<webhooks::NewEvent> = events.iter().flat_map(events::from_outbox).collect();
    let new = webhooks::record_deliveries(tx, &made).await?;
    if new.is_empty() {
        return Ok(0);
    }
    let specs = new
        .iter()
        .map(|&delivery_id| JobSpec::from_job(&DeliverWebhook { delivery_id }))
        .collect::<Result<Vec<_>, _>>()?;
    jobs.push_specs(specs).await?;
    tracing::debug!(deliveries = new.len(), "webhook deliveries recorded");
    Ok(new.len())
}
