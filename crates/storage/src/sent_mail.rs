//! Booking e-mails already sent, by message key: what lets a repeated mail job (the outbox relay
//! queues at least once) recognise that its message went out.

use sqlx::PgExecutor;

use crate::Result;

/// Whether the message with this key was sent.
pub async fn was_sent(db: impl PgExecutor<'_>, message_key: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mail_sent WHERE message_key = $1)")
            .bind(message_key)
            .fetch_one(db)
            .await?,
    )
}

/// Records that the message with this key was sent (again is fine).
pub async fn mark_sent(db: impl PgExecutor<'_>, message_key: &str) -> Result<()> {
    sqlx::query("INSERT INTO mail_sent (message_key) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(message_key)
        .execute(db)
        .await?;
    Ok(())
}
