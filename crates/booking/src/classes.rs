//! Classes: staff schedule them on a facility (they occupy it like a confirmed booking); members
//! take one or more places, never more than the capacity, under any concurrency.

use chrono::Utc;
use clubpulse_domain::{Capacity, FacilityName, Spots, TimeRange};
use clubpulse_storage::{
    StorageError,
    classes::{self, Class, CreateClassError, EnrollError, Enrollment, NewClass},
};
use uuid::Uuid;

use crate::{Actor, BookingError, Bookings, Result};

/// A class to schedule, its fields already parsed.
#[derive(Debug, Clone)]
pub struct ClassRequest {
    pub facility_id: Uuid,
    pub title: FacilityName,
    pub range: TimeRange,
    pub capacity: Capacity,
}

fn class_not_found() -> BookingError {
    BookingError::NotFound {
        code: "class_not_found",
        detail: "no such class",
    }
}

impl Bookings {
    /// Schedules a class. It must fit the grid and start in the future; the booking window does
    /// not limit staff.
    pub async fn schedule_class(&self, staff: Actor, request: ClassRequest) -> Result<Class> {
        let ctx = self.contexts().get(request.facility_id).await?;
        if request.range.start() < Utc::now() {
            return Err(BookingError::rule(
                "in_the_past",
                "the class starts in the past",
            ));
        }
        ctx.grid
            .fit(&request.range)
            .map_err(|e| BookingError::rule(e.code(), e.to_string()))?;
        let new = NewClass {
            facility_id: ctx.facility.id,
            title: request.title.as_str().to_owned(),
            range: request.range,
            capacity: i32::from(request.capacity.get()),
            buffer_minutes: ctx.facility.buffer_minutes,
            created_by: staff.id,
            currency: ctx.facility.currency.clone(),
        };
        // One transaction, run again if a rival's deadlocked it (never reported as a taken slot).
        let class = clubpulse_storage::retry_contended(|| async {
            let mut tx = self.db().begin().await.map_err(StorageError::from)?;
            let class = classes::create(&mut tx, &new).await?;
            tx.commit().await.map_err(StorageError::from)?;
            Ok::<_, CreateClassError>(class)
        })
        .await
        .map_err(|e| match e {
            CreateClassError::SlotUnavailable => BookingError::conflict(
                "slot_unavailable",
                "the facility is already booked at that time",
            ),
            CreateClassError::Storage(err) => err.into(),
        })?;
        let buffer = chrono::Duration::minutes(i64::from(ctx.facility.buffer_minutes));
        self.invalidate(&ctx, &[(class.start, class.end + buffer)])
            .await?;
        tracing::info!(staff.id = %staff.id, class.id = %class.id, "class scheduled");
        Ok(class)
    }

    /// Classes that have not ended, soonest first.
    pub async fn upcoming_classes(&self, facility_id: Option<Uuid>) -> Result<Vec<Class>> {
        Ok(classes::upcoming(self.db(), facility_id).await?)
    }

    pub async fn class(&self, id: Uuid) -> Result<Class> {
        classes::find(self.db(), id)
            .await?
            .ok_or_else(class_not_found)
    }

    /// Takes `spots` places in a class.
    pub async fn enroll(&self, actor: Actor, class_id: Uuid, spots: Spots) -> Result<Enrollment> {
        let mut tx = self.db().begin().await?;
        let enrollment = classes::enroll(&mut tx, class_id, actor.id, i32::from(spots.get()))
            .await
            .map_err(|e| match e {
                EnrollError::NotFound => class_not_found(),
                EnrollError::Started => {
                    BookingError::conflict("class_started", "the class has already started")
                }
                EnrollError::Full => {
                    BookingError::conflict("class_full", "not enough places left in this class")
                }
                EnrollError::Storage(err) => err.into(),
            })?;
        tx.commit().await?;
        Ok(enrollment)
    }

    /// Cancels an enrolment the actor may see and frees its places.
    pub async fn cancel_enrollment(&self, actor: Actor, id: Uuid) -> Result<Enrollment> {
        let owner = actor.owner_filter();
        let mut tx = self.db().begin().await?;
        let cancelled = classes::cancel_enrollment(&mut tx, id, owner).await?;
        tx.commit().await?;
        match cancelled {
            Some(enrollment) => Ok(enrollment),
            None => match classes::find_enrollment(self.db(), id, owner).await? {
                Some(_) => Err(BookingError::conflict(
                    "enrollment_not_active",
                    "this enrolment was already cancelled",
                )),
                None => Err(BookingError::NotFound {
                    code: "enrollment_not_found",
                    detail: "no such enrolment",
                }),
            },
        }
    }
}
