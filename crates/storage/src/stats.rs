//! The manager's dashboard: occupancy, utilisation, bookings, revenue and unmet demand over a range
//! of local dates, for one club or every club.
//!
//! [`dashboard`] is the one entry point, called by `GET /api/v1/admin/stats` and by the dashboard
//! page alike. Its independent queries run at once, each on its own pooled connection.
//!
//! Booked minutes, booking outcomes and money are read from two rollups per club and local date
//! (and hour) that triggers keep in the transaction of every confirmation, cancellation, expiry
//! and payment (migration `20261201000006_stats_rollups.sql`): a year of a club is then a few
//! thousand rows, not hundreds of thousands of bookings. Holds, demand and the waitlist are read
//! from their own tables through their indexes.
//!
//! # Time
//!
//! A range is `[from, to)` in local dates: for each club, from its local midnight of `from` to its
//! local midnight of `to`, in its own time zone. Every booking is counted in its club's local time,
//! so a booking at 19:00 in Madrid is in the 19:00 cell whatever the UTC offset that day, and a
//! booking across the autumn change's repeated hour counts both passes of it.
//!
//! # What counts
//!
//! - *Booked* minutes are those of **confirmed** bookings (classes included), cut to the range.
//! - *Open* minutes come from each live facility's opening hours, resolved in its club's time zone
//!   for each local date of the range exactly as the slot grid resolves them (so a facility open
//!   00:00–24:00 is open 25 hours on the autumn change and 23 on the spring one).
//! - Booking counts and revenue are those of the bookings that **start** in the range; revenue is
//!   what their payments took and gave back, whenever that happened.
//! - Conflicts and waitlist entries count by the time that was wanted (a conflict by the local date
//!   and hour of its wanted start); empty searches by when they were made (in the club's local dates, or UTC dates across every club).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use clubpulse_domain::{Grid, OpeningHours, SlotMinutes, TimeZone, local_hour_pieces};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Result, StorageError};

/// The longest range the dashboard answers, in days.
pub const MAX_DAYS: i64 = 366;
/// How many of the busiest weekday-hours [`Stats::peak_hours`] lists.
pub const PEAK_HOURS: usize = 5;
/// How many of the most frequent empty searches are listed.
pub const TOP_SEARCHES: i64 = 10;

/// What the dashboard is asked for: a checked range of local dates and an optional club.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    from: NaiveDate,
    to: NaiveDate,
    club_id: Option<Uuid>,
}

/// Why a range cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("to must be after from")]
    Empty,
    #[error("ask for at most {MAX_DAYS} days at a time")]
    TooLong,
}

impl StatsQuery {
    /// `[from, to)` in local dates: at least one day, at most [`MAX_DAYS`].
    pub fn new(
        from: NaiveDate,
        to: NaiveDate,
        club_id: Option<Uuid>,
    ) -> std::result::Result<Self, RangeError> {
        if to <= from {
            return Err(RangeError::Empty);
        }
        if (to - from).num_days() > MAX_DAYS {
            return Err(RangeError::TooLong);
        }
        Ok(Self { from, to, club_id })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    pub fn club_id(&self) -> Option<Uuid> {
        self.club_id
    }
}

/// The dashboard's data.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// The first local date of the range.
    pub from: NaiveDate,
    /// The local date after the last one: the range is `[from, to)`.
    pub to: NaiveDate,
    /// The club asked for; null for every club.
    pub club_id: Option<Uuid>,
    /// When these figures were read.
    pub generated_at: DateTime<Utc>,
    /// Every weekday and hour (7 × 24 cells, Monday 00:00 first), in each club's local time:
    /// confirmed minutes against open minutes over the range.
    pub occupancy: Vec<OccupancyCell>,
    /// Every local date of the range, in order, days with nothing booked or nothing open included.
    pub utilisation: Vec<DayUtilisation>,
    /// The busiest weekday-hours by booked minutes, at most five, busiest first; hours with nothing
    /// booked are left out.
    pub peak_hours: Vec<PeakHour>,
    /// What became of the bookings that start in the range.
    pub bookings: BookingCounts,
    /// The money of the bookings that start in the range, per currency in alphabetical order;
    /// currencies with no money in the range are left out.
    pub revenue: Vec<Revenue>,
    /// What members wanted and did not get.
    pub unmet_demand: UnmetDemand,
}

