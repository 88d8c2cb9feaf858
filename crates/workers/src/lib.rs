//! Background work: the jobs the service enqueues and the handlers that run them, in `serve` (by
//! default) or in `clubpulse worker` processes.
//!
//! Every handler is safe to run twice: the queue delivers at least once, and a worker killed
//! mid-job has its job run again by another. E-mails carry a message id fixed by the job (not by
//! the attempt), so a resend after a crash is recognisable as the same message.
//!
//! # Layout
//!
//! - [`mail`]: e-mail jobs ([`SendMail`], [`BookingMail`], [`WaitlistOfferMail`]) and their
//!   handlers.
//! - outbound webhook deliveries (`webhook.deliver`): the job and its handler live in
//!   `clubpulse_webhooks::delivery`; [`registry`] registers it with the others.
//! - [`search`]: keeping the search index current ([`IndexFacility`], [`IndexMissing`]), and the
//!   [`reindex`](search::reindex) behind `clubpulse search reindex`.
//! - this file: what handlers need ([`Deps`]), the [`registry`] of every job kind, the queue for a
//!   deployment ([`queue`]) and the pool options from the configuration ([`worker_options`]).

pub mod mail;
pub mod search;

use std::sync::Arc;

use clubpulse_config::{Config, JobsConfig};
use clubpulse_jobs::{Queue, Registry, WorkerOptions};
use clubpulse_mail::Mailer;
use clubpulse_search::EmbeddingService;
use clubpulse_state::RedisConn;
use sqlx::PgPool;

pub use mail::{BookingMail, BookingMailEvent, SendMail, WaitlistOfferMail};
pub use search::{IndexFacility, IndexMissing};

/// What handlers reach: the database, the mailer, the embedding model and the configuration.
#[derive(Debug, Clone)]
pub struct Deps {
    pub db: PgPool,
    /// `None` when search is disabled: indexing jobs complete without doing anything.
    pub search: Option<EmbeddingService>,
    /// `None` when no SMTP server is configured: mail jobs complete without sending, and say so in
    /// the log.
    pub mailer: Option<Arc<Mailer>>,
    pub config: Arc<Config>,
}

impl Deps {
    /// Builds the mailer from the configuration (a bad SMTP URL or sender is an error at start).
    pub fn new(
        db: PgPool,
        config: Arc<Config>,
        search: Option<EmbeddingService>,
    ) -> Result<Self, clubpulse_mail::MailError> {
        let mailer = match &config.mail.smtp_url {
            Some(url) => Some(Arc::new(Mailer::from_url(url.expose(), &config.mail.from)?)),
            None => None,
        };
        Ok(Self {
            db,
            search,
            mailer,
            config,
        })
    }
}

/// The job queue of a deployment: on Redis when there is Redis, else in PostgreSQL (durable, so a
/// single instance loses no accepted job on a crash).
pub fn queue(redis: Option<RedisConn>, db: PgPool) -> Queue {
    match redis {
        Some(redis) => Queue::redis(redis),
        None => Queue::postgres(db),
    }
}

/// Every job kind the service runs, with its handler.
pub fn registry(deps: Deps) -> Registry {
    let mut registry = Registry::new();
    mail::register(&mut registry, deps.clone());
    clubpulse_webhooks::delivery::register(&mut registry, deps.db.clone(), &deps.config.webhooks);
    search::register(&mut registry, deps);
    registry
}

/// How often some instance queues indexing of facilities written without the API (the demo seed)
/// or whose indexing job was lost.
pub const INDEX_MISSING_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The periodic jobs of a deployment, enqueued by whichever instance's turn it is: run by `serve`
/// and by `clubpulse worker` alike.
pub fn periodic(queue: Queue) -> Result<clubpulse_jobs::Periodic, clubpulse_jobs::JobError> {
    clubpulse_jobs::Periodic::new(queue).every(INDEX_MISSING_EVERY, &IndexMissing)
}

/// Pool options from the configuration.
pub fn worker_options(config: &JobsConfig) -> WorkerOptions {
    WorkerOptions {
        concurrency: config.concurrency,
        max_attempts: config.max_attempts,
        backoff_base: config.backoff_base(),
        visibility_timeout: config.visibility(),
        ..WorkerOptions::default()
    }
}
