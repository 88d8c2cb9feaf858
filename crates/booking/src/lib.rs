//! The Club Pulse booking service: every rule about holding, confirming and cancelling a slot, and
//! everything that must follow such a write. No HTTP here: the API calls [`Bookings`] and maps
//! [`BookingError`] to its answers; the CLI's worker runs the [`background`] work.
//!
//! PostgreSQL decides (the exclusion constraint, conditional updates, the `hold_slot` function).
//! Every status change of a booking writes an event to the transactional outbox in the same
//! transaction (a trigger does it, so no path can forget); the [`relay`] then delivers each event's
//! side effects at least once, in order per booking: availability invalidated, the hold mirror
//! updated, popular times counted, the audit event recorded, the member's notification stored, a
//! freed range offered to its waitlist, the member's e-mail queued, and the events published on the
//! real-time channels. The request path also invalidates the cache itself right after its commit, so a
//! write that returned is visible in the next availability read on any instance; the relay's second
//! invalidation is harmless.
//!
//! # Layout
//!
//! - [`context`]: a facility with its club and slot grid, loaded in one query.
//! - [`holds`]: holds, weekly series, confirmation, cancellation and reads of bookings.
//! - [`classes`]: classes and their enrolments.
//! - [`availability`]: the slot grid with each slot's state, from cached day bitmaps.
//! - [`alternatives`]: what to offer a member who lost a slot.
//! - [`events`]: the in-process bus the relay publishes booking events on.
//! - [`waitlist`]: joining and leaving waitlists, and the offers the relay makes when a range frees.
//! - [`notifications`]: what members are told of their bookings and offers, and reading it.
//! - [`live`]: the real-time channels' names and payloads.
//! - [`payments`]: checkout, the provider's verdicts, on-site payment, refunds and reconciliation.
//! - [`relay`]: the outbox relay.
//! - [`sweeper`]: expires holds nobody confirmed.
//! - [`background`]: the periodic work, run by `serve` or by `clubpulse worker`.
//! - [`error`]: the service's error type, [`BookingError`].

pub mod alternatives;
pub mod availability;
pub mod background;
pub mod classes;
pub mod context;
pub mod error;
pub mod events;
pub mod holds;
pub mod live;
pub mod notifications;
pub mod payments;
pub mod relay;
pub mod sweeper;
pub mod waitlist;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clubpulse_config::BookingConfig;
use clubpulse_domain::{BookingStatus, BookingWindow, Role};
use clubpulse_state::{MirroredHold, StateBackends, TokenPurpose};
use clubpulse_storage::{Reads, bookings::Booking};
use sqlx::PgPool;
use uuid::Uuid;

use clubpulse_cache::Caches;
pub use context::{Contexts, FacilityContext};
pub use error::{BookingError, Result};
pub use events::Events;

/// Who is asking: staff see and change every booking, members only their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
}

impl Actor {
    /// Whose bookings the actor may see: their own, or everyone's (`None`) for staff.
    pub fn owner_filter(&self) -> Option<Uuid> {
        (!self.role.includes(Role::Staff)).then_some(self.id)
    }
}

/// The booking service. Cheap to clone; every clone shares one pool and one set of backends.
#[derive(Debug, Clone)]
pub struct Bookings {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: PgPool,
    reads: Reads,
    state: StateBackends,
    rules: BookingConfig,
    events: Events,
    provider: Arc<dyn clubpulse_payments::PaymentProvider>,
    caches: Caches,
    contexts: Contexts,
    /// Alternatives being computed for a conflict, shared by its concurrent losers.
    alternatives: alternatives::InFlight,
    #[cfg(feature = "testing")]
    faults: testing::Faults,
}

impl Bookings {
    /// The service over the primary pool (and the read replica, when `db` has one) and one set of
    /// backends, taking payments through `provider`.
    pub fn new(
        db: impl Into<Reads>,
        state: StateBackends,
        rules: BookingConfig,
        provider: Arc<dyn clubpulse_payments::PaymentProvider>,
    ) -> Self {
        let reads: Reads = db.into();
        let db = reads.primary().clone();
        let caches = Caches::default();
        let contexts = Contexts::new(&caches, db.clone());
        Self {
            inner: Arc::new(Inner {
                caches,
                contexts,
                alternatives: alternatives::InFlight::default(),
                db,
                reads,
                state,
                rules,
                provider,
                events: Events::default(),
                #[cfg(feature = "testing")]
                faults: testing::Faults::default(),
            }),
        }
    }

    /// The primary: every write, and every read inside a write.
    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    /// The primary and the read replica, for reads that may come from either.
    pub fn reads(&self) -> &Reads {
        &self.inner.reads
    }

    /// Where `user`'s reads go: the read replica while it keeps up, except for a user who wrote
    /// within the replica's lag limit, whose reads stay on the primary so they see their own
    /// writes on any instance. Anonymous reads (`None`) may be as old as the lag limit.
    pub async fn reader(&self, user: Option<Uuid>) -> PgPool {
        let reads = self.reads();
        if reads.max_lag().is_none() {
            return reads.primary().clone();
        }
        let replica = reads.on_replica()
            && match user {
                None => true,
                Some(user) => matches!(
                    self.state()
                        .tokens
                        .peek(TokenPurpose::RecentWrite, &recent_writer(user))
                        .await,
                    // A user who wrote recently, or one we cannot tell about, reads the primary.
                    Ok(None)
                ),
            };
        count_read(replica);
        if replica {
            reads.pool().clone()
        } else {
            reads.primary().clone()
        }
    }