/// One weekday-hour of the occupancy grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OccupancyCell {
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 7))]
    pub weekday: u8,
    /// Local hour, 0–23.
    #[cfg_attr(feature = "openapi", schema(maximum = 23))]
    pub hour: u8,
    /// Minutes of confirmed bookings in this weekday-hour over the range.
    pub booked_minutes: i64,
    /// Minutes the facilities were open in this weekday-hour over the range.
    pub open_minutes: i64,
    /// `booked_minutes / open_minutes`; null when nothing was open.
    pub rate: Option<f64>,
}

/// One local date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayUtilisation {
    /// The local date (each club's own calendar).
    pub date: NaiveDate,
    /// Minutes of confirmed bookings that day.
    pub booked_minutes: i64,
    /// Minutes the facilities were open that day.
    pub open_minutes: i64,
    /// `booked_minutes / open_minutes`; null when nothing was open.
    pub rate: Option<f64>,
}

/// One of the busiest weekday-hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeakHour {
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 7))]
    pub weekday: u8,
    /// Local hour, 0–23.
    #[cfg_attr(feature = "openapi", schema(maximum = 23))]
    pub hour: u8,
    /// As in the occupancy cell: null when nothing was open.
    pub rate: Option<f64>,
    /// Minutes of confirmed bookings in this weekday-hour over the range.
    pub booked_minutes: i64,
}

/// The bookings that start in the range, by what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookingCounts {
    /// Confirmed (paid, taken on site, or a class).
    pub confirmed: i64,
    /// Cancelled bookings, late ones included.
    pub cancelled: i64,
    /// Cancellations later than the club's free window, which carried a fee.
    pub late_cancellations: i64,
    /// Holds that ran out unpaid (swept, or past their expiry and not yet swept).
    pub expired_holds: i64,
    /// Holds still running now.
    pub held_now: i64,
}

/// Money of the bookings that start in the range, in one currency (cents).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revenue {
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    /// Taken by succeeded payments (on site or by card), before refunds.
    pub paid_cents: i64,
    /// Given back by refunds.
    pub refunded_cents: i64,
    /// `paid_cents - refunded_cents`.
    pub net_cents: i64,
    /// Fees recorded on late cancellations (what their refunds kept back, or what is owed).
    pub cancellation_fees_cents: i64,
}

