//! Extractors. Every rejection is an [`ApiError`], so malformed input gets the same problem+json as
//! everything else; authentication is an extractor, so a handler that needs a user cannot be written
//! without one.

use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Request, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use clubpulse_domain::Role;
use clubpulse_state::{SessionRecord, SessionToken};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{ApiError, AppState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "clubpulse_session";

/// A JSON body. A body that is not `application/json` is 415, unreadable JSON 400
/// `malformed_json`, JSON of the wrong shape 422 `validation_failed` naming the field, a body over
/// the limit 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(unreadable_body)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, telling syntax errors (400) from shape errors (422, with the field's path).
///
/// Text that PostgreSQL cannot store, or that no client means to send, is refused here, before any
/// handler sees it: a control character (a NUL above all: `\u0000` is valid JSON, but PostgreSQL
/// refuses it in `text` and `jsonb`) anywhere in a string or an object key is 422
/// `validation_failed` naming the field. Tab, line feed and carriage return are allowed in values
/// (a multi-line description), never in keys.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |err: serde_json::Error| {
        ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {err}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        // A body that is JSON but of the wrong shape is impossible here (any JSON is a Value),
        // so every error is a syntax error.
        malformed(err)
    })?;
    let mut path = String::new();
    if let Some(problem) = control_characters(&value, &mut path) {
        return Err(problem);
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let field = if path == "." { String::new() } else { path };
        ApiError::invalid_field(&field, strip_position(&inner.to_string()))
    })
}

/// Whether a character may appear in a JSON string value: anything but control characters,
/// except tab, line feed and carriage return.
fn allowed_in_value(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// The first string or key of `value` holding a control character, as a 422 naming its path.
fn control_characters(value: &serde_json::Value, path: &mut String) -> Option<ApiError> {
    use serde_json::Value;
    let refuse = |path: &str, c: char, what: &str| {
        let field = if path.is_empty() { "." } else { path };
        ApiError::invalid_field(
            field,
            format!(
                "{what} must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        )
    };
    match value {
        Value::String(text) => text
            .chars()
            .find(|c| !allowed_in_value(*c))
            .map(|c| refuse(path, c, "the text")),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = control_characters(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(members) => members.iter().find_map(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            if let Some(c) = key.chars().find(|c| c.is_control()) {
                path.push_str(&key.escape_default().to_string());
                let found = refuse(path, c, "a key");
                path.truncate(len);
                return Some(found);
            }
            path.push_str(key);
            let found = control_characters(item, path);
            path.truncate(len);
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// serde's messages end in "at line 1 column 17", which means nothing once the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Query parameters; an unreadable query string is 400 `invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// Path parameters; an id that is not a UUID is 400 `invalid_path`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|rejection| ApiError::bad_request("invalid_path", rejection.body_text()))
    }
}

/// Who is making the request, whatever their role: a member through their session, or an
/// integration through an API key (acting for the admin who made it, with at most staff rights).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
    /// The session, when the request came with one.
    pub session: Option<SessionRecord>,
    /// The API key, when the request came with one.
    pub api_key: Option<Uuid>,
}

impl CurrentUser {
    /// The session, for routes that manage sessions; an API key has none (403).
    pub fn session(&self) -> Result<&SessionRecord, ApiError> {
        self.session.as_ref().ok_or_else(|| {
            ApiError::forbidden("this needs a logged-in session, not an API key")
                .with_code("session_required")
        })
    }
}

/// The prefix every API key starts with.
pub const API_KEY_PREFIX: &str = "cpk_";

/// The API key a request carries: `X-API-Key`, or a Bearer token that is one.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .or_else(|| {
            let token = session_token(headers)?;
            token
                .expose()
                .starts_with(API_KEY_PREFIX)
                .then(|| token.expose().to_owned())
        })
        .filter(|k| !k.is_empty())
}

/// Equality that takes the same time wherever the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The live key `key` is (found by its prefix, proven by its hash, not expired), if any.
pub(crate) async fn live_key(
    state: &AppState,
    key: &str,
) -> Result<Option<clubpulse_storage::api_keys::ApiKey>, ApiError> {
    // cpk_<12 characters>_<secret>: the first part finds the row, the whole key's hash proves it.
    let Some(prefix) = key.get(..API_KEY_PREFIX.len() + 12) else {
        return Ok(None);
    };
    let Some(stored) = clubpulse_storage::api_keys::find_by_prefix(&state.db, prefix).await? else {
        return Ok(None);
    };
    let presented = SessionToken::from_client(key).hash();
    if !constant_time_eq(presented.as_str().as_bytes(), stored.secret_hash.as_bytes()) {
        return Ok(None);
    }
    if stored.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
        return Ok(None);
    }
    Ok(Some(stored))
}

