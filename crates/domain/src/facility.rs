//! Facilities: the courts, pools and rooms a club rents out, and the rules their fields obey.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    user::text,
    validation::{FieldError, Validation, invalid},
};

/// A facility's name: trimmed, 1 to 120 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FacilityName(String);

impl FacilityName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for FacilityName {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        text(raw, 120).map(Self)
    }
}

/// The sport a facility is for, as a lower-case slug (`tennis`, `padel`, `football-5`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sport(String);

impl Sport {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Sport {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let slug = raw.trim().to_lowercase();
        let mut chars = slug.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !(2..=32).contains(&slug.len()) || !starts_with_letter || !rest_ok {
            return Err(invalid(
                "must be 2 to 32 characters of a-z, 0-9, '-' or '_', starting with a letter",
            ));
        }
        Ok(Self(slug))
    }
}

/// Free text shown to members: at most 4,000 characters; line breaks allowed, other control
/// characters not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 4000;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Description {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let value = raw.trim();
        if value.chars().count() > Self::MAX_CHARS {
            return Err(invalid(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(invalid("must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }
}

/// Structured facts about a facility (`covered`, `lighting`, `surface`, `capacity`, `amenities`…):
/// a JSON object of at most 16 KiB and 5 levels, so that search can render it into phrases.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(transparent)]
pub struct Specifications(Map<String, Value>);

impl Specifications {
    pub const MAX_BYTES: usize = 16 * 1024;
    pub const MAX_DEPTH: usize = 5;

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

impl TryFrom<Value> for Specifications {
    type Error = FieldError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        fn depth(value: &Value) -> usize {
            match value {
                Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
                Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        let Value::Object(map) = value else {
            return Err(invalid("must be a JSON object"));
        };
        let value = Value::Object(map);
        if value.to_string().len() > Self::MAX_BYTES {
            return Err(invalid(format!(
                "must be at most {} bytes of JSON",
                Self::MAX_BYTES
            )));
        }
        if depth(&value) > Self::MAX_DEPTH {
            return Err(invalid(format!(
                "must nest at most {} levels",
                Self::MAX_DEPTH
            )));
        }
        let Value::Object(map) = value else {
            unreachable!("checked to be an object above")
        };
        Ok(Self(map))
    }
}

/// The length of one bookable slot, in minutes: 5 to 480, in steps of 5. Default 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SlotMinutes(u16);

impl SlotMinutes {
    pub const DEFAULT: Self = Self(30);

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for SlotMinutes {
    type Error = FieldError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        match u16::try_from(raw) {
            Ok(minutes) if (5..=480).contains(&minutes) && minutes % 5 == 0 => Ok(Self(minutes)),
            _ => Err(invalid("must be a multiple of 5 between 5 and 480")),
        }
    }
}

/// Minutes kept free after every booking (cleaning, changeover): 0 to 240. Default 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct BufferMinutes(u16);

impl BufferMinutes {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for BufferMinutes {
    type Error = FieldError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        match u16::try_from(raw) {
            Ok(minutes) if minutes <= 240 => Ok(Self(minutes)),
            _ => Err(invalid("must be between 0 and 240")),
        }
    }
}

/// The price of one slot in the currency's minor unit (cents): 0 to 100,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct PriceCents(i64);

impl PriceCents {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PriceCents {
    type Error = FieldError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        if (0..=100_000_000).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(invalid("must be between 0 and 100000000 (minor units)"))
        }
    }
}

/// An ISO 4217 currency code (`EUR`, `ARS`, `MXN`). Default `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn eur() -> Self {
        Self("EUR".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Currency {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(invalid("must be a three-letter ISO 4217 code such as EUR"))
        }
    }
}

/// The days of the week as opening hours name them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When a facility is open, per weekday, in the club's local time: up to four sorted, disjoint
/// `[open, close)` intervals a day, in minutes after local midnight (`close` may be 24:00). A day with
/// no intervals is closed.
#[derive(Clone, PartialEq, Eq)]
pub struct OpeningHours([Vec<(u16, u16)>; 7]);

impl OpeningHours {
    const MAX_INTERVALS: usize = 4;

    /// The same interval every day.
    pub fn every_day(open: u16, close: u16) -> Self {
        Self(std::array::from_fn(|_| vec![(open, close)]))
    }

    /// Intervals of a weekday, 0 = Monday.
    pub fn day(&self, weekday_from_monday: usize) -> &[(u16, u16)] {
        self.0.get(weekday_from_monday).map_or(&[], Vec::as_slice)
    }

    /// The JSON shape clients send and receive: `{"mon": [["07:00","23:00"]], …}`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, intervals) in WEEKDAYS.iter().zip(&self.0) {
            let pairs = intervals
                .iter()
                .map(|&(open, close)| Value::from(vec![clock(open), clock(close)]))
                .collect();
            map.insert((*name).to_owned(), Value::Array(pairs));
        }
        Value::Object(map)
    }
}

impl Default for OpeningHours {
    /// 07:00 to 23:00 every day.
    fn default() -> Self {
        Self::every_day(7 * 60, 23 * 60)
    }
}

impl fmt::Debug for OpeningHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpeningHours({})", self.to_json())
    }
}

