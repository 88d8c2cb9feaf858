//! One audit event, as recorded by a request and carried through the buffer to the chain.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What happened, as a stable dotted name (`auth.login.failed`, `booking.confirmed`…). The list is
/// the contract of the admin listing's `action` filter; the database checks the shape.
pub mod action {
    pub const LOGIN_SUCCEEDED: &str = "auth.login.succeeded";
    /// `details.reason`: `bad_credentials`, `unknown_account` or `banned`.
    pub const LOGIN_FAILED: &str = "auth.login.failed";
    pub const LOGOUT: &str = "auth.logout";
    pub const LOGOUT_ALL: &str = "auth.logout_all";
    /// A member ended one of their own sessions from the sessions list.
    pub const SESSION_ENDED: &str = "auth.session.ended";
    pub const PASSWORD_CHANGED: &str = "auth.password.changed";
    pub const PASSWORD_RESET_REQUESTED: &str = "auth.password_reset.requested";
    pub const PASSWORD_RESET_COMPLETED: &str = "auth.password_reset.completed";
    /// An administrator ended every session of an account.
    pub const SESSIONS_REVOKED: &str = "admin.sessions.revoked";
    pub const USER_BANNED: &str = "admin.user.banned";
    pub const BOOKING_HELD: &str = "booking.held";
    pub const BOOKING_CONFIRMED: &str = "booking.confirmed";
    pub const BOOKING_CANCELLED: &str = "booking.cancelled";
    pub const BOOKING_EXPIRED: &str = "booking.expired";
    pub const FACILITY_CREATED: &str = "facility.created";
    pub const FACILITY_UPDATED: &str = "facility.updated";
    pub const FACILITY_RETIRED: &str = "facility.retired";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const API_KEY_ROTATED: &str = "api_key.rotated";
    /// A checkout started (`payment.pending`), the provider's verdict, and money given back;
    /// `details` carry the booking, the amounts and the provider.
    pub const PAYMENT_PENDING: &str = "payment.pending";
    pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
    pub const PAYMENT_FAILED: &str = "payment.failed";
    pub const PAYMENT_REFUNDED: &str = "payment.refunded";
    /// An administrator registered an outbound webhook endpoint (`details.host`, `details.events`).
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    /// An administrator deleted an outbound webhook endpoint.
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
}

/// An event before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Chosen when the event happens; the flusher's proof that it chained this event already.
    pub id: Uuid,
    /// Microsecond precision, which is what PostgreSQL keeps, so the hash computed before and
    /// after storage agree.
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: String,
    /// `kind:id`, e.g. `booking:0192…`.
    pub target: Option<String>,
    pub ip: Option<String>,
    /// Further facts as a flat JSON object of strings, integers and booleans.
    pub details: Map<String, Value>,
}

impl AuditEvent {
    /// An event of `action` happening now, with nothing else known yet.
    pub fn new(action: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            occurred_at: Utc::now().trunc_subsecs(6),
            actor_id: None,
            action: action.to_owned(),
            target: None,
            ip: None,
            details: Map::new(),
        }
    }

    /// The account that acted.
    pub fn actor(mut self, actor_id: Uuid) -> Self {
        self.actor_id = Some(actor_id);
        self
    }

    /// The account that acted, when there is one.
    pub fn maybe_actor(mut self, actor_id: Option<Uuid>) -> Self {
        self.actor_id = actor_id;
        self
    }

    /// What was acted on.
    pub fn target(mut self, kind: &str, id: impl std::fmt::Display) -> Self {
        self.target = Some(format!("{kind}:{id}"));
        self
    }

    /// Where the request came from.
    pub fn ip(mut self, ip: impl std::fmt::Display) -> Self {
        self.ip = Some(ip.to_string());
        self
    }

    /// One more fact.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}
