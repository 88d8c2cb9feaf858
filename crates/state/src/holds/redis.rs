//! The hold mirror in Redis.
//!
//! One key per hold, `hold:<booking id>` (under the deployment prefix), holding the facility id and
//! expiring at the hold's expiry (`SET … PXAT`, i.e. `SET` and `PEXPIREAT` in one atomic command, so
//! no mirror ever exists without its expiry). Expiry is judged by the Redis server's clock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::HoldMirror;
use crate::{RedisConn, StateError};

/// Holds mirrored in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisHoldMirror {
    redis: RedisConn,
}

impl RedisHoldMirror {
    /// The hold mirror on `redis`.
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn hold_key(&self, booking_id: Uuid) -> String {
        self.redis.key(format_args!("hold:{booking_id}"))
    }
}

#[async_trait]
impl HoldMirror for RedisHoldMirror {
    async fn put(
        &self,
        booking_id: Uuid,
        facility_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StateError> {
        if expires_at <= Utc::now() {
            return self.remove(booking_id).await;
        }
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(self.hold_key(booking_id))
                    .arg(facility_id.to_string())
                    .arg("PXAT")
                    .arg(expires_at.timestamp_millis()),
            )
            .await?;
        Ok(())
    }

    async fn remove(&self, booking_id: Uuid) -> Result<(), StateError> {
        self.redis
            .query::<i64>(redis::cmd("DEL").arg(self.hold_key(booking_id)))
            .await?;
        Ok(())
    }

    async fn get(&self, booking_id: Uuid) -> Result<Option<Uuid>, StateError> {
        let facility: Option<String> = self
            .redis
            .query(redis::cmd("GET").arg(self.hold_key(booking_id)))
            .await?;
        facility
            .map(|raw| {
                raw.parse()
                    .map_err(|_| StateError::Corrupt(format!("hold mirror value {raw:?}")))
            })
            .transpose()
    }
}