/// Resolves an API key to the principal it acts as, checking its scope against the method, and
/// for a key that requires signed requests, that the signature middleware verified this one.
async fn key_user(state: &AppState, key: &str, parts: &Parts) -> Result<CurrentUser, ApiError> {
    let refused = || ApiError::unauthenticated("the API key is unknown, revoked or expired");
    let known = parts
        .extensions
        .get::<crate::signature::KnownKey>()
        .filter(|known| key.starts_with(&known.key.prefix));
    let (stored, signed) = match known {
        Some(known) => (known.key.clone(), known.signed),
        None => (live_key(state, key).await?.ok_or_else(refused)?, false),
    };
    if stored.require_signature && !signed {
        // Reached only where the signature middleware does not run: refuse rather than trust.
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "signature_required",
            "this API key requires signed requests: send ClubPulse-Signature",
        ));
    }
    let unsafe_method = !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if unsafe_method && !stored.scopes.iter().any(|s| s == "write") {
        return Err(
            ApiError::forbidden("this API key may only read (scope `read`)")
                .with_code("insufficient_scope"),
        );
    }
    crate::limits::check(
        state,
        crate::limits::Policy::ApiKey,
        &stored.id.to_string(),
        unsafe_method,
    )
    .await?;
    let creator = clubpulse_storage::users::find(&state.db, stored.created_by)
        .await?
        .filter(|u| u.banned_at.is_none())
        .ok_or_else(refused)?;
    Ok(CurrentUser {
        id: creator.id,
        role: creator.role.min(Role::Staff),
        session: None,
        api_key: Some(stored.id),
    })
}

/// Where the session token came from; a cookie-authenticated write is what CSRF defences guard.
pub fn session_token(headers: &HeaderMap) -> Option<SessionToken> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    bearer
        .or_else(|| cookie(headers, SESSION_COOKIE))
        .map(SessionToken::from_client)
}

/// A cookie's value from the request headers (an empty value is none).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        let state = AppState::from_ref(state);
        if let Some(key) = api_key(&parts.headers) {
            let user = key_user(&state, &key, parts).await?;
            found(parts, &user);
            return Ok(user);
        }
        let token = session_token(&parts.headers).ok_or_else(|| {
            ApiError::unauthenticated("log in and send the session cookie or a Bearer token")
        })?;
        let session = state
            .state
            .sessions
            .touch(&token.hash(), state.config.sessions.idle())
            .await?
            .ok_or_else(|| {
                ApiError::unauthenticated("the session has ended (logged out, revoked or expired)")
            })?;
        let user = CurrentUser {
            id: session.user_id,
            role: session.role,
            session: Some(session),
            api_key: None,
        };
        found(parts, &user);
        Ok(user)
    }
}

/// Keeps the user for later extractors, and tells a write's [`Writer`] slot who made it.
fn found(parts: &mut Parts, user: &CurrentUser) {
    if let Some(Writer(slot)) = parts.extensions.get::<Writer>() {
        // Set once: later extractions of the same request are the same user.
        let _ = slot.set(user.id);
    }
    parts.extensions.insert(user.clone());
}

/// Who made a write request, once an extractor has found out: put in a write's extensions by the
/// read-your-writes middleware ([`crate::middleware::read_your_writes`]), filled by [`CurrentUser`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Writer(pub std::sync::Arc<std::sync::OnceLock<Uuid>>);

