//! The read replica: where heavy reads go while it keeps up, and how far behind it is.
//!
//! A [`Reads`] holds the primary pool and, when `DATABASE_REPLICA_URL` is set, a pool on a
//! streaming standby. A probe compares the two once a second: it records the primary's flushed WAL
//! position with the time it was read, then asks the standby how far it has replayed. The lag is
//! how long ago the primary was where the standby is now (interpolated between the two recorded
//! positions around it), so it measures what the standby is missing, not the standby's clock or
//! how long ago the primary last wrote (an idle primary and a caught-up standby lag by nothing). While the lag is within the limit
//! ([`Reads::pool`]) readers get the standby; when it lags more, is unreachable, or turns out not to
//! be a standby at all (a promoted old replica would serve a diverging history), they get the
//! primary until it is back.
//!
//! Reads that must see a particular write go through [`Reads::caught_up`]: given the primary's
//! position after the write, it gives a standby connection only once the standby has replayed that
//! far, and `None` otherwise.

use std::{
    collections::VecDeque,
    str::FromStr,
    sync::{Arc, RwLock, Weak},
    time::{Duration, Instant},
};

use sqlx::{
    PgPool,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// How often the probe compares the standby with the primary.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// A position in the primary's write-ahead log, in bytes from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub i64);

/// What the probe last found.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaHealth {
    /// Not probed yet: readers use the primary.
    Starting,
    /// Within the lag limit: readers use the standby.
    Healthy { lag: Duration },
    /// Further behind than the limit: readers use the primary.
    Lagging { lag: Duration },
    /// Unreachable, or not a standby: readers use the primary.
    Down { reason: String },
}

impl ReplicaHealth {
    /// `healthy`, `lagging`, `down` or `starting`, as `/ready` reports it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy { .. } => "healthy",
            Self::Lagging { .. } => "lagging",
            Self::Down { .. } => "down",
        }
    }

    pub fn lag(&self) -> Option<Duration> {
        match self {
            Self::Healthy { lag } | Self::Lagging { lag } => Some(*lag),
            Self::Starting | Self::Down { .. } => None,
        }
    }
}

#[derive(Debug)]
struct Replica {
    pool: PgPool,
    max_lag: Duration,
    health: RwLock<ReplicaHealth>,
}

/// The primary, and the standby when there is one.
#[derive(Debug, Clone)]
pub struct Reads {
    primary: PgPool,
    replica: Option<Arc<Replica>>,
}

impl Reads {
    /// Every read on the primary.
    pub fn primary_only(primary: PgPool) -> Self {
        Self {
            primary,
            replica: None,
        }
    }

    /// Reads on the standby at `url` while it lags by at most `max_lag`, with the probe that
    /// measures it started (it stops once every clone of the returned value is dropped).
    /// Connections are made on first use, so a standby that is down when the service starts only
    /// sends reads to the primary until it is up.
    pub fn with_replica(
        primary: PgPool,
        url: &str,
        max_lag: Duration,
        max_connections: u32,
    ) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?.application_name("clubpulse-replica");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // A standby that stops answering must not hold a request for long: the probe moves
            // readers to the primary within a second.
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        let replica = Arc::new(Replica {
            pool,
            max_lag,
            health: RwLock::new(ReplicaHealth::Starting),
        });
        tokio::spawn(probe(primary.clone(), Arc::downgrade(&replica)));
        Ok(Self {
            primary,
            replica: Some(replica),
        })
    }

    /// The primary: for writes, and for reads that must see the latest writes.
    pub fn primary(&self) -> &PgPool {
        &self.primary
    }

    /// Where a read that may be up to the lag limit old goes: the standby while it keeps up, the
    /// primary otherwise.
    pub fn pool(&self) -> &PgPool {
        match &self.replica {
            Some(replica) if replica.usable() => &replica.pool,
            _ => &self.primary,
        }
    }

    /// Whether [`Reads::pool`] is the standby right now.
    pub fn on_replica(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| r.usable())
    }

    /// The standby's health, when one is configured.
    pub fn health(&self) -> Option<ReplicaHealth> {
        self.replica.as_ref().map(|r| r.health())
    }

    /// The lag limit, when a standby is configured.
    pub fn max_lag(&self) -> Option<Duration> {
        self.replica.as_ref().map(|r| r.max_lag)
    }

    /// The standby pool itself, for its gauges.
    pub fn replica_pool(&self) -> Option<&PgPool> {
        self.replica.as_ref().map(|r| &r.pool)
    }

    /// The primary's current WAL position: every transaction committed before this call is at or
    /// before it.
    pub async fn primary_position(&self) -> Result<Lsn, sqlx::Error> {
        current_position(&self.primary).await
    }

    /// A standby connection that has replayed at least `position`, so its next statement sees every
    /// write committed on the primary before `position` was read; `None` when the standby is not
    /// usable or has not replayed that far (read the primary instead).
    pub async fn caught_up(&self, position: Lsn) -> Option<PoolConnection<sqlx::Postgres>> {
        let replica = self.replica.as_ref().filter(|r| r.usable())?;
        let mut conn = replica.pool.acquire().await.ok()?;
        // Checked in its own statement: in read committed, the next statement's snapshot is taken
        // after this one, so it includes everything replayed by now.
        let replayed: Option<i64> =
            sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint")
                .fetch_one(&mut *conn)
                .await
                .ok()?;
        (replayed? >= position.0).then_some(conn)
    }

    /// Closes the standby's pool; the primary's belongs to whoever opened it.
    pub async fn close(&self) {
        if let Some(replica) = &self.replica {
            replica.pool.close().await;
        }
    }
}

