//! Alternatives offered with a 409 `slot_unavailable`: up to five ranges that are really free at the
//! moment of the answer (checked against PostgreSQL in the same request, buffers included): first
//! the nearest free times of the same length at the same facility, then the same time at the club's
//! other facilities of the same sport, the more popular at that hour first.
//!
//! The losers of one contested slot ask the same question at the same moment: [`for_conflict`]
//! has them share one computation while it runs (single flight, nothing kept afterwards, so every
//! answer is still computed after its own conflict began).

use chrono::{DateTime, Duration, Utc};
use clubpulse_domain::{BookingWindow, TimeRange};
use clubpulse_storage::{
    bookings::{self, Block},
    facilities::{self, Filter},
};
use serde::Serialize;
use uuid::Uuid;

use crate::{Bookings, FacilityContext, Result};

/// How many alternatives a conflict carries at most.
pub const MAX: usize = 5;
/// How many of them may be other times at the same facility when other facilities are free too.
const SAME_FACILITY_FIRST: usize = 3;
/// How many days either side of the request are searched for free times.
const SEARCH_DAYS: i64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alternative {
    pub facility_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `nearest_time` (same facility) or `similar_facility` (same time, same sport, same club).
    pub reason: &'static str,
}

fn is_free(
    blocks: &[Block],
    facility_id: Uuid,
    start: DateTime<Utc>,
    blocks_until: DateTime<Utc>,
) -> bool {
    !blocks
        .iter()
        .any(|b| b.facility_id == facility_id && b.start < blocks_until && start < b.end)
}

fn buffer(ctx: &FacilityContext) -> Duration {
    Duration::minutes(i64::from(ctx.facility.buffer_minutes))
}

/// Computations of alternatives in flight, by facility and range.
pub(crate) type InFlight =
    clubpulse_cache::Flights<(Uuid, DateTime<Utc>, DateTime<Utc>), Vec<Alternative>>;

/// [`find`] for a hold that lost `range`, shared with the other losers of the same range whose
/// answer is being computed now.
pub async fn for_conflict(
    app: &Bookings,
    ctx: &FacilityContext,
    range: &TimeRange,
) -> Result<Vec<Alternative>> {
    let key = (ctx.facility.id, range.start(), range.end());
    let found = app
        .inner
        .alternatives
        .share(key, || async {
            metrics::counter!("clubpulse_booking_alternatives_computed_total").increment(1);
            find(app, ctx, range).await
        })
        .await?;
    Ok(found.as_ref().clone())
}

/// Up to [`MAX`] free alternatives to `range` at `ctx`'s facility.
pub async fn find(
    app: &Bookings,
    ctx: &FacilityContext,
    range: &TimeRange,
) -> Result<Vec<Alternative>> {
    let window: BookingWindow = app.window();
    let now = Utc::now();
    let length = range.duration();
    // Same facility: every run of consecutive slots of the same length, a few days either side.
    let mut nearby: Vec<TimeRange> = Vec::new();
    let search_from = (range.start() - Duration::days(SEARCH_DAYS)).max(now);
    let search_to = range.end() + Duration::days(SEARCH_DAYS);
    for date in ctx.grid.local_dates(search_from, search_to) {
        let slots = ctx.grid.day_slots(date);
        for (i, first) in slots.iter().enumerate() {
            let mut end = first.end;
            let mut j = i;
            while end - first.start < length {
                match slots.get(j + 1) {
                    Some(next) if next.start == end => {
                        end = next.end;
                        j += 1;
                    }
                    _ => break,
                }
            }
            if end - first.start == length
                && let Ok(candidate) = TimeRange::new(first.start, end)
                && candidate != *range
                && window.check(&candidate, now).is_ok()
            {
                nearby.push(candidate);
            }
        }
    }
    nearby.sort_by_key(|c| ((c.start() - range.start()).num_seconds().abs(), c.start()));

    // Same time, same sport, same club, where the grid allows it.
    let siblings = facilities::list(
        app.db(),
        &Filter {
            club_id: Some(ctx.facility.club_id),
            sport: Some(ctx.facility.sport.clone()),
            limit: 50,
            offset: 0,
        },
    )
    .await?;
    let mut similar: Vec<FacilityContext> = Vec::new();
    for facility in siblings {
        if facility.id == ctx.facility.id {
            continue;
        }
        let sibling = FacilityContext::new(facility, ctx.club.clone())?;
        if sibling.grid.fit(range).is_ok() {
            similar.push(sibling);
        }
    }

    let mut ids: Vec<Uuid> = similar.iter().map(|s| s.facility.id).collect();
    ids.push(ctx.facility.id);
    let max_buffer = similar
        .iter()
        .map(buffer)
        .chain([buffer(ctx)])
        .max()
        .unwrap_or_default();
    let span_from = nearby
        .iter()
        .map(TimeRange::start)
        .chain([range.start()])
        .min()
        .unwrap_or(range.start());
    let span_to = nearby
        .iter()
        .map(TimeRange::end)
        .chain([range.end()])
        .max()
        .unwrap_or(range.end())
        + max_buffer;
    let blocks = bookings::blocks(app.db(), &ids, span_from, span_to).await?;

    let mut same: Vec<Alternative> = nearby
        .into_iter()
        .filter(|c| is_free(&blocks, ctx.facility.id, c.start(), c.end() + buffer(ctx)))
        .take(MAX)
        .map(|c| Alternative {
            facility_id: ctx.facility.id,
            start: c.start(),
            end: c.end(),
            reason: "nearest_time",
        })
        .collect();
    let free_similar: Vec<&FacilityContext> = similar
        .iter()
        .filter(|s| {
            is_free(
                &blocks,
                s.facility.id,
                range.start(),
                range.end() + buffer(s),
            )
        })
        .collect();
    let (weekday, hour) = clubpulse_domain::local_weekday_hour(ctx.time_zone(), range.start());
    let free_ids: Vec<Uuid> = free_similar.iter().map(|s| s.facility.id).collect();
    let scores = app
        .state()
        .popularity
        .scores(&free_ids, weekday, hour)
        .await
        .unwrap_or_else(|_| vec![0; free_ids.len()]);
    let mut ranked: Vec<(u64, &FacilityContext)> = scores.into_iter().zip(free_similar).collect();
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.facility.name.cmp(&b.1.facility.name))
    });
    let mut other: Vec<Alternative> = ranked
        .into_iter()
        .map(|(_, s)| Alternative {
            facility_id: s.facility.id,
            start: range.start(),
            end: range.end(),
            reason: "similar_facility",
        })
        .collect();

    let same_first = same
        .len()
        .min(SAME_FACILITY_FIRST.max(MAX.saturating_sub(other.len())));
    let rest = same.split_off(same_first);
    let mut answer = same;
    answer.extend(other.drain(..other.len().min(MAX - answer.len())));
    answer.extend(rest.into_iter().take(MAX - answer.len()));
    Ok(answer)
}
