//! Popular times in Redis.
//!
//! One sorted set per facility, `popular:{<facility>}` (under the deployment prefix), with members
//! `"<weekday>:<hour>"` (e.g. `"2:19"`) scored by their count. A record is one script: it sets the
//! booking's marker `popular:{<facility>}:counted:<booking>` if absent (with a TTL) and only then
//! `ZINCRBY`s, so a repeat counts nothing; the set has no TTL (it is bounded at 168 members). Members are ranked in
//! Rust, because Redis breaks score ties by member bytes, where `"2:9"` sorts after `"2:19"`.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use uuid::Uuid;

use super::{PopularSlot, PopularTimes, in_range, rank};
use crate::{RedisConn, StateError, redis_conn::script};

/// Counts a booking once. KEYS: the counts, the booking's marker. ARGV: the member, the marker's
/// lifetime in seconds. Returns 1 when counted, 0 for a repeat.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
            redis.call('ZINCRBY', KEYS[1], 1, ARGV[1])
            return 1
        end
        return 0
        ",
    )
});

/// Popular times in Redis; see the module docs for the key layout.
#[derive(Debug, Clone)]
pub struct RedisPopularTimes {
    redis: RedisConn,
}

impl RedisPopularTimes {
    /// Popular times on `redis`.
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn facility_key(&self, facility_id: Uuid) -> String {
        self.redis.key(format_args!("popular:{{{facility_id}}}"))
    }
}

fn member(weekday: u8, hour: u8) -> String {
    format!("{weekday}:{hour}")
}

/// A count as stored (a sorted-set score, always a whole number here).
fn count(score: f64) -> Result<u64, StateError> {
    if score.is_finite() && score >= 0.0 && score.fract() == 0.0 && score <= 2f64.powi(53) {
        // Exact: a whole number within f64's integer range.
        Ok(score as u64)
    } else {
        Err(StateError::Corrupt(format!(
            "popular-times score {score} is not a count"
        )))
    }
}

fn parse_member(raw: &str) -> Result<(u8, u8), StateError> {
    raw.split_once(':')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .filter(|&(w, h)| in_range(w, h))
        .ok_or_else(|| StateError::Corrupt(format!("popular-times member {raw:?}")))
}

#[async_trait]
impl PopularTimes for RedisPopularTimes {
    async fn record(
        &self,
        booking_id: Uuid,
        facility_id: Uuid,
        weekday: u8,
        hour: u8,
    ) -> Result<(), StateError> {
        if !in_range(weekday, hour) {
            tracing::warn!(%facility_id, weekday, hour, "ignoring a popular-times record out of range");
            return Ok(());
        }
        // The marker shares the counts' hash tag, so the script touches one cluster slot.
        let counted = self.redis.key(format_args!(
            "popular:{{{facility_id}}}:counted:{booking_id}"
        ));
        self.redis
            .script::<i64>(
                RECORD
                    .key(self.facility_key(facility_id))
                    .key(counted)
                    .arg(member(weekday, hour))
                    .arg(super::COUNTED_FOR.as_secs()),
            )
            .await?;
        Ok(())
    }

    async fn top(&self, facility_id: Uuid, limit: usize) -> Result<Vec<PopularSlot>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let all: Vec<(String, f64)> = self
            .redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.facility_key(facility_id))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES"),
            )
            .await?;
        let slots = all
            .into_iter()
            .map(|(raw, score)| {
                let (weekday, hour) = parse_member(&raw)?;
                Ok(PopularSlot {
                    weekday,
                    hour,
                    count: count(score)?,
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        Ok(rank(slots, limit))
    }

    async fn scores(
        &self,
        facility_ids: &[Uuid],
        weekday: u8,
        hour: u8,
    ) -> Result<Vec<u64>, StateError> {
        if facility_ids.is_empty() {
            return Ok(Vec::new());
        }
        if !in_range(weekday, hour) {
            return Ok(vec![0; facility_ids.len()]);
        }
        let member = member(weekday, hour);
        let reads = facility_ids
            .iter()
            .map(|&facility_id| {
                let mut cmd = redis::cmd("ZSCORE");
                cmd.arg(self.facility_key(facility_id)).arg(&member);
                cmd
            })
            .collect();
        let scores: Vec<Option<f64>> = self.redis.batch(reads).await?;
        if scores.len() != facility_ids.len() {
            return Err(StateError::Corrupt(format!(
                "popular-times read returned {} answers for {} facilities",
                scores.len(),
                facility_ids.len()
            )));
        }
        scores
            .into_iter()
            .map(|score| score.map_or(Ok(0), count))
            .collect()
    }
}
