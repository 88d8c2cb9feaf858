//! Club Pulse search: natural-language facility search without a hosted service.
//!
//! "canchas para jugar bajo la lluvia" should find covered courts and "tenis noche" tennis courts
//! with lights, whichever language the member and the facility's description use. Two retrieval
//! modes answer together: a local sentence-embedding model (meaning, paraphrase) and PostgreSQL
//! full-text search (exact words, names), fused by rank. This crate holds the parts that need no
//! database; the queries live in the storage crate's `search` module.
//!
//! # Layout
//!
//! - [`embedder`]: [`Embedder`], a BERT-family sentence-transformers model loaded from a folder
//!   and run on the CPU with candle (mean pooling, L2 normalisation).
//! - [`service`]: [`EmbeddingService`], the async handle: passes on the blocking pool, bounded by
//!   a semaphore, and an LRU cache of query embeddings.
//! - [`document`]: [`SearchDocument`], a facility rendered as bilingual text (sport names,
//!   specifications as phrases) for both retrieval modes.
//! - [`fusion`]: [`rrf`], reciprocal rank fusion, and [`hybrid_rrf`], the three-ranking fusion
//!   measured best for facility search.
//! - [`eval`]: [`eval::ndcg_at`] and the labelled query set format (`tests/queries.toml`).

#![warn(missing_docs)]

pub mod document;
pub mod embedder;
pub mod eval;
pub mod fusion;
pub mod service;

pub use document::SearchDocument;
pub use embedder::{EmbedError, Embedder, MAX_TOKENS};
pub use fusion::{DEFAULT_RRF_K, hybrid_rrf, rrf};
pub use service::{EmbeddingOptions, EmbeddingService, normalize_query};
