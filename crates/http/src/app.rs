//! The runnable application: state, router, listener and graceful shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{Router, extract::DefaultBodyLimit, middleware::from_fn};
use clubpulse_config::Config;
use clubpulse_state::{BackendKind, StateBackends};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, timeout::TimeoutLayer};

use clubpulse_audit::AuditLog;
use clubpulse_jobs::{Queue, Registry, WorkerPool};
use clubpulse_search::{EmbeddingOptions, EmbeddingService};

use clubpulse_booking::{Bookings, relay::Relay};

use clubpulse_passwords::Passwords;

use crate::{ApiError, middleware, routes};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub state: StateBackends,
    pub config: Arc<Config>,
    pub passwords: Passwords,
    /// The booking service: holds, confirmations, classes, availability.
    pub bookings: Bookings,
    /// Rate limits, parsed from the configuration.
    pub limits: crate::limits::Limits,
    /// Whether the database is the embedded cluster (reported by `/ready`).
    pub embedded_db: bool,
    /// Where requests record who did what.
    pub audit: AuditLog,
    /// Background jobs (e-mail, search indexing), on Redis or in PostgreSQL.
    pub jobs: Queue,
    /// The sentence-embedding model, unless search is turned off.
    pub search: Option<EmbeddingService>,
    /// This instance's WebSocket hub.
    pub hub: clubpulse_realtime::Hub,
    /// The listener that applies other instances' cache invalidations here.
    pub caches: Arc<clubpulse_cache::Listening>,
}

impl AppState {
    /// Starts a database transaction; failing to get one is the database's error, not the caller's.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ApiError> {
        self.db
            .begin()
            .await
            .map_err(|e| clubpulse_storage::StorageError::from(e).into())
    }
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    state: AppState,
    /// The job handlers, when this instance runs a worker pool.
    workers: Option<Registry>,
}

impl App {
    /// Binds `config.server.addr` (port 0 picks a free port) and assembles the router.
    pub async fn build(
        config: Config,
        db: PgPool,
        state: StateBackends,
        embedded_db: bool,
    ) -> anyhow::Result<Self> {
        // Installed before the first request, so every request is counted.
        crate::metrics::handle();
        let listener = TcpListener::bind(config.server.addr)
            .await
            .with_context(|| format!("binding {}", config.server.addr))?;
        let grace = config.server.shutdown_grace();
        let mut config = config;
        if config.server.public_url.is_none()
            && let Ok(bound) = listener.local_addr()
        {
            // Port 0 picked a port: links and the CSRF origin use the real one.
            config.server.public_url = Some(format!("http://{bound}"));
        }
        let audit = AuditLog::new(
            state.redis_conn().cloned(),
            db.clone(),
            config.audit.enabled,
        );
        let jobs = clubpulse_workers::queue(state.redis_conn().cloned(), db.clone());
        let config = Arc::new(config);
        let search = load_search(&config).await?;
        let provider =
            clubpulse_payments::from_config(&config.payments).context("configuring payments")?;
        let reads = match &config.database.replica_url {
            Some(url) => clubpulse_storage::Reads::with_replica(
                db.clone(),
                url.expose(),
                config.database.replica_max_lag(),
                config.database.max_connections,
            )
            .context("DATABASE_REPLICA_URL")?,
            None => clubpulse_storage::Reads::primary_only(db.clone()),
        };
        let bookings = Bookings::new(reads, state.clone(), config.booking.clone(), provider);
        if let Some(queries) = search.as_ref().and_then(EmbeddingService::query_cache) {
            bookings.caches().register(queries);
        }
        if state.kind == BackendKind::InProcess {
            // Its days live in this process: `cache clear` reaches them through the listener.
            let availability = state.availability.clone();
            bookings
                .caches()
                .on_invalidate(clubpulse_booking::availability::CACHE, move || {
                    let availability = availability.clone();
                    tokio::spawn(async move { availability.clear().await });
                });
        }
        let caches = Arc::new(bookings.caches().listen(&db));
        // Listening first: it empties the caches when it starts, and entries loaded before it
        // listened could have missed an invalidation.
        if !caches.ready(Duration::from_secs(5)).await {
            tracing::warn!("not yet listening for cache invalidations; starting with cold caches");
        }
        match bookings.contexts().warm().await {
            Ok(warmed) => tracing::debug!(warmed, "facility contexts cached"),
            Err(err) => tracing::warn!(error = %err, "could not warm the facility contexts' cache"),
        }
        let workers = if config.jobs.run_in_server {
            let deps = clubpulse_workers::Deps::new(db.clone(), config.clone(), search.clone())
                .context("configuring e-mail")?;
            let mut registry = clubpulse_workers::registry(deps);
            clubpulse_booking::payments::register(
                &mut registry,
                bookings.clone(),
                config.payments.reconcile_after(),
            );
            Some(registry)
        } else {
            None
        };
        let hub = clubpulse_realtime::Hub::start(state.channels.clone(), hub_limits(&config))
            .await
            .context("starting real-time delivery")?;
        let state = AppState {
            caches,
            hub,
            bookings,
            audit,
            jobs,
            search,
            db,
            state,
            limits: crate::limits::Limits::new(&config.rate_limits)?,
            config,
            passwords: Passwords::default(),
            embedded_db,
        };
        Ok(Self {
            listener,
            router: router(state.clone()),
            grace,
            state,
            workers,
        })
    }