/// The pool this request's reads go to ([`clubpulse_booking::Bookings::reader`]): the read replica
/// while it keeps up, unless the caller (when the request says who they are) wrote recently. For
/// public routes: a caller whose credentials are not valid reads like an anonymous one.
#[derive(Debug, Clone)]
pub struct ReadDb(pub sqlx::PgPool);

impl<S> FromRequestParts<S> for ReadDb
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        if !app.bookings.reads().on_replica() {
            return Ok(Self(app.db.clone()));
        }
        let says_who = api_key(&parts.headers).is_some() || session_token(&parts.headers).is_some();
        let user = if says_who {
            CurrentUser::from_request_parts(parts, state)
                .await
                .ok()
                .map(|u| u.id)
        } else {
            None
        };
        Ok(Self(app.bookings.reader(user).await))
    }
}

/// A user with at least staff rights; others are 403.
#[derive(Debug, Clone)]
pub struct Staff(pub CurrentUser);

/// A user with admin rights; others are 403.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

async fn require<S>(parts: &mut Parts, state: &S, role: Role) -> Result<CurrentUser, ApiError>
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    let user = CurrentUser::from_request_parts(parts, state).await?;
    if user.role.includes(role) {
        Ok(user)
    } else {
        Err(ApiError::forbidden(format!("this needs the {role} role")))
    }
}

impl<S> FromRequestParts<S> for Staff
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        require(parts, state, Role::Staff).await.map(Self)
    }
}

impl<S> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        require(parts, state, Role::Admin).await.map(Self)
    }
}

/// The client's `User-Agent`, if any.
#[derive(Debug, Clone)]
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

/// A body that could not be read: 413 `payload_too_large` over the server's limit, 400
/// `unreadable_body` otherwise.
pub(crate) fn unreadable_body(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the server accepts",
        )
    } else {
        ApiError::bad_request("unreadable_body", rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        slots: u16,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422_with_the_field() {
        let err = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!((err.status().as_u16(), err.code()), (400, "malformed_json"));
        let err = parse_json::<Body>(b"{\"name\": \"a\", \"slots\": \"x\"}").unwrap_err();
        assert_eq!(
            (err.status().as_u16(), err.code()),
            (422, "validation_failed")
        );
        let err = parse_json::<Body>(b"{\"name\": \"a\", \"slots\": 1, \"role\": \"admin\"}")
            .unwrap_err();
        assert_eq!(err.status().as_u16(), 422);
        let err = parse_json::<Body>(b"{\"name\": \"a\", \"slots\": 1} trailing").unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(parse_json::<Body>(b"{\"name\": \"a\", \"slots\": 1}").is_ok());
    }

    #[test]
    fn control_characters_anywhere_are_422_naming_the_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Free {
            name: String,
            specifications: serde_json::Value,
        }
        for (body, field) in [
            (r#"{"name": "a\u0000b", "specifications": {}}"#, "name"),
            (
                r#"{"name": "a", "specifications": {"surface": "cl\u0000ay"}}"#,
                "specifications.surface",
            ),
            (
                r#"{"name": "a", "specifications": {"amenities": ["ok", "\u001b[31m"]}}"#,
                "specifications.amenities[1]",
            ),
            (
                r#"{"name": "a", "specifications": {"k\u0000": 1}}"#,
                "specifications.k\\u{0}",
            ),
            (r#"{"name": "\u007f", "specifications": {}}"#, "name"),
        ] {
            let err = parse_json::<Free>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (err.status().as_u16(), err.code()),
                (422, "validation_failed"),
                "{body}"
            );
            assert!(err.describe().1.starts_with(field), "{body}: {err:?}");
        }
        let ok = parse_json::<Free>(br#"{"name": "a\tb\nc", "specifications": {"x": "y\r\n"}}"#);
        assert!(ok.is_ok());
    }

    #[test]
    fn the_bearer_header_wins_over_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; clubpulse_session=fromcookie"),
        );
        assert_eq!(session_token(&headers).unwrap().expose(), "fromcookie");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer fromheader"),
        );
        assert_eq!(session_token(&headers).unwrap().expose(), "fromheader");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(session_token(&headers).unwrap().expose(), "fromcookie");
    }
}
