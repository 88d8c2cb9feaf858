//! The outbox relay: delivers the side effects of committed booking writes, at least once, in
//! order.
//!
//! One batch is one transaction: take the relay's advisory lock (one relay delivers at a time,
//! across every instance, so events leave in `seq` order), read the oldest events, carry out their
//! effects, record their audit events in the audit inbox and delete them, commit. A relay that dies
//! (or whose Redis is down) before the commit leaves the whole batch to the next attempt, and every
//! effect is safe to repeat:
//!
//! - availability invalidation and the hold mirror are idempotent;
//! - the audit event enters the inbox in the very transaction that deletes the outbox row, with the
//!   outbox event's id, so it is recorded exactly once (and the chain skips a repeated id anyway);
//! - a member's e-mail job carries a unique key per booking and event, and its message id is fixed
//!   by the job, so a repeat is recognisable as the same message;
//! - popular times count each booking once, by its id, however often it is reported;
//! - a member's notification is stored in the batch's transaction under an id derived from the
//!   outbox event's id, so a redelivered event stores (and publishes) nothing new;
//! - a freed range is offered to its waitlist in the same transaction (see [`crate::waitlist`]):
//!   the offer commits with the batch or not at all, and a redelivered event finds the entry no
//!   longer waiting; the offer is announced when the offer hold's own `booking.held` event is
//!   delivered (a notification as above, and an e-mail job with a unique key per offer);
//! - a payment's events (`payment.*`, written by the `payments_outbox` trigger) are audited, and a
//!   refund's notification is stored like a booking's (its id derived from the event's);
//! - a notification stored elsewhere (`notification.created`: a webhook endpoint disabled) is
//!   published like the relay's own;
//! - outbound webhook deliveries are recorded in the batch's transaction, one per endpoint and
//!   event, so a redelivered event records and queues nothing new (see
//!   `clubpulse_webhooks::fanout`);
//! - the slot events on `facility:<id>` and the notifications on `user:<id>` are published before
//!   the commit, so a failure to publish retries the batch (a client may see an event twice, with
//!   the same `id`, never miss one).
//!
//! Relays wake on the outbox's `LISTEN` channel at commit, and poll as the safety net.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use clubpulse_audit::{AuditEvent, AuditLog, PgInbox, action};
use clubpulse_domain::{BookingEvent, BookingEventKind};
use clubpulse_jobs::{JobSpec, Queue};
use clubpulse_storage::{
    notifications::{self as stored, Notification},
    outbox::{self, OutboxEvent},
    waitlist,
};
use clubpulse_workers::{BookingMail, BookingMailEvent, WaitlistOfferMail};
use serde::Deserialize;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::{
    BookingError, Bookings, FacilityContext, Result, context,
    live::{self, FacilityEvent, ReleaseReason, UserEvent},
    notifications::{self, About},
};

/// Events per batch: enough to amortise the transaction, few enough to keep the lock briefly.
const BATCH: i64 = 200;

/// A booking event's payload, as the `bookings_outbox` trigger writes it.
#[derive(Debug, Clone, Deserialize)]
struct BookingPayload {
    booking_id: Uuid,
    facility_id: Uuid,
    user_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    blocks_until: DateTime<Utc>,
    hold_expires_at: Option<DateTime<Utc>>,
    cancellation_fee_cents: Option<i64>,
    class_id: Option<Uuid>,
    /// Whether the booking is a waitlist offer (absent from events written before offers existed).
    #[serde(default)]
    waitlist_offer: bool,
}

/// A payment event's payload, as the `payments_outbox` trigger writes it.
#[derive(Debug, Clone, Deserialize)]
struct PaymentPayload {
    payment_id: Uuid,
    booking_id: Uuid,
    user_id: Uuid,
    provider: String,
    status: String,
    amount_cents: i64,
    refunded_cents: i64,
    refund_reason: Option<String>,
    currency: String,
}

/// A payment event read from the outbox: `payment.pending`, `.succeeded`, `.failed`, `.refunded`.
#[derive(Debug, Clone)]
struct PaymentDelivery {
    event: OutboxEvent,
    payment: PaymentPayload,
}

/// A booking event read from the outbox.
#[derive(Debug, Clone)]
struct Delivery {
    event: OutboxEvent,
    kind: BookingEventKind,
    booking: BookingPayload,
}

