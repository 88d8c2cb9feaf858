//! The connection pool, migrations, and where the database comes from.

use std::{path::PathBuf, str::FromStr, time::Duration};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::embedded::{EmbeddedError, EmbeddedPostgres};

/// Embedded migrations, applied by `serve` at start and by `clubpulse migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How to reach PostgreSQL.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// `DATABASE_URL`; `None` runs the embedded cluster.
    pub url: Option<String>,
    /// Root of the embedded cluster's files (`CLUBPULSE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The PostgreSQL server binaries for the embedded cluster.
    pub pg_bin_dir: PathBuf,
    pub max_connections: u32,
    /// Whether this process owns an embedded cluster it finds already running (and so stops it at
    /// the end). `serve` takes ownership; one-off commands borrow a running cluster.
    pub adopt_running: bool,
}

/// Failure to get a usable database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Url(sqlx::Error),
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(sqlx::Error),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error("could not apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A pool, and the embedded cluster behind it when there is one.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts (creating on first run) the embedded cluster.
    pub async fn open(options: &DatabaseOptions) -> Result<Self, DatabaseError> {
        let (connect, embedded) = match &options.url {
            Some(url) => (
                PgConnectOptions::from_str(url).map_err(DatabaseError::Url)?,
                None,
            ),
            None => {
                let embedded = EmbeddedPostgres::start(
                    &options.data_dir,
                    &options.pg_bin_dir,
                    options.adopt_running,
                )
                .await?;
                (embedded.connect_options("clubpulse"), Some(embedded))
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect.application_name("clubpulse"))
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(err) => {
                if let Some(embedded) = embedded {
                    embedded.stop().await;
                }
                return Err(DatabaseError::Connect(err));
            }
        };
        Ok(Self { pool, embedded })
    }

    pub async fn migrate(&self) -> Result<(), DatabaseError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Closes the pool, then stops the embedded cluster if this process owns it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(embedded) = self.embedded {
            embedded.stop().await;
        }
    }
}
