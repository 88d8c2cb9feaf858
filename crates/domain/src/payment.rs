//! Payment statuses and refund reasons.

use std::{fmt, str::FromStr};

use crate::validation::{FieldError, invalid};

/// Where a payment stands. `pending → succeeded | failed`, `failed → succeeded` (another card on
/// the same intent), `succeeded → refunded` (in full or in part). Nothing moves one back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    /// Some or all of a succeeded payment was given back.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }

    /// Whether money was taken (and not necessarily all given back).
    pub fn is_paid(self) -> bool {
        matches!(self, Self::Succeeded | Self::Refunded)
    }
}

impl FromStr for PaymentStatus {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            "refunded" => Ok(Self::Refunded),
            _ => Err(invalid("must be pending, succeeded, failed or refunded")),
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why money is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The payment arrived after the hold expired and someone else had taken the slot.
    SlotTaken,
    /// The member (or staff) cancelled a paid booking: the price less the policy's fee.
    Cancelled,
    /// The booking was already paid (a second payment, or one for a booking no longer active).
    Duplicate,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SlotTaken => "slot_taken",
            Self::Cancelled => "cancelled",
            Self::Duplicate => "duplicate",
        }
    }
}

impl FromStr for RefundReason {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "slot_taken" => Ok(Self::SlotTaken),
            "cancelled" => Ok(Self::Cancelled),
            "duplicate" => Ok(Self::Duplicate),
            _ => Err(invalid("must be slot_taken, cancelled or duplicate")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons_read_back_what_they_write() {
        for status in [
            PaymentStatus::Pending,
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
        }
        for reason in [
            RefundReason::SlotTaken,
            RefundReason::Cancelled,
            RefundReason::Duplicate,
        ] {
            assert_eq!(reason.as_str().parse::<RefundReason>(), Ok(reason));
        }
        assert!("paid".parse::<PaymentStatus>().is_err());
    }

    #[test]
    fn only_taken_money_counts_as_paid() {
        assert!(PaymentStatus::Succeeded.is_paid());
        assert!(PaymentStatus::Refunded.is_paid());
        assert!(!PaymentStatus::Pending.is_paid());
        assert!(!PaymentStatus::Failed.is_paid());
    }
}
