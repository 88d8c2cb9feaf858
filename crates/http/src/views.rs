//! Response shapes that more than one area answers with (a facility is listed, read and found by
//! search), so that no route module imports another.

use chrono::{DateTime, Utc};
use clubpulse_storage::facilities::Facility;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A facility.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacilityView {
    pub id: Uuid,
    pub club_id: Uuid,
    pub name: String,
    #[schema(example = "padel")]
    pub sport: String,
    pub description: String,
    /// Structured facts: `covered`, `lighting`, `surface`, `capacity`, `amenities`…
    #[schema(value_type = Object, example = json!({"covered": true, "lighting": true, "surface": "synthetic"}))]
    pub specifications: Value,
    /// Per weekday, `[open, close]` pairs in the club's local time.
    #[schema(value_type = Object, example = json!({"mon": [["07:00", "23:00"]], "sun": [["09:00", "14:00"]]}))]
    pub opening_hours: Value,
    pub slot_minutes: i32,
    /// Minutes kept free after each booking.
    pub buffer_minutes: i32,
    /// Price of one slot in the currency's minor unit.
    pub price_cents: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Facility> for FacilityView {
    fn from(f: Facility) -> Self {
        Self {
            id: f.id,
            club_id: f.club_id,
            name: f.name,
            sport: f.sport,
            description: f.description,
            specifications: f.specifications,
            opening_hours: f.opening_hours,
            slot_minutes: f.slot_minutes,
            buffer_minutes: f.buffer_minutes,
            price_cents: f.price_cents,
            currency: f.currency,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}
