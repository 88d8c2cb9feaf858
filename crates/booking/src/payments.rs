//! Paying for a booking: checkout, the provider's verdicts, on-site payment, refunds and
//! reconciliation.
//!
//! Checkout has three phases: a hold protects the slot; [`Bookings::checkout`] creates one intent
//! at the provider for the booking's price (asking again returns the same pending payment); the
//! provider's signed webhook ([`Bookings::apply_stripe_event`]) says how it went. An event is
//! recorded by its id in the transaction that applies it, so a repeat changes nothing, and the
//! payment's transitions only move forward, so an old event arriving late cannot undo a newer
//! state.
//!
//! A payment that succeeds after its hold expired re-takes the range through the exclusion
//! constraint (never checked first): the booking is confirmed if the range is still free, and
//! otherwise the money is owed back. Refunds are decided in the transaction that makes them owed
//! and made through the provider after the commit, with the refund's id as the idempotency key;
//! [`Bookings::reconcile_payments`] (a periodic job) retries what is still owed and asks the
//! provider about payments a lost webhook left pending.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use clubpulse_domain::{BookingStatus, PaymentStatus, RefundReason, Role};
use clubpulse_jobs::{Job, JobContext, JobError, JobFailure, Periodic, Registry};
use clubpulse_payments::{
    IntentRequest, IntentStatus, OnSite, PaymentProvider,
    stripe::{Event, EventEffect},
};
use clubpulse_storage::{
    bookings::{self, Booking},
    payments::{self, NewPayment, Payment, Refund},
};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Actor, BookingError, Bookings, Result, context};

/// What applying a provider event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event changed a payment (and perhaps its booking).
    Changed,
    /// The event was applied before, or its payment had moved past it: nothing changed.
    Unchanged,
    /// An event type the service does not act on, or about an intent it did not create.
    Ignored,
}

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Pending payments whose provider state was applied.
    pub payments: usize,
    /// Refunds made.
    pub refunds: usize,
}

/// How a payment's success ended for its booking.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settled {
    /// The booking is confirmed (it was held, or its range was still free).
    Confirmed(Box<Booking>),
    /// The money is owed back; the booking stays as it was.
    Refunding,
    /// The payment failed; the hold runs its course.
    Failed,
    /// Nothing changed (the payment had already succeeded).
    Unchanged,
}