/// What members wanted and did not get.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmetDemand {
    /// Holds of the range that ran out unpaid (as in `bookings.expired_holds`).
    pub expired_holds: i64,
    /// Holds refused because the time was taken (409 `slot_unavailable`), per facility and local
    /// hour of the wanted start, for wanted starts in the range; by facility name, then hour.
    pub conflicts: Vec<ConflictCount>,
    /// Every refused hold of the range, over every facility.
    pub conflicts_total: i64,
    /// Searches made in the range that found nothing.
    pub searches_without_results: EmptySearches,
    /// Waitlist entries for times in the range, per facility, most waiting first.
    pub waitlist: Vec<WaitlistDepth>,
    /// Entries still waiting, over every facility.
    pub waiting_total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictCount {
    pub facility_id: Uuid,
    /// The facility's current name.
    pub facility_name: String,
    /// Local hour of the wanted start, 0–23.
    #[cfg_attr(feature = "openapi", schema(maximum = 23))]
    pub hour: u8,
    /// Holds refused for this facility and hour.
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmptySearches {
    /// Searches that found nothing.
    pub count: i64,
    /// The ten most frequent of them, most frequent first (then alphabetically).
    pub top: Vec<SearchCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchCount {
    /// The query as counted: trimmed, lower-cased, at most 100 characters.
    pub query: String,
    /// How many times it was searched without a result.
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitlistDepth {
    pub facility_id: Uuid,
    /// The facility's current name.
    pub facility_name: String,
    /// Entries still waiting for a time in the range.
    pub waiting: i64,
    /// Every entry made for a time in the range, whatever became of it.
    pub joined: i64,
}

/// The clubs in scope with their range as instants: `[lo, hi)` is local midnight of `from` to local
/// midnight of `to` in each club's zone. Materialised, so every statement reads it once.
const CLUBS: &str = "c AS MATERIALIZED (
        SELECT id, timezone,
               $1::date::timestamp AT TIME ZONE timezone AS lo,
               $2::date::timestamp AT TIME ZONE timezone AS hi
        FROM clubs
        WHERE $3::uuid IS NULL OR id = $3
    )";

/// The dashboard's data for `query`; `None` when it names a club that does not exist.
pub async fn dashboard(db: &PgPool, query: &StatsQuery) -> Result<Option<Stats>> {
    if let Some(club_id) = query.club_id {
        let found: Option<Uuid> = sqlx::query_scalar("SELECT id FROM clubs WHERE id = $1")
            .bind(club_id)
            .fetch_optional(db)
            .await?;
        if found.is_none() {
            return Ok(None);
        }
    }
    let (booked, open, bookings, revenue, conflicts, searches, waitlist) = tokio::try_join!(
        booked_minutes(db, query),
        open_minutes(db, query),
        booking_counts(db, query),
        revenue(db, query),
        conflicts(db, query),
        empty_searches(db, query),
        waitlist(db, query),
    )?;
    let (occupancy, utilisation) = grids(query, &booked, &open);
    let peak_hours = peaks(&occupancy);
    let conflicts_total = conflicts.iter().map(|c| c.count).sum();
    let waiting_total = waitlist.iter().map(|w| w.waiting).sum();
    Ok(Some(Stats {
        from: query.from,
        to: query.to,
        club_id: query.club_id,
        generated_at: Utc::now(),
        occupancy,
        utilisation,
        peak_hours,
        unmet_demand: UnmetDemand {
            expired_holds: bookings.expired_holds,
            conflicts,
            conflicts_total,
            searches_without_results: searches,
            waitlist,
            waiting_total,
        },
        bookings,
        revenue,
    }))
}

/// Minutes per (local date, local hour).
type Cells = HashMap<(NaiveDate, u8), i64>;

/// The occupancy statement, [`booked_minutes`]'s, for `EXPLAIN` in the benchmark: parameters
/// `$1` (from, a date), `$2` (to, a date) and `$3` (the club, a uuid or null).
pub fn booked_minutes_sql() -> &'static str {
    "SELECT local_date, local_hour::int, sum(minutes)::bigint
     FROM stats_booked_minutes
     WHERE local_date >= $1 AND local_date < $2 AND ($3::uuid IS NULL OR club_id = $3)
     GROUP BY 1, 2"
}

/// Confirmed minutes per local date and hour, from the rollup the bookings' triggers keep (each
/// confirmed booking cut at its club's local hours).
async fn booked_minutes(db: &PgPool, query: &StatsQuery) -> Result<Cells> {
    let rows: Vec<(NaiveDate, i32, i64)> = sqlx::query_as(booked_minutes_sql())
        .bind(query.from)
        .bind(query.to)
        .bind(query.club_id)
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(day, hour, minutes)| ((day, u8::try_from(hour).unwrap_or(0)), minutes))
        .collect())
}

