//! The API's one error type and its RFC 9457 problem+json form.
//!
//! Client errors carry a stable snake_case `code` that clients may branch on. Server errors are
//! opaque: the response says only that something failed and gives the request id; the cause travels
//! in the response extensions to the request-logging middleware, which logs it once.

use std::sync::Arc;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use clubpulse_domain::FieldError;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// How long a client should wait before retrying a request that met an unavailable dependency:
/// long enough for a database restart or a Redis failover, short enough not to lose the member.
const RETRY_AFTER_SECONDS: &str = "2";

/// An RFC 9457 problem document, as sent to clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type: `/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable: branch on this, not on `title` or `detail`.
    pub code: String,
    /// For `validation_failed`: every invalid field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
}

/// One invalid field of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field as the client named it, with a path for nested values (`opening_hours.mon[0]`).
    pub field: String,
    pub message: String,
}

/// The cause of a 5xx, kept for the request log.
#[derive(Debug, Clone)]
pub struct InternalCause(pub Arc<anyhow::Error>);

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    /// The rarer parts, boxed so that `Result<_, ApiError>` stays small on the happy path.
    more: Box<More>,
}

#[derive(Debug, Default)]
struct More {
    errors: Vec<FieldError>,
    extra: Map<String, Value>,
    headers: Vec<(axum::http::HeaderName, HeaderValue)>,
    cause: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            more: Box::default(),
        }
    }

    /// Adds response headers (`Retry-After` on a 429, say).
    #[must_use]
    pub fn with_headers(
        mut self,
        headers: impl IntoIterator<Item = (axum::http::HeaderName, HeaderValue)>,
    ) -> Self {
        self.more.headers.extend(headers);
        self
    }

    /// 400: the request could not be read at all.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401: no session, or a session that has ended.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403: the session's role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404: unknown, or not the caller's to see.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// 409: the request clashes with the current state.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422 `validation_failed`, naming every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        error.more.errors = errors;
        error
    }

    /// 422 for a single field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 500: nothing about the cause reaches the client; it is logged with the request.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle this request; it has been logged",
        );
        error.more.cause = Some(cause.into());
        error
    }

    /// 503: a dependency is unavailable, with `Retry-After`: the same request may well succeed
    /// once it is back.
    pub fn unavailable(
        code: &'static str,
        detail: impl Into<String>,
        cause: anyhow::Error,
    ) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).with_headers([(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        )]);
        error.more.cause = Some(cause);
        error
    }

    /// The same error with a more specific code (`invalid_credentials` rather than `unauthenticated`).
    #[must_use]
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// Adds a member to the problem document (`alternatives` on a booking conflict, say).
    #[must_use]
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.more.extra.insert(key.to_owned(), value);
        self
    }

    /// The code, the detail and the `alternatives` member (null when absent), for answers that embed
    /// a refusal inside a larger document (one occurrence of a weekly series, say).
    pub fn describe(&self) -> (&'static str, String, Value) {
        (
            self.code,
            self.detail.clone(),
            self.more
                .extra
                .get("alternatives")
                .cloned()
                .unwrap_or(Value::Null),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// The problem+json response for a status and code.
pub fn problem_response(
    status: StatusCode,
    code: &str,
    detail: &str,
    errors: &[FieldError],
    extra: Map<String, Value>,
) -> Response {
    let problem = Problem {
        kind: format!("/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        code: code.to_owned(),
        errors: (!errors.is_empty()).then(|| {
            errors
                .iter()
                .map(|e| ProblemField {
                    field: e.field.clone(),
                    message: e.message.clone(),
                })
                .collect()
        }),
    };
    let mut body = match serde_json::to_value(problem) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    body.extend(extra);
    let mut response = (status, Json(Value::Object(body))).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = problem_response(
            self.status,
            self.code,
            &self.detail,
            &self.more.errors,
            self.more.extra,
        );
        for (name, value) in self.more.headers {
            response.headers_mut().insert(name, value);
        }
        if let Some(cause) = self.more.cause {
            response
                .extensions_mut()
                .insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}

impl From<clubpulse_storage::StorageError> for ApiError {
    fn from(err: clubpulse_storage::StorageError) -> Self {
        use clubpulse_storage::{Conflict, Invalid, StorageError};
        let unprocessable = |code: &'static str, detail: &str| {
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
        };
        match err {
            StorageError::Conflict(Conflict::EmailTaken) => {
                Self::conflict("email_taken", "an account with this e-mail already exists")
            }
            StorageError::Conflict(Conflict::ClubNameTaken) => {
                Self::conflict("club_name_taken", "a club with this name already exists")
            }
            StorageError::Conflict(Conflict::FacilityNameTaken) => Self::conflict(
                "facility_name_taken",
                "this club already has a facility with this name",
            ),
            StorageError::Conflict(Conflict::Duplicate) => {
                Self::conflict("already_exists", "this clashes with something that exists")
            }
            StorageError::MissingReference("referenced row") => unprocessable(
                "missing_reference",
                "the request refers to something that does not exist",
            ),
            StorageError::MissingReference(what) => {
                Self::invalid_field(&format!("{what}_id"), format!("no such {what}"))
            }
            StorageError::Invalid(Invalid::Constraint) => unprocessable(
                "constraint_violated",
                "a value breaks a rule of what can be stored",
            ),
            StorageError::Invalid(Invalid::Text) => unprocessable(
                "invalid_text",
                "a text contains a character that cannot be stored (a NUL, say)",
            ),
            StorageError::Invalid(Invalid::Format) => unprocessable(
                "invalid_value",
                "a value is not of the form or range its type allows",
            ),
            StorageError::Invalid(Invalid::OutOfRange) => {
                unprocessable("number_out_of_range", "a number is out of its range")
            }
            StorageError::Invalid(Invalid::TooLong) => {
                unprocessable("value_too_long", "a value is longer than can be stored")
            }
            StorageError::Contention(sqlstate) => Self::unavailable(
                "database_contention",
                "the request collided with another one; try again",
                anyhow::anyhow!("transaction aborted (SQLSTATE {sqlstate}) after retries"),
            ),
            StorageError::Unavailable(cause) => Self::unavailable(
                "database_unavailable",
                "the database is busy or unreachable; try again shortly",
                anyhow::Error::new(cause),
            ),
            other => Self::internal(other),
        }
    }
}

/// A part of the shared state (Redis, or its in-process twin), as a 503 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatePart {
    Sessions,
    RateLimits,
    AvailabilityCache,
    PopularTimes,
    HoldMirror,
    OneTimeTokens,
    /// The signatures of signed API requests seen within their window.
    SignatureNonces,
}

impl StatePart {
    /// The stable code of this part's 503.
    pub fn code(self) -> &'static str {
        match self {
            Self::Sessions => "sessions_unavailable",
            Self::RateLimits => "rate_limiter_unavailable",
            Self::AvailabilityCache => "availability_cache_unavailable",
            Self::PopularTimes => "popular_times_unavailable",
            Self::HoldMirror => "hold_mirror_unavailable",
            Self::OneTimeTokens => "one_time_tokens_unavailable",
            Self::SignatureNonces => "signature_nonces_unavailable",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sessions => "session storage",
            Self::RateLimits => "the rate limiter",
            Self::AvailabilityCache => "the availability cache",
            Self::PopularTimes => "the popular-times counters",
            Self::HoldMirror => "the hold mirror",
            Self::OneTimeTokens => "the one-time token store",
            Self::SignatureNonces => "the store of seen request signatures",
        }
    }
}

impl ApiError {
    /// 503 naming the shared-state part that failed; the cause goes to the log only.
    pub fn state(part: StatePart, err: clubpulse_state::StateError) -> Self {
        Self::unavailable(
            part.code(),
            format!("{} is unreachable; try again shortly", part.name()),
            err.into(),
        )
    }
}

/// A bare `?` on a state call is a session call (most are); other parts say which they are with
/// [`ApiError::state`].
impl From<clubpulse_state::StateError> for ApiError {
    fn from(err: clubpulse_state::StateError) -> Self {
        Self::state(StatePart::Sessions, err)
    }
}

impl From<clubpulse_jobs::JobError> for ApiError {
    fn from(err: clubpulse_jobs::JobError) -> Self {
        use clubpulse_jobs::JobError;
        match err {
            JobError::Redis(_) | JobError::Postgres(_) => Self::unavailable(
                "jobs_unavailable",
                "the job queue is unreachable; try again shortly",
                err.into(),
            ),
            other => Self::internal(anyhow::Error::new(other)),
        }
    }
}

impl From<clubpulse_booking::BookingError> for ApiError {
    fn from(err: clubpulse_booking::BookingError) -> Self {
        use clubpulse_booking::BookingError;
        match err {
            BookingError::NotFound { code, detail } => Self::not_found(code, detail),
            BookingError::Rule { code, detail } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            }
            BookingError::Validation(errors) => Self::validation(errors),
            BookingError::SlotUnavailable { alternatives } => Self::conflict(
                "slot_unavailable",
                "this time is already taken at this facility",
            )
            .with("alternatives", serde_json::json!(alternatives)),
            BookingError::Conflict { code, detail } => Self::conflict(code, detail),
            BookingError::Storage(err) => err.into(),
            BookingError::PopularTimes(err) => Self::state(StatePart::PopularTimes, err),
            BookingError::State(err) => Self::internal(err),
            BookingError::Payment(err) => payment_error(err),
            BookingError::Corrupt(detail) => Self::internal(anyhow::anyhow!(detail)),
        }
    }
}