fn kind_of(topic: &str) -> Option<BookingEventKind> {
    Some(match topic {
        "booking.held" => BookingEventKind::Held,
        "booking.confirmed" => BookingEventKind::Confirmed,
        "booking.cancelled" => BookingEventKind::Cancelled,
        "booking.expired" => BookingEventKind::Expired,
        _ => return None,
    })
}

/// What the relay delivers to.
#[derive(Debug, Clone)]
pub struct Relay {
    bookings: Bookings,
    audit: AuditLog,
    jobs: Queue,
}

/// What one [`Relay::deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivered {
    pub events: usize,
    /// Whether another relay held the lock (so this one delivered nothing, by design).
    pub busy: bool,
}

impl Relay {
    pub fn new(bookings: Bookings, audit: AuditLog, jobs: Queue) -> Self {
        Self {
            bookings,
            audit,
            jobs,
        }
    }

    /// Delivers one batch of the oldest events, if no other relay is delivering.
    pub async fn deliver(&self) -> Result<Delivered> {
        let mut tx = self.bookings.db().begin().await?;
        let Some(events) = outbox::claim(&mut tx, BATCH).await? else {
            return Ok(Delivered {
                events: 0,
                busy: true,
            });
        };
        if events.is_empty() {
            return Ok(Delivered::default());
        }
        let webhooks = clubpulse_webhooks::fanout::Batch::of(&events);
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let mut deliveries = Vec::with_capacity(events.len());
        let mut paid = Vec::new();
        let mut stored_elsewhere = Vec::new();
        for event in events {
            if event.topic == outbox::NOTIFICATION_CREATED {
                stored_elsewhere.push(event.aggregate_id);
                continue;
            }
            if event.topic.starts_with("payment.")
                && let Ok(payment) = serde_json::from_value(event.payload.clone())
            {
                paid.push(PaymentDelivery { event, payment });
                continue;
            }
            match (
                kind_of(&event.topic),
                serde_json::from_value(event.payload.clone()),
            ) {
                (Some(kind), Ok(booking)) => deliveries.push(Delivery {
                    event,
                    kind,
                    booking,
                }),
                // Nothing can ever deliver it: say so loudly, once, and let it go.
                _ => {
                    tracing::error!(outbox.seq = event.seq, topic = %event.topic, "dropping an outbox event the relay cannot read")
                }
            }
        }
        let ids: Vec<Uuid> = deliveries
            .iter()
            .map(|d| d.booking.facility_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let contexts = context::load_many(&mut *tx, &ids, true).await?;
        self.invalidate(&deliveries, &contexts).await?;
        let still_held = still_held(&mut tx, &deliveries).await?;
        for delivery in &deliveries {
            self.mirror(delivery, &still_held).await?;
            self.count(delivery, &contexts).await;
        }
        let (mut notified, offers) = self
            .notify_and_offer(&mut tx, &deliveries, &contexts)
            .await?;
        notified.extend(self.notify_refunds(&mut tx, &paid).await?);
        if !stored_elsewhere.is_empty() {
            notified.extend(stored::by_ids(&mut *tx, &stored_elsewhere).await?);
        }
        self.enqueue_mail(&deliveries, &offers).await?;
        self.publish_live(&deliveries, &notified).await?;
        if self.audit.enabled() {
            let audited: Vec<AuditEvent> = deliveries
                .iter()
                .map(audit_event)
                .chain(paid.iter().map(payment_audit_event))
                .collect();
            PgInbox::append_in(&mut tx, &audited)
                .await
                .map_err(|e| BookingError::Corrupt(format!("recording audit events: {e}")))?;
        }
        webhooks
            .record(&mut tx, &self.jobs)
            .await
            .map_err(|e| BookingError::Corrupt(e.to_string()))?;
        outbox::remove(&mut tx, &seqs).await?;
        tx.commit().await?;
        for delivery in &deliveries {
            let b = &delivery.booking;
            tracing::info!(booking.id = %b.booking_id, facility.id = %b.facility_id, event = ?delivery.kind, "booking event");
            // Counted here, after the commit that removed the event from the outbox: once per
            // change, whichever instance delivered it.
            metrics::counter!("clubpulse_booking_events_total", "event" => delivery.event.topic.clone())
                .increment(1);
            self.bookings.events().publish(BookingEvent {
                kind: delivery.kind,
                booking_id: b.booking_id,
                facility_id: b.facility_id,
                user_id: b.user_id,
                start: b.start,
                end: b.end,
            });
        }
        Ok(Delivered {
            events: seqs.len(),
            busy: false,
        })
    }

    /// Delivers until the outbox is empty (or another relay has it).
    pub async fn drain(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let done = self.deliver().await?;
            total += done.events;
            if done.busy || done.events < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                return Ok(total);
            }
        }
    }

    /// Runs until `stop` completes: wakes on every notification from a committing writer, and
    /// every `poll` regardless (a notification is lost while the listener reconnects).
    pub async fn run(self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut listener = self.listen().await;
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(err) = self.drain().await {
                tracing::warn!(error = %err, "delivering outbox events failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
                woke = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                } => {
                    if let Err(err) = woke {
                        tracing::warn!(error = %err, "the outbox listener failed; polling until it is back");
                        listener = self.listen().await;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(self.bookings.db()).await {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for outbox events; polling");
                return None;
            }
        };
        match listener.listen(outbox::CHANNEL).await {
            Ok(()) => Some(listener),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for outbox events; polling");
                None
            }
        }
    }

    async fn invalidate(
        &self,
        deliveries: &[Delivery],
        contexts: &std::collections::HashMap<Uuid, FacilityContext>,
    ) -> Result<()> {
        let mut keys: Vec<_> = deliveries
            .iter()
            .filter_map(|d| {
                let ctx = contexts.get(&d.booking.facility_id)?;
                Some(ctx.day_keys(d.booking.start, d.booking.blocks_until))
            })
            .flatten()
            .collect();
        keys.sort_unstable_by_key(|k| (k.facility_id, k.date));
        keys.dedup();
        Ok(self.bookings.state().availability.invalidate(&keys).await?)
    }

    /// Mirrors a hold event. A `booking.held` delivered after its booking moved on (the member
    /// cancelled while the event waited in the outbox) mirrors nothing: the request that moved it
    /// has already removed the mirror, and putting it back would show a released slot as held
    /// until the next event's delivery.
    async fn mirror(&self, delivery: &Delivery, still_held: &HashSet<Uuid>) -> Result<()> {
        let holds = &self.bookings.state().holds;
        let b = &delivery.booking;
        match (delivery.kind, b.hold_expires_at) {
            (BookingEventKind::Held, Some(expires_at)) if still_held.contains(&b.booking_id) => {
                holds
                    .put(&clubpulse_state::MirroredHold {
                        booking_id: b.booking_id,
                        facility_id: b.facility_id,
                        start: b.start,
                        end: b.end,
                        expires_at,
                    })
                    .await?
            }
            _ => holds.remove(b.booking_id).await?,
        }
        Ok(())
    }

    async fn count(
        &self,
        delivery: &Delivery,
        contexts: &std::collections::HashMap<Uuid, FacilityContext>,
    ) {
        let b = &delivery.booking;
        if delivery.kind != BookingEventKind::Confirmed || b.class_id.is_some() {
            return;
        }
        let Some(ctx) = contexts.get(&b.facility_id) else {
            return;
        };
        let (weekday, hour) = clubpulse_domain::local_weekday_hour(ctx.time_zone(), b.start);
        if let Err(err) = self
            .bookings
            .state()
            .popularity
            .record(b.booking_id, b.facility_id, weekday, hour)
            .await
        {
            tracing::warn!(error = %err, "could not count a popular time");
        }
    }

    /// Stores each event's notification for its member, and offers every freed range to its
    /// waitlist, in the batch's transaction; returns the new notifications and the offer holds
    /// announced. Class bookings (a class's hold on its facility) notify nobody and free nothing a
    /// waiter could want.
    ///
    /// An offer is announced (notification and e-mail) when its own `booking.held` event is
    /// delivered, in a later batch: by then the hold has committed, so a member who acts on the
    /// news at once finds it, and the e-mail job never runs before the hold exists.
    async fn notify_and_offer(
        &self,
        tx: &mut sqlx::PgConnection,
        deliveries: &[Delivery],
        contexts: &std::collections::HashMap<Uuid, FacilityContext>,
    ) -> Result<(Vec<Notification>, Vec<Uuid>)> {
        let mut notified = Vec::new();
        let mut announced = Vec::new();
        for delivery in deliveries {
            let b = &delivery.booking;
            let event_id = delivery.event.event_id;
            let Some(ctx) = contexts
                .get(&b.facility_id)
                .filter(|_| b.class_id.is_none())
            else {
                continue;
            };
            let about = About {
                booking_id: b.booking_id,
                start: b.start,
                end: b.end,
                ctx,
            };
            let new = match (delivery.kind, b.waitlist_offer) {
                (BookingEventKind::Held, true) => {
                    // Announced even if it has closed since (its closing is told next, in
                    // order); not if the member left the waitlist, releasing it.
                    match waitlist::by_booking(&mut *tx, b.booking_id).await? {
                        Some(entry) => {
                            announced.push(b.booking_id);
                            let expires_at = b.hold_expires_at.unwrap_or(delivery.event.created_at);
                            Some(notifications::for_offer(
                                event_id, entry.id, b.user_id, expires_at, &about,
                            ))
                        }
                        None => None,
                    }
                }
                (kind, offer) => {
                    notifications::for_booking_event(event_id, b.user_id, kind, offer, &about)
                }
            };
            if let Some(new) = new
                && let Some(stored) = stored::insert(tx, &new).await?
            {
                notified.push(stored);
            }
            if delivery.kind.releases_slot() {
                for offer in self
                    .bookings
                    .offer_freed(tx, event_id, ctx, b.start, b.blocks_until)
                    .await?
                {
                    tracing::info!(booking.id = %offer.booking.id, waitlist.id = %offer.entry.id, facility.id = %ctx.facility.id, "waitlist offer made");
                }
            }
        }
        Ok((notified, announced))
    }

    /// Stores the member's notification of each refund, in the batch's transaction (its id derived
    /// from the event's, so a redelivery stores nothing new).
    async fn notify_refunds(
        &self,
        tx: &mut sqlx::PgConnection,
        paid: &[PaymentDelivery],
    ) -> Result<Vec<Notification>> {
        let mut notified = Vec::new();
        for delivery in paid.iter().filter(|d| d.event.topic == "payment.refunded") {
            let p = &delivery.payment;
            let Some(booking) =
                clubpulse_storage::bookings::find(&mut *tx, p.booking_id, None).await?
            else {
                continue;
            };
            let ctx = context::load_any(&mut *tx, booking.facility_id).await?;
            let about = About {
                booking_id: booking.id,
                start: booking.start,
                end: booking.end,
                ctx: &ctx,
            };
            let refund = notifications::Refunded {
                payment_id: p.payment_id,
                amount_cents: p.refunded_cents,
                currency: &p.currency,
                reason: p.refund_reason.as_deref().and_then(|r| r.parse().ok()),
            };
            let new =
                notifications::for_refund(delivery.event.event_id, p.user_id, &refund, &about);
            if let Some(stored) = stored::insert(tx, &new).await? {
                notified.push(stored);
            }
        }
        Ok(notified)
    }

    /// Publishes every booking event of a court booking on its facility's channel, and every new
    /// notification on its member's channel.
    async fn publish_live(&self, deliveries: &[Delivery], notified: &[Notification]) -> Result<()> {
        let channels = &self.bookings.state().channels;
        for delivery in deliveries {
            let b = &delivery.booking;
            if b.class_id.is_some() {
                continue;
            }
            let (id, facility_id, start, end) =
                (delivery.event.event_id, b.facility_id, b.start, b.end);
            let event = match delivery.kind {
                BookingEventKind::Held => FacilityEvent::Held {
                    id,
                    facility_id,
                    start,
                    end,
                    expires_at: b.hold_expires_at,
                },
                BookingEventKind::Confirmed => FacilityEvent::Booked {
                    id,
                    facility_id,
                    start,
                    end,
                },
                BookingEventKind::Cancelled | BookingEventKind::Expired => {
                    FacilityEvent::Released {
                        id,
                        facility_id,
                        start,
                        end,
                        reason: if delivery.kind == BookingEventKind::Cancelled {
                            ReleaseReason::Cancelled
                        } else {
                            ReleaseReason::Expired
                        },
                    }
                }
            };
            // The outbox event's id: a redelivered batch shows nobody the event twice.
            channels
                .publish_once(
                    &live::facility_channel(facility_id),
                    &id.to_string(),
                    &live::encode(&event)?,
                )
                .await?;
        }
        for notification in notified {
            let (user_id, id) = (notification.user_id, notification.id);
            let event = UserEvent::Notification {
                notification: notification.into(),
            };
            channels
                .publish_once(
                    &live::user_channel(user_id),
                    &id.to_string(),
                    &live::encode(&event)?,
                )
                .await?;
        }
        Ok(())
    }

    /// Queues the member's e-mail for confirmations and cancellations of their own bookings, and
    /// for every waitlist offer announced.
    async fn enqueue_mail(&self, deliveries: &[Delivery], offers: &[Uuid]) -> Result<()> {
        let mut specs = Vec::new();
        for booking_id in offers {
            let job = WaitlistOfferMail {
                booking_id: *booking_id,
            };
            specs.push(
                JobSpec::from_job(&job)
                    .map_err(|e| BookingError::Corrupt(format!("encoding a mail job: {e}")))?,
            );
        }
        for delivery in deliveries {
            if delivery.booking.class_id.is_some() {
                continue;
            }
            let event = match delivery.kind {
                BookingEventKind::Confirmed => BookingMailEvent::Confirmed,
                BookingEventKind::Cancelled => BookingMailEvent::Cancelled,
                BookingEventKind::Held | BookingEventKind::Expired => continue,
            };
            let job = BookingMail {
                booking_id: delivery.booking.booking_id,
                event,
            };
            specs.push(
                JobSpec::from_job(&job)
                    .map_err(|e| BookingError::Corrupt(format!("encoding a mail job: {e}")))?,
            );
        }
        if specs.is_empty() {
            return Ok(());
        }
        self.jobs
            .push_specs(specs)
            .await
            .map_err(|e| BookingError::Corrupt(format!("queueing booking mail: {e}")))?;
        Ok(())
    }
}