impl From<PgPool> for Reads {
    fn from(primary: PgPool) -> Self {
        Self::primary_only(primary)
    }
}

impl Replica {
    fn health(&self) -> ReplicaHealth {
        self.health
            .read()
            .map(|h| h.clone())
            .unwrap_or(ReplicaHealth::Starting)
    }

    fn usable(&self) -> bool {
        self.health
            .read()
            .is_ok_and(|h| matches!(*h, ReplicaHealth::Healthy { .. }))
    }

    fn set(&self, health: ReplicaHealth) {
        let before = self.health();
        if before.as_str() != health.as_str() {
            match &health {
                ReplicaHealth::Down { reason } => {
                    tracing::warn!(reason = %reason, "read replica down; reading the primary");
                }
                ReplicaHealth::Lagging { lag } => tracing::warn!(
                    lag_ms = lag.as_millis() as u64,
                    "read replica lagging; reading the primary"
                ),
                _ => tracing::info!(state = health.as_str(), "read replica state"),
            }
        }
        if let Ok(mut slot) = self.health.write() {
            *slot = health;
        }
    }
}

/// Keeps the standby's health current, once a probe interval, for as long as anyone holds it.
async fn probe(primary: PgPool, replica: Weak<Replica>) {
    let mut history = History::default();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(replica) = replica.upgrade() else {
            return;
        };
        let health = probe_once(&primary, &replica, &mut history).await;
        replica.set(health);
    }
}

/// The insert position, not the write or flush position: with `synchronous_commit = off` a commit
/// returns before its record is written out, and the record is before the insert position only.
async fn current_position(pool: &PgPool) -> Result<Lsn, sqlx::Error> {
    sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")
        .fetch_one(pool)
        .await
        .map(Lsn)
}

