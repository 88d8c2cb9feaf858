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
//! - [`users`], [`api_keys`], [`clubs`], [`facilities`], [`bookings`], [`classes`]: one repository module per
//!   table (enrolments live with their classes).
//! - [`outbox`]: side effects owed by committed writes, for the relay to deliver.
//! - [`search`]: the facilities' search index (embeddings and full text), the two retrievers,
//!   similar facilities, favourites and recommendation candidates.
//! - [`sent_mail`]: booking e-mails already sent, so a repeated mail job sends nothing.
//! - `testing` (feature `testing`): a fresh, migrated database per test, for every crate's tests.

pub mod api_keys;
pub mod bookings;
pub mod classes;
pub mod clubs;
pub mod database;
pub mod embedded;
pub mod facilities;
pub mod outbox;
pub mod search;
pub mod sent_mail;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use database::{Database, DatabaseOptions};
pub use embedded::{EmbeddedError, EmbeddedPostgres};

/// A storage operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique or exclusion constraint refused the write: the named thing already exists.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// A referenced row does not exist (a foreign key refused the write).
    #[error("a referenced row does not exist: {0}")]
    MissingReference(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    EmailTaken,
    ClubNameTaken,
    FacilityNameTaken,
}

impl StorageError {
    /// Maps a named constraint violation to its meaning; anything else stays a database error.
    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.constraint() {
                Some("users_email_key") => return Self::Conflict(Conflict::EmailTaken),
                Some("clubs_name_key") => return Self::Conflict(Conflict::ClubNameTaken),
                Some("facilities_club_name_key") => {
                    return Self::Conflict(Conflict::FacilityNameTaken);
                }
                Some("facilities_club_id_fkey") => return Self::MissingReference("club"),
                _ => {}
            }
        }
        Self::Database(err)
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
