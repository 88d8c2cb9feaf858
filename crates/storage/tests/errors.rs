//! Every SQLSTATE that input can cause has a meaning of its own, found by making PostgreSQL raise
//! it for real; contention is retried a bounded number of times.

use std::sync::atomic::{AtomicU32, Ordering};

use clubpulse_storage::{
    CONTENTION_ATTEMPTS, Conflict, Invalid, StorageError, retry_contended, testing::fresh_database,
};
use sqlx::{Connection as _, PgConnection};

async fn connection() -> PgConnection {
    let url = fresh_database().await;
    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(
        "CREATE TEMP TABLE parent (id int PRIMARY KEY);
         CREATE TEMP TABLE child (
             id int PRIMARY KEY,
             parent_id int REFERENCES parent (id),
             n int CHECK (n > 0),
             short varchar(2),
             label text NOT NULL DEFAULT ''
         );
         INSERT INTO parent VALUES (1);",
    )
    .execute(&mut conn)
    .await
    .expect("create the tables");
    conn
}

/// What a refusal must map to.
type Expected = fn(&StorageError) -> bool;

/// What PostgreSQL's refusal of `sql` maps to.
async fn refusal(conn: &mut PgConnection, sql: &str) -> StorageError {
    let err = sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .expect_err("PostgreSQL refuses it");
    StorageError::from(err)
}

#[tokio::test]
async fn every_sqlstate_input_can_cause_maps_to_its_meaning() {
    let mut conn = connection().await;

    let cases: Vec<(&str, Expected)> = vec![
        ("INSERT INTO parent VALUES (1)", |e| {
            matches!(e, StorageError::Conflict(Conflict::Duplicate))
        }),
        ("INSERT INTO child (id, parent_id) VALUES (1, 99)", |e| {
            matches!(e, StorageError::MissingReference(_))
        }),
        ("INSERT INTO child (id, n) VALUES (1, 0)", |e| {
            matches!(e, StorageError::Invalid(Invalid::Constraint))
        }),
        ("INSERT INTO child (id, label) VALUES (1, NULL)", |e| {
            matches!(e, StorageError::Invalid(Invalid::Constraint))
        }),
        ("SELECT 'x'::int", |e| {
            matches!(e, StorageError::Invalid(Invalid::Format))
        }),
        ("SELECT '{\"a\": \"\\u0000\"}'::jsonb ->> 'a'", |e| {
            matches!(e, StorageError::Invalid(Invalid::Text))
        }),
        ("SELECT 2147483647::int + 1", |e| {
            matches!(e, StorageError::Invalid(Invalid::OutOfRange))
        }),
        ("INSERT INTO child (id, short) VALUES (1, 'xyz')", |e| {
            matches!(e, StorageError::Invalid(Invalid::TooLong))
        }),
        (
            "SELECT '10000-01-01'::date + interval '300000 years'",
            |e| matches!(e, StorageError::Invalid(Invalid::Format)),
        ),
        (
            "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '40001'; END $$",
            |e| matches!(e, StorageError::Contention("40001")),
        ),
        (
            "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '40P01'; END $$",
            |e| matches!(e, StorageError::Contention("40P01")),
        ),
        (
            "DO $$ BEGIN RAISE EXCEPTION 'slow' USING ERRCODE = '57014'; END $$",
            |e| matches!(e, StorageError::Unavailable(_)),
        ),
        (
            "DO $$ BEGIN RAISE EXCEPTION 'odd' USING ERRCODE = 'XX000'; END $$",
            |e| matches!(e, StorageError::Database(_)),
        ),
    ];
    for (sql, expected) in cases {
        let err = refusal(&mut conn, sql).await;
        assert!(expected(&err), "{sql}: {err:?}");
    }

    // A NUL in a bound text parameter never reaches a table.
    let err = sqlx::query("INSERT INTO child (id, label) VALUES (1, $1)")
        .bind("a\u{0}b")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            StorageError::from(err),
            StorageError::Invalid(Invalid::Text)
        ),
        "a NUL in text"
    );
    let err = sqlx::query("SELECT $1::jsonb")
        .bind(serde_json::json!({"surface": "clay\u{0}"}))
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            StorageError::from(err),
            StorageError::Invalid(Invalid::Text)
        ),
        "a NUL in jsonb"
    );
}

#[tokio::test]
async fn contention_is_retried_a_bounded_number_of_times() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let lose = "DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '40P01'; END $$";

    // Always losing: every attempt is made, then the contention is reported.
    let attempts = AtomicU32::new(0);
    let result: Result<(), StorageError> = retry_contended(|| async {
        attempts.fetch_add(1, Ordering::SeqCst);
        sqlx::raw_sql(lose).execute(&pool).await?;
        Ok(())
    })
    .await;
    assert!(matches!(result, Err(StorageError::Contention("40P01"))));
    assert_eq!(attempts.load(Ordering::SeqCst), CONTENTION_ATTEMPTS);

    // Losing once: the second attempt's answer is the answer.
    let attempts = AtomicU32::new(0);
    let result: Result<i32, StorageError> = retry_contended(|| async {
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            sqlx::raw_sql(lose).execute(&pool).await?;
        }
        Ok(sqlx::query_scalar("SELECT 7").fetch_one(&pool).await?)
    })
    .await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    // Anything else is not retried.
    let attempts = AtomicU32::new(0);
    let result: Result<(), StorageError> = retry_contended(|| async {
        attempts.fetch_add(1, Ordering::SeqCst);
        sqlx::raw_sql("SELECT 'x'::int").execute(&pool).await?;
        Ok(())
    })
    .await;
    assert!(matches!(
        result,
        Err(StorageError::Invalid(Invalid::Format))
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    pool.close().await;
}
