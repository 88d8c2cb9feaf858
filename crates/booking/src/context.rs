//! A facility with everything needed to reason about its time: its club and its slot grid.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clubpulse_domain::{CancellationPolicy, Grid, OpeningHours, SlotMinutes, TimeZone};
use clubpulse_state::availability::DayKey;
use clubpulse_storage::{clubs::Club, facilities, facilities::Facility};
use sqlx::PgExecutor;
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
