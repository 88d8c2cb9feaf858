//! Instants and intervals. Every instant is UTC; every interval is half-open, `[start, end)`.

use chrono::{DateTime, Duration, Utc};

use crate::validation::{FieldError, invalid};

/// A non-empty half-open interval `[start, end)`: two bookings that merely touch do not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TimeRange {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, FieldError> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(invalid("end must be after start"))
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    /// Whether the two intervals share any instant.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.start < other.end && other.start < self.end
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + minute * 60, 0).unwrap()
    }

    #[test]
    fn an_empty_or_reversed_range_is_refused() {
        assert!(TimeRange::new(at(10), at(10)).is_err());
        assert!(TimeRange::new(at(10), at(5)).is_err());
    }

    #[test]
    fn ranges_that_touch_do_not_overlap() {
        let a = TimeRange::new(at(0), at(30)).unwrap();
        let b = TimeRange::new(at(30), at(60)).unwrap();
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&TimeRange::new(at(29), at(31)).unwrap()));
    }

    proptest! {
        #[test]
        fn overlap_is_symmetric_and_matches_a_minute_by_minute_check(
            a in 0i64..200, la in 1i64..60, b in 0i64..200, lb in 1i64..60
        ) {
            let x = TimeRange::new(at(a), at(a + la)).unwrap();
            let y = TimeRange::new(at(b), at(b + lb)).unwrap();
            let shared = (a..a + la).any(|m| (b..b + lb).contains(&m));
            prop_assert_eq!(x.overlaps(&y), shared);
            prop_assert_eq!(x.overlaps(&y), y.overlaps(&x));
        }
    }
}
