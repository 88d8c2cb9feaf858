//! Liveness and readiness.

use std::time::Instant;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(crate::metrics::scrape))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and serving. Checks nothing else.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// One dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `up` or `down`.
    pub status: &'static str,
    /// Which implementation: `postgres`/`embedded-postgres`, `redis`/`in-process`.
    pub backend: &'static str,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every check is up, `unavailable` otherwise.
    pub status: &'static str,
    pub database: Check,
    /// The shared state (sessions): Redis or the in-process twin.
    pub state: Check,
    /// The job queue and its workers.
    pub jobs: JobsCheck,
    /// This instance's in-process caches.
    pub caches: CachesCheck,
    /// The read replica, when `DATABASE_REPLICA_URL` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaCheck>,
}

/// The read replica's state. Informational: reads go to the primary while it is not `healthy`, so
/// the instance stays ready. Public, so it says how far behind the replica is, never why it is down.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaCheck {
    /// `healthy` (reads go to it), `lagging` (further behind than the limit), `down` (unreachable,
    /// or not a standby) or `starting` (not measured yet).
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// How far behind the primary it was at the last probe (absent when unknown).
    #[schema(example = 0.0)]
    pub lag_seconds: Option<f64>,
    /// `CLUBPULSE_REPLICA_MAX_LAG_SECONDS`.
    pub max_lag_seconds: u64,
}

/// Whether this instance hears other instances' cache invalidations. Informational: while it
/// reconnects, its caches are emptied again as it comes back, so nothing stale outlives the gap.
#[derive(Debug, Serialize, ToSchema)]
pub struct CachesCheck {
    /// `listening`, or `reconnecting`.
    #[schema(example = "listening")]
    pub status: &'static str,
}

/// The job queue's state. Informational: a backlog does not make an instance unready.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsCheck {
    /// `up` or `down`.
    pub status: &'static str,
    /// Jobs waiting for a worker (ready and scheduled).
    pub queued: u64,
    pub in_flight: u64,
    pub dead: u64,
    /// Worker pools that reported recently, on every instance.
    pub workers: usize,
    /// Jobs running now across those pools.
    pub busy: u64,
}

/// Readiness: whether this instance can serve requests now (database and shared state reachable).
/// Public, so it names what is down (and which backend it is) but never why: the error itself
/// goes to the log only.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = database_check(&app).await;
    let started = Instant::now();
    let state = check(
        app.state.kind.as_str(),
        started,
        app.state.ping().await.map_err(|e| e.to_string()),
    );
    let jobs = jobs_check(&app).await;
    let up = database.status == "up" && state.status == "up";
    let (code, status) = if up {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        code,
        Json(Readiness {
            status,
            database,
            state,
            jobs,
            caches: CachesCheck {
                status: if app.caches.is_listening() {
                    "listening"
                } else {
                    "reconnecting"
                },
            },
            replica: app.bookings.reads().health().map(|health| ReplicaCheck {
                status: health.as_str(),
                lag_seconds: health.lag().map(|lag| lag.as_secs_f64()),
                max_lag_seconds: app.config.database.replica_max_lag_seconds,
            }),
        }),
    )
}

async fn database_check(app: &AppState) -> Check {
    let started = Instant::now();
    let db = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&app.db)
        .await;
    let backend = if app.embedded_db {
        "embedded-postgres"
    } else {
        "postgres"
    };
    check(backend, started, db.map(|_| ()).map_err(|e| e.to_string()))
}

async fn jobs_check(app: &AppState) -> JobsCheck {
    match app.jobs.stats().await {
        Ok(s) => JobsCheck {
            status: "up",
            queued: s.ready + s.scheduled,
            in_flight: s.in_flight,
            dead: s.dead,
            workers: s.workers.len(),
            busy: s.busy,
        },
        Err(err) => {
            tracing::warn!(error = %err, "readiness: the job queue is unreachable");
            JobsCheck {
                status: "down",
                queued: 0,
                in_flight: 0,
                dead: 0,
                workers: 0,
                busy: 0,
            }
        }
    }
}

fn check(backend: &'static str, started: Instant, result: Result<(), String>) -> Check {
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    match result {
        Ok(()) => Check {
            status: "up",
            backend,
            latency_ms,
        },
        Err(error) => {
            tracing::warn!(backend, error, "readiness check failed");
            Check {
                status: "down",
                backend,
                latency_ms,
            }
        }
    }
}
