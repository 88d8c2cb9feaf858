//! The job queue, for administrators: depths, counters and workers; the dead-letter queue listed,
//! retried and purged.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use clubpulse_jobs::{DeadJob, DeadSelector, JobId, QueueStats};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{Admin, ApiPath, ApiQuery},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(job_stats))
        .routes(routes!(list_dead, purge_dead))
        .routes(routes!(retry_dead))
        .routes(routes!(retry_all_dead))
}

/// One worker pool that reported recently.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerView {
    pub id: String,
    pub concurrency: u32,
    /// Jobs it is running now.
    pub busy: u32,
    pub seen_at: DateTime<Utc>,
}

/// The queue as every instance shares it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStats {
    /// Waiting for a worker.
    pub ready: u64,
    /// Waiting for their time (first runs and retries).
    pub scheduled: u64,
    /// Running now.
    pub in_flight: u64,
    /// In the dead-letter queue.
    pub dead: u64,
    /// Completed since the queue began.
    pub processed: u64,
    /// Failed attempts since the queue began (a job retried three times counts three).
    pub failed: u64,
    /// Jobs running now across `workers`.
    pub busy: u64,
    pub workers: Vec<WorkerView>,
}

impl From<QueueStats> for JobStats {
    fn from(s: QueueStats) -> Self {
        Self {
            ready: s.ready,
            scheduled: s.scheduled,
            in_flight: s.in_flight,
            dead: s.dead,
            processed: s.processed,
            failed: s.failed,
            busy: s.busy,
            workers: s
                .workers
                .into_iter()
                .map(|w| WorkerView {
                    id: w.id,
                    concurrency: w.concurrency,
                    busy: w.busy,
                    seen_at: w.seen_at,
                })
                .collect(),
        }
    }
}

/// Queue depths, counters and busy workers.
#[utoipa::path(get, path = "/admin/jobs", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = JobStats), ProblemResponses))]
async fn job_stats(
    State(app): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<JobStats>, ApiError> {
    Ok(Json(app.jobs.stats().await?.into()))
}

/// A job that used up its attempts, kept with everything needed to understand and retry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadJobView {
    pub id: Uuid,
    #[schema(example = "mail.send")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub died_at: DateTime<Utc>,
}

impl From<DeadJob> for DeadJobView {
    fn from(job: DeadJob) -> Self {
        Self {
            id: job.id.0,
            kind: job.kind,
            payload: job.payload,
            attempts: job.attempts,
            last_error: job.last_error,
            enqueued_at: job.enqueued_at,
            died_at: job.failed_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// Jobs to skip, 0 to 100000 (default 0).
    #[param(minimum = 0, maximum = 100_000)]
    pub offset: Option<usize>,
}

/// The dead-letter queue, most recently dead first.
#[utoipa::path(get, path = "/admin/jobs/dead", tag = "admin", params(DeadQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [DeadJobView]), ProblemResponses))]
async fn list_dead(
    State(app): State<AppState>,
    Admin(_admin): Admin,
    ApiQuery(query): ApiQuery<DeadQuery>,
) -> Result<Json<Vec<DeadJobView>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 200",
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if offset > 100_000 {
        return Err(ApiError::invalid_field(
            "offset",
            "must be between 0 and 100000",
        ));
    }
    let dead = app.jobs.dead_list(limit, offset).await?;
    Ok(Json(dead.into_iter().map(Into::into).collect()))
}

/// How many jobs an operation touched.
#[derive(Debug, Serialize, ToSchema)]
pub struct Affected {
    pub count: u64,
}

/// Puts one dead job back in the queue with fresh attempts.
#[utoipa::path(post, path = "/admin/jobs/dead/{id}/retry", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, body = Affected), ProblemResponses))]
async fn retry_dead(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Affected>, ApiError> {
    let count = app.jobs.dead_retry(DeadSelector::Id(JobId(id))).await?;
    if count == 0 {
        return Err(ApiError::not_found(
            "dead_job_not_found",
            "no such job in the dead-letter queue",
        ));
    }
    tracing::info!(admin.id = %admin.id, job.id = %id, "dead job retried");
    Ok(Json(Affected { count }))
}

/// Puts every dead job back in the queue with fresh attempts.
#[utoipa::path(post, path = "/admin/jobs/dead/retry", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Affected), ProblemResponses))]
async fn retry_all_dead(
    State(app): State<AppState>,
    Admin(admin): Admin,
) -> Result<Json<Affected>, ApiError> {
    let count = app.jobs.dead_retry(DeadSelector::All).await?;
    tracing::info!(admin.id = %admin.id, count, "dead jobs retried");
    Ok(Json(Affected { count }))
}

/// Empties the dead-letter queue for good.
#[utoipa::path(delete, path = "/admin/jobs/dead", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Affected), ProblemResponses))]
async fn purge_dead(
    State(app): State<AppState>,
    Admin(admin): Admin,
) -> Result<(StatusCode, Json<Affected>), ApiError> {
    let count = app.jobs.dead_purge().await?;
    tracing::info!(admin.id = %admin.id, count, "dead jobs purged");
    Ok((StatusCode::OK, Json(Affected { count })))
}
