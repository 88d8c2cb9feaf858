//! Natural-language facility search, similar facilities, favourites and recommendations.
//!
//! A query is embedded in process (cached per normalised query) and answered by two retrievers in
//! PostgreSQL: the nearest embeddings (pgvector HNSW, cosine) and full text over Spanish and
//! English with accents folded. By default their rankings are fused with reciprocal rank fusion,
//! which needs no score calibration between the two: a facility high in either list ranks high,
//! and one high in both ranks highest. The text hits holding every word of the query count as a
//! third ranking, a second vote for facilities that match the request as stated
//! ([`hybrid_rrf`]). `mode=vector` and `mode=text` return one retriever alone.

use std::collections::HashMap;

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_search::{EmbeddingService, hybrid_rrf};
use clubpulse_storage::{
    facilities,
    search::{self as index, SearchFilters, TextHit, VectorHit},
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{ApiPath, ApiQuery, CurrentUser},
    views::FacilityView,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_facilities))
        .routes(routes!(similar_facilities))
        .routes(routes!(list_favorites))
        .routes(routes!(add_favorite, remove_favorite))
        .routes(routes!(recommendations))
}

/// Candidates each retriever contributes before fusion and filtering.
const CANDIDATES: i64 = 50;
/// Longest query, in characters.
const MAX_QUERY_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Both retrievers, fused by reciprocal rank.
    #[default]
    Hybrid,
    /// Nearest embeddings only.
    Vector,
    /// Full text only.
    Text,
}

impl SearchMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Vector => "vector",
            Self::Text => "text",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What the member is looking for, in their words (Spanish or English), 1 to 256 characters.
    #[param(example = "pádel techado", min_length = 1, max_length = 256)]
    pub q: String,
    /// Results, 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
    /// Only this sport.
    pub sport: Option<String>,
    /// Only this club's facilities.
    pub club_id: Option<Uuid>,
    /// With `free_to`: only facilities with a free slot in this window (RFC 3339, at most 14
    /// days long).
    pub free_from: Option<String>,
    pub free_to: Option<String>,
    /// `hybrid` (default), `vector` or `text`.
    #[param(value_type = Option<SearchMode>)]
    pub mode: Option<SearchMode>,
}

/// Why a facility came up.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Matched {
    /// Cosine similarity of the facility's description to the query, when the vector retriever
    /// found it.
    pub similarity: Option<f64>,
    /// Its place in the vector retriever's list, from 1.
    pub vector_rank: Option<usize>,
    /// The query's words the facility contains, as typed.
    pub words: Vec<String>,
    /// Whether it contains every meaningful word of the query.
    pub all_words: bool,
    /// Its place in the full-text retriever's list, from 1.
    pub text_rank: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub facility: FacilityView,
    /// The ranking score in this mode: fused reciprocal rank (hybrid), cosine similarity (vector)
    /// or full-text rank (text). Comparable within one answer only.
    pub score: f64,
    pub matched: Matched,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    pub query: String,
    #[schema(example = "hybrid")]
    pub mode: &'static str,
    pub results: Vec<SearchResult>,
}

/// Finds facilities from a description in plain words ("canchas para jugar bajo la lluvia",
/// "tenis noche", "indoor pool"), best first, each with its score and what matched. A search that
/// finds nothing is counted as unmet demand on the staff dashboard (`GET /admin/stats`).
#[utoipa::path(get, path = "/search/facilities", tag = "search", params(SearchQuery),
    responses((status = 200, body = SearchAnswer),
        (status = 503, description = "`search_disabled`: this instance runs without search", content_type = "application/problem+json"),
        ProblemResponses))]
pub(crate) async fn search_facilities(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let started = std::time::Instant::now();
    let request = SearchRequest::parse(query)?;
    // Search reads the read replica when there is one: a facility becomes findable once it is
    // indexed anyway, so the replica's lag adds nothing a searcher could tell apart.
    let db = app.bookings.reader(None).await;
    let (vector, text) = retrieve(&app, &db, &request).await?;
    let ranked = rank(request.mode, &vector, &text);
    let ranked = match request.window {
        Some((from, to)) => keep_free(&app, ranked, from, to).await?,
        None => ranked,
    };
    let top: Vec<(Uuid, f64)> = ranked.into_iter().take(request.limit).collect();
    let results = describe(&db, &top, &vector, &text).await?;
    metrics::histogram!("clubpulse_search_duration_seconds", "mode" => request.mode.as_str())
        .record(started.elapsed().as_secs_f64());
    if results.is_empty() {
        metrics::counter!("clubpulse_searches_without_results_total").increment(1);
        // Unmet demand for the dashboard, best effort: the member gets their (empty) answer
        // whatever happens to the record.
        if let Err(err) = clubpulse_storage::demand::record_empty_search(
            &app.db,
            &request.q,
            request.filters.club_id,
        )
        .await
        {
            tracing::warn!(error = %err, "a search without results could not be recorded");
        }
    }
    Ok(Json(SearchAnswer {
        query: request.q,
        mode: request.mode.as_str(),
        results,
    }))
}