    /// Records that `user` has just written, so their reads stay on the primary for the replica's
    /// lag limit and one probe more. Nothing to record without a replica.
    pub async fn wrote(&self, user: Uuid) {
        let Some(max_lag) = self.reads().max_lag() else {
            return;
        };
        let window = max_lag + clubpulse_storage::replica::PROBE_EVERY * 2;
        if let Err(err) = self
            .state()
            .tokens
            .issue(
                TokenPurpose::RecentWrite,
                &recent_writer(user),
                user,
                window,
            )
            .await
        {
            tracing::warn!(error = %err, "could not record a recent write; the replica may serve it stale");
        }
    }

    pub fn state(&self) -> &StateBackends {
        &self.inner.state
    }

    pub fn rules(&self) -> &BookingConfig {
        &self.inner.rules
    }

    /// Every in-process cache of the service, for invalidation and for their listener
    /// ([`Caches::listen`]), which whoever runs the service starts.
    pub fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    /// Live facilities' contexts, from the in-process cache.
    pub fn contexts(&self) -> &Contexts {
        &self.inner.contexts
    }

    /// After a committed edit or retirement of a facility: its cached context goes here at once
    /// and on every other instance, and so do its cached availability days (they were laid out on
    /// the old grid) from yesterday to the end of the booking window. Failures are logged: the
    /// write is done, and the entries' TTLs bound what a lost invalidation leaves.
    pub async fn facility_changed(&self, facility_id: Uuid) {
        let key = Contexts::key(facility_id);
        if let Err(err) = self.inner.caches.invalidate(self.db(), &key).await {
            tracing::warn!(error = %err, facility.id = %facility_id, "could not tell other instances of a facility change; their cached context expires with its TTL");
        }
        let ctx = match context::load_any(self.db(), facility_id).await {
            Ok(ctx) => ctx,
            Err(err) => {
                tracing::warn!(error = %err, facility.id = %facility_id, "could not load a changed facility to invalidate its availability");
                return;
            }
        };
        let now = Utc::now();
        let from = now - chrono::Duration::days(1);
        let to = now + chrono::Duration::days(i64::from(self.rules().window_days) + 1);
        let span = [(from, to)];
        if let Err(err) = self.invalidate(&ctx, &span).await {
            tracing::warn!(error = %err, facility.id = %facility_id, "could not invalidate a changed facility's availability");
        }
    }

    /// Booking events as the relay delivers them in this process.
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    pub(crate) fn window(&self) -> BookingWindow {
        BookingWindow {
            days: self.inner.rules.window_days,
            min_notice_minutes: self.inner.rules.min_notice_minutes,
        }
    }

    /// Right after a commit, before answering: makes the write visible to the next availability
    /// read on any instance, and mirrors live holds. The relay repeats both from the outbox, so a
    /// failure here (Redis unreachable) is logged and repaired, never lost.
    pub(crate) async fn settle(&self, ctx: &FacilityContext, bookings: &[Booking]) -> Result<()> {
        let spans: Vec<_> = bookings.iter().map(|b| (b.start, b.blocks_until)).collect();
        self.invalidate(ctx, &spans).await?;
        let holds = &self.inner.state.holds;
        for booking in bookings {
            let mirrored = match (booking.status, booking.hold_expires_at) {
                (BookingStatus::Held, Some(expires_at)) => {
                    holds
                        .put(&MirroredHold {
                            booking_id: booking.id,
                            facility_id: booking.facility_id,
                            start: booking.start,
                            end: booking.end,
                            expires_at,
                        })
                        .await
                }
                _ => holds.remove(booking.id).await,
            };
            if let Err(err) = mirrored {
                tracing::warn!(error = %err, booking.id = %booking.id, "could not update the hold mirror; the relay will");
            }
        }
        Ok(())
    }

    /// Invalidates the cached availability days that blocked time `[start, until)` touches, right
    /// after the commit that changed them.
    pub(crate) async fn invalidate(
        &self,
        ctx: &FacilityContext,
        spans: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<()> {
        #[cfg(feature = "testing")]
        self.inner.faults.after_commit()?;
        let mut keys: Vec<_> = spans
            .iter()
            .flat_map(|(start, until)| ctx.day_keys(*start, *until))
            .collect();
        keys.sort_unstable_by_key(|k| (k.facility_id, k.date));
        keys.dedup();
        if let Err(err) = self.inner.state.availability.invalidate(&keys).await {
            tracing::warn!(error = %err, facility.id = %ctx.facility.id, "could not invalidate cached availability; the relay will");
        }
        Ok(())
    }

    /// Test fault points.
    #[cfg(feature = "testing")]
    pub fn faults(&self) -> &testing::Faults {
        &self.inner.faults
    }
}

/// Fault points that let tests die at the worst moment.
#[cfg(feature = "testing")]
pub mod testing {
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::BookingError;

    /// Armed fault points.
    #[derive(Debug, Default)]
    pub struct Faults {
        after_commit: AtomicBool,
    }

    impl Faults {
        /// While armed, every booking write fails right after its commit, before anything that
        /// follows it in the request: as if the process died there.
        pub fn fail_after_commit(&self, armed: bool) {
            self.after_commit.store(armed, Ordering::SeqCst);
        }

        pub(crate) fn after_commit(&self) -> Result<(), BookingError> {
            if self.after_commit.load(Ordering::SeqCst) {
                return Err(BookingError::Corrupt(
                    "the request was stopped right after its commit (test fault point)".to_owned(),
                ));
            }
            Ok(())
        }
    }
}

/// Counts a read that could have gone to the replica, by where it went.
pub(crate) fn count_read(on_replica: bool) {
    let target = if on_replica { "replica" } else { "primary" };
    metrics::counter!("clubpulse_db_replica_routed_reads_total", "target" => target).increment(1);
}

/// The key a recent writer is remembered by.
fn recent_writer(user: Uuid) -> clubpulse_state::TokenHash {
    clubpulse_state::SessionToken::from_client(&user.to_string()).hash()
}