/// Open minutes per local date and hour, from the opening hours of the live facilities in scope.
/// Facilities of one zone with the same hours are resolved once and counted as many times.
async fn open_minutes(db: &PgPool, query: &StatsQuery) -> Result<Cells> {
    let rows: Vec<(String, serde_json::Value, i64)> = sqlx::query_as(
        "SELECT c.timezone, f.opening_hours, count(*)
         FROM facilities f JOIN clubs c ON c.id = f.club_id
         WHERE ($2::uuid IS NULL OR f.club_id = $2)
           AND (f.retired_at IS NULL
                OR f.retired_at > $1::date::timestamp AT TIME ZONE c.timezone)
         GROUP BY 1, 2",
    )
    .bind(query.from)
    .bind(query.club_id)
    .fetch_all(db)
    .await?;
    let slot = SlotMinutes::try_from(30).map_err(|_| corrupt("the slot length"))?;
    let mut cells = Cells::new();
    for (zone, hours, facilities) in rows {
        let zone = TimeZone::try_from(zone.as_str()).map_err(|_| corrupt("a club time zone"))?;
        let hours = OpeningHours::try_from(&hours).map_err(|_| corrupt("opening hours"))?;
        let grid = Grid::new(zone, hours, slot);
        let mut date = query.from;
        while date < query.to {
            for (open, close) in grid.open_intervals(date) {
                for (day, hour, minutes) in local_hour_pieces(zone, open, close) {
                    *cells.entry((day, hour)).or_default() += minutes * facilities;
                }
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
    }
    Ok(cells)
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("a facility in scope has an unreadable {what}"))
}

fn rate(booked: i64, open: i64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // Minutes over a year are far below 2^52.
    (open > 0).then(|| booked as f64 / open as f64)
}

/// The weekday-hour grid and the per-day list from the two sets of cells.
fn grids(
    query: &StatsQuery,
    booked: &Cells,
    open: &Cells,
) -> (Vec<OccupancyCell>, Vec<DayUtilisation>) {
    let mut week = [[(0i64, 0i64); 24]; 7];
    let mut days: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    let mut date = query.from;
    while date < query.to {
        days.insert(date, (0, 0));
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    let mut add = |(day, hour): (NaiveDate, u8), booked: i64, open: i64| {
        let weekday = day.weekday().num_days_from_monday() as usize;
        if let Some(cell) = week
            .get_mut(weekday)
            .and_then(|hours| hours.get_mut(usize::from(hour)))
        {
            cell.0 += booked;
            cell.1 += open;
        }
        if let Some(total) = days.get_mut(&day) {
            total.0 += booked;
            total.1 += open;
        }
    };
    for (&cell, &minutes) in booked {
        add(cell, minutes, 0);
    }
    for (&cell, &minutes) in open {
        add(cell, 0, minutes);
    }
    let occupancy = (0u8..7)
        .flat_map(|weekday| (0u8..24).map(move |hour| (weekday, hour)))
        .map(|(weekday, hour)| {
            let (booked, open) = week[usize::from(weekday)][usize::from(hour)];
            OccupancyCell {
                weekday: weekday + 1,
                hour,
                booked_minutes: booked,
                open_minutes: open,
                rate: rate(booked, open),
            }
        })
        .collect();
    let utilisation = days
        .into_iter()
        .map(|(date, (booked, open))| DayUtilisation {
            date,
            booked_minutes: booked,
            open_minutes: open,
            rate: rate(booked, open),
        })
        .collect();
    (occupancy, utilisation)
}

fn peaks(occupancy: &[OccupancyCell]) -> Vec<PeakHour> {
    let mut busy: Vec<&OccupancyCell> = occupancy.iter().filter(|c| c.booked_minutes > 0).collect();
    busy.sort_by(|a, b| {
        b.booked_minutes
            .cmp(&a.booked_minutes)
            .then(a.weekday.cmp(&b.weekday))
            .then(a.hour.cmp(&b.hour))
    });
    busy.into_iter()
        .take(PEAK_HOURS)
        .map(|c| PeakHour {
            weekday: c.weekday,
            hour: c.hour,
            rate: c.rate,
            booked_minutes: c.booked_minutes,
        })
        .collect()
}

/// The rollup's rows of the range: per club, local date and currency.
const DAYS_IN_RANGE: &str = "FROM stats_booking_days
         WHERE local_date >= $1 AND local_date < $2 AND ($3::uuid IS NULL OR club_id = $3)";

async fn booking_counts(db: &PgPool, query: &StatsQuery) -> Result<BookingCounts> {
    let ((confirmed, cancelled, late_cancellations, expired), (unswept, held_now)) = tokio::try_join!(
        async {
            sqlx::query_as::<_, (i64, i64, i64, i64)>(&format!(
                "SELECT coalesce(sum(confirmed), 0)::bigint, coalesce(sum(cancelled), 0)::bigint,
                        coalesce(sum(late_cancellations), 0)::bigint, coalesce(sum(expired), 0)::bigint
                 {DAYS_IN_RANGE}"
            ))
            .bind(query.from)
            .bind(query.to)
            .bind(query.club_id)
            .fetch_one(db)
            .await
        },
        // Holds are not in the rollup (a hold is the hot path): the few held bookings are read
        // through the sweeper's partial index. One past its expiry has expired, swept or not.
        async {
            sqlx::query_as::<_, (i64, i64)>(&format!(
                "WITH {CLUBS}
                 SELECT count(*) FILTER (WHERE b.hold_expires_at <= now()),
                        count(*) FILTER (WHERE b.hold_expires_at > now())
                 FROM bookings b
                 JOIN facilities f ON f.id = b.facility_id
                 JOIN c ON c.id = f.club_id
                 WHERE b.status = 'held'
                   AND lower(b.during) >= c.lo AND lower(b.during) < c.hi"
            ))
            .bind(query.from)
            .bind(query.to)
            .bind(query.club_id)
            .fetch_one(db)
            .await
        },
    )?;
    Ok(BookingCounts {
        confirmed,
        cancelled,
        late_cancellations,
        expired_holds: expired + unswept,
        held_now,
    })
}

async fn revenue(db: &PgPool, query: &StatsQuery) -> Result<Vec<Revenue>> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT currency, sum(paid_cents)::bigint, sum(refunded_cents)::bigint,
                sum(fees_cents)::bigint
         {DAYS_IN_RANGE}
         GROUP BY currency
         HAVING sum(paid_cents) <> 0 OR sum(refunded_cents) <> 0 OR sum(fees_cents) <> 0
         ORDER BY currency"
    ))
    .bind(query.from)
    .bind(query.to)
    .bind(query.club_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(currency, paid, refunded, fees)| Revenue {
            currency,
            paid_cents: paid,
            refunded_cents: refunded,
            net_cents: paid - refunded,
            cancellation_fees_cents: fees,
        })
        .collect())
}