/// A search, its query parameters checked.
#[derive(Debug)]
struct SearchRequest {
    /// The query with control characters turned into spaces, trimmed.
    q: String,
    limit: usize,
    filters: SearchFilters,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    mode: SearchMode,
}

impl SearchRequest {
    fn parse(query: SearchQuery) -> Result<Self, ApiError> {
        // Control characters (a NUL byte cannot even reach PostgreSQL) separate words like spaces.
        let cleaned: String = query
            .q
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let q = cleaned.trim();
        if q.is_empty() {
            return Err(ApiError::invalid_field("q", "say what you are looking for"));
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::invalid_field(
                "q",
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let limit = crate::parse::limit("limit", query.limit, 10, 50)?;
        let sport = query
            .sport
            .map(|s| {
                clubpulse_domain::Sport::try_from(s.as_str())
                    .map(|s| s.as_str().to_owned())
                    .map_err(|e| ApiError::validation(vec![e.within("sport")]))
            })
            .transpose()?;
        let window = match (query.free_from.as_deref(), query.free_to.as_deref()) {
            (None, None) => None,
            (Some(from), Some(to)) => Some(crate::parse::span(Some(from), Some(to), 14)?),
            _ => {
                return Err(ApiError::invalid_field(
                    "free_to",
                    "free_from and free_to go together",
                ));
            }
        };
        Ok(Self {
            q: q.to_owned(),
            limit: usize::try_from(limit).unwrap_or(10),
            filters: SearchFilters {
                sport,
                club_id: query.club_id,
            },
            window,
            mode: query.mode.unwrap_or_default(),
        })
    }
}

/// The two retrievers' candidates, each run only when the mode uses it.
async fn retrieve(
    app: &AppState,
    db: &PgPool,
    request: &SearchRequest,
) -> Result<(Vec<VectorHit>, Vec<TextHit>), ApiError> {
    let search = enabled(app)?;
    let vector = if request.mode == SearchMode::Text {
        Vec::new()
    } else {
        let embedding = search
            .embed_query(&request.q)
            .await
            .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
        let mut conn = db.acquire().await.map_err(storage)?;
        index::vector_top_k(&mut conn, &embedding, CANDIDATES, &request.filters).await?
    };
    let text = if request.mode == SearchMode::Vector {
        Vec::new()
    } else {
        index::text_top_k(db, &request.q, CANDIDATES, &request.filters).await?
    };
    Ok((vector, text))
}

fn enabled(app: &AppState) -> Result<&EmbeddingService, ApiError> {
    app.search.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "search_disabled",
            "search is turned off on this instance",
        )
    })
}

fn storage(err: sqlx::Error) -> ApiError {
    clubpulse_storage::StorageError::from(err).into()
}

/// Facility ids, best first, with this mode's score.
fn rank(mode: SearchMode, vector: &[VectorHit], text: &[TextHit]) -> Vec<(Uuid, f64)> {
    match mode {
        SearchMode::Vector => vector
            .iter()
            .map(|h| (h.facility_id, h.similarity))
            .collect(),
        SearchMode::Text => text
            .iter()
            .map(|h| (h.facility_id, f64::from(h.rank)))
            .collect(),
        SearchMode::Hybrid => {
            let by_vector: Vec<Uuid> = vector.iter().map(|h| h.facility_id).collect();
            let by_text: Vec<Uuid> = text.iter().map(|h| h.facility_id).collect();
            let complete: Vec<Uuid> = text
                .iter()
                .filter(|h| h.all_words)
                .map(|h| h.facility_id)
                .collect();
            hybrid_rrf(&by_vector, &by_text, &complete)
        }
    }
}

/// Keeps the facilities with at least one free slot in `[from, to)`, in order, using the same
/// availability as the booking grid.
async fn keep_free(
    app: &AppState,
    ranked: Vec<(Uuid, f64)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, f64)>, ApiError> {
    let ids: Vec<Uuid> = ranked.iter().map(|(id, _)| *id).collect();
    let free = app.bookings.with_free_slots(&ids, from, to).await?;
    Ok(ranked
        .into_iter()
        .filter(|(id, _)| free.contains(id))
        .collect())
}

async fn describe(
    db: &PgPool,
    top: &[(Uuid, f64)],
    vector: &[VectorHit],
    text: &[TextHit],
) -> Result<Vec<SearchResult>, ApiError> {
    let ids: Vec<Uuid> = top.iter().map(|(id, _)| *id).collect();
    let mut found = by_id(db, &ids).await?;
    Ok(top
        .iter()
        .filter_map(|(id, score)| {
            let facility = found.remove(id)?;
            let mut matched = Matched::default();
            if let Some((rank, hit)) = vector
                .iter()
                .enumerate()
                .find(|(_, h)| h.facility_id == *id)
            {
                matched.similarity = Some((hit.similarity * 1e4).round() / 1e4);
                matched.vector_rank = Some(rank + 1);
            }
            if let Some((rank, hit)) = text.iter().enumerate().find(|(_, h)| h.facility_id == *id) {
                matched.words = hit.matched_words.clone();
                matched.all_words = hit.all_words;
                matched.text_rank = Some(rank + 1);
            }
            Some(SearchResult {
                facility: facility.into(),
                score: *score,
                matched,
            })
        })
        .collect())
}

