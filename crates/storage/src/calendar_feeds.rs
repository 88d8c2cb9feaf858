//! Members' calendar feeds: one per member, found by the SHA-256 of the token in its URL.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Result;

/// Creates the member's feed, or replaces its token (the old one stops working at once).
pub async fn replace(db: impl PgExecutor<'_>, user_id: Uuid, token_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO calendar_feeds (user_id, token_hash) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = now()",
    )
    .bind(user_id)
    .bind(token_hash)
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes the member's feed; `false` when there was none.
pub async fn delete(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<bool> {
    let done = sqlx::query("DELETE FROM calendar_feeds WHERE user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The member whose feed has this token hash, unless they are banned.
pub async fn owner(db: impl PgExecutor<'_>, token_hash: &str) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT f.user_id FROM calendar_feeds f JOIN users u ON u.id = f.user_id
         WHERE f.token_hash = $1 AND u.banned_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await?)
}
