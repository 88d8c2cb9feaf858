//! Accounts.

use chrono::{DateTime, Utc};
use clubpulse_domain::{DisplayName, Email, Role};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{Result, StorageError};

/// An account as the rest of the service sees it: never with its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub banned_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    banned_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(row: UserRow) -> Result<Self> {
        Ok(Self {
            role: row
                .role
                .parse()
                .map_err(|_| StorageError::Corrupt(format!("user role {:?}", row.role)))?,
            id: row.id,
            email: row.email,
            name: row.name,
            banned_at: row.banned_at,
            created_at: row.created_at,
        })
    }
}

const COLUMNS: &str = "id, email, name, role, banned_at, created_at";

/// Creates an account; a taken e-mail is `Conflict(EmailTaken)`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    email: &Email,
    name: &DisplayName,
    password_hash: &str,
    role: Role,
) -> Result<User> {
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, $3, $4, $5)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(email.as_str())
    .bind(name.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(db)
    .await
    .map_err(StorageError::from_sqlx)?;
    row.try_into()
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    row.map(User::try_from).transpose()
}

/// The account and its password hash, for a login attempt.
pub async fn find_credentials(
    db: impl PgExecutor<'_>,
    email: &Email,
) -> Result<Option<(User, String)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email = $1"
    ))
    .bind(email.as_str())
    .fetch_optional(db)
    .await?;
    row.map(|r| Ok((User::try_from(r.user)?, r.password_hash)))
        .transpose()
}

/// The password hash of an account, to check its current password.
pub async fn password_hash(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Replaces an account's password hash.
pub async fn set_password(db: impl PgExecutor<'_>, id: Uuid, password_hash: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an account banned (keeping the first ban time); `None` when there is no such account.
pub async fn ban(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "UPDATE users SET banned_at = coalesce(banned_at, now()), updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(User::try_from).transpose()
}

/// Sets the role and password of an existing account (the `user create` command run twice).
pub async fn update_role_and_password(
    db: impl PgExecutor<'_>,
    email: &Email,
    name: &DisplayName,
    password_hash: &str,
    role: Role,
) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "UPDATE users SET name = $2, password_hash = $3, role = $4, updated_at = now()
         WHERE email = $1 RETURNING {COLUMNS}"
    ))
    .bind(email.as_str())
    .bind(name.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_optional(db)
    .await?;
    row.map(User::try_from).transpose()
}

pub async fn count(db: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db)
        .await?)
}
