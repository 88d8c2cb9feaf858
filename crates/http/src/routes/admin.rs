//! Administration of accounts: revoke a user's sessions, ban a user; API keys, their rotation
//! and their signing secrets.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Duration, Utc};
use clubpulse_audit::{AuditEvent, action};
use clubpulse_state::SessionToken;
use clubpulse_storage::{api_keys, api_keys::ApiKey, users};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{API_KEY_PREFIX, Admin, ApiJson, ApiPath},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revoke_sessions))
        .routes(routes!(ban))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(rotate_api_key))
        .routes(routes!(rotate_signing_secret))
}

/// Ends every session of a user, on every instance, at their next request.
#[utoipa::path(post, path = "/admin/users/{id}/revoke-sessions", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 204, description = "Sessions ended"), ProblemResponses))]
async fn revoke_sessions(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    users::find(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user_not_found", "no such user"))?;
    let ended = app.state.sessions.revoke_all(id).await?;
    tracing::info!(admin.id = %admin.id, user.id = %id, sessions = ended, "sessions revoked by an admin");
    app.audit
        .record(
            AuditEvent::new(action::SESSIONS_REVOKED)
                .actor(admin.id)
                .target("user", id)
                .detail("sessions", ended),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Bans a user: they can no longer log in, and every session they have ends now.
#[utoipa::path(post, path = "/admin/users/{id}/ban", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 204, description = "Banned"), ProblemResponses))]
async fn ban(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if id == admin.id {
        return Err(ApiError::conflict(
            "cannot_ban_self",
            "an admin cannot ban their own account",
        ));
    }
    // Ban first, then revoke: a login racing the ban is refused by the flag or ended by the revoke.
    users::ban(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user_not_found", "no such user"))?;
    let ended = app.state.sessions.revoke_all(id).await?;
    tracing::info!(admin.id = %admin.id, user.id = %id, sessions = ended, "user banned");
    app.audit
        .record(
            AuditEvent::new(action::USER_BANNED)
                .actor(admin.id)
                .target("user", id)
                .detail("sessions", ended),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// An API key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The key's visible start, to tell keys apart.
    #[schema(example = "cpk_3f9a1c2b7d4e")]
    pub prefix: String,
    #[schema(example = json!(["read"]))]
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Refused from this moment (revoked, or the end of a rotation's grace period).
    pub expires_at: Option<DateTime<Utc>>,
    /// The key that replaced this one.
    pub rotated_to: Option<Uuid>,
    /// Whether every request made with this key must carry a `ClubPulse-Signature`.
    pub require_signature: bool,
    /// Until when the signing secret replaced by the last rotation is still accepted.
    pub previous_signing_secret_expires_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_at: k.created_at,
            expires_at: k.expires_at,
            rotated_to: k.rotated_to,
            require_signature: k.require_signature,
            previous_signing_secret_expires_at: k.previous_signing_secret_expires_at,
        }
    }
}

/// A new key: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKeyView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// Send it as `X-API-Key` (or `Authorization: Bearer`). It cannot be shown again.
    pub secret: String,
    /// For a key that requires signed requests: the HMAC key of its `ClubPulse-Signature`s. It
    /// cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// A new signing secret: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewSigningSecretView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The HMAC key of the `ClubPulse-Signature`s from now on. It cannot be shown again.
    pub signing_secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// `read` (safe requests) and/or `write` (changes too).
    #[schema(example = json!(["read"]))]
    pub scopes: Vec<String>,
    /// Every request made with the key must then be signed (`ClubPulse-Signature`, see the
    /// `signature` security scheme); the answer carries the signing secret, once. Default false.
    #[serde(default)]
    pub require_signature: bool,
}

/// The prefix every signing secret starts with.
const SIGNING_SECRET_PREFIX: &str = "cps_";

fn signing_secret() -> String {
    format!(
        "{SIGNING_SECRET_PREFIX}{}",
        SessionToken::generate().expose()
    )
}

/// Makes a key `cpk_<12 characters>_<secret>` and stores only its hash.
///
/// With `signed`, the key requires signed requests and gets a signing secret, stored as issued
/// (verifying an HMAC needs the secret itself).
async fn issue(
    app: &AppState,
    name: &str,
    scopes: &[String],
    signed: bool,
    admin: Uuid,
) -> Result<NewApiKeyView, ApiError> {
    let visible = Uuid::new_v4().simple().to_string();
    let prefix = format!("{API_KEY_PREFIX}{}", &visible[..12]);
    let secret = format!("{prefix}_{}", SessionToken::generate().expose());
    let hash = SessionToken::from_client(&secret).hash();
    let signing = signed.then(signing_secret);
    let key = api_keys::insert(
        &app.db,
        name,
        &prefix,
        hash.as_str(),
        scopes,
        admin,
        signing.as_deref(),
    )
    .await?;
    Ok(NewApiKeyView {
        key: key.into(),
        secret,
        signing_secret: signing,
    })
}

/// Creates a scoped API key for an integration; it acts with the creating admin's identity and at
/// most staff rights.
#[utoipa::path(post, path = "/admin/api-keys", tag = "admin", request_body = CreateApiKey,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = NewApiKeyView), ProblemResponses))]
async fn create_api_key(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<NewApiKeyView>), ApiError> {
    let name = clubpulse_domain::FacilityName::try_from(body.name.as_str())
        .map_err(|e| ApiError::validation(vec![e.within("name")]))?;
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() || scopes.iter().any(|s| s != "read" && s != "write") {
        return Err(ApiError::invalid_field(
            "scopes",
            "must be one or both of read, write",
        ));
    }
    let key = issue(
        &app,
        name.as_str(),
        &scopes,
        body.require_signature,
        admin.id,
    )
    .await?;
    tracing::info!(admin.id = %admin.id, api_key.id = %key.key.id, "API key created");
    app.audit
        .record(
            AuditEvent::new(action::API_KEY_CREATED)
                .actor(admin.id)
                .target("api_key", key.key.id)
                .detail("prefix", key.key.prefix.as_str()),
        )
        .await;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Every API key, newest first, without secrets.
#[utoipa::path(get, path = "/admin/api-keys", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [ApiKeyView]), ProblemResponses))]
async fn list_api_keys(
    State(app): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json(
        api_keys::list(&app.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

fn key_not_found() -> ApiError {
    ApiError::not_found("api_key_not_found", "no such API key")
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/admin/api-keys/{id}", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 204, description = "Revoked"), ProblemResponses))]
async fn revoke_api_key(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    api_keys::find(&app.db, id)
        .await?
        .ok_or_else(key_not_found)?;
    if !api_keys::expire(&app.db, id, Utc::now(), None).await? {
        return Err(ApiError::conflict(
            "api_key_inactive",
            "this key is already revoked or expired",
        ));
    }
    tracing::info!(admin.id = %admin.id, api_key.id = %id, "API key revoked");
    app.audit
        .record(
            AuditEvent::new(action::API_KEY_REVOKED)
                .actor(admin.id)
                .target("api_key", id),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKey {
    /// How long the old key keeps working, 0 to 2592000 seconds (default 86400).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_seconds: Option<i64>,
}

/// Replaces a key by a new one with the same name, scopes and signing requirement (with a signing
/// secret of its own); the old one keeps working for the grace period, so integrations can switch
/// without downtime.
#[utoipa::path(post, path = "/admin/api-keys/{id}/rotate", tag = "admin", request_body = RotateApiKey,
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 201, body = NewApiKeyView), ProblemResponses))]
async fn rotate_api_key(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RotateApiKey>,
) -> Result<(StatusCode, Json<NewApiKeyView>), ApiError> {
    let grace = body.grace_seconds.unwrap_or(86_400);
    if !(0..=2_592_000).contains(&grace) {
        return Err(ApiError::invalid_field(
            "grace_seconds",
            "must be between 0 and 2592000",
        ));
    }
    let new = rotate(&app, id, Duration::seconds(grace), admin.id).await?;
    tracing::info!(admin.id = %admin.id, api_key.id = %id, new_key.id = %new.key.id, "API key rotated");
    app.audit
        .record(
            AuditEvent::new(action::API_KEY_ROTATED)
                .actor(admin.id)
                .target("api_key", id)
                .detail("new_key", new.key.id.to_string()),
        )
        .await;
    Ok((StatusCode::CREATED, Json(new)))
}

/// Issues a key with the same name and scopes as `id`, which keeps working for `grace`.
async fn rotate(
    app: &AppState,
    id: Uuid,
    grace: Duration,
    admin_id: Uuid,
) -> Result<NewApiKeyView, ApiError> {
    let inactive = |detail: &'static str| ApiError::conflict("api_key_inactive", detail);
    let old = api_keys::find(&app.db, id)
        .await?
        .ok_or_else(key_not_found)?;
    if old.expires_at.is_some_and(|at| at <= Utc::now()) || old.rotated_to.is_some() {
        return Err(inactive("this key is revoked, expired or already rotated"));
    }
    let new = issue(app, &old.name, &old.scopes, old.require_signature, admin_id).await?;
    if !api_keys::expire(&app.db, id, Utc::now() + grace, Some(new.key.id)).await? {
        return Err(inactive("this key expired while being rotated"));
    }
    Ok(new)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSigningSecret {
    /// How long signatures made with the previous secret stay valid, 0 to 2592000 seconds
    /// (default 86400).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_seconds: Option<i64>,
}

/// Issues a new signing secret for a key that requires signed requests. Signatures made with the
/// previous secret stay valid for the grace period (one previous secret at a time: rotating again
/// replaces it), so an integration can switch without a refused request.
#[utoipa::path(post, path = "/admin/api-keys/{id}/signing-secret", tag = "admin",
    request_body = RotateSigningSecret,
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 201, body = NewSigningSecretView), ProblemResponses))]
async fn rotate_signing_secret(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RotateSigningSecret>,
) -> Result<(StatusCode, Json<NewSigningSecretView>), ApiError> {
    let grace = body.grace_seconds.unwrap_or(86_400);
    if !(0..=2_592_000).contains(&grace) {
        return Err(ApiError::invalid_field(
            "grace_seconds",
            "must be between 0 and 2592000",
        ));
    }
    let old = api_keys::find(&app.db, id)
        .await?
        .ok_or_else(key_not_found)?;
    if !old.require_signature {
        return Err(ApiError::conflict(
            "signature_not_required",
            "this key does not sign its requests; create one with require_signature",
        ));
    }
    let secret = signing_secret();
    let key = api_keys::rotate_signing_secret(
        &app.db,
        id,
        &secret,
        Utc::now() + Duration::seconds(grace),
    )
    .await?
    .ok_or_else(|| ApiError::conflict("api_key_inactive", "this key is revoked or expired"))?;
    tracing::info!(admin.id = %admin.id, api_key.id = %id, "API key signing secret rotated");
    app.audit
        .record(
            AuditEvent::new(action::API_KEY_ROTATED)
                .actor(admin.id)
                .target("api_key", id)
                .detail("signing_secret", true),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(NewSigningSecretView {
            key: key.into(),
            signing_secret: secret,
        }),
    ))
}