    /// The state handlers see (for tests and for background work started beside the server).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has an address.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` completes, then stops accepting and gives in-flight requests up to
    /// the configured grace period to finish. The hold sweeper and the audit flusher run alongside;
    /// the flusher makes a last flush after the requests have drained, so every event recorded
    /// before shutdown is chained.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The sweeper and the outbox relay run with the rest of the background work.
        let (booking_stop, booking_stopped) = tokio::sync::oneshot::channel::<()>();
        let booking_work = self.state.config.jobs.run_in_server.then(|| {
            let relay = Relay::new(
                self.state.bookings.clone(),
                self.state.audit.clone(),
                self.state.jobs.clone(),
            );
            tokio::spawn(clubpulse_booking::background::run(
                self.state.bookings.clone(),
                relay,
                async move {
                    let _ = booking_stopped.await;
                },
            ))
        });
        let (flusher_stop, flusher_stopped) = tokio::sync::oneshot::channel::<()>();
        let flusher = self.state.audit.flusher(self.state.db.clone()).run(
            self.state.config.audit.flush_interval(),
            async move {
                let _ = flusher_stopped.await;
            },
        );
        let flusher = tokio::spawn(flusher);
        let (pool_stop, pool_stopped) = tokio::sync::oneshot::channel::<()>();
        let pool = self.workers.take().map(|registry| {
            let options = clubpulse_workers::worker_options(&self.state.config.jobs);
            tokio::spawn(WorkerPool::run(
                self.state.jobs.clone(),
                registry,
                options,
                async move {
                    let _ = pool_stopped.await;
                },
            ))
        });
        let (periodic_stop, periodic_stopped) = tokio::sync::oneshot::channel::<()>();
        let periodic = clubpulse_workers::periodic(self.state.jobs.clone())
            .and_then(clubpulse_booking::payments::schedule)
            .map(|periodic| {
                tokio::spawn(periodic.run(async move {
                    let _ = periodic_stopped.await;
                }))
            });
        let reads = self.state.bookings.reads().clone();
        let served = self.serve(shutdown).await;
        let _ = periodic_stop.send(());
        if let Ok(periodic) = periodic {
            let _ = periodic.await;
        }
        // Requests have drained: deliver the outbox events they left, finish the jobs in hand,
        // then chain the last audit events (the relay and the jobs record some).
        let _ = booking_stop.send(());
        if let Some(work) = booking_work
            && let Err(err) = work.await
        {
            tracing::error!(error = %err, "the booking background work stopped abnormally");
        }
        let _ = pool_stop.send(());
        if let Some(pool) = pool
            && let Err(err) = pool.await
        {
            tracing::error!(error = %err, "the worker pool stopped abnormally");
        }
        let _ = flusher_stop.send(());
        if let Err(err) = flusher.await {
            tracing::error!(error = %err, "the audit flusher stopped abnormally");
        }
        reads.close().await;
        served
    }

    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let hub = self.state.hub.clone();
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        });
        let server = tokio::spawn(async move { server.await });
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result.context("server task")?.context("serving"),
            _ = stopping_rx => {}
        }
        tracing::info!(
            grace_seconds = self.grace.as_secs(),
            sockets = hub.connections(),
            "shutting down: draining requests and closing WebSockets"
        );
        // Every socket is told "going away" at once, so its client reconnects to another instance
        // while the requests drain.
        let sockets = hub.shutdown(self.grace);
        let (_, served) = tokio::join!(sockets, tokio::time::timeout(self.grace, &mut server));
        match served {
            Ok(result) => result.context("server task")?.context("serving"),
            Err(_) => {
                tracing::warn!("requests still running after the grace period were dropped");
                server.abort();
                Ok(())
            }
        }
    }
}

/// The WebSocket limits from the configuration.
fn hub_limits(config: &Config) -> clubpulse_realtime::HubLimits {
    clubpulse_realtime::HubLimits {
        send_queue: config.realtime.send_queue,
        max_subscriptions: config.realtime.max_subscriptions,
        heartbeat: config.realtime.heartbeat(),
        idle_timeout: config.realtime.idle(),
    }
}

/// Loads the embedding model when search is on; a missing or unreadable model stops the start
/// with the folder named (never a download).
pub async fn load_search(config: &Config) -> anyhow::Result<Option<EmbeddingService>> {
    if !config.search.enabled {
        tracing::info!("search is turned off (CLUBPULSE_SEARCH=off)");
        return Ok(None);
    }
    let dir = config.search.model_dir.clone();
    let service = EmbeddingService::load(dir.clone(), EmbeddingOptions::default())
        .await
        .with_context(|| {
            format!(
                "loading the search model from {} (install it with scripts/setup, point \
                 CLUBPULSE_MODEL_DIR at a sentence-transformers folder, or set \
                 CLUBPULSE_SEARCH=off)",
                dir.display()
            )
        })?;
    Ok(Some(service))
}

/// The whole HTTP surface: API routes, docs, health, and the middleware around them.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    let timeout = state.config.server.request_timeout();
    routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::read_your_writes,
        ))
        // Inside the body limit, so a signed request's body is read within it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::signature::verify,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(
            |panic: Box<dyn std::any::Any + Send>| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                axum::response::IntoResponse::into_response(ApiError::internal(anyhow::anyhow!(
                    "a handler panicked: {message}"
                )))
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::csrf,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::limits::per_ip,
        ))
        .layer(from_fn(middleware::security_headers))
        .layer(from_fn(middleware::problem_fallback))
        .layer(from_fn(middleware::request_context))
}