async fn conflicts(db: &PgPool, query: &StatsQuery) -> Result<Vec<ConflictCount>> {
    // Counted from the index alone (local date and hour were stored with each refusal), then
    // named: a year of refusals is one pass, and only the groups meet the facilities.
    let rows: Vec<(Uuid, String, i32, i64)> = sqlx::query_as(
        "SELECT g.facility_id, f.name, g.local_hour::int, g.n
         FROM (
             SELECT facility_id, local_hour, count(*) AS n
             FROM demand_conflicts
             WHERE local_date >= $1 AND local_date < $2 AND ($3::uuid IS NULL OR club_id = $3)
             GROUP BY facility_id, local_hour
         ) AS g
         JOIN facilities f ON f.id = g.facility_id
         ORDER BY f.name, g.facility_id, g.local_hour",
    )
    .bind(query.from)
    .bind(query.to)
    .bind(query.club_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(facility_id, facility_name, hour, count)| ConflictCount {
            facility_id,
            facility_name,
            hour: u8::try_from(hour).unwrap_or(0),
            count,
        })
        .collect())
}

/// Empty searches of the range: the club's local dates when one is asked for (only searches
/// filtered by that club), UTC dates otherwise (every search).
async fn empty_searches(db: &PgPool, query: &StatsQuery) -> Result<EmptySearches> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH z AS (
             SELECT coalesce((SELECT timezone FROM clubs WHERE id = $3), 'UTC') AS tz
         ),
         r AS (
             SELECT $1::date::timestamp AT TIME ZONE tz AS lo,
                    $2::date::timestamp AT TIME ZONE tz AS hi
             FROM z
         )
         SELECT query, count(*) AS n, sum(count(*)) OVER ()::bigint
         FROM demand_searches
         WHERE recorded_at >= (SELECT lo FROM r) AND recorded_at < (SELECT hi FROM r)
           AND ($3::uuid IS NULL OR club_id = $3)
         GROUP BY query
         ORDER BY n DESC, query
         LIMIT $4",
    )
    .bind(query.from)
    .bind(query.to)
    .bind(query.club_id)
    .bind(TOP_SEARCHES)
    .fetch_all(db)
    .await?;
    let count = rows.first().map_or(0, |(_, _, total)| *total);
    Ok(EmptySearches {
        count,
        top: rows
            .into_iter()
            .map(|(query, count, _)| SearchCount { query, count })
            .collect(),
    })
}