/// Which of the batch's newly held bookings are still held now (read committed: as of this
/// statement, not the batch's start).
async fn still_held(tx: &mut sqlx::PgConnection, deliveries: &[Delivery]) -> Result<HashSet<Uuid>> {
    let held: Vec<Uuid> = deliveries
        .iter()
        .filter(|d| d.kind == BookingEventKind::Held)
        .map(|d| d.booking.booking_id)
        .collect();
    if held.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(clubpulse_storage::bookings::live_holds(&mut *tx, &held)
        .await?
        .into_iter()
        .collect())
}

fn payment_audit_event(delivery: &PaymentDelivery) -> AuditEvent {
    let p = &delivery.payment;
    let name = match delivery.event.topic.as_str() {
        "payment.succeeded" => action::PAYMENT_SUCCEEDED,
        "payment.failed" => action::PAYMENT_FAILED,
        "payment.refunded" => action::PAYMENT_REFUNDED,
        _ => action::PAYMENT_PENDING,
    };
    let mut event = AuditEvent::new(name)
        .maybe_actor(delivery.event.actor_id)
        .target("payment", p.payment_id)
        .detail("booking_id", p.booking_id.to_string())
        .detail("member_id", p.user_id.to_string())
        .detail("provider", p.provider.clone())
        .detail("status", p.status.clone())
        .detail("amount_cents", p.amount_cents)
        .detail("refunded_cents", p.refunded_cents)
        .detail("currency", p.currency.clone());
    if let Some(reason) = &p.refund_reason {
        event = event.detail("refund_reason", reason.clone());
    }
    event.id = delivery.event.event_id;
    event.occurred_at = delivery.event.created_at;
    event
}

fn audit_event(delivery: &Delivery) -> AuditEvent {
    let b = &delivery.booking;
    let name = match delivery.kind {
        BookingEventKind::Held => action::BOOKING_HELD,
        BookingEventKind::Confirmed => action::BOOKING_CONFIRMED,
        BookingEventKind::Cancelled => action::BOOKING_CANCELLED,
        BookingEventKind::Expired => action::BOOKING_EXPIRED,
    };
    let mut event = AuditEvent::new(name)
        .maybe_actor(delivery.event.actor_id)
        .target("booking", b.booking_id)
        .detail("facility_id", b.facility_id.to_string())
        .detail("member_id", b.user_id.to_string())
        .detail("start", b.start.to_rfc3339())
        .detail("end", b.end.to_rfc3339());
    if let Some(fee) = b.cancellation_fee_cents {
        event = event.detail("fee_cents", fee);
    }
    if let Some(class) = b.class_id {
        event = event.detail("class_id", class.to_string());
    }
    // The outbox event's id and time, so that every delivery records the same event.
    event.id = delivery.event.event_id;
    event.occurred_at = delivery.event.created_at;
    event
}
