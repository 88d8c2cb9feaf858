//! Facility search: the stored index, both retrieval modes, similar facilities, favourites and
//! recommendation candidates.
//!
//! The application renders each facility as bilingual text and embeds it (the search crate);
//! [`store_index`] keeps the text, its full-text vector and its embedding together on the
//! facility row, and [`facilities_to_index`] finds the rows that are missing or stale. A search
//! asks [`vector_top_k`] (meaning) and [`text_top_k`] (words) and fuses the two rankings.
//!
//! Embeddings cross the wire as pgvector's text form (`'[0.1,0.2,…]'::vector`) rather than
//! through the `pgvector` crate: they are only ever written and compared inside PostgreSQL (the
//! recommendation centroid is pgvector's own `avg`), never read back, and Rust prints an `f32`
//! with the fewest digits that parse back to the same value, so nothing is lost. That keeps
//! this crate free of a dependency whose sqlx version must move in step with ours. The cost is
//! about 4 KB of text per 384-dimension vector, negligible next to the model's milliseconds.
//!
//! Retired facilities never appear in any result here.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{Result, StorageError};

/// Narrows a search to one sport or one club (both when both are set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilters {
    /// Only facilities of this sport slug.
    pub sport: Option<String>,
    /// Only facilities of this club.
    pub club_id: Option<Uuid>,
}

/// A facility due for (re-)indexing, with the fields the search text is rendered from.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IndexCandidate {
    pub id: Uuid,
    pub name: String,
    pub sport: String,
    pub description: String,
    pub specifications: Value,
    /// The version being rendered: pass it back to [`store_index`].
    pub updated_at: DateTime<Utc>,
}

/// The rendered search text of a facility, in the parts full-text search weighs differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedText<'a> {
    /// The whole passage (the text that was embedded).
    pub text: &'a str,
    /// The facility's name (weight A).
    pub name: &'a str,
    /// The sport's names (weight B).
    pub sport: &'a str,
    /// Description and specification phrases (weight C).
    pub details: &'a str,
}

/// A facility found by embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    pub facility_id: Uuid,
    /// Cosine similarity to the query, from -1 to 1 (higher is closer). With all-MiniLM-L6-v2,
    /// about 0.5 and above is a clear match and under 0.2 is unrelated.
    pub similarity: f64,
}

/// A facility found by its words.
#[derive(Debug, Clone, PartialEq)]
pub struct TextHit {
    pub facility_id: Uuid,
    /// Whether the facility holds every meaningful word of the query (in one language or the
    /// other); such facilities come before those that hold only some.
    pub all_words: bool,
    /// Cover-density rank over the query's words (`ts_rank_cd`), name matches weighing most.
    /// Comparable only within one query.
    pub rank: f32,
    /// The member's words that this facility matched, as typed (lower-cased), in query order:
    /// "what matched" for a result list.
    pub matched_words: Vec<String>,
}

/// A member's favourite facility.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Favorite {
    pub facility_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Writes a facility's search index: its text, full-text vector and embedding, together.
///
/// `seen_updated_at` is the `updated_at` of the version the text was rendered from (from
/// [`IndexCandidate::updated_at`]). If the facility changed since, or was retired, nothing is
/// written and the result is `false`: the stale rendering is dropped and the facility stays due
/// for indexing. An embedding of the wrong length or with a non-finite value is refused by
/// PostgreSQL (`StorageError::Database`).
pub async fn store_index(
    db: impl PgExecutor<'_>,
    facility_id: Uuid,
    seen_updated_at: DateTime<Utc>,
    text: &IndexedText<'_>,
    embedding: &[f32],
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE facilities
         SET search_embedding = $3::vector,
             search_text = $4,
             search_tsv = facility_search_tsv($5, $6, $7),
             search_indexed_at = now()
         WHERE id = $1 AND updated_at = $2 AND retired_at IS NULL",
    )
    .bind(facility_id)
    .bind(seen_updated_at)
    .bind(vector_literal(embedding))
    .bind(text.text)
    .bind(text.name)
    .bind(text.sport)
    .bind(text.details)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Live facilities to index, by id, after the `after` cursor (the last id of the previous page).
