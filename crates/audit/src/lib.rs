//! The audit log: who did what, recorded without slowing the request, kept where nobody can
//! quietly rewrite it.
//!
//! A request records an [`AuditEvent`] with [`AuditLog::record`]: one append to a buffer (a Redis
//! stream; the `audit_inbox` table without Redis, or when Redis refuses). It never waits on the
//! chain. A [`Flusher`] in every instance moves buffered events into the `audit_log` table in
//! batches, each row hash-chained to the one before it; the database refuses UPDATE, DELETE and
//! TRUNCATE of it, and [`verify`] walks the chain and names the first broken seq.
//!
//! # Layout
//!
//! - [`event`]: the event and the stable action names.
//! - [`chain`]: the canonical encoding and the SHA-256 link.
//! - [`buffer`]: the Redis stream and the PostgreSQL inbox.
//! - [`flush`]: the exactly-once hand-over from buffers to the chain.
//! - [`verify`]: the walk, and how each kind of tampering is told apart.
//! - [`listing`]: the filtered, paged view for administrators.

pub mod buffer;
pub mod chain;
pub mod event;
pub mod flush;
pub mod listing;
mod row;
pub mod verify;

use std::sync::Arc;

use clubpulse_state::RedisConn;
use sqlx::PgPool;

pub use buffer::{AuditBuffer, PgInbox, RedisBuffer};
pub use chain::{ChainedEvent, Hash};
pub use event::{AuditEvent, action};
pub use flush::Flusher;
pub use verify::{Break, Damage, ExpectedHead, Verdict, verify};

/// An audit operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot encode an audit event: {0}")]
    Encode(String),
    #[error("a stored hash is {0} bytes long, not 32")]
    HashLength(usize),
}

impl AuditError {
    fn encode(err: serde_json::Error) -> Self {
        Self::Encode(err.to_string())
    }
}

pub(crate) fn to_hash(bytes: &[u8]) -> Result<Hash, AuditError> {
    bytes
        .try_into()
        .map_err(|_| AuditError::HashLength(bytes.len()))
}

/// The request path's handle: records events into the buffer, falling back to the durable inbox.
#[derive(Debug, Clone)]
pub struct AuditLog {
    primary: Arc<dyn AuditBuffer>,
    /// The inbox, when the primary buffer is Redis (otherwise the primary is the inbox).
    fallback: Option<Arc<dyn AuditBuffer>>,
    enabled: bool,
}

impl AuditLog {
    /// Buffers in Redis when there is Redis, in PostgreSQL otherwise. `enabled = false` records
    /// nothing (for measuring what auditing costs; never for production).
    pub fn new(redis: Option<RedisConn>, pool: PgPool, enabled: bool) -> Self {
        let inbox: Arc<dyn AuditBuffer> = Arc::new(PgInbox::new(pool));
        match redis {
            Some(redis) => Self {
                primary: Arc::new(RedisBuffer::new(redis)),
                fallback: Some(inbox),
                enabled,
            },
            None => Self {
                primary: inbox,
                fallback: None,
                enabled,
            },
        }
    }

    /// Whether events are recorded at all (off only to measure what auditing costs).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Every buffer a flusher must empty.
    pub fn buffers(&self) -> Vec<Arc<dyn AuditBuffer>> {
        let mut buffers = vec![self.primary.clone()];
        buffers.extend(self.fallback.clone());
        buffers
    }

    /// A flusher for this log's buffers.
    pub fn flusher(&self, pool: PgPool) -> Flusher {
        Flusher::new(pool, self.buffers())
    }

    /// Appends `event`. Failures are logged, never returned: a request is not refused because its
    /// record could not be written, and the inbox catches what Redis refuses.
    pub async fn record(&self, event: AuditEvent) {
        if !self.enabled {
            return;
        }
        let Err(err) = self.primary.append(&event).await else {
            return;
        };
        let Some(fallback) = &self.fallback else {
            tracing::error!(error = %err, audit.action = %event.action, "an audit event was lost");
            return;
        };
        tracing::warn!(error = %err, "the audit buffer refused an event; using the inbox");
        if let Err(err) = fallback.append(&event).await {
            tracing::error!(error = %err, audit.action = %event.action, "an audit event was lost");
        }
    }
}