impl Bookings {
    /// The payment provider members pay through.
    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.inner.provider
    }

    /// Whether a member must pay through the provider before a hold is confirmed (with the
    /// Stripe provider and a price); on site, members confirm and pay at the club.
    pub(crate) fn payment_required(&self, actor: Actor, booking: &Booking) -> bool {
        self.provider().name() != OnSite.name()
            && booking.price_cents > 0
            && !actor.role.includes(Role::Staff)
    }

    /// Starts paying for the actor's own live hold: one pending payment per booking, created at
    /// the provider for the booking's price; asking again returns the same one.
    pub async fn checkout(&self, actor: Actor, booking_id: Uuid) -> Result<Payment> {
        let booking = bookings::find(self.db(), booking_id, Some(actor.id))
            .await?
            .ok_or_else(BookingError::booking_not_found)?;
        match booking.status {
            BookingStatus::Held if booking.hold_expires_at.is_some_and(|at| at > Utc::now()) => {}
            BookingStatus::Held | BookingStatus::Expired => {
                return Err(BookingError::hold_expired());
            }
            BookingStatus::Confirmed => {
                return Err(BookingError::conflict(
                    "already_confirmed",
                    "this booking is already confirmed",
                ));
            }
            BookingStatus::Cancelled => {
                return Err(BookingError::conflict(
                    "booking_not_active",
                    "this booking was cancelled",
                ));
            }
        }
        if booking.class_id.is_some() || booking.price_cents <= 0 {
            return Err(BookingError::conflict(
                "nothing_to_pay",
                "this booking has no price to pay",
            ));
        }
        if let Some(pending) = payments::pending_for_booking(self.db(), booking.id).await? {
            return Ok(pending);
        }
        // Numbered by the booking's earlier payments: a retry of this checkout reuses the key (and
        // so the provider's intent); a checkout after a failed payment starts a new one.
        let earlier = payments::count_for_booking(self.db(), booking.id).await?;
        let provider = self.provider();
        let intent = provider
            .create_intent(&IntentRequest {
                booking_id: booking.id,
                amount_cents: booking.price_cents,
                currency: booking.currency.clone(),
                idempotency_key: format!("checkout-{}-{earlier}", booking.id),
            })
            .await
            .map_err(BookingError::Payment)?;
        let new = NewPayment {
            id: Uuid::now_v7(),
            booking_id: booking.id,
            user_id: booking.user_id,
            provider: provider.name(),
            provider_ref: intent.provider_ref,
            client_secret: intent.client_secret,
            status: PaymentStatus::Pending,
            amount_cents: booking.price_cents,
            currency: booking.currency.clone(),
            recorded_by: None,
        };
        if let Some(created) = payments::insert(self.db(), &new).await? {
            tracing::info!(booking.id = %booking.id, payment.id = %created.id, provider = provider.name(), "checkout started");
            return Ok(created);
        }
        // A checkout racing this one recorded its payment first: that one stands.
        payments::pending_for_booking(self.db(), booking.id)
            .await?
            .ok_or_else(|| BookingError::conflict("checkout_conflict", "try the checkout again"))
    }

    /// A booking's payments, oldest first, for its member or staff.
    pub async fn payments_of(&self, actor: Actor, booking_id: Uuid) -> Result<Vec<Payment>> {
        let booking = self.find(actor, booking_id).await?;
        Ok(payments::list_for_booking(self.db(), booking.id).await?)
    }

    /// Staff took the payment at the club: records an on-site payment (completing the member's
    /// pending on-site checkout, if any) and confirms the hold, in one transaction. Marking a paid
    /// booking paid again changes nothing.
    pub async fn mark_paid(&self, staff: Actor, booking_id: Uuid) -> Result<Booking> {
        let mut tx = self.db().begin().await?;
        let current = bookings::lock(&mut tx, booking_id, None)
            .await?
            .ok_or_else(BookingError::booking_not_found)?;
        let paid = payments::list_for_booking(&mut *tx, booking_id)
            .await?
            .iter()
            .any(|p| p.status.is_paid());
        match current.status {
            BookingStatus::Confirmed if paid => return Ok(current),
            BookingStatus::Confirmed | BookingStatus::Held => {}
            BookingStatus::Expired => return Err(BookingError::hold_expired()),
            BookingStatus::Cancelled => {
                return Err(BookingError::conflict(
                    "booking_not_active",
                    "this booking was cancelled",
                ));
            }
        }
        if current.class_id.is_some() || current.price_cents <= 0 {
            return Err(BookingError::conflict(
                "nothing_to_pay",
                "this booking has no price to pay",
            ));
        }
        let confirmed = if current.status == BookingStatus::Held {
            match bookings::confirm(&mut tx, booking_id, staff.id).await? {
                Some(confirmed) => confirmed,
                None => {
                    let expired = bookings::expire(&mut tx, booking_id).await?;
                    tx.commit().await?;
                    if let Some(expired) = expired {
                        let ctx = context::load_any(self.db(), expired.facility_id).await?;
                        self.settle(&ctx, std::slice::from_ref(&expired)).await?;
                    }
                    return Err(BookingError::hold_expired());
                }
            }
        } else {
            current
        };
        let pending = payments::pending_for_booking(&mut *tx, booking_id)
            .await?
            .filter(|p| p.provider == OnSite.name());
        match pending {
            Some(pending) => {
                payments::mark_succeeded(&mut tx, pending.id, Some(staff.id)).await?;
            }
            None => {
                let id = Uuid::now_v7();
                payments::insert(
                    &mut *tx,
                    &NewPayment {
                        id,
                        booking_id,
                        user_id: confirmed.user_id,
                        provider: OnSite.name(),
                        provider_ref: format!("onsite_{id}"),
                        client_secret: None,
                        status: PaymentStatus::Succeeded,
                        amount_cents: confirmed.price_cents,
                        currency: confirmed.currency.clone(),
                        recorded_by: Some(staff.id),
                    },
                )
                .await?;
            }
        }
        let ctx = context::load_any(&mut *tx, confirmed.facility_id).await?;
        tx.commit().await?;
        self.settle(&ctx, std::slice::from_ref(&confirmed)).await?;
        Ok(confirmed)
    }

    /// Applies a Stripe webhook event whose signature was verified: once, whatever the repeats or
    /// the order.
    pub async fn apply_stripe_event(&self, event: &Event) -> Result<Applied> {
        let effect = event.effect().map_err(|e| {
            BookingError::Validation(vec![clubpulse_domain::FieldError::new(
                "data.object",
                format!("not a PaymentIntent: {e}"),
            )])
        })?;
        // The event's type is the verdict; its object says which intent.
        let (intent, status) = match effect {
            EventEffect::Succeeded(intent) => (intent, IntentStatus::Succeeded),
            EventEffect::Failed(intent) => (intent, IntentStatus::Failed),
            EventEffect::Ignored => return Ok(Applied::Ignored),
        };
        let mut tx = self.db().begin().await?;
        let Some(payment) = payments::lock_by_ref(&mut tx, "stripe", &intent.provider_ref).await?
        else {
            tracing::warn!(provider_ref = %intent.provider_ref, event.id = %event.id, "a payment event about an intent this service did not create");
            return Ok(Applied::Ignored);
        };
        if !payments::record_event(&mut tx, &event.id, "stripe", &event.kind, Some(payment.id))
            .await?
        {
            return Ok(Applied::Unchanged);
        }
        let applied = self
            .apply_intent_status(&mut tx, &payment, status, intent.failure_message)
            .await?;
        tx.commit().await?;
        self.after_payment(&payment, &applied).await;
        Ok(if applied == Settled::Unchanged {
            Applied::Unchanged
        } else {
            Applied::Changed
        })
    }

    /// Moves a locked payment to what the provider says of it, and its booking with it.
    async fn apply_intent_status(
        &self,
        tx: &mut PgConnection,
        payment: &Payment,
        status: IntentStatus,
        failure: Option<String>,
    ) -> Result<Settled> {
        match status {
            IntentStatus::Succeeded => self.payment_succeeded(tx, payment).await,
            IntentStatus::Failed | IntentStatus::Cancelled => {
                let message = failure.unwrap_or_else(|| "the payment was cancelled".to_owned());
                // The hold runs its course: the member may try another card.
                Ok(
                    match payments::mark_failed(tx, payment.id, Some(&message)).await? {
                        Some(_) => Settled::Failed,
                        None => Settled::Unchanged,
                    },
                )
            }
            IntentStatus::Pending => Ok(Settled::Unchanged),
        }
    }

    /// A locked payment succeeded: confirm its booking if it can still be had, owe the money back
    /// if not.
    async fn payment_succeeded(&self, tx: &mut PgConnection, payment: &Payment) -> Result<Settled> {
        let Some(succeeded) = payments::mark_succeeded(tx, payment.id, None).await? else {
            return Ok(Settled::Unchanged);
        };
        let booking = bookings::lock(tx, payment.booking_id, None)
            .await?
            .ok_or_else(BookingError::booking_not_found)?;
        let mut status = booking.status;
        if status == BookingStatus::Held {
            if let Some(confirmed) = bookings::confirm(tx, booking.id, booking.user_id).await? {
                return Ok(Settled::Confirmed(Box::new(confirmed)));
            }
            // Held, but past its expiry: record that, then take the late path.
            bookings::expire(tx, booking.id).await?;
            status = BookingStatus::Expired;
        }
        let reason = match status {
            BookingStatus::Expired => {
                match bookings::retake_expired(tx, booking.id, booking.user_id).await? {
                    Some(confirmed) => {
                        tracing::info!(booking.id = %booking.id, payment.id = %payment.id, "a late payment confirmed its booking: the range was still free");
                        return Ok(Settled::Confirmed(Box::new(confirmed)));
                    }
                    None => RefundReason::SlotTaken,
                }
            }
            BookingStatus::Confirmed => {
                let other_paid = payments::list_for_booking(&mut *tx, booking.id)
                    .await?
                    .iter()
                    .any(|p| p.id != payment.id && p.status.is_paid());
                if !other_paid {
                    // Confirmed by staff before the money came: this payment pays for it.
                    return Ok(Settled::Unchanged);
                }
                RefundReason::Duplicate
            }
            BookingStatus::Cancelled => RefundReason::Cancelled,
            BookingStatus::Held => RefundReason::Duplicate,
        };
        tracing::info!(booking.id = %booking.id, payment.id = %payment.id, reason = reason.as_str(), "a payment that cannot confirm its booking is owed back");
        payments::owe_refund(tx, &succeeded, succeeded.amount_cents, reason).await?;
        Ok(Settled::Refunding)
    }

    /// After a payment's transaction committed: makes the booking change visible and the refunds
    /// owed. A failure here is logged and left to reconciliation.
    async fn after_payment(&self, payment: &Payment, settled: &Settled) {
        if let Settled::Confirmed(booking) = settled {
            match context::load_any(self.db(), booking.facility_id).await {
                Ok(ctx) => {
                    if let Err(err) = self
                        .settle(&ctx, std::slice::from_ref(booking.as_ref()))
                        .await
                    {
                        tracing::warn!(error = %err, booking.id = %booking.id, "settling a paid booking failed; the relay will");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "loading a paid booking's facility"),
            }
        }
        if let Err(err) = self.make_refunds(Some(payment.id)).await {
            tracing::warn!(error = %err, payment.id = %payment.id, "making refunds failed; reconciliation will retry");
        }
    }

    /// Owes back what a cancelled booking's payments took, less the policy's fee, in the
    /// cancellation's transaction.
    pub(crate) async fn owe_cancellation_refunds(
        &self,
        tx: &mut PgConnection,
        booking: &Booking,
    ) -> Result<Vec<Uuid>> {
        let mut fee = booking.cancellation_fee_cents.unwrap_or(0);
        let mut owed = Vec::new();
        for payment in payments::lock_refundable(tx, booking.id).await? {
            let kept = fee.min(payment.refundable_cents());
            fee -= kept;
            let back = payment.refundable_cents() - kept;
            if back > 0
                && payments::owe_refund(tx, &payment, back, RefundReason::Cancelled)
                    .await?
                    .is_some()
            {
                owed.push(payment.id);
            }
        }
        Ok(owed)
    }

    /// Makes the refunds still owed: of one payment, or (with `None`) every refund owed for a
    /// while. Returns how many were made.
    pub async fn make_refunds(&self, payment_id: Option<Uuid>) -> Result<usize> {
        // A refund owed a moment ago is being made by the request that owed it.
        let before = match payment_id {
            Some(_) => Utc::now() + chrono::Duration::seconds(1),
            None => Utc::now() - chrono::Duration::seconds(10),
        };
        let owed = payments::pending_refunds(self.db(), payment_id, before, 100).await?;
        let mut made = 0;
        for refund in owed {
            if self.make_refund(&refund).await? {
                made += 1;
            }
        }
        Ok(made)
    }

    async fn make_refund(&self, refund: &Refund) -> Result<bool> {
        let payment = payments::find(self.db(), refund.payment_id)
            .await?
            .ok_or_else(|| BookingError::Corrupt(format!("refund {} has no payment", refund.id)))?;
        let provider: Arc<dyn PaymentProvider> = if payment.provider == self.provider().name() {
            self.provider().clone()
        } else if payment.provider == OnSite.name() {
            Arc::new(OnSite)
        } else {
            tracing::error!(payment.id = %payment.id, provider = %payment.provider, "a refund is owed through a provider this instance is not configured for");
            return Ok(false);
        };
        match provider
            .refund(
                &payment.provider_ref,
                refund.amount_cents,
                &format!("refund-{}", refund.id),
            )
            .await
        {
            Ok(made) => {
                let mut tx = self.db().begin().await?;
                let done =
                    payments::complete_refund(&mut tx, refund.id, &made.provider_ref).await?;
                tx.commit().await?;
                if done.is_some() {
                    tracing::info!(payment.id = %payment.id, refund.id = %refund.id, amount_cents = refund.amount_cents, "refund made");
                }
                Ok(done.is_some())
            }
            Err(err) => {
                let permanent = !err.is_transient();
                if permanent {
                    tracing::error!(error = %err, refund.id = %refund.id, "the provider refused a refund; it needs staff");
                } else {
                    tracing::warn!(error = %err, refund.id = %refund.id, "a refund could not be made yet");
                }
                payments::refund_attempt_failed(self.db(), refund.id, &err.to_string(), permanent)
                    .await?;
                Ok(false)
            }
        }
    }
}

