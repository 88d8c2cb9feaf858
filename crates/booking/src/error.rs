//! What can go wrong with a booking request, in the booking service's own words. The HTTP layer
//! maps each variant to a status and a problem `code`; the codes here are the stable ones clients
//! branch on.

use clubpulse_domain::FieldError;
use clubpulse_state::StateError;
use clubpulse_storage::StorageError;

use crate::alternatives::Alternative;

/// Why a booking request was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// The named thing does not exist, or is not the caller's to see. `code` is e.g.
    /// `facility_not_found`.
    #[error("{detail}")]
    NotFound {
        code: &'static str,
        detail: &'static str,
    },
    /// Input that breaks the booking rules (off the slot grid, outside the booking window, …).
    #[error("{detail}")]
    Rule { code: &'static str, detail: String },
    /// Fields that are invalid on their own.
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    /// The time is taken; these are free instead.
    #[error("this time is already taken at this facility")]
    SlotUnavailable { alternatives: Vec<Alternative> },
    /// The request clashes with the booking's current state (`hold_expired`, `too_many_holds`,
    /// `booking_not_active`, `class_full`, …).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The popular-times counters are unreachable (the one shared-state part a request cannot do
    /// without; the availability cache falls back to PostgreSQL).
    #[error("popular times: {0}")]
    PopularTimes(StateError),
    /// Shared state failed in background work (the relay's invalidation or hold mirror).
    #[error(transparent)]
    State(#[from] StateError),
    /// The payment provider failed or refused a call.
    #[error(transparent)]
    Payment(clubpulse_payments::ProviderError),
    /// Stored data the service cannot read (a facility with an unknown time zone, say).
    #[error("{0}")]
    Corrupt(String),
}

impl BookingError {
    pub(crate) fn rule(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Rule {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn facility_not_found() -> Self {
        Self::NotFound {
            code: "facility_not_found",
            detail: "no such facility",
        }
    }

    pub(crate) fn booking_not_found() -> Self {
        Self::NotFound {
            code: "booking_not_found",
            detail: "no such booking",
        }
    }

    pub(crate) fn hold_expired() -> Self {
        Self::conflict(
            "hold_expired",
            "the hold expired before it was confirmed; the slot may have been taken",
        )
    }
}

impl From<sqlx::Error> for BookingError {
    fn from(err: sqlx::Error) -> Self {
        Self::Storage(StorageError::from(err))
    }
}

pub type Result<T, E = BookingError> = std::result::Result<T, E>;
