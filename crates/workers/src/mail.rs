//! E-mail jobs.
//!
//! - [`SendMail`] carries a rendered-at-send-time template (the password-reset link, whose token
//!   exists nowhere else).
//! - [`BookingMail`] carries only a booking id and what happened; the handler reads the booking,
//!   member, facility and club when it runs, so the message says what is true at sending time.
//! - [`WaitlistOfferMail`] likewise carries only the offer hold's id; an offer confirmed, cancelled
//!   or expired before the job runs is not mailed.
//!
//! A transient SMTP failure (relay down, 4xx) fails the attempt and the queue retries with
//! back-off; a permanent one (5xx, a bad address) dead-letters the job at once.

use chrono_tz::Tz;
use clubpulse_domain::BookingStatus;
use clubpulse_jobs::{Job, JobContext, JobFailure, Registry};
use clubpulse_mail::{BookingDetails, Cancellation, MailError, Template, WaitlistOffer};
use clubpulse_storage::{bookings, clubs, facilities, sent_mail, users};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Deps;

/// One message to one address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMail {
    pub to: String,
    /// Fixes the message's `Message-ID` for every attempt.
    pub message_key: String,
    pub template: Template,
}

impl Job for SendMail {
    const KIND: &'static str = "mail.send";
}

/// What happened to a booking that its member hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingMailEvent {
    Confirmed,
    Cancelled,
}

impl BookingMailEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Tell a booking's member that it was confirmed (with a calendar file) or cancelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingMail {
    pub booking_id: Uuid,
    pub event: BookingMailEvent,
}

impl Job for BookingMail {
    const KIND: &'static str = "mail.booking";

    /// One message per booking and event, however often the event is reported.
    fn unique_key(&self) -> Option<String> {
        Some(self.message_key())
    }
}

impl BookingMail {
    fn message_key(&self) -> String {
        format!("booking-{}-{}", self.booking_id, self.event.as_str())
    }
}

/// Tell a member that a slot they waited for is held for them (the offer hold `booking_id`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitlistOfferMail {
    pub booking_id: Uuid,
}

impl Job for WaitlistOfferMail {
    const KIND: &'static str = "mail.waitlist_offer";

    /// One message per offer, however often the offer is reported.
    fn unique_key(&self) -> Option<String> {
        Some(self.message_key())
    }
}

impl WaitlistOfferMail {
    fn message_key(&self) -> String {
        format!("waitlist-offer-{}", self.booking_id)
    }
}

pub(crate) fn register(registry: &mut Registry, deps: Deps) {
    let for_send = deps.clone();
    let for_offer = deps.clone();
    registry.register::<WaitlistOfferMail, _>(move |job: WaitlistOfferMail, ctx: JobContext| {
        let deps = for_offer.clone();
        async move {
            let key = job.message_key();
            send_once(&deps, &ctx, &key, offer_message(&deps, &job)).await
        }
    });
    registry.register::<SendMail, _>(move |job: SendMail, ctx: JobContext| {
        let deps = for_send.clone();
        async move { deliver(&deps, &ctx, &job.to, &job.message_key, &job.template).await }
    });
    registry.register::<BookingMail, _>(move |job: BookingMail, ctx: JobContext| {
        let deps = deps.clone();
        async move {
            let key = job.message_key();
            send_once(&deps, &ctx, &key, booking_message(&deps, &job)).await
        }
    });
}

/// Sends the message `message` builds, once per `key`: a message recorded as sent is not built or
/// sent again, and one that no longer applies (`None`: its booking is gone) is not sent at all.
async fn send_once(
    deps: &Deps,
    ctx: &JobContext,
    key: &str,
    message: impl std::future::Future<Output = Result<Option<(String, Template)>, JobFailure>>,
) -> Result<(), JobFailure> {
    if sent_mail::was_sent(&deps.db, key)
        .await
        .map_err(JobFailure::new)?
    {
        tracing::info!(job.id = %ctx.id, message.key = key, "mail already sent; not sending it again");
        return Ok(());
    }
    let Some((to, template)) = message.await? else {
        return Ok(());
    };
    deliver(deps, ctx, &to, key, &template).await?;
    sent_mail::mark_sent(&deps.db, key)
        .await
        .map_err(JobFailure::new)?;
    Ok(())
}

