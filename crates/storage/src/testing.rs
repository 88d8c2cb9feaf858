//! For tests of any crate (the `testing` feature): a database of their own on the test server.

use sqlx::{Connection as _, PgConnection, PgPool};
use uuid::Uuid;

use crate::database::MIGRATOR;

/// The variable `scripts/test` sets to the test server's URL (its `postgres` database).
pub const TEST_DATABASE_URL: &str = "CLUBPULSE_TEST_DATABASE_URL";

/// Creates a fresh database on the test server, applies every migration, and returns its URL.
///
/// # Panics
///
/// When `CLUBPULSE_TEST_DATABASE_URL` is unset or the server refuses: a test cannot go on.
pub async fn fresh_database() -> String {
    let admin_url = std::env::var(TEST_DATABASE_URL).unwrap_or_else(|_| {
        panic!("{TEST_DATABASE_URL} is not set: run the tests through scripts/test")
    });
    let name = format!("test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    admin.close().await.ok();
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL with a path");
    let url = format!("{base}/{name}");
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to the test database");
    MIGRATOR
        .run(&pool)
        .await
        .expect("migrate the test database");
    pool.close().await;
    url
}
