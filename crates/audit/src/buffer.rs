//! Where events wait between the request that recorded them and the flusher that chains them.
//!
//! - [`RedisBuffer`]: a Redis stream. Appending is one `XADD`, with no PostgreSQL round trip in
//!   the request path; the flusher reads the oldest entries with `XRANGE` and removes them with
//!   `XDEL` only after their batch committed.
//! - [`PgInbox`]: the `audit_inbox` table, for deployments without Redis and as the fallback when
//!   Redis refuses an append, so an accepted event is never dropped.
//!
//! Both keep arrival order, and both are read and emptied only by a flusher holding the chain's
//! lock, so a batch is never chained twice (see [`crate::flush`]).

use std::fmt;

use async_trait::async_trait;
use clubpulse_state::RedisConn;
use redis::streams::StreamRangeReply;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{AuditError, AuditEvent};

/// An event read from a buffer, with what the buffer needs to remove it.
#[derive(Debug, Clone)]
pub struct Buffered {
    pub handle: String,
    pub event: AuditEvent,
}

/// A durable, ordered queue of events awaiting the chain.
#[async_trait]
pub trait AuditBuffer: Send + Sync + fmt::Debug {
    /// Adds one event; when this returns `Ok`, the event will reach the chain.
    async fn append(&self, event: &AuditEvent) -> Result<(), AuditError>;
    /// The oldest `max` events, oldest first, without removing them.
    async fn read(&self, max: usize) -> Result<Vec<Buffered>, AuditError>;
    /// Forgets events that are in the chain.
    async fn remove(&self, handles: &[String]) -> Result<(), AuditError>;
    /// How many events are waiting.
    async fn depth(&self) -> Result<u64, AuditError>;
}

/// Events in a Redis stream under the deployment's key prefix.
#[derive(Debug, Clone)]
pub struct RedisBuffer {
    redis: RedisConn,
    key: String,
}

impl RedisBuffer {
    pub fn new(redis: RedisConn) -> Self {
        let key = redis.key("audit:events");
        Self { redis, key }
    }
}

#[async_trait]
impl AuditBuffer for RedisBuffer {
    async fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let body = serde_json::to_string(event).map_err(AuditError::encode)?;
        let _: String = self
            .redis
            .query(
                redis::cmd("XADD")
                    .arg(&self.key)
                    .arg("*")
                    .arg("e")
                    .arg(body),
            )
            .await?;
        Ok(())
    }

    async fn read(&self, max: usize) -> Result<Vec<Buffered>, AuditError> {
        let reply: StreamRangeReply = self
            .redis
            .query(
                redis::cmd("XRANGE")
                    .arg(&self.key)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(max),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| {
                let raw: Option<String> = entry.get("e");
                let event = decode_or_quarantine(&entry.id, raw.as_deref().unwrap_or(""));
                Buffered {
                    handle: entry.id,
                    event,
                }
            })
            .collect())
    }

    async fn remove(&self, handles: &[String]) -> Result<(), AuditError> {
        if handles.is_empty() {
            return Ok(());
        }
        let _: u64 = self
            .redis
            .query(redis::cmd("XDEL").arg(&self.key).arg(handles))
            .await?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, AuditError> {
        Ok(self.redis.query(redis::cmd("XLEN").arg(&self.key)).await?)
    }
}

/// Events in the `audit_inbox` table.
#[derive(Debug, Clone)]
pub struct PgInbox {
    pool: PgPool,
}

impl PgInbox {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Appends events inside the caller's transaction, so they are accepted exactly when the
    /// transaction commits (the outbox relay records booking events this way: the event enters
    /// the inbox in the transaction that marks it delivered).
    pub async fn append_in(
        conn: &mut sqlx::PgConnection,
        events: &[AuditEvent],
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let bodies = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(AuditError::encode)?;
        sqlx::query("INSERT INTO audit_inbox (event) SELECT * FROM unnest($1::jsonb[])")
            .bind(bodies)
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl AuditBuffer for PgInbox {
    async fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let body = serde_json::to_value(event).map_err(AuditError::encode)?;
        sqlx::query("INSERT INTO audit_inbox (event) VALUES ($1)")
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn read(&self, max: usize) -> Result<Vec<Buffered>, AuditError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows: Vec<(i64, serde_json::Value)> =
            sqlx::query_as("SELECT id, event FROM audit_inbox ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, body)| {
                let handle = id.to_string();
                let event = serde_json::from_value(body.clone())
                    .unwrap_or_else(|_| quarantine(&handle, &body.to_string()));
                Buffered { handle, event }
            })
            .collect())
    }

    async fn remove(&self, handles: &[String]) -> Result<(), AuditError> {
        let ids: Vec<i64> = handles.iter().filter_map(|h| h.parse().ok()).collect();
        sqlx::query("DELETE FROM audit_inbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, AuditError> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_inbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn decode_or_quarantine(handle: &str, raw: &str) -> AuditEvent {
    serde_json::from_str(raw).unwrap_or_else(|_| quarantine(handle, raw))
}

/// An entry nobody can decode still goes into the chain, as an `audit.undecodable` event carrying
/// the raw text: dropping it would lose a record, and leaving it would block every event after it.
/// Its id is derived from the entry, so a second hand-over is still recognised as a duplicate.
fn quarantine(handle: &str, raw: &str) -> AuditEvent {
    tracing::error!(
        buffer.entry = handle,
        "an undecodable audit entry is chained as audit.undecodable"
    );
    let digest = Sha256::digest(format!("{handle}\n{raw}").as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let mut event = AuditEvent::new("audit.undecodable").detail("raw", raw);
    event.id = Uuid::from_bytes(id);
    event
}
