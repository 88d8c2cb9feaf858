//! A facility's week as the page lays it out: seven local days, each with its slots in order and
//! each slot's state, from the booking service's availability (the same answer the API gives).

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use clubpulse_booking::{
    FacilityContext,
    availability::{FacilityAvailability, SlotState},
};

use super::i18n::{Lang, Text};

/// One slot on the page.
#[derive(Debug, Clone)]
pub struct SlotCell {
    /// `free`, `held`, `booked` or `closed` (the `data-state` browser tests and scripts read).
    pub state: &'static str,
    /// The slot's local start, "09:30".
    pub time: String,
    /// RFC 3339 instants, for the form and for live updates.
    pub start: String,
    pub end: String,
    /// What the slot is, in words ("Free", "Booked"), so state never rests on colour alone.
    pub label: &'static str,
}

impl SlotCell {
    /// The form value naming this slot.
    pub fn value(&self) -> String {
        format!("{}/{}", self.start, self.end)
    }

    pub fn is_free(&self) -> bool {
        self.state == "free"
    }

    pub fn is_taken(&self) -> bool {
        matches!(self.state, "held" | "booked")
    }
}

/// One local day of the week.
#[derive(Debug, Clone)]
pub struct DayColumn {
    pub label: String,
    pub date: String,
    pub slots: Vec<SlotCell>,
}

/// The week starting at a local date.
#[derive(Debug, Clone)]
pub struct Week {
    pub days: Vec<DayColumn>,
    pub first: NaiveDate,
}

impl Week {
    /// The instants the week spans in the club's time zone: from the first day's midnight to the
    /// eighth day's (a DST change makes one of them 23 or 25 hours long).
    pub fn span(ctx: &FacilityContext, first: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = ctx.grid.day_start(first).unwrap_or_else(Utc::now);
        let end = first
            .checked_add_days(Days::new(7))
            .and_then(|d| ctx.grid.day_start(d))
            .unwrap_or(start + chrono::Duration::days(7));
        (start, end)
    }

    pub fn build(
        ctx: &FacilityContext,
        first: NaiveDate,
        availability: &FacilityAvailability,
        lang: Lang,
    ) -> Self {
        let t = lang.text();
        let states: HashMap<DateTime<Utc>, SlotState> = availability
            .slots
            .iter()
            .map(|s| (s.start, s.state))
            .collect();
        let tz = ctx.time_zone().tz();
        let (from, to) = Self::span(ctx, first);
        let mut by_date: HashMap<NaiveDate, Vec<SlotCell>> = HashMap::new();
        for slot in ctx.grid.slots_overlapping(from, to) {
            let state = states
                .get(&slot.start)
                .copied()
                .unwrap_or(SlotState::Closed);
            let (state, label) = describe(state, t);
            by_date.entry(slot.date).or_default().push(SlotCell {
                state,
                time: slot.start.with_timezone(&tz).format("%H:%M").to_string(),
                start: slot
                    .start
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                end: slot.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                label,
            });
        }
        let days = (0..7)
            .filter_map(|i| first.checked_add_days(Days::new(i)))
            .map(|date| DayColumn {
                label: lang.day_label(date),
                date: date.to_string(),
                slots: by_date.remove(&date).unwrap_or_default(),
            })
            .collect();
        Self { days, first }
    }

    pub fn previous(&self) -> String {
        self.first
            .checked_sub_days(Days::new(7))
            .unwrap_or(self.first)
            .to_string()
    }

    pub fn next(&self) -> String {
        self.first
            .checked_add_days(Days::new(7))
            .unwrap_or(self.first)
            .to_string()
    }
}

/// A slot state's `data-state` value and its words.
pub fn describe(state: SlotState, t: &Text) -> (&'static str, &'static str) {
    match state {
        SlotState::Free => ("free", t.state_free),
        SlotState::Held => ("held", t.state_held),
        SlotState::Booked => ("booked", t.state_booked),
        SlotState::Closed => ("closed", t.state_closed),
    }
}