async fn probe_once(primary: &PgPool, replica: &Replica, history: &mut History) -> ReplicaHealth {
    let read_at = Instant::now();
    // Flushed, not inserted: the standby can only have what the primary has written out, and a
    // commit with `synchronous_commit = off` is flushed within the WAL writer's delay.
    let flushed = sqlx::query_scalar("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint")
        .fetch_one(primary)
        .await
        .map(Lsn);
    let position = match flushed {
        Ok(position) => position,
        // Without the primary's position nothing can be measured; the standby keeps its last
        // verdict (and the primary's own outage is `/ready`'s to report).
        Err(_) => return replica.health(),
    };
    history.push(read_at, position, replica.max_lag);
    let replayed: Result<(bool, Option<i64>), sqlx::Error> = sqlx::query_as(
        "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .fetch_one(&replica.pool)
    .await;
    match replayed {
        Err(err) => ReplicaHealth::Down {
            reason: err.to_string(),
        },
        Ok((false, _)) | Ok((true, None)) => ReplicaHealth::Down {
            reason: "the replica URL does not lead to a streaming standby".to_owned(),
        },
        Ok((true, Some(replayed))) => {
            let lag = history.lag(Lsn(replayed), Instant::now());
            if lag <= replica.max_lag {
                ReplicaHealth::Healthy { lag }
            } else {
                ReplicaHealth::Lagging { lag }
            }
        }
    }
}

/// The primary's recent positions with the instants they were read, oldest first.
#[derive(Debug, Default)]
struct History {
    samples: VecDeque<(Instant, Lsn)>,
}

impl History {
    fn push(&mut self, at: Instant, position: Lsn, max_lag: Duration) {
        self.samples.push_back((at, position));
        // Enough history to tell "within the limit" from "beyond it", and no more.
        let keep = max_lag + PROBE_EVERY * 3;
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| at.duration_since(*t) > keep)
        {
            self.samples.pop_front();
        }
    }

    /// How stale a standby that has replayed up to `replayed` is: how long ago the primary was at
    /// that position. Between two recorded positions the instant is interpolated (the primary
    /// wrote at some rate between them), which errs by less than a probe interval; at or past the
    /// newest, only the moment since it was read; behind every sample, at least the oldest's age.
    fn lag(&self, replayed: Lsn, now: Instant) -> Duration {
        let Some(&(newest_at, newest)) = self.samples.back() else {
            return Duration::ZERO;
        };
        if replayed >= newest {
            return now.saturating_duration_since(newest_at);
        }
        let after = self.samples.iter().position(|(_, p)| *p > replayed);
        match after {
            Some(i) if i > 0 => {
                let (t0, l0) = self.samples[i - 1];
                let (t1, l1) = self.samples[i];
                let span = (l1.0 - l0.0) as f64;
                let share = if span > 0.0 {
                    (replayed.0 - l0.0) as f64 / span
                } else {
                    0.0
                };
                let at = t0 + t1.duration_since(t0).mul_f64(share.clamp(0.0, 1.0));
                now.saturating_duration_since(at)
            }
            _ => self
                .samples
                .front()
                .map_or(Duration::ZERO, |(t, _)| now.saturating_duration_since(*t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_past_the_latest_position_lags_by_nothing_measurable() {
        let start = Instant::now();
        let mut history = History::default();
        history.push(start, Lsn(100), Duration::from_secs(5));
        history.push(
            start + Duration::from_secs(1),
            Lsn(200),
            Duration::from_secs(5),
        );
        let lag = history.lag(Lsn(250), start + Duration::from_secs(1));
        assert_eq!(lag, Duration::ZERO);
        // Replayed exactly to the newest position, read a moment before.
        let lag = history.lag(Lsn(200), start + Duration::from_millis(1010));
        assert_eq!(lag, Duration::from_millis(10));
    }

    #[test]
    fn the_lag_is_how_long_ago_the_primary_was_where_the_standby_is() {
        let start = Instant::now();
        let mut history = History::default();
        for (s, lsn) in [(0, 100), (1, 200), (2, 300), (3, 400)] {
            history.push(
                start + Duration::from_secs(s),
                Lsn(lsn),
                Duration::from_secs(5),
            );
        }
        let now = start + Duration::from_secs(3);
        // Halfway from 200 (at 1 s) to 300 (at 2 s): the primary was there at 1.5 s.
        assert_eq!(history.lag(Lsn(250), now), Duration::from_millis(1500));
        assert_eq!(history.lag(Lsn(100), now), Duration::from_secs(3));
        assert_eq!(history.lag(Lsn(400), now), Duration::ZERO);
        // Behind every sample kept: at least as old as the oldest.
        assert_eq!(history.lag(Lsn(50), now), Duration::from_secs(3));
    }

    #[test]
    fn old_positions_are_forgotten_beyond_the_limit() {
        let start = Instant::now();
        let mut history = History::default();
        for s in 0..60 {
            history.push(
                start + Duration::from_secs(s),
                Lsn(s as i64),
                Duration::from_secs(2),
            );
        }
        assert!(history.samples.len() <= 7, "{}", history.samples.len());
        // A standby stuck at the start is reported at least as far behind as history reaches.
        let lag = history.lag(Lsn(0), start + Duration::from_secs(59));
        assert!(lag > Duration::from_secs(2), "{lag:?}");
    }
}
