//! The async face of the embedder: bounded blocking work and a query cache.
//!
//! A forward pass takes milliseconds of pure CPU, which must not run on the async workers. Every
//! pass goes to tokio's blocking pool, but that pool grows to hundreds of threads under load; a
//! semaphore keeps the number of passes in flight near the number of cores, and callers beyond
//! it wait asynchronously (where their request timeout still applies) instead of thrashing.
//!
//! Members repeat searches ("pádel", "tenis noche"), so query embeddings are kept in a bounded
//! in-process cache (`query_embedding`, least recently used out, one embedding per query at a
//! time) keyed by the normalised query. An embedding is a pure function of its text, so entries
//! never go stale. Documents are not cached: each is embedded once when it is indexed.

use std::{num::NonZeroUsize, path::PathBuf, sync::Arc, time::Instant};

use clubpulse_cache::{Cache, Policy};
use tokio::sync::Semaphore;

use crate::embedder::{EmbedError, Embedder};

/// How an [`EmbeddingService`] uses the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingOptions {
    /// Forward passes allowed to run at once; at least 1. Each pass already uses several cores
    /// for its matrix products, so more than the number of cores only adds contention.
    pub max_concurrent: usize,
    /// Query embeddings kept in the cache (about 1.6 KB each at 384 dimensions); 0 disables it.
    pub cache_capacity: usize,
}

impl Default for EmbeddingOptions {
    /// As many passes as cores, and 4096 cached queries (about 7 MB).
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            cache_capacity: 4096,
        }
    }
}

/// The name of the query embeddings' cache.
pub const QUERY_CACHE: &str = "query_embedding";

/// A shared, cloneable handle to one loaded [`Embedder`] for async code.
#[derive(Debug, Clone)]
pub struct EmbeddingService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    embedder: Arc<Embedder>,
    permits: Arc<Semaphore>,
    cache: Option<Cache<Arc<[f32]>>>,
}

impl EmbeddingService {
    /// Wraps a loaded embedder.
    pub fn new(embedder: Embedder, options: EmbeddingOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                embedder: Arc::new(embedder),
                permits: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
                cache: NonZeroUsize::new(options.cache_capacity)
                    .map(|capacity| Cache::new(QUERY_CACHE, Policy::forever(capacity))),
            }),
        }
    }

    /// Loads the model in `dir` (see [`Embedder::load`]) on the blocking pool: reading the
    /// weights takes a noticeable fraction of a second.
    pub async fn load(dir: PathBuf, options: EmbeddingOptions) -> Result<Self, EmbedError> {
        let embedder = tokio::task::spawn_blocking(move || Embedder::load(&dir))
            .await
            .map_err(|e| EmbedError::Worker(e.to_string()))??;
        Ok(Self::new(embedder, options))
    }

    /// The length of every embedding.
    pub fn dimensions(&self) -> usize {
        self.inner.embedder.dimensions()
    }

    /// The model underneath, for synchronous callers (benchmarks, one-off tools).
    pub fn embedder(&self) -> &Embedder {
        &self.inner.embedder
    }

    /// The embedding of a search query, from the cache when this query (after
    /// [`normalize_query`]) was embedded before.
    ///
    /// The normalised text is what gets embedded, so a cached answer is exactly what a fresh
    /// pass would give. Lower-casing is harmless for uncased models such as MiniLM; for a cased
    /// model it is a deliberate choice of more cache hits over case sensitivity.
    pub async fn embed_query(&self, query: &str) -> Result<Arc<[f32]>, EmbedError> {
        let key = normalize_query(query);
        let embed = || {
            let this = self.clone();
            let text = key.clone();
            async move {
                let mut vectors = this.run(move |embedder| embedder.embed(&[&text])).await?;
                Ok(vectors.pop().unwrap_or_default().into())
            }
        };
        match &self.inner.cache {
            Some(cache) => cache.get_or_load(&key, embed).await,
            None => embed().await,
        }
    }

    /// The query embeddings' cache, to register for `cache clear` (none when turned off).
    pub fn query_cache(&self) -> Option<&Cache<Arc<[f32]>>> {
        self.inner.cache.as_ref()
    }

    /// Embeds documents for indexing, in one batched call, uncached and in order.
    pub async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |embedder| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T, F>(&self, work: F) -> Result<T, EmbedError>
    where
        T: Send + 'static,
        F: FnOnce(&Embedder) -> Result<T, EmbedError> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|e| EmbedError::Worker(e.to_string()))?;
        let embedder = Arc::clone(&self.inner.embedder);
        // The permit moves into the task: if the caller gives up (a request timed out), the pass
        // still runs to the end on its thread, and it must keep counting against the bound
        // until it does.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = Instant::now();
            let result = work(&embedder);
            tracing::debug!(
                duration_ms = started.elapsed().as_secs_f64() * 1e3,
                "embedding pass"
            );
            result
        })
        .await
        .map_err(|e| EmbedError::Worker(e.to_string()))?
    }
}

/// The cache key of a query, and the text actually embedded: trimmed, inner whitespace collapsed
/// to single spaces, lower-cased.
pub fn normalize_query(query: &str) -> String {
    query
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_a_query_collapses_whitespace_and_case() {
        assert_eq!(
            normalize_query("  Pádel\t TECHADO \n"),
            "pádel techado".to_owned()
        );
    }

    #[test]
    fn normalising_an_empty_query_gives_an_empty_key() {
        assert_eq!(normalize_query(" \t "), String::new());
    }
}
