//! Clubs: the owners of facilities, each living in its own time zone.

use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::{
    user::text,
    validation::{FieldError, invalid},
};

/// A club's name: trimmed, 1 to 120 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClubName(String);

impl ClubName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for ClubName {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        text(raw, 120).map(Self)
    }
}

/// An IANA time zone (`Europe/Madrid`), the frame every slot grid and opening hour is computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl TryFrom<&str> for TimeZone {
    type Error = FieldError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        chrono_tz::Tz::from_str(raw.trim())
            .map(Self)
            .map_err(|_| invalid("must be an IANA time zone such as Europe/Madrid"))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_zones_are_accepted_and_others_refused() {
        assert_eq!(
            TimeZone::try_from("America/Argentina/Buenos_Aires")
                .unwrap()
                .name(),
            "America/Argentina/Buenos_Aires"
        );
        for raw in ["", "Mars/Olympus", "GMT+25", "Madrid"] {
            assert!(TimeZone::try_from(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn club_names_are_trimmed_and_bounded() {
        assert_eq!(
            ClubName::try_from("  Club Náutico ").unwrap().as_str(),
            "Club Náutico"
        );
        assert!(ClubName::try_from("   ").is_err());
        assert!(ClubName::try_from("x".repeat(121).as_str()).is_err());
    }
}
