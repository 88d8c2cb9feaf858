//! Club Pulse storage: the PostgreSQL schema and every query against it.
//!
//! Repository functions take a connection or transaction (`impl PgExecutor`), so the caller owns
//! transaction boundaries. Constraints are the rules of record: a duplicate is found by its named
//! unique constraint failing, never by a check-then-insert race.
//!
//! # Layout
//!
//! - [`database`]: the pool, migrations, and the choice between `DATABASE_URL` and the embedded cluster.
//! - [`embedded`]: runs a private PostgreSQL cluster from the machine's binaries.
//! - [`replica`]: the read replica (`DATABASE_REPLICA_URL`), its lag, and where reads go.
//! - [`users`], [`api_keys`], [`clubs`], [`facilities`], [`bookings`], [`classes`]: one repository module per
//!   table (enrolments live with their classes).
//! - [`calendar_feeds`]: members' calendar feed tokens (hashed) and what a feed shows.
//! - [`outbox`]: side effects owed by committed writes, for the relay to deliver.
//! - [`payments`]: payments, the refunds owed and made on them, and provider events applied.
//! - [`notifications`]: members' stored notifications.
//! - [`waitlist`]: members waiting for a taken range, and the offer holds made for them.
//! - [`search`]: the facilities' search index (embeddings and full text), the two retrievers,
//!   similar facilities, favourites and recommendation candidates.
//! - [`sent_mail`]: booking e-mails already sent, so a repeated mail job sends nothing.
//! - [`webhooks`]: outbound webhook endpoints and their deliveries.
//! - [`demand`]: unmet demand as it happens: holds refused for a taken time, searches that found
//!   nothing.
//! - [`stats`]: the manager's dashboard ([`stats::dashboard`]): occupancy, utilisation, bookings,
//!   revenue and unmet demand over a range of local dates.
//! - `testing` (feature `testing`): a fresh, migrated database per test, for every crate's tests.

pub mod api_keys;
pub mod bookings;
pub mod calendar_feeds;
pub mod classes;
pub mod clubs;
pub mod database;
pub mod demand;
pub mod embedded;
pub mod facilities;
pub mod notifications;
pub mod outbox;
pub mod payments;
pub mod replica;
pub mod search;
pub mod sent_mail;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;
pub mod waitlist;
pub mod webhooks;

pub use database::{Database, DatabaseOptions};
pub use embedded::{EmbeddedError, EmbeddedPostgres};
pub use replica::{Reads, ReplicaHealth};

/// A storage operation that failed.
///
/// Every error that input can cause has a variant of its own, so the HTTP layer can answer it with a
/// 4xx and a stable code; only what is really the server's fault stays [`StorageError::Database`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique or exclusion constraint refused the write: the named thing already exists.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// A referenced row does not exist (a foreign key refused the write).
    #[error("a referenced row does not exist: {0}")]
    MissingReference(&'static str),
    /// PostgreSQL refused a value (a check constraint, text it cannot store, a number out of
    /// range): the input is invalid.
    #[error("the database refused a value: {0:?}")]
    Invalid(Invalid),
    /// A deadlock or a serialization failure that outlived its retries: nothing was written, and
    /// the same request may succeed a moment later.
    #[error("the transaction lost a race with another one (SQLSTATE {0})")]
    Contention(&'static str),
    /// The database cannot be reached or is out of capacity (pool timeout, lost connection, too
    /// many connections, a cancelled statement).
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error(transparent)]
    Database(sqlx::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    EmailTaken,
    ClubNameTaken,
    FacilityNameTaken,
    /// Another unique or exclusion constraint (SQLSTATE 23505, 23P01) without a meaning of its own.
    Duplicate,
}

/// Why PostgreSQL refused a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// A check constraint (23514) or a not-null column (23502).
    Constraint,
    /// Text PostgreSQL cannot store: a NUL character (22P05, 22021) or an invalid encoding.
    Text,
    /// A value of the wrong form for its type (22P02, 22007, 22008, 22023): a malformed number or
    /// date, a date out of range.
    Format,
    /// A number out of its column's range (22003).
    OutOfRange,
    /// A value too long for its column or index (22001, 54000).
    TooLong,
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        Self::from_sqlx(err)
    }
}

impl StorageError {
    /// Maps a database error to its meaning: a named constraint to what it protects, then every
    /// SQLSTATE that input can cause to its class; anything else stays a database error.
    pub fn from_sqlx(err: sqlx::Error) -> Self {
        let db = match &err {
            sqlx::Error::Database(db) => db,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => return Self::Unavailable(err),
            _ => return Self::Database(err),
        };
        match db.constraint() {
            Some("users_email_key") => return Self::Conflict(Conflict::EmailTaken),
            Some("clubs_name_key") => return Self::Conflict(Conflict::ClubNameTaken),
            Some("facilities_club_name_key") => {
                return Self::Conflict(Conflict::FacilityNameTaken);
            }
            Some("facilities_club_id_fkey") => return Self::MissingReference("club"),
            _ => {}
        }
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        match code.as_str() {
            "23505" | "23P01" => Self::Conflict(Conflict::Duplicate),
            "23503" => Self::MissingReference("referenced row"),
            "23514" | "23502" => Self::Invalid(Invalid::Constraint),
            "22P05" | "22021" => Self::Invalid(Invalid::Text),
            "22P02" | "22007" | "22008" | "22023" => Self::Invalid(Invalid::Format),
            "22003" => Self::Invalid(Invalid::OutOfRange),
            "22001" | "54000" => Self::Invalid(Invalid::TooLong),
            "40P01" => Self::Contention("40P01"),
            "40001" => Self::Contention("40001"),
            // Connection exceptions, too many connections, a cancelled statement or an
            // administrator shutting the server down: the database, not the input.
            c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
                Self::Unavailable(err)
            }
            _ => Self::Database(err),
        }
    }

    /// Whether running the same transaction again may succeed: a deadlock or serialization failure.
    pub fn is_contention(&self) -> bool {
        matches!(self, Self::Contention(_))
    }
}

/// Whether a raw database error is a deadlock (40P01) or a serialization failure (40001): the
/// transaction was aborted because of another one, and running it again may succeed.
pub fn is_contention(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// An error that may say "run the transaction again".
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for StorageError {
    fn is_retryable(&self) -> bool {
        self.is_contention()
    }
}

/// How many times [`retry_contended`] runs a transaction at most.
pub const CONTENTION_ATTEMPTS: u32 = 4;

/// Runs `attempt` (one whole transaction, or one statement that is its own transaction) again
/// when PostgreSQL aborted it for a deadlock or a serialization failure, at most
/// [`CONTENTION_ATTEMPTS`] times, with a short randomised pause so the rivals do not meet again.
/// The last error is returned as it is: still a contention, for the caller to answer 503.
pub async fn retry_contended<T, E, F, Fut>(mut attempt: F) -> std::result::Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(err) if err.is_retryable() && tries < CONTENTION_ATTEMPTS => {
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
                tokio::time::sleep(std::time::Duration::from_millis(
                    5 * u64::from(tries) + jitter,
                ))
                .await;
                tries += 1;
            }
            other => return other,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
