//! API keys: found by their visible prefix, proven by the hash of the whole key.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotated_to: Option<Uuid>,
    /// Whether every request made with this key must be signed (`ClubPulse-Signature`).
    pub require_signature: bool,
    /// The HMAC key of the signatures, stored as issued: verifying an HMAC needs the secret itself,
    /// a hash of it would not do. Shown once, when issued; never listed.
    pub signing_secret: Option<String>,
    /// The secret a rotation replaced, still accepted until `previous_signing_secret_expires_at`.
    pub previous_signing_secret: Option<String>,
    pub previous_signing_secret_expires_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// The secrets a signature may be made with at `now`: the current one, and the previous one
    /// during its grace period.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let previous = self.previous_signing_secret.as_deref().filter(|_| {
            self.previous_signing_secret_expires_at
                .is_some_and(|at| at > now)
        });
        self.signing_secret
            .as_deref()
            .into_iter()
            .chain(previous)
            .collect()
    }
}

const COLUMNS: &str = "id, name, prefix, secret_hash, scopes, created_by, created_at, expires_at, \
     rotated_to, require_signature, signing_secret, previous_signing_secret, \
     previous_signing_secret_expires_at";

/// A new key; `signing_secret` is set for a key that requires signed requests.
pub async fn insert(
    db: impl PgExecutor<'_>,
    name: &str,
    prefix: &str,
    secret_hash: &str,
    scopes: &[String],
    created_by: Uuid,
    signing_secret: Option<&str>,
) -> Result<ApiKey> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO api_keys
           (id, name, prefix, secret_hash, scopes, created_by, require_signature, signing_secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7 IS NOT NULL, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(prefix)
    .bind(secret_hash)
    .bind(scopes)
    .bind(created_by)
    .bind(signing_secret)
    .fetch_one(db)
    .await?)
}

/// Replaces the signing secret of a live key that requires signatures; the replaced one stays
/// valid until `previous_until`. `None` when the key is not live or does not sign.
pub async fn rotate_signing_secret(
    db: impl PgExecutor<'_>,
    id: Uuid,
    secret: &str,
    previous_until: DateTime<Utc>,
) -> Result<Option<ApiKey>> {
    Ok(sqlx::query_as(&format!(
        "UPDATE api_keys SET previous_signing_secret = signing_secret,
                previous_signing_secret_expires_at = $3, signing_secret = $2
         WHERE id = $1 AND require_signature AND (expires_at IS NULL OR expires_at > now())
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(secret)
    .bind(previous_until)
    .fetch_optional(db)
    .await?)
}

/// The key with this prefix, live or not.
pub async fn find_by_prefix(db: impl PgExecutor<'_>, prefix: &str) -> Result<Option<ApiKey>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1"))
            .bind(prefix)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ApiKey>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
    ))
    .fetch_all(db)
    .await?)
}

/// Makes a live key expire at `at` (now for a revocation, later for a rotation's grace period) and
/// records its successor; `false` when the key was not live.
pub async fn expire(
    db: impl PgExecutor<'_>,
    id: Uuid,
    at: DateTime<Utc>,
    rotated_to: Option<Uuid>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET expires_at = $2, rotated_to = coalesce($3, rotated_to)
         WHERE id = $1 AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(id)
    .bind(at)
    .bind(rotated_to)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
