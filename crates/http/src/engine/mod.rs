//! The booking engine: what happens around a booking write, shared by the routes and the sweeper.
//!
//! PostgreSQL decides (the exclusion constraint, the conditional updates); this module loads the
//! facility's rules, turns storage outcomes into API answers, and after every commit keeps the
//! shared state in step: availability days invalidated, the hold mirror updated, popular times
//! counted, and a [`BookingEvent`] published for whoever listens.
//!
//! - [`availability`]: the slot grid with each slot's state, served from cached day bitmaps.
//! - [`alternatives`]: what to offer a member who lost a slot.
//! - [`events`]: the in-process event bus.
//! - [`sweeper`]: expires holds nobody confirmed.

pub mod alternatives;
pub mod availability;
pub mod events;
pub mod sweeper;

use chrono::{DateTime, Utc};
use clubpulse_audit::{AuditEvent, action};
use clubpulse_domain::{
    BookingEvent, BookingEventKind, CancellationPolicy, Grid, OpeningHours, SlotMinutes, TimeZone,
};
use clubpulse_state::availability::DayKey;
use clubpulse_storage::{bookings::Booking, clubs, clubs::Club, facilities, facilities::Facility};
use clubpulse_workers::{BookingMail, BookingMailEvent};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{ApiError, AppState};

/// A facility with everything needed to reason about its time: its club and its slot grid.
#[derive(Debug, Clone)]
pub struct FacilityContext {
    pub facility: Facility,
    pub club: Club,
    pub grid: Grid,
}

impl FacilityContext {
    pub fn policy(&self) -> CancellationPolicy {
        self.club.policy()
    }

    pub fn time_zone(&self) -> TimeZone {
        self.grid.time_zone()
    }

    /// The availability days a booking's blocked time touches.
    pub fn day_keys(&self, start: DateTime<Utc>, blocks_until: DateTime<Utc>) -> Vec<DayKey> {
        self.grid
            .local_dates(start, blocks_until)
            .into_iter()
            .map(|date| DayKey {
                facility_id: self.facility.id,
                date,
            })
            .collect()
    }
}

/// Builds the context of a facility row (its stored fields were validated when written).
pub fn context(facility: Facility, club: Club) -> Result<FacilityContext, ApiError> {
    let corrupt = |what: &str| {
        ApiError::internal(anyhow::anyhow!(
            "facility {} has an unreadable {what}",
            facility.id
        ))
    };
    let zone = TimeZone::try_from(club.timezone.as_str()).map_err(|_| corrupt("club time zone"))?;
    let hours =
        OpeningHours::try_from(&facility.opening_hours).map_err(|_| corrupt("opening_hours"))?;
    let slot = SlotMinutes::try_from(i64::from(facility.slot_minutes))
        .map_err(|_| corrupt("slot_minutes"))?;
    Ok(FacilityContext {
        grid: Grid::new(zone, hours, slot),
        facility,
        club,
    })
}

/// Loads a live facility and its club; unknown is 404 `facility_not_found`.
pub async fn load(
    db: impl PgExecutor<'_> + Copy,
    facility_id: Uuid,
) -> Result<FacilityContext, ApiError> {
    let facility = facilities::find(db, facility_id)
        .await?
        .ok_or_else(|| ApiError::not_found("facility_not_found", "no such facility"))?;
    let club = clubs::find(db, facility.club_id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("facility {facility_id} has no club")))?;
    context(facility, club)
}

/// Loads the contexts of facilities (retired ones included, for bookings made before retirement).
pub async fn load_any(
    db: impl PgExecutor<'_> + Copy,
    facility_id: Uuid,
) -> Result<FacilityContext, ApiError> {
    let facility = facilities::find_any(db, facility_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("booking of unknown facility {facility_id}"))
        })?;
    let club = clubs::find(db, facility.club_id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("facility {facility_id} has no club")))?;
    context(facility, club)
}

/// Brings shared state in step with bookings just committed, then publishes their events and
/// records them in the audit log. `actor` is who caused the change (`None` for the system: a hold
/// expiring by itself).
///
/// Runs after the commit and before the response, so the next read on any instance sees the write.
/// A failure here (Redis unreachable) cannot undo the booking: it is logged, and cached
/// availability then catches up within its TTL.
pub async fn after_commit(
    app: &AppState,
    ctx: &FacilityContext,
    bookings: &[Booking],
    kind: BookingEventKind,
    actor: Option<Uuid>,
) {
    let mut keys: Vec<DayKey> = bookings
        .iter()
        .flat_map(|b| ctx.day_keys(b.start, b.blocks_until))
        .collect();
    keys.dedup();
    if let Err(err) = app.state.availability.invalidate(&keys).await {
        tracing::error!(error = %err, facility.id = %ctx.facility.id, "could not invalidate cached availability");
    }
    for booking in bookings {
        let mirrored = match (kind, booking.hold_expires_at) {
            (BookingEventKind::Held, Some(expires_at)) => {
                app.state
                    .holds
                    .put(booking.id, booking.facility_id, expires_at)
                    .await
            }
            _ => app.state.holds.remove(booking.id).await,
        };
        if let Err(err) = mirrored {
            tracing::warn!(error = %err, booking.id = %booking.id, "could not update the hold mirror");
        }
        if kind == BookingEventKind::Confirmed {
            let (weekday, hour) =
                clubpulse_domain::local_weekday_hour(ctx.time_zone(), booking.start);
            if let Err(err) = app
                .state
                .popularity
                .record(booking.facility_id, weekday, hour)
                .await
            {
                tracing::warn!(error = %err, "could not count a popular time");
            }
        }
        app.events.publish(BookingEvent {
            kind,
            booking_id: booking.id,
            facility_id: booking.facility_id,
            user_id: booking.user_id,
            start: booking.start,
            end: booking.end,
        });
        tracing::info!(booking.id = %booking.id, facility.id = %booking.facility_id, event = ?kind, "booking event");
        app.audit.record(audit_event(booking, kind, actor)).await;
        let mail = match kind {
            BookingEventKind::Confirmed => Some(BookingMailEvent::Confirmed),
            BookingEventKind::Cancelled => Some(BookingMailEvent::Cancelled),
            BookingEventKind::Held | BookingEventKind::Expired => None,
        };
        if let Some(event) = mail {
            let job = BookingMail {
                booking_id: booking.id,
                event,
            };
            if let Err(err) = app.jobs.push(&job).await {
                tracing::error!(error = %err, booking.id = %booking.id, "could not enqueue the booking's e-mail");
            }
        }
    }
}

fn audit_event(booking: &Booking, kind: BookingEventKind, actor: Option<Uuid>) -> AuditEvent {
    let name = match kind {
        BookingEventKind::Held => action::BOOKING_HELD,
        BookingEventKind::Confirmed => action::BOOKING_CONFIRMED,
        BookingEventKind::Cancelled => action::BOOKING_CANCELLED,
        BookingEventKind::Expired => action::BOOKING_EXPIRED,
    };
    let mut event = AuditEvent::new(name)
        .maybe_actor(actor)
        .target("booking", booking.id)
        .detail("facility_id", booking.facility_id.to_string())
        .detail("member_id", booking.user_id.to_string())
        .detail("start", booking.start.to_rfc3339())
        .detail("end", booking.end.to_rfc3339());
    if let Some(fee) = booking.cancellation_fee_cents {
        event = event.detail("fee_cents", fee);
    }
    event
}