///
/// With `only_missing`, only those never indexed or changed since they were (their `updated_at`
/// is later than their index); otherwise every live facility, for a rebuild after a change of
/// model or rendering. Paging by id terminates in both cases, even when some pages cannot be
/// stored.
pub async fn facilities_to_index(
    db: impl PgExecutor<'_>,
    only_missing: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<IndexCandidate>> {
    Ok(sqlx::query_as(
        "SELECT id, name, sport, description, specifications, updated_at
         FROM facilities
         WHERE retired_at IS NULL
           AND (NOT $1 OR search_indexed_at IS NULL OR search_indexed_at < updated_at)
           AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id
         LIMIT $3",
    )
    .bind(only_missing)
    .bind(after)
    .bind(limit.max(0))
    .fetch_all(db)
    .await?)
}

/// One live facility with the fields its search text is rendered from; `None` when it is retired
/// or unknown.
pub async fn index_candidate(
    db: impl PgExecutor<'_>,
    facility_id: Uuid,
) -> Result<Option<IndexCandidate>> {
    Ok(sqlx::query_as(
        "SELECT id, name, sport, description, specifications, updated_at
         FROM facilities WHERE id = $1 AND retired_at IS NULL",
    )
    .bind(facility_id)
    .fetch_optional(db)
    .await?)
}

/// The `k` facilities whose embeddings are nearest `embedding` (cosine), nearest first.
///
/// Runs in its own transaction (a savepoint inside the caller's) to tune the HNSW scan for this
/// query only: `hnsw.ef_search` grows with `k`, and iterative scanning keeps looking when
/// filters reject the first candidates, so a filtered search still returns `k` results when
/// there are `k` matches.
pub async fn vector_top_k(
    conn: &mut PgConnection,
    embedding: &[f32],
    k: i64,
    filters: &SearchFilters,
) -> Result<Vec<VectorHit>> {
    let mut tx = conn.begin().await?;
    tune_hnsw(&mut tx, k).await?;
    let rows: Vec<(Uuid, f64)> = sqlx::query_as(
        "SELECT id, 1 - (search_embedding <=> $1::vector) AS similarity
         FROM facilities
         WHERE retired_at IS NULL AND search_embedding IS NOT NULL
           AND ($2::text IS NULL OR sport = $2)
           AND ($3::uuid IS NULL OR club_id = $3)
         ORDER BY search_embedding <=> $1::vector
         LIMIT $4",
    )
    .bind(vector_literal(embedding))
    .bind(filters.sport.as_deref())
    .bind(filters.club_id)
    .bind(k.max(0))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(hit).collect())
}

/// The `k` facilities whose search text best matches `query`, best first.
///
/// The query is unaccented and stemmed with both the Spanish and the English dictionaries, as
/// the index was. Facilities holding every word of the query in either language rank first;
/// then come those holding only some, most words first (words that are stop words in either
/// language, such as "de", "la", "the", do not count), so "pista cubierta con vestuarios" still
/// finds a covered court without changing rooms. Ties are ordered by `ts_rank_cd`: how often the
/// words occur, how close together, and where (name, then sport, then details). A query with no
/// searchable word finds nothing.
pub async fn text_top_k(
    db: impl PgExecutor<'_>,
    query: &str,
    k: i64,
    filters: &SearchFilters,
) -> Result<Vec<TextHit>> {
    if query.trim().is_empty() {
        return Ok(Vec::new());
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        all_words: bool,
        rank: f32,
        matched_words: Vec<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        // Spanish opening marks are not punctuation to the default parser ("¿pádel" would be
        // one word), so they become spaces first.
        "WITH input AS (
             SELECT lower(translate($1, '¿¡«»“”', '      ')) AS raw
         ),
         every_word AS (
             SELECT plainto_tsquery('spanish', search_unaccent(raw))
                 || plainto_tsquery('english', search_unaccent(raw)) AS q
             FROM input
         ),
         -- The member's words (as typed, in order), each with a query for its stems in both
         -- languages, leaving out stop words of either language: they match nearly every
         -- facility on their own. Token types: words, numbers, parts of hyphenated words.
         words AS (
             SELECT p.token AS word, p.position,
                    (SELECT string_agg(DISTINCT quote_literal(lexeme), ' | ')
                     FROM unnest(tsvector_to_array(
                              to_tsvector('spanish', search_unaccent(p.token))
                              || to_tsvector('english', search_unaccent(p.token)))) AS lexeme
                    )::tsquery AS q
             FROM input,
                  ts_parse('default', input.raw) WITH ORDINALITY AS p(tokid, token, position)
             WHERE p.tokid IN (1, 2, 3, 9, 10, 11, 20, 21, 22)
               AND length(to_tsvector('spanish', search_unaccent(p.token))) > 0
               AND length(to_tsvector('english', search_unaccent(p.token))) > 0
         ),
         any_word AS (
             SELECT string_agg(DISTINCT '(' || q::text || ')', ' | ')::tsquery AS q FROM words
         ),
         hits AS (
             SELECT f.id, f.search_tsv,
                    f.search_tsv @@ every_word.q AS all_words,
                    (SELECT count(DISTINCT w.word) FROM words w WHERE f.search_tsv @@ w.q) AS words,
                    ts_rank_cd(f.search_tsv, any_word.q) AS rank
             FROM facilities f, every_word, any_word
             -- No meaningful word (only stop words): no results, rather than every facility
             -- whose text holds 'de' and 'la'.
             WHERE any_word.q IS NOT NULL
               AND f.retired_at IS NULL
               AND (f.search_tsv @@ any_word.q OR f.search_tsv @@ every_word.q)
               AND ($2::text IS NULL OR f.sport = $2)
               AND ($3::uuid IS NULL OR f.club_id = $3)
         )
         -- Evaluated for the returned rows only (after the sort and limit).
         SELECT id, all_words, rank,
                ARRAY(SELECT w.word FROM words w WHERE hits.search_tsv @@ w.q
                      GROUP BY w.word ORDER BY min(w.position)) AS matched_words
         FROM hits
         ORDER BY all_words DESC, words DESC, rank DESC, id
         LIMIT $4",
    )
    .bind(query)
    .bind(filters.sport.as_deref())
    .bind(filters.club_id)
    .bind(k.max(0))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TextHit {
            facility_id: r.id,
            all_words: r.all_words,
            rank: r.rank,
            matched_words: r.matched_words,
        })
        .collect())
}