/// A payment provider's failure: 503 while it cannot be reached (try again), 502 when it refused
/// or garbled the request. Its details are logged, not shown.
fn payment_error(err: clubpulse_payments::ProviderError) -> ApiError {
    if err.is_transient() {
        ApiError::unavailable(
            "payment_provider_unavailable",
            "the payment provider cannot be reached; try again shortly",
            err.into(),
        )
    } else {
        tracing::error!(error = %err, "the payment provider refused a request");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "payment_provider_error",
            "the payment provider refused the request",
        )
    }
}

/// Response schemas of errors, for the OpenAPI document.
pub mod responses {
    use utoipa::IntoResponses;

    use super::Problem;

    /// The problem+json error responses every route may give.
    #[derive(Debug, IntoResponses)]
    #[allow(dead_code)]
    pub enum ProblemResponses {
        #[response(
            status = 400,
            description = "Malformed request (`malformed_json`, `invalid_query`, `invalid_path`)",
            content_type = "application/problem+json"
        )]
        BadRequest(Problem),
        #[response(
            status = 401,
            description = "No session or an ended one (`unauthenticated`); for an API key that \
                           requires signed requests, `signature_required`, `signature_malformed`, \
                           `signature_expired`, `signature_replayed` or `signature_invalid`",
            content_type = "application/problem+json"
        )]
        Unauthorized(Problem),
        #[response(
            status = 403,
            description = "The role may not do this (`forbidden`)",
            content_type = "application/problem+json"
        )]
        Forbidden(Problem),
        #[response(
            status = 404,
            description = "Unknown, or not yours",
            content_type = "application/problem+json"
        )]
        NotFound(Problem),
        #[response(
            status = 409,
            description = "Conflicts with the current state",
            content_type = "application/problem+json"
        )]
        Conflict(Problem),
        #[response(
            status = 413,
            description = "Body too large (`payload_too_large`)",
            content_type = "application/problem+json"
        )]
        TooLarge(Problem),
        #[response(
            status = 415,
            description = "Body is not JSON (`unsupported_media_type`)",
            content_type = "application/problem+json"
        )]
        UnsupportedMediaType(Problem),
        #[response(
            status = 422,
            description = "Invalid values (`validation_failed`, with `errors`)",
            content_type = "application/problem+json"
        )]
        Unprocessable(Problem),
    }
}
