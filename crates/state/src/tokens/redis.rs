//! Single-use tokens in Redis: one key per token, `token:<purpose>:<hash>`, holding the subject and
//! expiring with `SET … PX`; taking is `GETDEL`, so two takers can never both get it; peeking is `GET`. A sighting is
//! `SET … NX PX`: only the first writer of a key gets `OK`.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{OneTimeTokens, TokenPurpose};
use crate::{RedisConn, StateError, TokenHash};

#[derive(Debug, Clone)]
pub struct RedisOneTimeTokens {
    redis: RedisConn,
}

impl RedisOneTimeTokens {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn key(&self, purpose: TokenPurpose, token: &TokenHash) -> String {
        self.redis.key(format_args!(
            "token:{}:{}",
            purpose.as_str(),
            token.as_str()
        ))
    }
}

impl RedisOneTimeTokens {
    /// The subject a `GET`-like command answers with, if any.
    async fn subject(&self, command: &redis::Cmd) -> Result<Option<Uuid>, StateError> {
        let subject: Option<String> = self.redis.query(command).await?;
        subject
            .map(|raw| {
                raw.parse()
                    .map_err(|_| StateError::Corrupt(format!("token subject {raw:?}")))
            })
            .transpose()
    }
}

#[async_trait]
impl OneTimeTokens for RedisOneTimeTokens {
    async fn issue(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        subject: Uuid,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(self.key(purpose, token))
                    .arg(subject.to_string())
                    .arg("PX")
                    .arg(ttl_ms),
            )
            .await?;
        Ok(())
    }

    async fn take(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
    ) -> Result<Option<Uuid>, StateError> {
        self.subject(redis::cmd("GETDEL").arg(self.key(purpose, token)))
            .await
    }

    async fn peek(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
    ) -> Result<Option<Uuid>, StateError> {
        self.subject(redis::cmd("GET").arg(self.key(purpose, token)))
            .await
    }

    async fn first_sighting(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(self.key(purpose, token))
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms),
            )
            .await?;
        Ok(set.is_some())
    }
}
