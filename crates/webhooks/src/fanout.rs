//! The fan-out from the outbox: every outbox event a webhook carries becomes one delivery per
//! enabled endpoint subscribed to its type, recorded in the relay's transaction, and one delivery
//! job per new delivery.
//!
//! The relay calls it in two steps: [`Batch::of`] reads the claimed outbox events before the relay
//! consumes them (no I/O), and [`Batch::record`] writes the deliveries and queues the jobs as the
//! relay's last step before it removes the events and commits. Recording last keeps the relay's
//! other effects as prompt as they were (the hold mirror, say, whose update races the request
//! that changed the booking), and queues the jobs as close to the commit as possible.
//!
//! Deliveries are unique per endpoint and event, so a batch the relay delivers again records
//! nothing twice and queues nothing new; the jobs carry a unique key per delivery. A job can still
//! run before the relay's transaction commits: it then waits for the relay (see
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

/// The webhook events of one outbox batch, waiting to be recorded.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    events: Vec<webhooks::NewEvent>,
}

impl Batch {
    /// The webhook events `outbox` makes (see [`events::from_outbox`]).
    pub fn of(outbox: &[OutboxEvent]) -> Self {
        Self {
            events: outbox.iter().flat_map(events::from_outbox).collect(),
        }
    }

    /// Records the deliveries the events owe in `tx` and queues a job for each new one; returns
    /// how many were new.
    pub async fn record(&self, tx: &mut PgConnection, jobs: &Queue) -> Result<usize, FanOutError> {
        let new = webhooks::record_deliveries(tx, &self.events).await?;
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
}
