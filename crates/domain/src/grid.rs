//! A facility's slot grid: where its bookable slots fall, in UTC, on each day of the club's local
//! calendar, correct across daylight-saving changes.
//!
//! # Local days, UTC slots
//!
//! Opening hours are wall-clock intervals per weekday in the club's time zone (`07:00`–`23:00`).
//! For a local date `D`, each interval `[open, close)` is turned into two UTC instants: `open`
//! resolved on `D`, `close` resolved on `D`. A `close` of `24:00` is the end of the local date,
//! that is [the first instant of `D + 1`](Grid::day_start).
//!
//! # Resolving wall-clock times
//!
//! Around a daylight-saving change a wall-clock time may occur once, twice or never:
//!
//! - **once**: that instant;
//! - **twice** (clocks fall back and repeat an hour): the *earlier* instant for an `open`, the
//!   *later* instant for a `close`, so the interval covers the whole wall-clock span, both passes of
//!   the repeated hour included;
//! - **never** (clocks spring forward over a gap): the first instant after the gap, the instant the
//!   clocks jump to. In Madrid on 2026-03-29 an `open` of `02:30` resolves to `03:00` CEST.
//!
//! Where two intervals of a day touch at a repeated time (`07:00`–`14:00`, `14:00`–`22:00`), the
//! second one starts where the first one ends, so the two never overlap.
//!
//! # Slots are elapsed time
//!
//! Within each interval the slots are consecutive runs of `slot_minutes` of *elapsed* time,
//! starting at the interval's opening instant; a partial slot at the end is dropped. A slot is what
//! a member pays for and plays, so an hour-long slot lasts sixty real minutes even when the clocks
//! change during it. A DST change inside opening hours therefore changes how many slots the day has
//! (23 or 25 hourly slots on a `00:00`–`24:00` day), never how long they are.
//!
//! # Slot indices
//!
//! Every slot of local date `D` has an index: the number of whole slot lengths elapsed from the
//! first instant of `D` (local midnight, or the first instant after the gap when midnight itself is
//! skipped) to the slot's start. Slots of a day are disjoint, so indices strictly increase through
//! the day; they are the bit positions of the day's availability bitmap, and
//! [`Grid::bits_for_day`] is how many bits that bitmap needs. Indices depend on the day: with
//! half-hour slots the `07:00` slot is index 14 on an ordinary day, 12 on a spring-forward day and
//! 16 on a fall-back day, because six, seven or eight hours have elapsed since midnight.
//!
//! # Bookings and repetition
//!
//! [`Grid::fit`] accepts a booking only when it is one or more consecutive slots of a single
//! opening interval of a single local date. [`weekly`] repeats a booking at the same *local* wall
//! time each week, which is what a member booking "Tuesdays at 19:00" means; its UTC time moves by
//! an hour when the clocks change.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone as _,
    Timelike, Utc, offset::LocalResult,
};
use chrono_tz::Tz;

use crate::{
    club::TimeZone,
    facility::{OpeningHours, SlotMinutes},
    time::TimeRange,
};

const MINUTES_PER_DAY: u16 = 24 * 60;

/// One bookable slot of a facility on one local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The local date the slot belongs to.
    pub date: NaiveDate,
    /// Whole slot lengths elapsed from the first instant of `date` to `start`: the slot's bit in
    /// the day's availability bitmap.
    pub index: u32,
    pub start: DateTime<Utc>,
    /// `start` plus exactly the slot length.
    pub end: DateTime<Utc>,
}

/// Where a booking sits on the grid: slots `first..=last` of the local date `date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    pub date: NaiveDate,
    /// Index of the booking's first slot.
    pub first: u32,
    /// Index of the booking's last slot (inclusive).
    pub last: u32,
}

impl Fit {
    /// How many slots the booking takes.
    pub fn slot_count(&self) -> u32 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }
}

/// Why a booking does not fit the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// The booking lies within one opening interval, but its start or end is not a slot boundary.
    #[error("the booking must start and end on slot boundaries")]
    Misaligned,
    /// Some part of the booking lies outside the opening interval it starts in: before opening,
    /// after closing, across a break between two intervals, on a closed day or past the end of the
    /// local date.
    #[error("the booking falls outside the facility's opening hours")]
    OutsideOpeningHours,
}

impl GridError {
    /// A stable machine-readable code for API responses.
    pub fn code(self) -> &'static str {
        match self {
            Self::Misaligned => "misaligned_slot",
            Self::OutsideOpeningHours => "outside_opening_hours",
        }
    }
}

/// Why one occurrence of a [`weekly`] series cannot be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OccurrenceError {
    /// The occurrence's start or end wall time falls in a spring-forward gap that week.
    #[error("the local time does not exist that day: the clocks skip it")]
    NonexistentLocalTime,
    /// The occurrence lies beyond the dates the calendar can represent.
    #[error("the occurrence is out of the supported date range")]
    OutOfRange,
}

impl OccurrenceError {
    /// A stable machine-readable code for API responses.
    pub fn code(self) -> &'static str {
        match self {
            Self::NonexistentLocalTime => "nonexistent_local_time",
            Self::OutOfRange => "out_of_range",
        }
    }
}

/// A facility's slot grid: its club's time zone, its opening hours and its slot length.
///
/// Every method is pure and total: dates at the edges of the representable calendar simply have
/// no slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    zone: TimeZone,
    hours: OpeningHours,
    slot_minutes: SlotMinutes,
}

/// One opening interval of a local date, resolved to UTC, with its slots.
#[derive(Debug)]
struct Interval {
    open: DateTime<Utc>,
    close: DateTime<Utc>,
    slots: Vec<Slot>,
}

