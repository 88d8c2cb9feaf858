//! What each subcommand does.

use std::sync::Arc;

use anyhow::Context as _;
use clubpulse_audit::{AuditLog, ExpectedHead, Verdict};
use clubpulse_config::{Config, LogConfig, LogFormat};
use clubpulse_domain::{
    CancellationPolicy, ClubName, DisplayName, Email, FacilityInput, NewFacility, Password, Role,
    TimeZone,
};
use clubpulse_http::{App, load_search};
use clubpulse_jobs::{DeadSelector, JobId, WorkerPool};
use clubpulse_passwords::Passwords;
use clubpulse_search::EmbeddingService;
use clubpulse_state::{RedisOptions, StateBackends};
use clubpulse_storage::{
    Conflict, Database, DatabaseOptions, StorageError, clubs, facilities, users,
};
use tracing_subscriber::{EnvFilter, fmt};

use crate::demo_data;

pub fn init_tracing(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn database_options(config: &Config, adopt_running: bool) -> DatabaseOptions {
    DatabaseOptions {
        url: config.database.url.as_ref().map(|u| u.expose().to_owned()),
        data_dir: config.database.data_dir.clone(),
        pg_bin_dir: config.database.pg_bin_dir.clone(),
        max_connections: config.database.max_connections,
        adopt_running,
    }
}

/// Opens the database and applies migrations; on failure the embedded cluster (if any) is stopped.
async fn open_database(config: &Config, adopt_running: bool) -> anyhow::Result<Database> {
    let db = Database::open(&database_options(config, adopt_running))
        .await
        .context("opening the database")?;
    if let Err(err) = db.migrate().await {
        db.close().await;
        return Err(err).context("applying migrations");
    }
    Ok(db)
}

/// Runs `work` with an open database and closes it afterwards, whatever `work` returned.
async fn with_database<T>(
    config: &Config,
    work: impl AsyncFnOnce(&Database) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let db = open_database(config, false).await?;
    let result = work(&db).await;
    db.close().await;
    result
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let db = open_database(&config, true).await?;
    let result = serve_with(config, &db, shutdown).await;
    db.close().await;
    result
}

/// The shared state from the configuration: Redis when `REDIS_URL` is set, in-process otherwise.
async fn connect_state(config: &Config) -> anyhow::Result<StateBackends> {
    let redis = config.redis.url.as_ref().map(|url| {
        RedisOptions::new(
            url.expose(),
            config.redis.cluster,
            config.redis.key_prefix.clone(),
        )
    });
    StateBackends::connect(redis)
        .await
        .context("connecting to Redis (REDIS_URL)")
}

async fn serve_with(
    config: Config,
    db: &Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = connect_state(&config).await?;
    let app = App::build(config, db.pool.clone(), state.clone(), db.is_embedded()).await?;
    tracing::info!(
        addr = %app.local_addr(),
        database = if db.is_embedded() { "embedded" } else { "external" },
        state = state.kind.as_str(),
        "Club Pulse is serving"
    );
    app.run_until_stopped(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives during start-up (while migrations
/// run, say) is not lost: the process starts, then stops at once.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    async move {
        let interrupted = async {
            match interrupt.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let terminated = async {
            match terminate.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = interrupted => tracing::info!("interrupted"),
            () = terminated => tracing::info!("terminated"),
        }
    }
}

pub async fn migrate(config: Config) -> anyhow::Result<()> {
    with_database(&config, async |_| {
        println!("migrations applied");
        Ok(())
    })
    .await
}

pub async fn create_user(
    config: Config,
    email: &str,
    password: String,
    role: &str,
    name: Option<String>,
) -> anyhow::Result<()> {
    let email = Email::try_from(email).map_err(|e| anyhow::anyhow!("--email {}", e.message))?;
    let password =
        Password::try_from(password).map_err(|e| anyhow::anyhow!("--password {}", e.message))?;
    let role: Role = role
        .parse()
        .map_err(|_| anyhow::anyhow!("--role must be member, staff or admin"))?;
    let name = name.unwrap_or_else(|| {
        email
            .as_str()
            .split('@')
            .next()
            .unwrap_or("member")
            .to_owned()
    });
    let name = DisplayName::try_from(name.as_str())
        .map_err(|e| anyhow::anyhow!("--name {}", e.message))?;
    let hash = Passwords::default()
        .hash(password.expose().to_owned())
        .await?;
    with_database(&config, async |db| {
        let user = upsert_user(db, &email, &name, &hash, role).await?;
        println!("{} {} ({})", user.id, user.email, user.role);
        Ok(())
    })
    .await
}

async fn upsert_user(
    db: &Database,
    email: &Email,
    name: &DisplayName,
    hash: &str,
    role: Role,
) -> anyhow::Result<users::User> {
    match users::insert(&db.pool, email, name, hash, role).await {
        Ok(user) => Ok(user),
        Err(StorageError::Conflict(Conflict::EmailTaken)) => {
            users::update_role_and_password(&db.pool, email, name, hash, role)
                .await?
                .context("the account vanished while being updated")
        }
        Err(err) => Err(err.into()),
    }
}

/// Loads the demo data set; running it again adds nothing twice.
pub async fn seed_demo(config: Config) -> anyhow::Result<()> {
    let passwords = Passwords::default();
    let mut hashed = Vec::new();
    for user in demo_data::USERS {
        hashed.push(passwords.hash(user.password.to_owned()).await?);
    }
    with_database(&config, async |db| {
        let mut club_ids = Vec::new();
        for club in &demo_data::CLUBS {
            let name = ClubName::try_from(club.name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let timezone = TimeZone::try_from(club.timezone).map_err(|e| anyhow::anyhow!("{e}"))?;
            let found = clubs::find_by_name(&db.pool, &name).await?;
            let club = match found {
                Some(club) => club,
                None => {
                    clubs::insert(&db.pool, &name, timezone, CancellationPolicy::default()).await?
                }
            };
            club_ids.push(club.id);
        }
        let mut added = 0;
        for facility in demo_data::facilities() {
            let club_id = *club_ids
                .get(facility.club)
                .context("demo facility of an unknown club")?;
            let currency = demo_data::CLUBS
                .get(facility.club)
                .map(|c| c.currency.to_owned());
            let input = FacilityInput {
                name: Some(facility.name.clone()),
                sport: Some(facility.sport.to_owned()),
                description: Some(facility.description),
                specifications: Some(facility.specifications),
                opening_hours: facility.opening_hours,
                slot_minutes: Some(facility.slot_minutes),
                buffer_minutes: Some(facility.buffer_minutes),
                price_cents: Some(facility.price_cents),
                currency,
            };
            let new = NewFacility::parse(club_id, input).map_err(|errors| {
                anyhow::anyhow!("demo facility {:?} is invalid: {errors:?}", facility.name)
            })?;
            match facilities::insert(&db.pool, &new).await {
                Ok(_) => added += 1,
                Err(StorageError::Conflict(Conflict::FacilityNameTaken)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        for (user, hash) in demo_data::USERS.iter().zip(&hashed) {
            let email = Email::try_from(user.email).map_err(|e| anyhow::anyhow!("{e}"))?;
            let name = DisplayName::try_from(user.name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let role: Role = user.role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            upsert_user(db, &email, &name, hash, role).await?;
        }
        println!(
            "demo data ready: {} clubs, {} facilities ({added} new), {} users",
            clubs::count(&db.pool).await?,
            facilities::count(&db.pool).await?,
            users::count(&db.pool).await?,
        );
        println!("demo accounts (e-mail / password / role):");
        for user in demo_data::USERS {
            println!("  {:<24} {:<18} {}", user.email, user.password, user.role);
        }
        // Indexed now, so that search answers from the first request.
        if let Some(search) = load_search(&config).await? {
            index_for_search(&db.pool, &search, true).await?;
        }
        Ok(())
    })
    .await
}

/// Rebuilds the search index of every live facility (or only the missing and stale ones).
/// `clubpulse cache clear [--prefix P]`: the availability days in Redis (when the prefix covers
/// them), then every instance's in-process caches, through a notification each instance's
/// listener applies (an in-process availability cache with them).
pub async fn cache_clear(config: Config, prefix: &str) -> anyhow::Result<()> {
    let scope = format!("{}:", clubpulse_booking::availability::CACHE);
    let availability = scope.starts_with(prefix) || prefix.starts_with(&scope);
    with_database(&config, async |db| {
        if availability && config.redis.url.is_some() {
            let state = connect_state(&config).await?;
            let days = state
                .availability
                .clear()
                .await
                .context("clearing the availability cache in Redis")?;
            println!("availability cache: {days} cached days dropped in Redis");
        }
        clubpulse_cache::notify(&db.pool, prefix)
            .await
            .context("telling the running instances")?;
        if prefix.is_empty() {
            println!("every instance is told to empty every cache");
        } else {
            println!("every instance is told to drop the entries under \"{prefix}\"");
        }
        Ok(())
    })
    .await
}

pub async fn search_reindex(config: Config, only_missing: bool) -> anyhow::Result<()> {
    if !config.search.enabled {
        anyhow::bail!("search is turned off (CLUBPULSE_SEARCH=off): there is no index to build");
    }
    with_database(&config, async |db| {
        let search = load_search(&config)
            .await?
            .context("search is turned off")?;
        index_for_search(&db.pool, &search, only_missing).await
    })
    .await
}

async fn index_for_search(
    pool: &sqlx::PgPool,
    search: &EmbeddingService,
    only_missing: bool,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let done = clubpulse_workers::search::reindex(pool, search, only_missing, |done, total| {
        progress_bar("indexing facilities for search", done, total);
    })
    .await
    .map_err(|e| anyhow::anyhow!("indexing failed: {e}"))?;
    eprintln!();
    println!(
        "search index: {} facilities indexed in {:.1} s{}",
        done.indexed,
        started.elapsed().as_secs_f64(),
        if done.skipped > 0 {
            format!(
                " ({} changed meanwhile, left for the next run)",
                done.skipped
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// One line on stderr, redrawn in place: `label [#####     ] 53/120`.
fn progress_bar(label: &str, done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    eprint!(
        "\r{label} [{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled)
    );
}

/// Runs the background work of a deployment until SIGTERM or Ctrl-C: jobs, periodic jobs, the hold
/// sweeper, the outbox relay and the audit flusher; then delivers what the relay still owes,
/// finishes the jobs in hand and flushes the audit buffer one last time.
pub async fn worker(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let db = open_database(&config, true).await?;
    let result = worker_with(config, &db, shutdown).await;
    db.close().await;
    result
}

async fn worker_with(
    config: Config,
    db: &Database,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let state = connect_state(&config).await?;
    let redis = state.redis_conn().cloned();
    let config = Arc::new(config);
    let queue = clubpulse_workers::queue(redis.clone(), db.pool.clone());
    let search = load_search(&config).await?;
    let deps = clubpulse_workers::Deps::new(db.pool.clone(), config.clone(), search)
        .context("configuring e-mail")?;
    let provider =
        clubpulse_payments::from_config(&config.payments).context("configuring payments")?;
    let bookings = clubpulse_booking::Bookings::new(
        db.pool.clone(),
        state.clone(),
        config.booking.clone(),
        provider,
    );
    let mut registry = clubpulse_workers::registry(deps);
    clubpulse_booking::payments::register(
        &mut registry,
        bookings.clone(),
        config.payments.reconcile_after(),
    );
    let audit = AuditLog::new(redis, db.pool.clone(), config.audit.enabled);
    let flusher = audit.flusher(db.pool.clone());
    let (stop, _) = tokio::sync::watch::channel(false);
    let stopped = |stop: &tokio::sync::watch::Sender<bool>| {
        let mut rx = stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    };
    tracing::info!(
        queue = state.kind.as_str(),
        concurrency = config.jobs.concurrency,
        "Club Pulse worker started"
    );
    let relay =
        clubpulse_booking::relay::Relay::new(bookings.clone(), audit.clone(), queue.clone());
    let booking_work = tokio::spawn(clubpulse_booking::background::run(
        bookings,
        relay,
        stopped(&stop),
    ));
    let periodic = clubpulse_workers::periodic(queue.clone())
        .and_then(clubpulse_booking::payments::schedule)
        .context("scheduling periodic jobs")?;
    let periodic = tokio::spawn(periodic.run(stopped(&stop)));
    let pool = tokio::spawn(WorkerPool::run(
        queue,
        registry,
        clubpulse_workers::worker_options(&config.jobs),
        stopped(&stop),
    ));
    let flushing = tokio::spawn(flusher.run(config.audit.flush_interval(), stopped(&stop)));
    shutdown.await;
    let _ = stop.send(true);
    booking_work
        .await
        .context("the sweeper and the outbox relay")?;
    periodic.await.context("the periodic jobs")?;
    let summary = pool.await.context("the worker pool")?;
    flushing.await.context("the audit flusher")?;
    tracing::info!(
        succeeded = summary.succeeded,
        failed = summary.failed,
        abandoned = summary.abandoned,
        "worker stopped"
    );
    Ok(())
}

/// What to do with the dead-letter queue.
#[derive(Debug, Clone)]
pub enum DeadAction {
    List { limit: usize },
    Retry(Option<JobId>),
    Purge,
}

pub async fn dead_jobs(config: Config, action: DeadAction) -> anyhow::Result<()> {
    with_database(&config, async |db| {
        let state = connect_state(&config).await?;
        let queue = clubpulse_workers::queue(state.redis_conn().cloned(), db.pool.clone());
        match action {
            DeadAction::List { limit } => {
                let dead = queue.dead_list(limit, 0).await?;
                if dead.is_empty() {
                    println!("the dead-letter queue is empty");
                }
                for job in dead {
                    println!("{}", serde_json::to_string(&job)?);
                }
            }
            DeadAction::Retry(which) => {
                let selector = which.map_or(DeadSelector::All, DeadSelector::Id);
                let count = queue.dead_retry(selector).await?;
                if let (0, Some(id)) = (count, which) {
                    anyhow::bail!("job {id} is not in the dead-letter queue");
                }
                println!("{count} job(s) queued again");
            }
            DeadAction::Purge => {
                let count = queue.dead_purge().await?;
                println!("{count} dead job(s) purged");
            }
        }
        Ok(())
    })
    .await
}

/// Walks the audit chain; an error (exit status 1) names the first broken seq.
pub async fn audit_verify(config: Config, expected: Option<ExpectedHead>) -> anyhow::Result<()> {
    with_database(&config, async |db| {
        match clubpulse_audit::verify(&db.pool, expected).await? {
            Verdict::Intact { rows, head } => {
                match head {
                    Some((seq, hash)) => println!(
                        "audit chain intact: {rows} events; head {seq}:{}",
                        hex_string(&hash)
                    ),
                    None => println!("audit chain intact: no events yet"),
                }
                Ok(())
            }
            Verdict::Broken(broken) => anyhow::bail!(
                "audit chain broken at seq {}: {} ({})",
                broken.seq,
                broken.damage.as_str(),
                broken.detail
            ),
        }
    })
    .await
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
