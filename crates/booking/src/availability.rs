//! Availability: a facility's slot grid with each slot's state, served from per-day bitmaps in the
//! shared state and rebuilt from PostgreSQL on a miss.
//!
//! A day's bitmaps are computed from the active bookings whose blocked time (booking plus buffer)
//! overlaps the day. The cache is coherent by generation (see `clubpulse_state::availability`): the
//! generation is read before PostgreSQL is queried, every booking write bumps it after its commit,
//! so a result computed before a write can never be stored over it. When the shared state is
//! unreachable, availability is computed from PostgreSQL directly. Rebuilds read the replica only
//! once it has replayed past the primary's position at the time (see [`current_blocks`]).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, NaiveDate, Utc};
use clubpulse_domain::Slot;
use clubpulse_state::availability::{Cached, DayBits, DayKey};
use clubpulse_storage::bookings::{self, Block};
use serde::Serialize;
use uuid::Uuid;

use crate::{Bookings, FacilityContext, Result};

/// The state of one stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    Free,
    /// Someone holds it while paying.
    Held,
    Booked,
    /// Outside opening hours, or already started.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub state: SlotState,
}

/// The slots of one facility between two instants.
#[derive(Debug, Clone, Serialize)]
pub struct FacilityAvailability {
    pub facility_id: Uuid,
    /// The club's IANA time zone: the grid is laid out in its local time.
    pub timezone: String,
    pub slot_minutes: i32,
    pub slots: Vec<SlotView>,
}