/// Live facilities by id.
async fn by_id(db: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, facilities::Facility>, ApiError> {
    Ok(facilities::find_many(db, ids)
        .await?
        .into_iter()
        .map(|f| (f.id, f))
        .collect())
}

/// A facility like another, with how close it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub facility: FacilityView,
    /// Cosine similarity of the two facilities' descriptions.
    pub similarity: f64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestionQuery {
    /// Results, 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
}

fn suggestion_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(10);
    if (1..=50).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field("limit", "must be between 1 and 50"))
    }
}

async fn suggestions(db: &PgPool, hits: Vec<VectorHit>) -> Result<Vec<Suggestion>, ApiError> {
    let ids: Vec<Uuid> = hits.iter().map(|h| h.facility_id).collect();
    let mut found = by_id(db, &ids).await?;
    Ok(hits
        .into_iter()
        .filter_map(|hit| {
            Some(Suggestion {
                facility: found.remove(&hit.facility_id)?.into(),
                similarity: (hit.similarity * 1e4).round() / 1e4,
            })
        })
        .collect())
}

/// Facilities most like this one (by description and specifications), nearest first.
#[utoipa::path(get, path = "/facilities/{id}/similar", tag = "search", params(
        ("id" = Uuid, Path, description = "Facility id"), SuggestionQuery),
    responses((status = 200, body = [Suggestion]), ProblemResponses))]
async fn similar_facilities(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<SuggestionQuery>,
) -> Result<Json<Vec<Suggestion>>, ApiError> {
    let limit = suggestion_limit(query.limit)?;
    let db = app.bookings.reader(None).await;
    facilities::find(&db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("facility_not_found", "no such facility"))?;
    let mut conn = db.acquire().await.map_err(storage)?;
    let hits = index::similar_to(&mut conn, id, limit).await?;
    drop(conn);
    Ok(Json(suggestions(&db, hits).await?))
}

/// A favourite facility.
#[derive(Debug, Serialize, ToSchema)]
pub struct FavoriteView {
    pub facility: FacilityView,
    pub added_at: DateTime<Utc>,
}

/// My favourite facilities, most recently added first.
#[utoipa::path(get, path = "/me/favorites", tag = "search",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [FavoriteView]), ProblemResponses))]
async fn list_favorites(
    State(app): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<FavoriteView>>, ApiError> {
    let db = app.bookings.reader(Some(user.id)).await;
    let favorites = index::list_favorites(&db, user.id).await?;
    let ids: Vec<Uuid> = favorites.iter().map(|f| f.facility_id).collect();
    let mut found = by_id(&db, &ids).await?;
    Ok(Json(
        favorites
            .into_iter()
            .filter_map(|f| {
                Some(FavoriteView {
                    facility: found.remove(&f.facility_id)?.into(),
                    added_at: f.created_at,
                })
            })
            .collect(),
    ))
}

/// Adds a facility to my favourites (again is fine).
#[utoipa::path(put, path = "/me/favorites/{facility_id}", tag = "search",
    security(("bearer" = []), ("cookie" = [])),
    params(("facility_id" = Uuid, Path, description = "Facility id")),
    responses((status = 204, description = "It is a favourite"), ProblemResponses))]
async fn add_favorite(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(facility_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    match index::add_favorite(&app.db, user.id, facility_id).await {
        Ok(_newly_added) => Ok(StatusCode::NO_CONTENT),
        Err(clubpulse_storage::StorageError::MissingReference("facility")) => Err(
            ApiError::not_found("facility_not_found", "no such facility"),
        ),
        Err(err) => Err(err.into()),
    }
}

/// Removes a facility from my favourites.
#[utoipa::path(delete, path = "/me/favorites/{facility_id}", tag = "search",
    security(("bearer" = []), ("cookie" = [])),
    params(("facility_id" = Uuid, Path, description = "Facility id")),
    responses((status = 204, description = "No longer a favourite"), ProblemResponses))]
async fn remove_favorite(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiPath(facility_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if index::remove_favorite(&app.db, user.id, facility_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "favorite_not_found",
            "this facility is not among your favourites",
        ))
    }
}

/// Facilities I have not used yet that are most like my favourites and the facilities I booked.
/// Empty until I have a favourite or a booking.
#[utoipa::path(get, path = "/me/recommendations", tag = "search", params(SuggestionQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [Suggestion]), ProblemResponses))]
async fn recommendations(
    State(app): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<SuggestionQuery>,
) -> Result<Json<Vec<Suggestion>>, ApiError> {
    let limit = suggestion_limit(query.limit)?;
    let db = app.bookings.reader(Some(user.id)).await;
    let mut conn = db.acquire().await.map_err(storage)?;
    let hits = index::recommendation_candidates(&mut conn, user.id, limit).await?;
    drop(conn);
    Ok(Json(suggestions(&db, hits).await?))
}
