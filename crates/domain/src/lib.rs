//! Club Pulse domain: the values the product talks about, parsed once at the edge and trusted after.
//!
//! Nothing here performs I/O; everything here can be unit-tested without a database.
//!
//! # Layout
//!
//! - [`validation`]: the field-error type every constructor reports through.
//! - [`user`]: [`Email`], [`Password`], [`DisplayName`], [`Role`].
//! - [`club`]: [`ClubName`], [`TimeZone`].
//! - [`facility`]: facility fields ([`OpeningHours`], [`SlotMinutes`], [`Specifications`], …) and the
//!   [`NewFacility`] / [`FacilityPatch`] inputs built from them.
//! - [`booking`]: booking statuses, timing rules, counts and the cancellation policy.
//! - [`payment`]: payment statuses and refund reasons.
//! - [`time`]: [`TimeRange`], the half-open `[start, end)` interval every booking is made of.
//! - [`grid`]: [`Grid`], a facility's slots per local date in UTC, correct across DST changes;
//!   [`Slot`], [`Fit`], [`weekly`] repetition and [`local_weekday_hour`].

pub mod booking;
pub mod club;
pub mod facility;
pub mod grid;
pub mod payment;
pub mod time;
pub mod user;
pub mod validation;

pub use booking::{
    BookingEvent, BookingEventKind, BookingStatus, BookingWindow, CancellationPolicy, Capacity,
    Spots, TimingError, Weeks,
};
pub use club::{ClubName, TimeZone};
pub use facility::{
    BufferMinutes, Currency, FacilityInput, FacilityName, FacilityPatch, NewFacility, OpeningHours,
    PriceCents, SlotMinutes, Specifications, Sport,
};
pub use grid::{
    Fit, Grid, GridError, OccurrenceError, Slot, local_hour_pieces, local_weekday_hour, weekly,
};
pub use payment::{PaymentStatus, RefundReason};
pub use time::TimeRange;
pub use user::{DisplayName, Email, Password, Role};
pub use validation::{FieldError, Validation};