/// The `k` live facilities nearest to `facility_id` by embedding, nearest first, never itself.
///
/// Works from a retired facility too ("like the court you used to book"). Empty when the
/// facility does not exist or is not indexed yet.
pub async fn similar_to(
    conn: &mut PgConnection,
    facility_id: Uuid,
    k: i64,
) -> Result<Vec<VectorHit>> {
    let mut tx = conn.begin().await?;
    tune_hnsw(&mut tx, k).await?;
    // The probe vector is a scalar subquery, evaluated once before the scan (an InitPlan), so
    // the ORDER BY compares the column with a constant and can walk the HNSW index.
    let rows: Vec<(Uuid, f64)> = sqlx::query_as(
        "WITH probe AS (SELECT search_embedding AS v FROM facilities WHERE id = $1)
         SELECT f.id, 1 - (f.search_embedding <=> (SELECT v FROM probe)) AS similarity
         FROM facilities f
         WHERE f.retired_at IS NULL AND f.search_embedding IS NOT NULL AND f.id <> $1
           AND (SELECT v FROM probe) IS NOT NULL
         ORDER BY f.search_embedding <=> (SELECT v FROM probe)
         LIMIT $2",
    )
    .bind(facility_id)
    .bind(k.max(0))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(hit).collect())
}

/// Facilities to recommend to a member, nearest first: the `k` live facilities closest to the
/// centroid (average embedding) of the member's taste, that the member has neither favourited
/// nor booked.
///
/// Taste is every facility the member favourited or has a confirmed booking of (each counted
/// once, however often booked; retired ones included, as they still say what the member
/// likes). Bookings that hold a facility for a class the member runs as staff are not taste.
/// Empty for a member with no indexed favourite or booking.
pub async fn recommendation_candidates(
    conn: &mut PgConnection,
    user_id: Uuid,
    k: i64,
) -> Result<Vec<VectorHit>> {
    let mut tx = conn.begin().await?;
    tune_hnsw(&mut tx, k).await?;
    let rows: Vec<(Uuid, f64)> = sqlx::query_as(
        "WITH taste AS (
             SELECT facility_id FROM favorites WHERE user_id = $1
             UNION
             SELECT facility_id FROM bookings
             WHERE user_id = $1 AND status = 'confirmed' AND class_id IS NULL
         ),
         -- pgvector's avg(); NULL when no taste facility is indexed.
         centroid AS (
             SELECT avg(search_embedding) AS v
             FROM facilities WHERE id IN (SELECT facility_id FROM taste)
         )
         SELECT f.id, 1 - (f.search_embedding <=> (SELECT v FROM centroid)) AS similarity
         FROM facilities f
         WHERE f.retired_at IS NULL AND f.search_embedding IS NOT NULL
           AND f.id NOT IN (SELECT facility_id FROM taste)
           AND (SELECT v FROM centroid) IS NOT NULL
         ORDER BY f.search_embedding <=> (SELECT v FROM centroid)
         LIMIT $2",
    )
    .bind(user_id)
    .bind(k.max(0))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(hit).collect())
}