impl Serialize for OpeningHours {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
fn parse_clock(value: &Value) -> Result<u16, FieldError> {
    let bad = || invalid("must be a time of day as \"HH:MM\" between 00:00 and 24:00");
    let text = value.as_str().ok_or_else(bad)?;
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl TryFrom<&Value> for OpeningHours {
    type Error = Vec<FieldError>;

    fn try_from(value: &Value) -> Result<Self, Self::Error> {
        let Value::Object(map) = value else {
            return Err(vec![invalid(
                "must be an object keyed by weekday (mon … sun), each a list of [\"HH:MM\", \"HH:MM\"]",
            )]);
        };
        let mut check = Validation::new();
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for key in map.keys() {
            if !WEEKDAYS.contains(&key.as_str()) {
                check.push(FieldError::new(
                    key.clone(),
                    "is not a weekday; use mon, tue, wed, thu, fri, sat, sun",
                ));
            }
        }
        for (index, name) in WEEKDAYS.iter().enumerate() {
            let Some(day) = map.get(*name) else { continue };
            let Some(intervals) = day.as_array() else {
                check.push(FieldError::new(
                    *name,
                    "must be a list of [\"HH:MM\", \"HH:MM\"] pairs",
                ));
                continue;
            };
            if intervals.len() > Self::MAX_INTERVALS {
                check.push(FieldError::new(
                    *name,
                    format!("must have at most {} intervals", Self::MAX_INTERVALS),
                ));
                continue;
            }
            for (i, interval) in intervals.iter().enumerate() {
                let field = format!("{name}[{i}]");
                let pair = interval.as_array().filter(|pair| pair.len() == 2);
                let Some(pair) = pair else {
                    check.push(FieldError::new(
                        field,
                        "must be a pair [\"HH:MM\", \"HH:MM\"]",
                    ));
                    continue;
                };
                let open = check.check(&format!("{field}[0]"), parse_clock(&pair[0]));
                let close = check.check(&format!("{field}[1]"), parse_clock(&pair[1]));
                let (Some(open), Some(close)) = (open, close) else {
                    continue;
                };
                if open >= close {
                    check.push(FieldError::new(field, "must open before it closes"));
                } else if days[index]
                    .last()
                    .is_some_and(|&(_, previous_close)| previous_close > open)
                {
                    check.push(FieldError::new(
                        field,
                        "must start after the previous interval ends",
                    ));
                } else {
                    days[index].push((open, close));
                }
            }
        }
        check.finish(|| Self(days))
    }
}

/// Raw facility fields as a client sent them; [`NewFacility::parse`] and [`FacilityPatch::parse`]
/// turn them into checked values and name every invalid field.
#[derive(Debug, Default, Clone)]
pub struct FacilityInput {
    pub name: Option<String>,
    pub sport: Option<String>,
    pub description: Option<String>,
    pub specifications: Option<Value>,
    pub opening_hours: Option<Value>,
    pub slot_minutes: Option<i64>,
    pub buffer_minutes: Option<i64>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
}

/// A facility's editable fields, every one valid.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFacility {
    pub club_id: Uuid,
    pub name: FacilityName,
    pub sport: Sport,
    pub description: Description,
    pub specifications: Specifications,
    pub opening_hours: OpeningHours,
    pub slot_minutes: SlotMinutes,
    pub buffer_minutes: BufferMinutes,
    pub price_cents: PriceCents,
    pub currency: Currency,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FacilityPatch {
    pub name: Option<FacilityName>,
    pub sport: Option<Sport>,
    pub description: Option<Description>,
    pub specifications: Option<Specifications>,
    pub opening_hours: Option<OpeningHours>,
    pub slot_minutes: Option<SlotMinutes>,
    pub buffer_minutes: Option<BufferMinutes>,
    pub price_cents: Option<PriceCents>,
    pub currency: Option<Currency>,
}

impl FacilityPatch {
    pub fn parse(input: FacilityInput) -> Result<Self, Vec<FieldError>> {
        let mut check = Validation::new();
        let patch = Self {
            name: input
                .name
                .and_then(|v| check.check("name", FacilityName::try_from(v.as_str()))),
            sport: input
                .sport
                .and_then(|v| check.check("sport", Sport::try_from(v.as_str()))),
            description: input
                .description
                .and_then(|v| check.check("description", Description::try_from(v.as_str()))),
            specifications: input
                .specifications
                .and_then(|v| check.check("specifications", Specifications::try_from(v))),
            opening_hours: input
                .opening_hours
                .and_then(|v| match OpeningHours::try_from(&v) {
                    Ok(hours) => Some(hours),
                    Err(errors) => {
                        for error in errors {
                            check.push(error.within("opening_hours"));
                        }
                        None
                    }
                }),
            slot_minutes: input
                .slot_minutes
                .and_then(|v| check.check("slot_minutes", SlotMinutes::try_from(v))),
            buffer_minutes: input
                .buffer_minutes
                .and_then(|v| check.check("buffer_minutes", BufferMinutes::try_from(v))),
            price_cents: input
                .price_cents
                .and_then(|v| check.check("price_cents", PriceCents::try_from(v))),
            currency: input
                .currency
                .and_then(|v| check.check("currency", Currency::try_from(v.as_str()))),
        };
        check.finish(|| patch)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl NewFacility {
    /// Checks every field; `name` and `sport` are required, the rest take their defaults.
    pub fn parse(club_id: Uuid, input: FacilityInput) -> Result<Self, Vec<FieldError>> {
        let mut missing = Vec::new();
        if input.name.is_none() {
            missing.push(FieldError::new("name", "is required"));
        }
        if input.sport.is_none() {
            missing.push(FieldError::new("sport", "is required"));
        }
        let patch = FacilityPatch::parse(input);
        let patch = match (patch, missing.is_empty()) {
            (Ok(patch), true) => patch,
            (Ok(_), false) => return Err(missing),
            (Err(mut errors), _) => {
                errors.extend(missing);
                return Err(errors);
            }
        };
        let (Some(name), Some(sport)) = (patch.name, patch.sport) else {
            unreachable!("required fields were checked above")
        };
        Ok(Self {
            club_id,
            name,
            sport,
            description: patch.description.unwrap_or_default(),
            specifications: patch.specifications.unwrap_or_default(),
            opening_hours: patch.opening_hours.unwrap_or_default(),
            slot_minutes: patch.slot_minutes.unwrap_or(SlotMinutes::DEFAULT),
            buffer_minutes: patch.buffer_minutes.unwrap_or_default(),
            price_cents: patch.price_cents.unwrap_or_default(),
            currency: patch.currency.unwrap_or_else(Currency::eur),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn opening_hours_default_to_seven_to_eleven_every_day() {
        let json = OpeningHours::default().to_json();
        assert_eq!(json["mon"], json!([["07:00", "23:00"]]));
        assert_eq!(json["sun"], json!([["07:00", "23:00"]]));
    }

    #[test]
    fn opening_hours_round_trip_and_missing_days_are_closed() {
        let raw = json!({"mon": [["07:00", "12:00"], ["16:00", "24:00"]], "sat": []});
        let hours = OpeningHours::try_from(&raw).unwrap();
        assert_eq!(hours.day(0), &[(420, 720), (960, 1440)]);
        assert!(hours.day(5).is_empty());
        assert!(hours.day(6).is_empty());
        assert_eq!(hours.to_json()["mon"], raw["mon"]);
    }

    #[test]
    fn opening_hours_name_each_bad_interval() {
        let raw = json!({
            "mon": [["09:00", "08:00"]],
            "tue": [["07:00", "12:00"], ["11:00", "13:00"]],
            "wed": [["7:00", "12:00"]],
            "thu": [["07:00", "24:30"]],
            "fri": "all day",
            "funday": []
        });
        let errors = OpeningHours::try_from(&raw).unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "funday",
                "mon[0]",
                "tue[1]",
                "wed[0][0]",
                "thu[0][1]",
                "fri"
            ]
        );
        assert!(OpeningHours::try_from(&json!([])).is_err());
    }

    #[test]
    fn a_new_facility_needs_a_name_and_a_sport_and_defaults_the_rest() {
        let club = Uuid::nil();
        let errors = NewFacility::parse(club, FacilityInput::default()).unwrap_err();
        assert_eq!(fields(&errors), ["name", "sport"]);

        let facility = NewFacility::parse(
            club,
            FacilityInput {
                name: Some("Pista 1".into()),
                sport: Some("Padel".into()),
                ..FacilityInput::default()
            },
        )
        .unwrap();
        assert_eq!(facility.sport.as_str(), "padel");
        assert_eq!(facility.slot_minutes.get(), 30);
        assert_eq!(facility.currency.as_str(), "EUR");
        assert_eq!(facility.opening_hours, OpeningHours::default());
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let input = FacilityInput {
            name: Some(" ".into()),
            sport: Some("1tennis".into()),
            description: Some("bad\u{0007}bell".into()),
            specifications: Some(json!([1, 2])),
            opening_hours: Some(json!({"mon": [["25:00", "26:00"]]})),
            slot_minutes: Some(7),
            buffer_minutes: Some(-1),
            price_cents: Some(-5),
            currency: Some("EURO".into()),
        };
        let errors = FacilityPatch::parse(input).unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "name",
                "sport",
                "description",
                "specifications",
                "opening_hours.mon[0][0]",
                "opening_hours.mon[0][1]",
                "slot_minutes",
                "buffer_minutes",
                "price_cents",
                "currency"
            ]
        );
    }

    #[test]
    fn specifications_are_bounded_in_size_and_depth() {
        assert!(Specifications::try_from(json!({"covered": true, "surface": "clay"})).is_ok());
        assert!(
            Specifications::try_from(json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})).is_err()
        );
        assert!(Specifications::try_from(json!({"notes": "x".repeat(20_000)})).is_err());
    }

    #[test]
    fn slot_lengths_are_multiples_of_five_within_a_working_day() {
        for ok in [5, 30, 90, 480] {
            assert!(SlotMinutes::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [0, 4, 7, 485, -30, i64::MAX] {
            assert!(SlotMinutes::try_from(bad).is_err(), "{bad}");
        }
    }
}
