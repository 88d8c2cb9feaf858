//! Booking rules that need no database: statuses, timing rules, counts and the cancellation policy.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Duration, Utc};

use crate::{
    time::TimeRange,
    validation::{FieldError, invalid},
};

/// Where a booking is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BookingStatus {
    /// Protects the slot until its expiry while the member pays.
    Held,
    Confirmed,
    Cancelled,
    /// A hold that ran out before it was confirmed.
    Expired,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Whether the booking blocks its slot.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Held | Self::Confirmed)
    }
}

impl FromStr for BookingStatus {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "held" => Ok(Self::Held),
            "confirmed" => Ok(Self::Confirmed),
            "cancelled" => Ok(Self::Cancelled),
            "expired" => Ok(Self::Expired),
            _ => Err(invalid("must be held, confirmed, cancelled or expired")),
        }
    }
}

impl fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a booking may start, relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingWindow {
    /// How far ahead a booking may start, in days.
    pub days: u32,
    /// How soon a booking may start, in minutes.
    pub min_notice_minutes: u32,
}

/// A booking that starts at the wrong time relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("the booking starts in the past")]
    InThePast,
    #[error("the booking starts sooner than the minimum notice allows")]
    InsufficientNotice,
    #[error("the booking starts beyond the booking window")]
    BeyondWindow,
}

impl TimingError {
    /// The stable problem code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InThePast => "in_the_past",
            Self::InsufficientNotice => "insufficient_notice",
            Self::BeyondWindow => "beyond_booking_window",
        }
    }
}

impl BookingWindow {
    pub fn check(&self, range: &TimeRange, now: DateTime<Utc>) -> Result<(), TimingError> {
        if range.start() < now {
            return Err(TimingError::InThePast);
        }
        if range.start() < now + Duration::minutes(i64::from(self.min_notice_minutes)) {
            return Err(TimingError::InsufficientNotice);
        }
        if range.start() > now + Duration::days(i64::from(self.days)) {
            return Err(TimingError::BeyondWindow);
        }
        Ok(())
    }
}

/// How many places of a class one enrolment takes: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spots(u16);

impl Spots {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Spots {
    type Error = FieldError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        match u16::try_from(raw) {
            Ok(n) if (1..=100).contains(&n) => Ok(Self(n)),
            _ => Err(invalid("must be between 1 and 100")),
        }
    }
}

/// How many places a class has: 1 to 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity(u16);

impl Capacity {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Capacity {
    type Error = FieldError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        match u16::try_from(raw) {
            Ok(n) if (1..=10_000).contains(&n) => Ok(Self(n)),
            _ => Err(invalid("must be between 1 and 10000")),
        }
    }
}

/// How many weeks a recurring booking repeats: 1 to 26.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weeks(u8);

impl Weeks {
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Weeks {
    type Error = FieldError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        match u8::try_from(raw) {
            Ok(n) if (1..=26).contains(&n) => Ok(Self(n)),
            _ => Err(invalid("must be between 1 and 26")),
        }
    }
}

/// A club's cancellation policy: free until `free_minutes` before the start, then a fee of
/// `fee_percent` of the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancellationPolicy {
    pub free_minutes: u32,
    pub fee_percent: u8,
}

impl Default for CancellationPolicy {
    /// Free until 24 hours before the start, then half the price.
    fn default() -> Self {
        Self {
            free_minutes: 24 * 60,
            fee_percent: 50,
        }
    }
}

impl CancellationPolicy {
    /// Checks a policy's two numbers: up to 30 days of notice, a fee of 0 to 100 %.
    pub fn new(free_minutes: i64, fee_percent: i64) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let free = u32::try_from(free_minutes).ok().filter(|m| *m <= 43_200);
        if free.is_none() {
            errors.push(FieldError::new(
                "free_cancellation_minutes",
                "must be between 0 and 43200",
            ));
        }
        let fee = u8::try_from(fee_percent).ok().filter(|p| *p <= 100);
        if fee.is_none() {
            errors.push(FieldError::new(
                "late_cancellation_fee_percent",
                "must be between 0 and 100",
            ));
        }
        match (free, fee) {
            (Some(free_minutes), Some(fee_percent)) => Ok(Self {
                free_minutes,
                fee_percent,
            }),
            _ => Err(errors),
        }
    }

    /// The fee a cancellation at `now` records, or `None` when it is free. Rounds down to the cent.
    pub fn fee(&self, price_cents: i64, start: DateTime<Utc>, now: DateTime<Utc>) -> Option<i64> {
        let late = now > start - Duration::minutes(i64::from(self.free_minutes));
        (late && self.fee_percent > 0).then(|| price_cents * i64::from(self.fee_percent) / 100)
    }
}

/// Something that happened to a booking, published after it was committed. Cancellations and
/// expiries release a slot: watchers of that facility may take it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BookingEvent {
    pub kind: BookingEventKind,
    pub booking_id: uuid::Uuid,
    pub facility_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingEventKind {
    Held,
    Confirmed,
    Cancelled,
    Expired,
}

impl BookingEventKind {
    /// Whether the event frees the slot for others.
    pub fn releases_slot(self) -> bool {
        matches!(self, Self::Cancelled | Self::Expired)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, h, m, 0).unwrap()
    }

    #[test]
    fn bookings_must_start_in_the_future_with_notice_and_within_the_window() {
        let window = BookingWindow {
            days: 30,
            min_notice_minutes: 60,
        };
        let now = at(10, 0);
        let range =
            |start: DateTime<Utc>| TimeRange::new(start, start + Duration::minutes(30)).unwrap();
        assert_eq!(
            window.check(&range(at(9, 30)), now),
            Err(TimingError::InThePast)
        );
        assert_eq!(
            window.check(&range(at(10, 30)), now),
            Err(TimingError::InsufficientNotice)
        );
        assert_eq!(window.check(&range(at(11, 0)), now), Ok(()));
        assert_eq!(window.check(&range(now + Duration::days(30)), now), Ok(()));
        assert_eq!(
            window.check(
                &range(now + Duration::days(30) + Duration::minutes(30)),
                now
            ),
            Err(TimingError::BeyondWindow)
        );
        assert_eq!(TimingError::BeyondWindow.code(), "beyond_booking_window");
    }

    #[test]
    fn a_late_cancellation_records_the_policy_fee() {
        let policy = CancellationPolicy {
            free_minutes: 24 * 60,
            fee_percent: 50,
        };
        let start = at(18, 0) + Duration::days(2);
        assert_eq!(policy.fee(2_000, start, at(10, 0)), None);
        assert_eq!(
            policy.fee(2_001, start, start - Duration::hours(2)),
            Some(1_000)
        );
        let free = CancellationPolicy {
            free_minutes: 0,
            fee_percent: 0,
        };
        assert_eq!(free.fee(2_000, start, start - Duration::minutes(1)), None);
    }

    #[test]
    fn counts_are_bounded() {
        assert!(Spots::try_from(0).is_err());
        assert_eq!(Spots::try_from(3).unwrap().get(), 3);
        assert!(Spots::try_from(101).is_err());
        assert!(Capacity::try_from(0).is_err());
        assert!(Capacity::try_from(10_001).is_err());
        assert!(Weeks::try_from(27).is_err());
        assert_eq!(Weeks::try_from(4).unwrap().get(), 4);
        assert_eq!(
            "held".parse::<BookingStatus>().unwrap(),
            BookingStatus::Held
        );
        assert!(BookingStatus::Confirmed.is_active());
        assert!(!BookingStatus::Expired.is_active());
    }
}
