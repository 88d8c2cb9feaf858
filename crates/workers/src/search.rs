//! Keeping the search index current.
//!
//! - [`IndexFacility`]: re-index one facility after it was created or changed (unique per
//!   facility, so a burst of edits queues one job).
//! - [`IndexMissing`]: index every live facility that was never indexed or changed since, in
//!   batches; queued periodically, it catches facilities written without the API (the demo seed, a
//!   restore) and any job that was lost to a crash of Redis.
//!
//! Both go through [`reindex`], which `clubpulse search reindex` calls too. Storing an index names
//! the facility version it was rendered from, so a rendering of an older version never overwrites
//! a newer one, and running a job twice only does the same work twice.

use clubpulse_jobs::{Job, JobContext, JobFailure, Registry};
use clubpulse_search::{EmbeddingService, SearchDocument};
use clubpulse_storage::search::{self as index, IndexCandidate, IndexedText};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Deps;

/// Facilities embedded in one forward pass.
const BATCH: usize = 32;

/// Re-index one facility.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexFacility {
    pub facility_id: Uuid,
}

impl Job for IndexFacility {
    const KIND: &'static str = "search.index_facility";

    fn unique_key(&self) -> Option<String> {
        Some(format!("search.index:{}", self.facility_id))
    }
}

/// Index whatever is missing or stale.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexMissing;

impl Job for IndexMissing {
    const KIND: &'static str = "search.index_missing";

    fn unique_key(&self) -> Option<String> {
        Some(Self::KIND.to_owned())
    }
}

/// What a reindex did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Facilities whose index was written.
    pub indexed: usize,
    /// Facilities that changed while being rendered (their next run picks them up).
    pub skipped: usize,
}

/// Indexes every live facility (`only_missing = false`) or those never indexed or changed since
/// (`true`), `BATCH` at a time; `progress` hears `(done, total)` after each batch.
pub async fn reindex(
    db: &PgPool,
    search: &EmbeddingService,
    only_missing: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Reindexed, JobFailure> {
    let total = count(db, only_missing).await?;
    let mut done = Reindexed::default();
    let mut after = None;
    loop {
        let page = index::facilities_to_index(db, only_missing, after, BATCH as i64)
            .await
            .map_err(JobFailure::new)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let batch = index_batch(db, search, &page).await?;
        done.indexed += batch.indexed;
        done.skipped += batch.skipped;
        progress(
            done.indexed + done.skipped,
            total.max(done.indexed + done.skipped),
        );
    }
    Ok(done)
}

async fn count(db: &PgPool, only_missing: bool) -> Result<usize, JobFailure> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM facilities
         WHERE retired_at IS NULL
           AND (NOT $1 OR search_indexed_at IS NULL OR search_indexed_at < updated_at)",
    )
    .bind(only_missing)
    .fetch_one(db)
    .await
    .map_err(JobFailure::new)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Renders, embeds (one batched pass) and stores the index of `candidates`.
async fn index_batch(
    db: &PgPool,
    search: &EmbeddingService,
    candidates: &[IndexCandidate],
) -> Result<Reindexed, JobFailure> {
    let documents: Vec<SearchDocument> = candidates
        .iter()
        .map(|c| SearchDocument::render(&c.name, &c.sport, &c.description, &c.specifications))
        .collect();
    let texts: Vec<String> = documents.iter().map(SearchDocument::text).collect();
    let embeddings = search
        .embed_documents(texts.clone())
        .await
        .map_err(JobFailure::new)?;
    let mut done = Reindexed::default();
    for ((candidate, document), (text, embedding)) in candidates
        .iter()
        .zip(&documents)
        .zip(texts.iter().zip(&embeddings))
    {
        let stored = index::store_index(
            db,
            candidate.id,
            candidate.updated_at,
            &IndexedText {
                text,
                name: &document.name,
                sport: &document.sport,
                details: &document.details,
            },
            embedding,
        )
        .await
        .map_err(JobFailure::new)?;
        if stored {
            done.indexed += 1;
        } else {
            done.skipped += 1;
        }
    }
    Ok(done)
}

pub(crate) fn register(registry: &mut Registry, deps: Deps) {
    let for_one = deps.clone();
    registry.register::<IndexFacility, _>(move |job: IndexFacility, ctx: JobContext| {
        let deps = for_one.clone();
        async move {
            let Some(search) = &deps.search else {
                return Ok(());
            };
            let Some(candidate) = index::index_candidate(&deps.db, job.facility_id)
                .await
                .map_err(JobFailure::new)?
            else {
                // Retired (or never existed): nothing to index.
                return Ok(());
            };
            let done = index_batch(&deps.db, search, std::slice::from_ref(&candidate)).await?;
            if done.skipped > 0 {
                // Changed while we rendered it; index the newer version.
                ctx.queue.push(&job).await.map_err(JobFailure::new)?;
            }
            Ok(())
        }
    });
    registry.register::<IndexMissing, _>(move |_job: IndexMissing, _ctx: JobContext| {
        let deps = deps.clone();
        async move {
            let Some(search) = &deps.search else {
                return Ok(());
            };
            let done = reindex(&deps.db, search, true, |_, _| {}).await?;
            if done.indexed > 0 {
                tracing::info!(indexed = done.indexed, "facilities indexed for search");
            }
            Ok(())
        }
    });
}
