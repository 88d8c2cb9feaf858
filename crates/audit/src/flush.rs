//! Moving buffered events into the chain: at-least-once hand-over, exactly-once result.
//!
//! One batch is: read the oldest events of a buffer; in one transaction, take the chain's advisory
//! lock, drop the events whose ids are already chained, link the rest after the current head,
//! insert them and a new anchor; commit; only then remove the batch from the buffer.
//!
//! A flusher killed before its commit leaves the buffer untouched, so the batch is read again. One
//! killed after its commit but before the removal leaves events that are already chained; the next
//! batch recognises their ids and skips them. Two instances flushing at once serialise on the lock,
//! and the second finds the first one's events chained. So every event lands exactly once.

use std::{collections::HashSet, sync::Arc, time::Duration};

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    AuditBuffer, AuditError, AuditEvent,
    chain::{self, GENESIS, Hash},
};

/// The advisory lock key that makes the flusher the chain's only writer ("audit" in ASCII).
const CHAIN_LOCK: i64 = 0x0061_7564_6974;

/// Events per transaction: large enough to amortise the commit, small enough to keep the lock
/// briefly.
pub const DEFAULT_BATCH: usize = 500;

/// What one [`append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    /// Events newly chained.
    pub chained: usize,
    /// Events found in the chain already (a repeated hand-over).
    pub skipped: usize,
}

/// Chains `events` (in order) after the current head, skipping any already chained, in one
/// transaction. The building block of [`Flusher`]; a caller that does not then remove the events
/// from their buffer simply sees them skipped next time.
pub async fn append(pool: &PgPool, events: Vec<AuditEvent>) -> Result<Appended, AuditError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let chained: Vec<(Uuid,)> =
        sqlx::query_as("SELECT event_id FROM audit_log WHERE event_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    let mut seen: HashSet<Uuid> = chained.into_iter().map(|(id,)| id).collect();
    let total = events.len();
    // Also drops repeats within the batch (an event appended twice by a retried XADD).
    let fresh: Vec<AuditEvent> = events.into_iter().filter(|e| seen.insert(e.id)).collect();
    let appended = Appended {
        chained: fresh.len(),
        skipped: total - fresh.len(),
    };
    if !fresh.is_empty() {
        let (mut seq, mut prev) = head(&mut tx).await?.unwrap_or((0, GENESIS));
        let mut links = Vec::with_capacity(fresh.len());
        for event in fresh {
            seq += 1;
            let link = chain::link(seq, event, prev);
            prev = link.hash;
            links.push(link);
        }
        insert(&mut tx, &links).await?;
        sqlx::query("INSERT INTO audit_anchor (seq, hash) VALUES ($1, $2)")
            .bind(seq)
            .bind(prev.to_vec())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(appended)
}

/// The newest row's seq and hash.
async fn head(tx: &mut Transaction<'_, Postgres>) -> Result<Option<(i64, Hash)>, AuditError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    row.map(|(seq, hash)| Ok((seq, crate::to_hash(&hash)?)))
        .transpose()
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    links: &[chain::ChainedEvent],
) -> Result<(), AuditError> {
    let mut seqs = Vec::with_capacity(links.len());
    let mut ids = Vec::with_capacity(links.len());
    let mut times = Vec::with_capacity(links.len());
    let mut actors = Vec::with_capacity(links.len());
    let mut actions = Vec::with_capacity(links.len());
    let mut targets = Vec::with_capacity(links.len());
    let mut ips = Vec::with_capacity(links.len());
    let mut details = Vec::with_capacity(links.len());
    let mut prevs = Vec::with_capacity(links.len());
    let mut hashes = Vec::with_capacity(links.len());
    for link in links {
        let e = &link.event;
        seqs.push(link.seq);
        ids.push(e.id);
        times.push(e.occurred_at);
        actors.push(e.actor_id);
        actions.push(e.action.clone());
        targets.push(e.target.clone());
        ips.push(e.ip.clone());
        details.push(serde_json::Value::Object(e.details.clone()));
        prevs.push(link.prev_hash.to_vec());
        hashes.push(link.hash.to_vec());
    }
    sqlx::query(
        "INSERT INTO audit_log
             (seq, event_id, occurred_at, actor_id, action, target, ip, details, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::timestamptz[], $4::uuid[], $5::text[],
                              $6::text[], $7::text[], $8::jsonb[], $9::bytea[], $10::bytea[])",
    )
    .bind(seqs)
    .bind(ids)
    .bind(times)
    .bind(actors)
    .bind(actions)
    .bind(targets)
    .bind(ips)
    .bind(details)
    .bind(prevs)
    .bind(hashes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Empties buffers into the chain, batch by batch.
#[derive(Debug, Clone)]
pub struct Flusher {
    pool: PgPool,
    buffers: Vec<Arc<dyn AuditBuffer>>,
    batch: usize,
}

impl Flusher {
    pub fn new(pool: PgPool, buffers: Vec<Arc<dyn AuditBuffer>>) -> Self {
        Self {
            pool,
            buffers,
            batch: DEFAULT_BATCH,
        }
    }

    /// Events per transaction.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Flushes every buffer until it is empty (or, under a steady stream, until a read comes back
    /// short); returns how many events were newly chained.
    pub async fn flush(&self) -> Result<usize, AuditError> {
        let mut chained = 0;
        for buffer in &self.buffers {
            loop {
                let batch = buffer.read(self.batch).await?;
                if batch.is_empty() {
                    break;
                }
                let full = batch.len() == self.batch;
                let (handles, events): (Vec<String>, Vec<AuditEvent>) =
                    batch.into_iter().map(|b| (b.handle, b.event)).unzip();
                let appended = append(&self.pool, events).await?.chained;
                metrics::counter!("clubpulse_audit_events_chained_total")
                    .increment(u64::try_from(appended).unwrap_or(u64::MAX));
                chained += appended;
                buffer.remove(&handles).await?;
                if !full {
                    break;
                }
            }
        }
        Ok(chained)
    }

    /// Events waiting in all buffers.
    pub async fn backlog(&self) -> Result<u64, AuditError> {
        let mut total = 0;
        for buffer in &self.buffers {
            total += buffer.depth().await?;
        }
        Ok(total)
    }

    /// Flushes every `interval` until `shutdown` resolves, then once more so that nothing recorded
    /// before shutdown waits for the next start.
    pub async fn run(self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.flush_logged().await,
                () = &mut shutdown => break,
            }
        }
        self.flush_logged().await;
    }

    async fn flush_logged(&self) {
        match self.flush().await {
            Ok(0) => {}
            Ok(count) => tracing::debug!(count, "audit events chained"),
            Err(err) => tracing::warn!(error = %err, "flushing the audit log failed; retrying"),
        }
    }
}