async fn deliver(
    deps: &Deps,
    ctx: &JobContext,
    to: &str,
    message_key: &str,
    template: &Template,
) -> Result<(), JobFailure> {
    let Some(mailer) = &deps.mailer else {
        tracing::info!(
            job.id = %ctx.id,
            mail.template = template.name(),
            "no SMTP server is configured; the message was not sent"
        );
        return Ok(());
    };
    let email = template
        .render(to, message_key, &deps.config.public_url())
        .map_err(failure)?;
    mailer.send(&email).await.map_err(failure)?;
    tracing::info!(job.id = %ctx.id, mail.template = template.name(), attempt = ctx.attempt, "mail sent");
    Ok(())
}

fn failure(err: MailError) -> JobFailure {
    if err.is_transient() {
        JobFailure::new(err)
    } else {
        JobFailure::permanent(err)
    }
}

/// What a booking message needs besides the booking: its member, facility, club and time zone.
struct Parties {
    member: users::User,
    facility: facilities::Facility,
    club: clubs::Club,
    time_zone: Tz,
}

async fn parties(deps: &Deps, booking: &bookings::Booking) -> Result<Parties, JobFailure> {
    let db = &deps.db;
    let member = users::find(db, booking.user_id)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent("the booking's member no longer exists"))?;
    let facility = facilities::find_any(db, booking.facility_id)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent("the booking's facility no longer exists"))?;
    let club = clubs::find(db, facility.club_id)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent("the facility's club no longer exists"))?;
    let time_zone: Tz = club
        .timezone
        .parse()
        .map_err(|_| JobFailure::permanent(format!("club time zone {:?}", club.timezone)))?;
    Ok(Parties {
        member,
        facility,
        club,
        time_zone,
    })
}

/// The recipient and message of an offer; `None` when the offer is no longer open.
async fn offer_message(
    deps: &Deps,
    job: &WaitlistOfferMail,
) -> Result<Option<(String, Template)>, JobFailure> {
    let Some(booking) = bookings::find(&deps.db, job.booking_id, None)
        .await
        .map_err(JobFailure::new)?
    else {
        tracing::info!(booking.id = %job.booking_id, "offer not mailed: the hold does not exist");
        return Ok(None);
    };
    let (BookingStatus::Held, Some(expires_at)) = (booking.status, booking.hold_expires_at) else {
        tracing::info!(booking.id = %booking.id, "offer not mailed: it closed before the mail went out");
        return Ok(None);
    };
    let p = parties(deps, &booking).await?;
    Ok(Some((
        p.member.email,
        Template::WaitlistOffer(WaitlistOffer {
            booking_id: booking.id,
            display_name: p.member.name,
            club_name: p.club.name,
            facility_name: p.facility.name,
            time_zone: p.time_zone,
            start: booking.start,
            end: booking.end,
            expires_at,
            price_cents: booking.price_cents,
            currency: booking.currency,
        }),
    )))
}

/// The recipient and message for a booking event; `None` when there is nothing to say any more
/// (a confirmation for a booking cancelled since).
async fn booking_message(
    deps: &Deps,
    job: &BookingMail,
) -> Result<Option<(String, Template)>, JobFailure> {
    let db = &deps.db;
    let booking = bookings::find(db, job.booking_id, None)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent(format!("booking {} not found", job.booking_id)))?;
    let member = users::find(db, booking.user_id)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent("the booking's member no longer exists"))?;
    let facility = facilities::find_any(db, booking.facility_id)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent("the booking's facility no longer exists"))?;
    let club = clubs::find(db, facility.club_id)
        .await
        .map_err(JobFailure::new)?
        .ok_or_else(|| JobFailure::permanent("the facility's club no longer exists"))?;
    let time_zone: Tz = club
        .timezone
        .parse()
        .map_err(|_| JobFailure::permanent(format!("club time zone {:?}", club.timezone)))?;
    let template = match job.event {
        BookingMailEvent::Confirmed => {
            if booking.status != BookingStatus::Confirmed {
                tracing::info!(booking.id = %booking.id, "confirmation not sent: the booking changed since");
                return Ok(None);
            }
            Template::BookingConfirmed(BookingDetails {
                booking_id: booking.id,
                display_name: member.name,
                club_name: club.name,
                facility_name: facility.name,
                time_zone,
                start: booking.start,
                end: booking.end,
                price_cents: booking.price_cents,
                currency: booking.currency,
                booked_at: booking.confirmed_at.unwrap_or(booking.created_at),
            })
        }
        BookingMailEvent::Cancelled => Template::BookingCancelled(Cancellation {
            booking_id: booking.id,
            display_name: member.name,
            club_name: club.name,
            facility_name: facility.name,
            time_zone,
            start: booking.start,
            end: booking.end,
            fee_cents: booking.cancellation_fee_cents,
            currency: booking.currency,
        }),
    };
    Ok(Some((member.email, template)))
}
