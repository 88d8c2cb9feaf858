//! A facility with everything needed to reason about its time: its club and its slot grid; and
//! the in-process cache of live facilities' contexts that holds and availability reads use.

use std::{collections::HashMap, num::NonZeroUsize, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use clubpulse_cache::{Cache, Caches, Policy};
use clubpulse_domain::{CancellationPolicy, Grid, OpeningHours, SlotMinutes, TimeZone};
use clubpulse_state::availability::DayKey;
use clubpulse_storage::{clubs::Club, facilities, facilities::Facility};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::{BookingError, Result};

/// A facility, its club and its slot grid.
#[derive(Debug, Clone)]
pub struct FacilityContext {
    pub facility: Facility,
    pub club: Club,
    pub grid: Grid,
}

impl FacilityContext {
    /// Builds the context of a facility row (its stored fields were validated when written).
    pub fn new(facility: Facility, club: Club) -> Result<Self> {
        let corrupt = |what: &str| {
            BookingError::Corrupt(format!("facility {} has an unreadable {what}", facility.id))
        };
        let zone =
            TimeZone::try_from(club.timezone.as_str()).map_err(|_| corrupt("club time zone"))?;
        let hours = OpeningHours::try_from(&facility.opening_hours)
            .map_err(|_| corrupt("opening_hours"))?;
        let slot = SlotMinutes::try_from(i64::from(facility.slot_minutes))
            .map_err(|_| corrupt("slot_minutes"))?;
        Ok(Self {
            grid: Grid::new(zone, hours, slot),
            facility,
            club,
        })
    }

    pub fn policy(&self) -> CancellationPolicy {
        self.club.policy()
    }

    pub fn time_zone(&self) -> TimeZone {
        self.grid.time_zone()
    }

    /// The availability days a booking's blocked time touches.
    pub fn day_keys(&self, start: DateTime<Utc>, blocks_until: DateTime<Utc>) -> Vec<DayKey> {
        self.grid
            .local_dates(start, blocks_until)
            .into_iter()
            .map(|date| DayKey {
                facility_id: self.facility.id,
                date,
            })
            .collect()
    }
}

/// Loads a live facility and its club in one query; unknown is `facility_not_found`.
pub async fn load(db: impl PgExecutor<'_>, facility_id: Uuid) -> Result<FacilityContext> {
    let (facility, club) = facilities::find_with_club(db, facility_id)
        .await?
        .ok_or_else(BookingError::facility_not_found)?;
    FacilityContext::new(facility, club)
}

/// Loads the contexts of many facilities in one query, keyed by id; unknown ids are left out, and
/// retired facilities too unless `include_retired` (bookings made before retirement need them).
pub async fn load_many(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
    include_retired: bool,
) -> Result<HashMap<Uuid, FacilityContext>> {
    facilities::with_clubs(db, ids, include_retired)
        .await?
        .into_iter()
        .map(|(facility, club)| Ok((facility.id, FacilityContext::new(facility, club)?)))
        .collect()
}

/// The context of a booking's facility, retired or not, in the caller's connection.
pub async fn load_any(db: impl PgExecutor<'_>, facility_id: Uuid) -> Result<FacilityContext> {
    load_many(db, &[facility_id], true)
        .await?
        .remove(&facility_id)
        .ok_or_else(|| BookingError::Corrupt(format!("booking of unknown facility {facility_id}")))
}

/// The name of the contexts' cache: `facility:<id>` is one facility's entry.
pub const CACHE: &str = "facility";

/// Contexts change only when staff edit or retire a facility, and every such write invalidates
/// its entry on every instance; the TTL only bounds the life of an entry whose invalidation was
/// lost (a listener that reconnects empties its caches, so that takes a failed `NOTIFY` after a
/// committed edit). Stale entries are served for one more period while one load refreshes them.
pub const POLICY: Policy = Policy {
    fresh: Duration::from_secs(300),
    stale: Duration::from_secs(300),
    capacity: NonZeroUsize::new(20_000).expect("a positive capacity"),
};

/// Most contexts loaded at start (the busiest deployments have far fewer facilities).
pub const WARM_LIMIT: i64 = 10_000;

/// Live facilities' contexts, cached in this process (see [`clubpulse_cache`]).
#[derive(Debug, Clone)]
pub struct Contexts {
    cache: Cache<Arc<FacilityContext>>,
    db: PgPool,
}

impl Contexts {
    /// The cache, registered in `caches` for invalidation, loading from `db`.
    pub fn new(caches: &Caches, db: PgPool) -> Self {
        Self {
            cache: caches.cache(CACHE, POLICY),
            db,
        }
    }

    /// A live facility's context; unknown or retired is `facility_not_found`.
    pub async fn get(&self, facility_id: Uuid) -> Result<Arc<FacilityContext>> {
        let db = self.db.clone();
        self.cache
            .get_or_load(&facility_id.to_string(), move || async move {
                load(&db, facility_id).await.map(Arc::new)
            })
            .await
    }

    /// The contexts of the live facilities among `ids`, keyed by id, the missing ones loaded in
    /// one query.
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Arc<FacilityContext>>> {
        let keys: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (found, missing) = self.cache.get_many(&refs);
        let mut contexts: HashMap<Uuid, Arc<FacilityContext>> = found
            .into_iter()
            .map(|(_, ctx)| (ctx.facility.id, ctx))
            .collect();
        if !missing.is_empty() {
            let generation = self.cache.generation();
            let missing: Vec<Uuid> = missing.iter().filter_map(|k| k.parse().ok()).collect();
            for (id, ctx) in load_many(&self.db, &missing, false).await? {
                let ctx = Arc::new(ctx);
                self.cache
                    .store(generation, &id.to_string(), Arc::clone(&ctx));
                contexts.insert(id, ctx);
            }
        }
        Ok(contexts)
    }

    /// Loads up to [`WARM_LIMIT`] live facilities' contexts, so the first holds and reads after
    /// a start find them cached; returns how many.
    pub async fn warm(&self) -> Result<usize> {
        let generation = self.cache.generation();
        let ids = facilities::live_ids(&self.db, WARM_LIMIT).await?;
        let contexts = load_many(&self.db, &ids, false).await?;
        let warmed = contexts
            .into_iter()
            .filter(|(id, ctx)| {
                self.cache
                    .store(generation, &id.to_string(), Arc::new(ctx.clone()))
            })
            .count();
        Ok(warmed)
    }

    /// The cache key prefix of one facility's entry.
    pub fn key(facility_id: Uuid) -> String {
        format!("{CACHE}:{facility_id}")
    }
}