async fn waitlist(db: &PgPool, query: &StatsQuery) -> Result<Vec<WaitlistDepth>> {
    let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(&format!(
        "WITH {CLUBS}
         SELECT w.facility_id, f.name,
                count(*) FILTER (WHERE w.status = 'waiting') AS waiting,
                count(*)
         FROM waitlist_entries w
         JOIN facilities f ON f.id = w.facility_id
         JOIN c ON c.id = f.club_id
         WHERE lower(w.during) >= c.lo AND lower(w.during) < c.hi
         GROUP BY w.facility_id, f.name
         ORDER BY waiting DESC, f.name, w.facility_id"
    ))
    .bind(query.from)
    .bind(query.to)
    .bind(query.club_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(facility_id, facility_name, waiting, joined)| WaitlistDepth {
                facility_id,
                facility_name,
                waiting,
                joined,
            },
        )
        .collect())
}

/// The default range: the 28 local dates ending with `today`.
pub fn default_range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let to = today.succ_opt().unwrap_or(today);
    (to - Duration::days(28), to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_range_is_one_to_366_days() {
        let from = date(2026, 1, 1);
        assert_eq!(StatsQuery::new(from, from, None), Err(RangeError::Empty));
        assert_eq!(
            StatsQuery::new(from, from - Duration::days(1), None),
            Err(RangeError::Empty)
        );
        assert!(StatsQuery::new(from, from + Duration::days(366), None).is_ok());
        assert_eq!(
            StatsQuery::new(from, from + Duration::days(367), None),
            Err(RangeError::TooLong)
        );
    }

    #[test]
    fn the_grids_have_every_cell_and_every_day() {
        let query = StatsQuery::new(date(2026, 11, 30), date(2026, 12, 3), None).unwrap();
        let booked = Cells::from([((date(2026, 11, 30), 19), 60)]);
        let open = Cells::from([
            ((date(2026, 11, 30), 19), 120),
            ((date(2026, 12, 1), 19), 120),
        ]);
        let (occupancy, utilisation) = grids(&query, &booked, &open);
        assert_eq!(occupancy.len(), 7 * 24);
        let monday_19 = &occupancy[19];
        assert_eq!((monday_19.weekday, monday_19.hour), (1, 19));
        assert_eq!(monday_19.rate, Some(0.5));
        assert_eq!(occupancy[0].rate, None);
        assert_eq!(utilisation.len(), 3);
        assert_eq!(utilisation[2].open_minutes, 0);
        let peaks = peaks(&occupancy);
        assert_eq!(peaks.len(), 1);
        assert_eq!((peaks[0].weekday, peaks[0].hour), (1, 19));
    }
}