/// Marks a live facility as a member's favourite. `true` if it was added, `false` if it already
/// was one. An unknown or retired facility is `MissingReference("facility")`, an unknown member
/// `MissingReference("user")`.
pub async fn add_favorite(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    facility_id: Uuid,
) -> Result<bool> {
    let (live, added): (bool, bool) = sqlx::query_as(
        "WITH live AS (
             SELECT id FROM facilities WHERE id = $2 AND retired_at IS NULL
         ),
         added AS (
             INSERT INTO favorites (user_id, facility_id)
             SELECT $1, id FROM live
             ON CONFLICT ON CONSTRAINT favorites_pkey DO NOTHING
             RETURNING 1
         )
         SELECT EXISTS (SELECT 1 FROM live), EXISTS (SELECT 1 FROM added)",
    )
    .bind(user_id)
    .bind(facility_id)
    .fetch_one(db)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("favorites_user_id_fkey") => {
            StorageError::MissingReference("user")
        }
        _ => StorageError::from_sqlx(err),
    })?;
    if !live {
        return Err(StorageError::MissingReference("facility"));
    }
    Ok(added)
}

/// Removes a favourite; `false` if it was not one.
pub async fn remove_favorite(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    facility_id: Uuid,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM favorites WHERE user_id = $1 AND facility_id = $2")
        .bind(user_id)
        .bind(facility_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A member's favourite live facilities, most recently added first.
pub async fn list_favorites(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<Favorite>> {
    Ok(sqlx::query_as(
        "SELECT fav.facility_id, fav.created_at
         FROM favorites fav JOIN facilities f ON f.id = fav.facility_id
         WHERE fav.user_id = $1 AND f.retired_at IS NULL
         ORDER BY fav.created_at DESC, fav.facility_id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

/// Sets the HNSW scan for one `k`-nearest query, until the end of the current transaction.
///
/// `ef_search` (candidates kept while walking the graph; pgvector's default is 40) must be at
/// least `k` to return `k` rows, and is never below 200: on a catalogue of many near-identical
/// facilities (10,000 variations of the 53 demo ones), 40 found 0.59 of the true ten nearest and
/// 200 found 0.997, for about a millisecond per query. Strict-order
/// iterative scanning (pgvector 0.8) resumes the walk when filters (sport, club, "not itself")
/// reject candidates, instead of returning fewer rows, and keeps results in exact distance order.
async fn tune_hnsw(conn: &mut PgConnection, k: i64) -> Result<()> {
    let ef_search = k.saturating_mul(2).clamp(200, 1000);
    sqlx::query(
        "SELECT set_config('hnsw.ef_search', $1, true),
                set_config('hnsw.iterative_scan', 'strict_order', true)",
    )
    .bind(ef_search.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// pgvector's text form of an embedding: `[0.1,-0.2,…]`.
fn vector_literal(embedding: &[f32]) -> String {
    let values: Vec<String> = embedding.iter().map(f32::to_string).collect();
    format!("[{}]", values.join(","))
}

fn hit((facility_id, similarity): (Uuid, f64)) -> VectorHit {
    VectorHit {
        facility_id,
        similarity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_is_written_in_pgvector_text_form_without_losing_precision() {
        let v = [0.1_f32, -2.5, 1e-8, 0.333_333_34];
        let literal = vector_literal(&v);
        assert_eq!(literal, "[0.1,-2.5,0.00000001,0.33333334]");
        let parsed: Vec<f32> = literal
            .trim_matches(['[', ']'])
            .split(',')
            .map(|s| s.parse().unwrap_or(f32::NAN))
            .collect();
        assert_eq!(parsed, v);
    }

    #[test]
    fn an_empty_vector_is_an_empty_list() {
        assert_eq!(vector_literal(&[]), "[]");
    }
}