impl Grid {
    pub fn new(tz: TimeZone, hours: OpeningHours, slot_minutes: SlotMinutes) -> Self {
        Self {
            zone: tz,
            hours,
            slot_minutes,
        }
    }

    pub fn time_zone(&self) -> TimeZone {
        self.zone
    }

    pub fn opening_hours(&self) -> &OpeningHours {
        &self.hours
    }

    pub fn slot_minutes(&self) -> SlotMinutes {
        self.slot_minutes
    }

    /// The local date of an instant in the club's time zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        local_naive(self.zone.tz(), t).map_or_else(|| t.date_naive(), |local| local.date())
    }

    /// The first instant of a local date: local midnight, or the instant the clocks jump to when
    /// midnight falls in a spring-forward gap. Slot indices count from here. `None` only at the
    /// edges of the representable calendar.
    pub fn day_start(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        resolve(self.zone.tz(), date.and_time(NaiveTime::MIN), Pick::Earlier)
    }

    /// Every slot of a local date, in order; empty when the facility is closed that day.
    pub fn day_slots(&self, date: NaiveDate) -> Vec<Slot> {
        self.intervals(date)
            .into_iter()
            .flat_map(|interval| interval.slots)
            .collect()
    }

    /// How many bits the availability bitmap of a local date needs: the last slot's index plus
    /// one, 0 when the facility is closed that day.
    pub fn bits_for_day(&self, date: NaiveDate) -> u32 {
        self.intervals(date)
            .iter()
            .rev()
            .find_map(|interval| interval.slots.last())
            .map_or(0, |slot| slot.index.saturating_add(1))
    }

    /// The local dates whose slots may overlap `[from, to)`, in order: the local date of `from`
    /// through the local date of the last instant before `to`. Empty when `from >= to`.
    pub fn local_dates(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<NaiveDate> {
        let Some(last_instant) = to.checked_sub_signed(Duration::nanoseconds(1)) else {
            return Vec::new();
        };
        if from >= to {
            return Vec::new();
        }
        let last = self.local_date(last_instant);
        let mut dates = Vec::new();
        let mut date = self.local_date(from);
        while date <= last {
            dates.push(date);
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        dates
    }

    /// Every slot, of every local date touched by `[from, to)`, that overlaps `[from, to)`, in
    /// order. Empty when `from >= to`.
    pub fn slots_overlapping(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        self.local_dates(from, to)
            .into_iter()
            .flat_map(|date| self.day_slots(date))
            .filter(|slot| slot.start < to && from < slot.end)
            .collect()
    }

    /// The opening intervals of a local date as UTC `[open, close)` pairs, in order and disjoint:
    /// the wall-clock opening hours resolved as described in the module docs. Their total length is
    /// the facility's open time that day (an hour more or less on a DST change inside them).
    pub fn open_intervals(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.intervals(date)
            .into_iter()
            .map(|interval| (interval.open, interval.close))
            .collect()
    }

    /// Places a booking on the grid. A booking must be one or more consecutive slots of a single
    /// opening interval of one local date (the local date of its start).
    ///
    /// A booking that lies within one opening interval but does not start and end on slot
    /// boundaries is [`GridError::Misaligned`]; one that reaches outside that interval (before
    /// opening, after closing, across a break, into the next local date) or starts on a closed day
    /// is [`GridError::OutsideOpeningHours`].
    pub fn fit(&self, range: &TimeRange) -> Result<Fit, GridError> {
        let (start, end) = (range.start(), range.end());
        let date = self.local_date(start);
        let intervals = self.intervals(date);
        let interval = intervals
            .iter()
            .find(|interval| interval.open <= start && end <= interval.close)
            .ok_or(GridError::OutsideOpeningHours)?;
        let first = interval.slots.iter().find(|slot| slot.start == start);
        let last = interval.slots.iter().find(|slot| slot.end == end);
        match (first, last) {
            (Some(first), Some(last)) if first.index <= last.index => Ok(Fit {
                date,
                first: first.index,
                last: last.index,
            }),
            _ => Err(GridError::Misaligned),
        }
    }

    /// The opening intervals of a local date resolved to UTC, in order and disjoint, with their
    /// slots.
    fn intervals(&self, date: NaiveDate) -> Vec<Interval> {
        let Some(day_start) = self.day_start(date) else {
            return Vec::new();
        };
        let step = Duration::minutes(i64::from(self.slot_minutes.get().max(1)));
        let weekday = date.weekday().num_days_from_monday() as usize;
        let mut intervals = Vec::new();
        let mut previous_close = day_start;
        for &(open, close) in self.hours.day(weekday) {
            let (Some(open), Some(close)) = (
                self.wall_time(date, open, Pick::Earlier),
                self.wall_time(date, close, Pick::Later),
            ) else {
                continue;
            };
            // Intervals touching at a repeated wall time would otherwise overlap by the repeat.
            let open = open.max(previous_close);
            if close <= open {
                continue;
            }
            previous_close = close;
            let mut slots = Vec::new();
            let mut start = open;
            while let Some(end) = start.checked_add_signed(step) {
                if end > close {
                    break;
                }
                slots.push(Slot {
                    date,
                    index: index_of(day_start, start, step),
                    start,
                    end,
                });
                start = end;
            }
            intervals.push(Interval { open, close, slots });
        }
        intervals
    }

    /// A wall-clock time (minutes after midnight) of a local date as an instant; `24:00` is the
    /// first instant of the next date.
    fn wall_time(&self, date: NaiveDate, minute: u16, pick: Pick) -> Option<DateTime<Utc>> {
        if minute >= MINUTES_PER_DAY {
            return self.day_start(date.succ_opt()?);
        }
        let local = date
            .and_time(NaiveTime::MIN)
            .checked_add_signed(Duration::minutes(i64::from(minute)))?;
        resolve(self.zone.tz(), local, pick)
    }
}

/// Whole slot lengths from `day_start` to `start`.
fn index_of(day_start: DateTime<Utc>, start: DateTime<Utc>, step: Duration) -> u32 {
    let elapsed = (start - day_start).num_seconds().max(0);
    let step = step.num_seconds().max(1);
    u32::try_from(elapsed / step).unwrap_or(u32::MAX)
}

/// Repeats a booking weekly at the same local wall-clock time.
///
/// Occurrence 0 is `range` itself. Occurrence `i` starts at the local wall time of `range.start()`
/// plus `7 * i` days and ends at the local wall time of `range.end()` plus `7 * i` days, so it
/// keeps the local start time and the local duration (a 19:00–20:00 booking stays 19:00–20:00 local
/// and its UTC time moves when the clocks change). A repeated wall time resolves to its earlier
/// instant for the start and its later instant for the end; a wall time that week's clocks skip
/// makes that occurrence [`OccurrenceError::NonexistentLocalTime`], and the other weeks are
/// unaffected. A `range` whose local end is not after its local start (only possible inside a
/// repeated fall-back hour) keeps its elapsed duration instead.
///
/// Returns exactly `weeks` results; bound `weeks` where requests are parsed.
pub fn weekly(
    tz: TimeZone,
    range: &TimeRange,
    weeks: u32,
) -> Vec<Result<TimeRange, OccurrenceError>> {
    let zone = tz.tz();
    let local_start = local_naive(zone, range.start());
    let local_end = local_naive(zone, range.end());
    (0..weeks)
        .map(|week| {
            if week == 0 {
                return Ok(*range);
            }
            let (Some(local_start), Some(local_end)) = (local_start, local_end) else {
                return Err(OccurrenceError::OutOfRange);
            };
            occurrence(zone, range, local_start, local_end, week)
        })
        .collect()
}

fn occurrence(
    zone: Tz,
    range: &TimeRange,
    local_start: NaiveDateTime,
    local_end: NaiveDateTime,
    week: u32,
) -> Result<TimeRange, OccurrenceError> {
    let shift = Duration::try_days(7 * i64::from(week)).ok_or(OccurrenceError::OutOfRange)?;
    let shifted = |local: NaiveDateTime| {
        local
            .checked_add_signed(shift)
            .ok_or(OccurrenceError::OutOfRange)
    };
    let start = exact(zone, shifted(local_start)?, Pick::Earlier)?;
    let mut end = if local_end > local_start {
        exact(zone, shifted(local_end)?, Pick::Later)?
    } else {
        start
    };
    if end <= start {
        end = start
            .checked_add_signed(range.duration())
            .ok_or(OccurrenceError::OutOfRange)?;
    }
    TimeRange::new(start, end).map_err(|_| OccurrenceError::OutOfRange)
}

/// The local weekday (0 = Monday) and hour (0–23) of an instant, for popularity statistics.
pub fn local_weekday_hour(tz: TimeZone, t: DateTime<Utc>) -> (u8, u8) {
    let local = local_naive(tz.tz(), t).unwrap_or_else(|| t.naive_utc());
    let weekday = u8::try_from(local.weekday().num_days_from_monday()).unwrap_or(0);
    let hour = u8::try_from(local.hour()).unwrap_or(0);
    (weekday, hour)
}

/// `[from, to)` cut at the local hour boundaries of `tz`: each piece's local date, local hour
/// (0–23) and length in whole minutes, in order. A repeated hour (clocks falling back) yields two
/// pieces with the same date and hour; a skipped one yields none. Empty when `from >= to`.
pub fn local_hour_pieces(
    tz: TimeZone,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(NaiveDate, u8, i64)> {
    let zone = tz.tz();
    let mut pieces = Vec::new();
    let mut t = from;
    while t < to {
        let Some(local) = local_naive(zone, t) else {
            break;
        };
        // Offsets are whole quarter hours and change on the hour or half hour, so the next local
        // hour starts after the minutes and seconds left in this one.
        let into_hour = i64::from(local.minute()) * 60 + i64::from(local.second());
        let Some(next) = t.checked_add_signed(Duration::seconds(3600 - into_hour)) else {
            break;
        };
        let end = next.min(to);
        let hour = u8::try_from(local.hour()).unwrap_or(0);
        pieces.push((local.date(), hour, (end - t).num_minutes()));
        t = end;
    }
    pieces
}

/// Which instant a repeated wall-clock time stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Earlier,
    Later,
}

/// The wall-clock time of an instant in a zone; `None` only at the edges of the calendar.
fn local_naive(zone: Tz, t: DateTime<Utc>) -> Option<NaiveDateTime> {
    let utc = t.naive_utc();
    utc.checked_add_offset(zone.offset_from_utc_datetime(&utc).fix())
}

/// A zone's offset from UTC at an instant, in seconds.
fn offset_seconds(zone: Tz, utc: NaiveDateTime) -> i64 {
    i64::from(zone.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// A wall-clock time as an instant, refusing a time the clocks skip.
fn exact(zone: Tz, local: NaiveDateTime, pick: Pick) -> Result<DateTime<Utc>, OccurrenceError> {
    let offset = match zone.offset_from_local_datetime(&local) {
        LocalResult::Single(offset) => offset.fix(),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.fix(), b.fix());
            // The larger offset belongs to the earlier instant.
            let a_is_earlier = a.local_minus_utc() >= b.local_minus_utc();
            match (pick, a_is_earlier) {
                (Pick::Earlier, true) | (Pick::Later, false) => a,
                (Pick::Earlier, false) | (Pick::Later, true) => b,
            }
        }
        LocalResult::None => return Err(OccurrenceError::NonexistentLocalTime),
    };
    local
        .checked_sub_offset(offset)
        .map(|utc| utc.and_utc())
        .ok_or(OccurrenceError::OutOfRange)
}

/// A wall-clock time as an instant, a skipped time resolving to the instant the clocks jump to.
fn resolve(zone: Tz, local: NaiveDateTime, pick: Pick) -> Option<DateTime<Utc>> {
    match exact(zone, local, pick) {
        Ok(instant) => Some(instant),
        Err(OccurrenceError::NonexistentLocalTime) => after_gap(zone, local),
        Err(OccurrenceError::OutOfRange) => None,
    }
}

/// The instant the clocks jump to over the gap that swallows `local`.
///
/// With offsets `before` and `after` around the gap, the jump happens at an instant in
/// `(local - after, local - before]`: the first instant whose wall time is at or past `local`.
/// Transitions fall on whole seconds, so a binary search over seconds finds it exactly.
fn after_gap(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let reaches = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .and_then(|t| local_naive(zone, t))
            .is_some_and(|wall| wall >= local)
    };
    let before = offset_seconds(zone, local.checked_sub_signed(Duration::days(1))?);
    let after = offset_seconds(zone, local.checked_add_signed(Duration::days(1))?);
    let probe = local.and_utc().timestamp();
    let (mut lo, mut hi) = (probe - after, probe - before);
    if lo < hi && !reaches(lo) && reaches(hi) {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if reaches(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return DateTime::from_timestamp(hi, 0);
    }
    // Another transition nearby: take the first whole local minute after `local` that exists.
    let mut wall = local;
    for _ in 0..2 * MINUTES_PER_DAY {
        wall = wall.checked_add_signed(Duration::minutes(1))?;
        match exact(zone, wall, Pick::Earlier) {
            Ok(instant) => return Some(instant),
            Err(OccurrenceError::NonexistentLocalTime) => continue,
            Err(OccurrenceError::OutOfRange) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::try_from(name).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn minutes(m: i64) -> SlotMinutes {
        SlotMinutes::try_from(m).unwrap()
    }

    fn hours(json: serde_json::Value) -> OpeningHours {
        OpeningHours::try_from(&json).unwrap()
    }

    fn full_day() -> OpeningHours {
        OpeningHours::every_day(0, MINUTES_PER_DAY)
    }

    #[test]
    fn hour_pieces_follow_local_hours_across_the_autumn_change() {
        // Madrid, 2026-10-25: 03:00 CEST falls back to 02:00 CET, so 02:00-03:00 happens twice.
        let pieces = local_hour_pieces(
            zone("Europe/Madrid"),
            utc("2026-10-24T23:30:00Z"),
            utc("2026-10-25T02:15:00Z"),
        );
        let day = date(2026, 10, 25);
        assert_eq!(
            pieces,
            vec![(day, 1, 30), (day, 2, 60), (day, 2, 60), (day, 3, 15)]
        );
    }

    #[test]
    fn hour_pieces_cut_at_local_hours_in_half_hour_zones() {
        // Kolkata is UTC+05:30: a UTC hour is two halves of two local hours.
        let pieces = local_hour_pieces(
            zone("Asia/Kolkata"),
            utc("2026-06-01T00:00:00Z"),
            utc("2026-06-01T01:00:00Z"),
        );
        let day = date(2026, 6, 1);
        assert_eq!(pieces, vec![(day, 5, 30), (day, 6, 30)]);
        assert!(
            local_hour_pieces(
                zone("UTC"),
                utc("2026-06-01T01:00:00Z"),
                utc("2026-06-01T01:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn open_intervals_last_an_hour_longer_on_the_autumn_change() {
        let grid = Grid::new(zone("Europe/Madrid"), full_day(), minutes(60));
        let open: i64 = grid
            .open_intervals(date(2026, 10, 25))
            .iter()
            .map(|(open, close)| (*close - *open).num_minutes())
            .sum();
        assert_eq!(open, 25 * 60);
        let split = Grid::new(zone("Europe/Madrid"), split_day(), minutes(30));
        assert_eq!(
            split.open_intervals(date(2026, 11, 2)),
            vec![
                (utc("2026-11-02T06:00:00Z"), utc("2026-11-02T13:00:00Z")),
                (utc("2026-11-02T15:00:00Z"), utc("2026-11-02T21:00:00Z")),
            ]
        );
    }

    fn split_day() -> OpeningHours {
        let day = json!([["07:00", "14:00"], ["16:00", "22:00"]]);
        hours(json!({
            "mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day
        }))
    }

    fn grid(tz: &str, hours: OpeningHours, slot: i64) -> Grid {
        Grid::new(zone(tz), hours, minutes(slot))
    }

    fn range(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeRange {
        TimeRange::new(start, end).unwrap()
    }

    /// Every slot lasts exactly the slot length, belongs to `date`, and the slots are disjoint
    /// with strictly increasing indices.
    fn assert_well_formed(slots: &[Slot], date: NaiveDate, slot: i64) {
        for s in slots {
            assert_eq!(s.end - s.start, Duration::minutes(slot), "{s:?}");
            assert_eq!(s.date, date);
        }
        for pair in slots.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{pair:?}");
            assert!(pair[0].index < pair[1].index, "{pair:?}");
        }
    }

    fn first_start_at(grid: &Grid, date: NaiveDate) -> DateTime<Utc> {
        grid.day_slots(date)[0].start
    }

    #[test]
    fn a_full_madrid_day_has_23_hourly_slots_in_spring_and_25_in_autumn() {
        let grid = grid("Europe/Madrid", full_day(), 60);
        for (day, count) in [
            (date(2026, 3, 28), 24),
            (date(2026, 3, 29), 23),
            (date(2026, 10, 25), 25),
            (date(2026, 10, 26), 24),
        ] {
            let slots = grid.day_slots(day);
            assert_eq!(slots.len(), count, "{day}");
            assert_well_formed(&slots, day, 60);
            let indices: Vec<u32> = slots.iter().map(|s| s.index).collect();
            assert_eq!(indices, (0..count as u32).collect::<Vec<_>>(), "{day}");
            assert_eq!(grid.bits_for_day(day), count as u32);
        }
        // The spring-forward day runs from 23:00 UTC to 22:00 UTC.
        let spring = grid.day_slots(date(2026, 3, 29));
        assert_eq!(spring[0].start, utc("2026-03-28T23:00:00Z"));
        assert_eq!(spring[22].end, utc("2026-03-29T22:00:00Z"));
    }

    #[test]
    fn default_madrid_hours_keep_32_half_hour_slots_and_move_an_hour_in_utc_across_dst() {
        let grid = grid("Europe/Madrid", OpeningHours::default(), 30);
        for day in [
            date(2026, 3, 28),
            date(2026, 3, 29),
            date(2026, 3, 30),
            date(2026, 10, 24),
            date(2026, 10, 25),
            date(2026, 10, 26),
        ] {
            let slots = grid.day_slots(day);
            assert_eq!(slots.len(), 32, "{day}");
            assert_well_formed(&slots, day, 30);
        }
        // 07:00 is UTC+1 in winter and UTC+2 in summer.
        assert_eq!(
            first_start_at(&grid, date(2026, 3, 28)),
            utc("2026-03-28T06:00:00Z")
        );
        assert_eq!(
            first_start_at(&grid, date(2026, 3, 29)),
            utc("2026-03-29T05:00:00Z")
        );
        assert_eq!(
            first_start_at(&grid, date(2026, 10, 24)),
            utc("2026-10-24T05:00:00Z")
        );
        assert_eq!(
            first_start_at(&grid, date(2026, 10, 25)),
            utc("2026-10-25T06:00:00Z")
        );
        // Indices count elapsed slots since midnight: 6, 7 or 8 hours before 07:00.
        assert_eq!(grid.day_slots(date(2026, 3, 28))[0].index, 14);
        assert_eq!(grid.day_slots(date(2026, 3, 29))[0].index, 12);
        assert_eq!(grid.day_slots(date(2026, 10, 25))[0].index, 16);
        assert_eq!(grid.bits_for_day(date(2026, 3, 28)), 46);
        assert_eq!(grid.bits_for_day(date(2026, 3, 29)), 44);
        assert_eq!(grid.bits_for_day(date(2026, 10, 25)), 48);
    }

    #[test]
    fn new_york_dst_days_behave_like_madrid_ones() {
        let full = grid("America/New_York", full_day(), 60);
        assert_eq!(full.day_slots(date(2026, 3, 8)).len(), 23);
        assert_eq!(full.day_slots(date(2026, 11, 1)).len(), 25);
        assert_well_formed(&full.day_slots(date(2026, 3, 8)), date(2026, 3, 8), 60);
        assert_well_formed(&full.day_slots(date(2026, 11, 1)), date(2026, 11, 1), 60);

        let default = grid("America/New_York", OpeningHours::default(), 30);
        for day in [date(2026, 3, 8), date(2026, 11, 1)] {
            assert_eq!(default.day_slots(day).len(), 32, "{day}");
        }
        assert_eq!(
            first_start_at(&default, date(2026, 3, 7)),
            utc("2026-03-07T12:00:00Z")
        );
        assert_eq!(
            first_start_at(&default, date(2026, 3, 8)),
            utc("2026-03-08T11:00:00Z")
        );
        assert_eq!(
            first_start_at(&default, date(2026, 10, 31)),
            utc("2026-10-31T11:00:00Z")
        );
        assert_eq!(
            first_start_at(&default, date(2026, 11, 1)),
            utc("2026-11-01T12:00:00Z")
        );
    }

    #[test]
    fn a_zone_without_dst_has_the_same_grid_every_day() {
        let full = grid("America/Argentina/Buenos_Aires", full_day(), 60);
        let default = grid(
            "America/Argentina/Buenos_Aires",
            OpeningHours::default(),
            30,
        );
        let mut day = date(2026, 1, 1);
        while day.year() == 2026 {
            let slots = full.day_slots(day);
            assert_eq!(slots.len(), 24, "{day}");
            assert_eq!(slots[23].index, 23);
            let slots = default.day_slots(day);
            assert_eq!(slots.len(), 32, "{day}");
            assert_eq!(slots[0].index, 14);
            assert_eq!(slots[0].start, day.and_hms_opt(10, 0, 0).unwrap().and_utc());
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn opening_in_a_gap_starts_when_the_clocks_jump_and_closing_in_a_repeat_waits_for_the_second_pass()
     {
        // 02:30 does not exist in Madrid on 2026-03-29: the day opens at 03:00 CEST (01:00 UTC).
        let spring = grid(
            "Europe/Madrid",
            hours(json!({"sun": [["02:30", "04:00"]]})),
            30,
        );
        let slots = spring.day_slots(date(2026, 3, 29));
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].start, utc("2026-03-29T01:00:00Z"));
        assert_eq!(slots[1].end, utc("2026-03-29T02:00:00Z"));

        // 02:00–02:30 happens twice on 2026-10-25: open at the first 02:00 (00:00 UTC), close at
        // the second 02:30 (01:30 UTC).
        let autumn = grid(
            "Europe/Madrid",
            hours(json!({"sun": [["02:00", "02:30"]]})),
            30,
        );
        let slots = autumn.day_slots(date(2026, 10, 25));
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[0].start, utc("2026-10-25T00:00:00Z"));
        assert_eq!(slots[2].end, utc("2026-10-25T01:30:00Z"));
        assert_well_formed(&slots, date(2026, 10, 25), 30);
    }

    #[test]
    fn intervals_touching_at_a_repeated_time_do_not_overlap() {
        let grid = grid(
            "Europe/Madrid",
            hours(json!({"sun": [["01:00", "02:30"], ["02:30", "04:00"]]})),
            30,
        );
        let day = date(2026, 10, 25);
        let slots = grid.day_slots(day);
        assert_well_formed(&slots, day, 30);
        // 01:00 CEST (23:00 UTC) to 04:00 CET (03:00 UTC): four hours, eight slots.
        assert_eq!(slots.len(), 8);
        assert_eq!(grid.bits_for_day(day), 10);
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_counts_indices_from_the_jump() {
        // Santiago springs forward from 00:00 to 01:00 on 2026-09-06.
        let grid = grid("America/Santiago", full_day(), 60);
        let day = date(2026, 9, 6);
        assert_eq!(grid.day_start(day), Some(utc("2026-09-06T04:00:00Z")));
        let slots = grid.day_slots(day);
        assert_eq!(slots.len(), 23);
        assert_eq!(slots[0].index, 0);
        assert_eq!(slots[0].start, utc("2026-09-06T04:00:00Z"));
        let previous = grid.day_slots(date(2026, 9, 5));
        assert_eq!(previous.len(), 24);
        assert_eq!(previous[23].end, slots[0].start);
    }

    #[test]
    fn a_midnight_close_ends_where_the_next_day_begins_even_when_midnight_repeats() {
        // Havana falls back from 01:00 to 00:00 on 2026-11-01: midnight happens twice.
        let grid = grid("America/Havana", full_day(), 60);
        let saturday = grid.day_slots(date(2026, 10, 31));
        let sunday = grid.day_slots(date(2026, 11, 1));
        assert_eq!(saturday.len(), 24);
        assert_eq!(sunday.len(), 25);
        assert_eq!(saturday[23].end, sunday[0].start);
        assert_eq!(sunday[0].index, 0);
        assert_eq!(sunday[0].start, utc("2026-11-01T04:00:00Z"));
    }

    #[test]
    fn aligned_bookings_fit_with_their_slot_indices() {
        let grid = grid("Europe/Madrid", OpeningHours::default(), 30);
        // 2026-06-10 19:00–19:30 CEST.
        let single = range(utc("2026-06-10T17:00:00Z"), utc("2026-06-10T17:30:00Z"));
        assert_eq!(
            grid.fit(&single),
            Ok(Fit {
                date: date(2026, 6, 10),
                first: 38,
                last: 38
            })
        );
        // 07:00–09:00 CEST: the first four slots of the day.
        let multi = range(utc("2026-06-10T05:00:00Z"), utc("2026-06-10T07:00:00Z"));
        let fit = grid.fit(&multi).unwrap();
        assert_eq!((fit.first, fit.last, fit.slot_count()), (14, 17, 4));
        // The last slot, 22:30–23:00.
        let last = range(utc("2026-06-10T20:30:00Z"), utc("2026-06-10T21:00:00Z"));
        assert_eq!(grid.fit(&last).unwrap().last, 45);
    }

    #[test]
    fn misaligned_bookings_inside_opening_hours_are_refused_as_misaligned() {
        let grid = grid("Europe/Madrid", OpeningHours::default(), 30);
        let start = range(utc("2026-06-10T17:10:00Z"), utc("2026-06-10T17:30:00Z"));
        assert_eq!(grid.fit(&start), Err(GridError::Misaligned));
        let end = range(utc("2026-06-10T17:00:00Z"), utc("2026-06-10T17:45:00Z"));
        assert_eq!(grid.fit(&end), Err(GridError::Misaligned));
        let seconds = range(utc("2026-06-10T17:00:01Z"), utc("2026-06-10T17:30:01Z"));
        assert_eq!(grid.fit(&seconds), Err(GridError::Misaligned));
        assert_eq!(GridError::Misaligned.code(), "misaligned_slot");
    }

    #[test]
    fn bookings_reaching_outside_opening_hours_are_refused_as_outside() {
        let default = grid("Europe/Madrid", OpeningHours::default(), 30);
        // 22:30–23:30 CEST: past the 23:00 close.
        let late = range(utc("2026-06-10T20:30:00Z"), utc("2026-06-10T21:30:00Z"));
        assert_eq!(default.fit(&late), Err(GridError::OutsideOpeningHours));
        // 06:30–07:30 CEST: before opening.
        let early = range(utc("2026-06-10T04:30:00Z"), utc("2026-06-10T05:30:00Z"));
        assert_eq!(default.fit(&early), Err(GridError::OutsideOpeningHours));
        // Across midnight of a full-day grid: two local dates.
        let full = grid("Europe/Madrid", full_day(), 60);
        let overnight = range(utc("2026-06-10T21:00:00Z"), utc("2026-06-10T23:00:00Z"));
        assert_eq!(full.fit(&overnight), Err(GridError::OutsideOpeningHours));
        assert_eq!(
            GridError::OutsideOpeningHours.code(),
            "outside_opening_hours"
        );
    }

    #[test]
    fn a_booking_across_the_lunch_break_of_a_split_day_is_outside_opening_hours() {
        let grid = grid("Europe/Madrid", split_day(), 60);
        // 13:00–17:00 CEST spans the 14:00–16:00 break.
        let across = range(utc("2026-06-10T11:00:00Z"), utc("2026-06-10T15:00:00Z"));
        assert_eq!(grid.fit(&across), Err(GridError::OutsideOpeningHours));
        // 16:00–17:00 CEST is the first afternoon slot.
        let afternoon = range(utc("2026-06-10T14:00:00Z"), utc("2026-06-10T15:00:00Z"));
        assert_eq!(grid.fit(&afternoon).unwrap().first, 16);
        assert_eq!(grid.day_slots(date(2026, 6, 10)).len(), 7 + 6);
    }

    #[test]
    fn nothing_fits_on_a_closed_day() {
        let grid = grid(
            "Europe/Madrid",
            hours(json!({"mon": [["07:00", "23:00"]], "tue": []})),
            30,
        );
        // 2026-06-09 is a Tuesday.
        let tuesday = range(utc("2026-06-09T17:00:00Z"), utc("2026-06-09T17:30:00Z"));
        assert_eq!(grid.fit(&tuesday), Err(GridError::OutsideOpeningHours));
        assert!(grid.day_slots(date(2026, 6, 9)).is_empty());
        assert_eq!(grid.bits_for_day(date(2026, 6, 9)), 0);
    }

    #[test]
    fn ninety_minute_slots_start_at_opening_and_drop_the_partial_last_one() {
        let grid = grid("Europe/Madrid", OpeningHours::default(), 90);
        let day = date(2026, 6, 10);
        let slots = grid.day_slots(day);
        // 07:00–23:00 is 16 hours: ten 90-minute slots and a dropped hour.
        assert_eq!(slots.len(), 10);
        assert_well_formed(&slots, day, 90);
        assert_eq!(slots[0].start, utc("2026-06-10T05:00:00Z"));
        assert_eq!(slots[0].index, 4);
        assert_eq!(slots[9].end, utc("2026-06-10T20:00:00Z"));
        // 08:30–11:30 is two slots; 08:00–09:30 is off the grid; 22:00–23:00 is the dropped tail.
        let two = range(utc("2026-06-10T06:30:00Z"), utc("2026-06-10T09:30:00Z"));
        assert_eq!(grid.fit(&two).map(|f| (f.first, f.last)), Ok((5, 6)));
        let off = range(utc("2026-06-10T06:00:00Z"), utc("2026-06-10T07:30:00Z"));
        assert_eq!(grid.fit(&off), Err(GridError::Misaligned));
        let tail = range(utc("2026-06-10T20:00:00Z"), utc("2026-06-10T21:00:00Z"));
        assert_eq!(grid.fit(&tail), Err(GridError::Misaligned));
    }

    #[test]
    fn weekly_bookings_keep_their_local_time_across_the_autumn_change() {
        // Tuesday 2026-10-13 19:00–20:00 CEST.
        let first = range(utc("2026-10-13T17:00:00Z"), utc("2026-10-13T18:00:00Z"));
        let series = weekly(zone("Europe/Madrid"), &first, 4);
        let starts: Vec<DateTime<Utc>> = series.iter().map(|o| o.unwrap().start()).collect();
        assert_eq!(
            starts,
            [
                utc("2026-10-13T17:00:00Z"),
                utc("2026-10-20T17:00:00Z"),
                utc("2026-10-27T18:00:00Z"),
                utc("2026-11-03T18:00:00Z"),
            ]
        );
        for occurrence in &series {
            let occurrence = occurrence.unwrap();
            assert_eq!(occurrence.duration(), Duration::hours(1));
            assert_eq!(
                local_weekday_hour(zone("Europe/Madrid"), occurrence.start()),
                (1, 19)
            );
        }
    }

    #[test]
    fn a_weekly_wall_time_in_the_spring_gap_fails_for_that_week_only() {
        // Sundays 02:30–03:30 CET from 2026-03-15; 02:30 does not exist on 2026-03-29.
        let first = range(utc("2026-03-15T01:30:00Z"), utc("2026-03-15T02:30:00Z"));
        let series = weekly(zone("Europe/Madrid"), &first, 4);
        assert_eq!(series.len(), 4);
        assert!(series[0].is_ok());
        assert_eq!(
            series[1].map(|o| o.start()),
            Ok(utc("2026-03-22T01:30:00Z"))
        );
        assert_eq!(series[2], Err(OccurrenceError::NonexistentLocalTime));
        // 02:30–03:30 CEST.
        assert_eq!(
            series[3].map(|o| (o.start(), o.end())),
            Ok((utc("2026-04-05T00:30:00Z"), utc("2026-04-05T01:30:00Z")))
        );
        assert_eq!(
            OccurrenceError::NonexistentLocalTime.code(),
            "nonexistent_local_time"
        );
        assert!(weekly(zone("Europe/Madrid"), &first, 0).is_empty());
    }

    #[test]
    fn a_weekly_series_landing_on_the_repeated_hour_covers_its_whole_wall_clock_span() {
        // Sundays 02:00–03:00 CEST from 2026-10-18; 2026-10-25 repeats 02:00–03:00.
        let first = range(utc("2026-10-18T00:00:00Z"), utc("2026-10-18T01:00:00Z"));
        let series = weekly(zone("Europe/Madrid"), &first, 2);
        assert_eq!(
            series[1].map(|o| (o.start(), o.end())),
            Ok((utc("2026-10-25T00:00:00Z"), utc("2026-10-25T02:00:00Z")))
        );
    }

    #[test]
    fn slots_overlapping_a_local_week_are_seven_days_in_order() {
        let grid = grid("Europe/Madrid", OpeningHours::default(), 30);
        // Monday 2026-10-19 00:00 CEST to Monday 2026-10-26 00:00 CET, across the change.
        let from = grid.day_start(date(2026, 10, 19)).unwrap();
        let to = grid.day_start(date(2026, 10, 26)).unwrap();
        let slots = grid.slots_overlapping(from, to);
        assert_eq!(slots.len(), 7 * 32);
        assert!(slots.windows(2).all(|pair| pair[0].end <= pair[1].start));
        let dates: Vec<NaiveDate> = grid.local_dates(from, to);
        assert_eq!(dates.len(), 7);
        assert_eq!(dates[0], date(2026, 10, 19));
        assert_eq!(dates[6], date(2026, 10, 25));
        for (day, chunk) in dates.iter().zip(slots.chunks(32)) {
            assert!(chunk.iter().all(|s| s.date == *day));
        }
    }

    #[test]
    fn slots_overlapping_part_of_a_day_are_only_those_that_overlap() {
        let grid = grid("Europe/Madrid", OpeningHours::default(), 30);
        // 10:15–11:15 CEST touches the 10:00, 10:30 and 11:00 slots.
        let slots =
            grid.slots_overlapping(utc("2026-06-10T08:15:00Z"), utc("2026-06-10T09:15:00Z"));
        let indices: Vec<u32> = slots.iter().map(|s| s.index).collect();
        assert_eq!(indices, [20, 21, 22]);
        // Touching a slot's end is no overlap.
        let touching =
            grid.slots_overlapping(utc("2026-06-10T08:30:00Z"), utc("2026-06-10T09:00:00Z"));
        assert_eq!(touching.iter().map(|s| s.index).collect::<Vec<_>>(), [21]);
        assert!(
            grid.slots_overlapping(utc("2026-06-10T09:00:00Z"), utc("2026-06-10T09:00:00Z"))
                .is_empty()
        );
    }

    #[test]
    fn local_weekday_and_hour_follow_the_zone_around_utc_midnight() {
        let new_york = zone("America/New_York");
        // Tuesday 2026-01-06 02:00 UTC is Monday 21:00 in New York.
        assert_eq!(
            local_weekday_hour(new_york, utc("2026-01-06T02:00:00Z")),
            (0, 21)
        );
        assert_eq!(
            local_weekday_hour(new_york, utc("2026-01-06T04:59:59Z")),
            (0, 23)
        );
        assert_eq!(
            local_weekday_hour(new_york, utc("2026-01-06T05:00:00Z")),
            (1, 0)
        );
        // Sunday 23:30 UTC is Sunday 19:30 in summer.
        assert_eq!(
            local_weekday_hour(new_york, utc("2026-07-05T23:30:00Z")),
            (6, 19)
        );
    }

    #[test]
    fn the_edges_of_the_calendar_do_not_panic() {
        let grid = grid("Pacific/Kiritimati", full_day(), 60);
        assert!(grid.day_slots(NaiveDate::MAX).len() <= 24);
        assert!(grid.day_slots(NaiveDate::MIN).len() <= 24);
        let _ = grid.local_date(DateTime::<Utc>::MAX_UTC);
        let _ = grid.local_dates(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC);
        let _ = local_weekday_hour(zone("Pacific/Kiritimati"), DateTime::<Utc>::MAX_UTC);
        let late = range(
            DateTime::<Utc>::MAX_UTC - Duration::hours(2),
            DateTime::<Utc>::MAX_UTC,
        );
        let _ = grid.fit(&late);
        let series = weekly(zone("Pacific/Kiritimati"), &late, 3);
        assert_eq!(series.len(), 3);
        assert_eq!(series[1], Err(OccurrenceError::OutOfRange));
    }

    const ZONES: [&str; 5] = [
        "Europe/Madrid",
        "America/New_York",
        "America/Argentina/Buenos_Aires",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ];

    proptest! {
        #[test]
        fn every_slot_is_whole_disjoint_and_fits_itself(
            day in 0u64..(7 * 366),
            zone_index in 0..ZONES.len(),
            slot in prop::sample::select(vec![15i64, 30, 45, 60, 90]),
            shape in 0..3usize,
        ) {
            let day = date(2024, 1, 1) + chrono::Days::new(day);
            let hours = match shape {
                0 => OpeningHours::default(),
                1 => full_day(),
                _ => split_day(),
            };
            let grid = grid(ZONES[zone_index], hours, slot);
            let slots = grid.day_slots(day);
            prop_assert!(!slots.is_empty());
            for s in &slots {
                prop_assert_eq!(s.end - s.start, Duration::minutes(slot));
                prop_assert_eq!(s.date, day);
                prop_assert_eq!(grid.local_date(s.start), day);
                prop_assert_eq!(
                    grid.fit(&range(s.start, s.end)),
                    Ok(Fit { date: day, first: s.index, last: s.index })
                );
                prop_assert_eq!(grid.slots_overlapping(s.start, s.end), vec![*s]);
            }
            for pair in slots.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start);
                prop_assert!(pair[0].index < pair[1].index);
            }
            prop_assert_eq!(grid.bits_for_day(day), slots[slots.len() - 1].index + 1);
            // Consecutive days never overlap.
            let next = grid.day_slots(day.succ_opt().unwrap());
            prop_assert!(slots[slots.len() - 1].end <= next[0].start);
        }
    }
}