/// The availability of several facilities over `[from, to)`: one cache round trip for every day of
/// every facility, and on misses one query for all of them.
pub async fn for_facilities(
    app: &Bookings,
    facilities: &[Arc<FacilityContext>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<FacilityAvailability>> {
    let keys: Vec<(usize, DayKey)> = facilities
        .iter()
        .enumerate()
        .flat_map(|(i, ctx)| {
            ctx.grid.local_dates(from, to).into_iter().map(move |date| {
                (
                    i,
                    DayKey {
                        facility_id: ctx.facility.id,
                        date,
                    },
                )
            })
        })
        .collect();
    let day_keys: Vec<DayKey> = keys.iter().map(|(_, k)| *k).collect();
    let cached = match app.state().availability.get_days(&day_keys).await {
        Ok(cached) => cached,
        Err(err) => {
            tracing::warn!(error = %err, "availability cache unreachable; reading PostgreSQL");
            vec![
                Cached::Miss {
                    generation: u64::MAX
                };
                day_keys.len()
            ]
        }
    };
    let mut days: HashMap<DayKey, DayBits> = HashMap::new();
    let mut misses: Vec<(usize, DayKey, u64)> = Vec::new();
    for ((i, key), answer) in keys.into_iter().zip(cached) {
        match answer {
            Cached::Hit(bits) => {
                days.insert(key, bits);
            }
            Cached::Miss { generation } => misses.push((i, key, generation)),
        }
    }
    if !misses.is_empty() {
        rebuild(app, facilities, &misses, &mut days).await?;
    }
    let now = Utc::now();
    Ok(facilities
        .iter()
        .map(|ctx| FacilityAvailability {
            facility_id: ctx.facility.id,
            timezone: ctx.club.timezone.clone(),
            slot_minutes: ctx.facility.slot_minutes,
            slots: slot_views(ctx, &days, from, to, now),
        })
        .collect())
}

/// Computes missed days from PostgreSQL in one query and stores them in the cache.
async fn rebuild(
    app: &Bookings,
    facilities: &[Arc<FacilityContext>],
    misses: &[(usize, DayKey, u64)],
    days: &mut HashMap<DayKey, DayBits>,
) -> Result<()> {
    let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = misses
        .iter()
        .filter_map(|(i, key, _)| {
            let slots = facilities.get(*i)?.grid.day_slots(key.date);
            Some((slots.first()?.start, slots.last()?.end))
        })
        .collect();
    let (Some(from), Some(to)) = (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) else {
        // Every missed day is closed: nothing to look up.
        for (i, key, generation) in misses {
            let bits = facilities
                .get(*i)
                .map(|ctx| day_bits(ctx, key.date, &[]))
                .unwrap_or_default();
            store(app, key, *generation, &bits).await;
            days.insert(*key, bits);
        }
        return Ok(());
    };
    let mut ids: Vec<Uuid> = misses.iter().map(|(_, k, _)| k.facility_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let blocks = current_blocks(app, &ids, from, to).await?;
    for (i, key, generation) in misses {
        let Some(ctx) = facilities.get(*i) else {
            continue;
        };
        let mine: Vec<Block> = blocks
            .iter()
            .filter(|b| b.facility_id == key.facility_id)
            .copied()
            .collect();
        let bits = day_bits(ctx, key.date, &mine);
        store(app, key, *generation, &bits).await;
        days.insert(*key, bits);
    }
    Ok(())
}

/// The blocks over `[from, to)`, from the read replica when it has replayed every write committed
/// before now, else from the primary. The days' generations were read before this, and a write
/// bumps its day's generation only after it commits, so every write a generation counts is before
/// the primary's position read here: a day computed from a replica that has replayed that far is
/// as fresh as its generation says, and a later write changes the generation, so it is not stored.
async fn current_blocks(
    app: &Bookings,
    ids: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Block>> {
    let reads = app.reads();
    if reads.on_replica()
        && let Ok(position) = reads.primary_position().await
    {
        if let Some(mut conn) = reads.caught_up(position).await {
            crate::count_read(true);
            return Ok(bookings::blocks(&mut *conn, ids, from, to).await?);
        }
        crate::count_read(false);
    }
    Ok(bookings::blocks(app.db(), ids, from, to).await?)
}

async fn store(app: &Bookings, key: &DayKey, generation: u64, bits: &DayBits) {
    if generation == u64::MAX {
        return; // the cache was unreachable when read
    }
    let ttl = app.rules().availability_ttl();
    if let Err(err) = app
        .state()
        .availability
        .store_day(key, generation, bits, ttl)
        .await
    {
        tracing::warn!(error = %err, "could not cache an availability day");
    }
}

/// One bit per slot of the day: held or booked when an active booking's blocked time overlaps it.
pub fn day_bits(ctx: &FacilityContext, date: NaiveDate, blocks: &[Block]) -> DayBits {
    let mut bits = DayBits::with_len(ctx.grid.bits_for_day(date));
    for slot in ctx.grid.day_slots(date) {
        for block in blocks {
            if block.start < slot.end && slot.start < block.end {
                if block.confirmed {
                    bits.set_booked(slot.index);
                } else {
                    bits.set_held(slot.index);
                }
            }
        }
    }
    bits
}

/// The slots overlapping `[from, to)` with their states, and the closed stretches between them.
fn slot_views(
    ctx: &FacilityContext,
    days: &HashMap<DayKey, DayBits>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<SlotView> {
    let mut views: Vec<SlotView> = Vec::new();
    let mut cursor = from;
    for slot in ctx.grid.slots_overlapping(from, to) {
        if slot.start > cursor {
            views.push(SlotView {
                start: cursor,
                end: slot.start,
                state: SlotState::Closed,
            });
        }
        let key = DayKey {
            facility_id: ctx.facility.id,
            date: slot.date,
        };
        views.push(SlotView {
            start: slot.start,
            end: slot.end,
            state: state_of(&slot, days.get(&key), now),
        });
        cursor = cursor.max(slot.end);
    }
    if cursor < to {
        views.push(SlotView {
            start: cursor,
            end: to,
            state: SlotState::Closed,
        });
    }
    views
}

fn state_of(slot: &Slot, bits: Option<&DayBits>, now: DateTime<Utc>) -> SlotState {
    match bits {
        Some(bits) if bits.is_booked(slot.index) => SlotState::Booked,
        Some(bits) if bits.is_held(slot.index) => SlotState::Held,
        _ if slot.start < now => SlotState::Closed,
        _ => SlotState::Free,
    }
}

/// The name the availability cache answers to in `cache clear` (`availability:` clears it).
pub const CACHE: &str = "availability";

impl Bookings {
    /// One facility's slots over `[from, to)`; unknown is `facility_not_found`.
    pub async fn availability(
        &self,
        facility_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<FacilityAvailability> {
        let ctx = self.contexts().get(facility_id).await?;
        let mut answer = for_facilities(self, std::slice::from_ref(&ctx), from, to).await?;
        answer
            .pop()
            .ok_or_else(|| crate::BookingError::Corrupt("no availability computed".to_owned()))
    }

    /// Many facilities' slots over `[from, to)`, in the order asked, their contexts in one query;
    /// any unknown facility is `facility_not_found`.
    pub async fn availability_of(
        &self,
        facility_ids: &[Uuid],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<FacilityAvailability>> {
        let mut found = self.contexts().get_many(facility_ids).await?;
        let contexts = facility_ids
            .iter()
            .map(|id| {
                found
                    .remove(id)
                    .ok_or_else(crate::BookingError::facility_not_found)
            })
            .collect::<Result<Vec<_>>>()?;
        for_facilities(self, &contexts, from, to).await
    }

    /// Of these facilities, the live ones with at least one free slot in `[from, to)` (search's
    /// filter), their contexts in one query and their days in one cache round trip.
    pub async fn with_free_slots(
        &self,
        facility_ids: &[Uuid],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<Uuid>> {
        let mut found = self.contexts().get_many(facility_ids).await?;
        let contexts: Vec<Arc<FacilityContext>> = facility_ids
            .iter()
            .filter_map(|id| found.remove(id))
            .collect();
        Ok(for_facilities(self, &contexts, from, to)
            .await?
            .into_iter()
            .filter(|g| g.slots.iter().any(|s| s.state == SlotState::Free))
            .map(|g| g.facility_id)
            .collect())
    }

    /// A live facility's busiest weekday-hours, busiest first.
    pub async fn popular_times(
        &self,
        facility_id: Uuid,
    ) -> Result<Vec<clubpulse_state::PopularSlot>> {
        self.contexts().get(facility_id).await?;
        self.state()
            .popularity
            .top(facility_id, 24)
            .await
            .map_err(crate::BookingError::PopularTimes)
    }
}