impl Bookings {
    /// One reconciliation pass: asks the provider about payments pending for longer than
    /// `older_than` (a webhook may have been lost) and applies what it says, exactly as the
    /// webhook would have; then makes the refunds still owed.
    pub async fn reconcile_payments(&self, older_than: Duration) -> Result<Reconciled> {
        let provider = self.provider().clone();
        let mut done = Reconciled::default();
        if provider.name() != OnSite.name() {
            let before = Utc::now()
                - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
            for pending in payments::pending_before(self.db(), provider.name(), before, 100).await?
            {
                let intent = match provider.retrieve(&pending.provider_ref).await {
                    Ok(intent) => intent,
                    Err(err) => {
                        tracing::warn!(error = %err, payment.id = %pending.id, "could not ask the provider about a pending payment");
                        continue;
                    }
                };
                if intent.status == IntentStatus::Pending {
                    continue;
                }
                let mut tx = self.db().begin().await?;
                let Some(payment) =
                    payments::lock_by_ref(&mut tx, provider.name(), &pending.provider_ref).await?
                else {
                    continue;
                };
                // Recorded like an event, so that two instances reconciling at once apply it once.
                let id = format!("reconcile:{}:{:?}", payment.provider_ref, intent.status);
                if !payments::record_event(
                    &mut tx,
                    &id,
                    provider.name(),
                    "reconcile",
                    Some(payment.id),
                )
                .await?
                {
                    continue;
                }
                let settled = self
                    .apply_intent_status(&mut tx, &payment, intent.status, intent.failure_message)
                    .await?;
                tx.commit().await?;
                tracing::info!(payment.id = %payment.id, status = ?intent.status, "reconciled a pending payment");
                self.after_payment(&payment, &settled).await;
                if settled != Settled::Unchanged {
                    done.payments += 1;
                }
            }
        }
        done.refunds = self.make_refunds(None).await?;
        Ok(done)
    }
}

/// How often some instance reconciles payments.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// The periodic reconciliation job.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ReconcilePayments;

impl Job for ReconcilePayments {
    const KIND: &'static str = "payments.reconcile";

    fn unique_key(&self) -> Option<String> {
        Some("payments.reconcile".to_owned())
    }
}

/// Adds reconciliation to a deployment's periodic jobs.
pub fn schedule(periodic: Periodic) -> std::result::Result<Periodic, JobError> {
    periodic.every(RECONCILE_EVERY, &ReconcilePayments)
}

/// Registers the reconciliation job's handler: payments pending for `older_than` are asked about.
pub fn register(registry: &mut Registry, bookings: Bookings, older_than: Duration) {
    registry.register::<ReconcilePayments, _>(move |_job: ReconcilePayments, _ctx: JobContext| {
        let bookings = bookings.clone();
        async move {
            let done = bookings
                .reconcile_payments(older_than)
                .await
                .map_err(JobFailure::new)?;
            if done != Reconciled::default() {
                tracing::info!(
                    payments = done.payments,
                    refunds = done.refunds,
                    "payments reconciled"
                );
            }
            Ok(())
        }
    });
}
