//! Accounts and sessions: register, log in and out, list and end sessions, `me`.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use clubpulse_audit::{AuditEvent, action};
use clubpulse_domain::{DisplayName, Email, Password, Role, Validation};
use clubpulse_mail::{PasswordReset, Template};
use clubpulse_state::{NewSession, SessionRecord, SessionToken, TokenPurpose};
use clubpulse_storage::users::{self, User};
use clubpulse_workers::SendMail;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::{StatePart, responses::ProblemResponses},
    extract::{ApiJson, ApiPath, CurrentUser, SESSION_COOKIE, UserAgent},
    limits::{self, ClientIp, Policy},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
}

/// An account, as its owner and admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "member")]
    pub role: Role,
    pub banned: bool,
    pub created_at: DateTime<Utc>,
}

impl From<users::User> for UserView {
    fn from(u: users::User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            banned: u.banned_at.is_some(),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ana@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    #[schema(example = "Ana García")]
    pub name: String,
}

/// Creates a member account.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = UserView), ProblemResponses))]
async fn register(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = create_member(&app, body).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Creates a member account from a registration (the API's and the sign-up page's); an e-mail
/// already registered is 409 `email_taken`.
pub(crate) async fn create_member(app: &AppState, body: RegisterRequest) -> Result<User, ApiError> {
    let mut check = Validation::new();
    let email = check.check("email", Email::try_from(body.email));
    let password = check.check("password", Password::try_from(body.password));
    let name = check.check("name", DisplayName::try_from(body.name.as_str()));
    let (Some(email), Some(password), Some(name)) = (email, password, name) else {
        return Err(ApiError::validation(check.into_errors()));
    };
    let hash = app
        .passwords
        .hash(password.expose().to_owned())
        .await
        .map_err(ApiError::internal)?;
    let user = users::insert(&app.db, &email, &name, &hash, Role::Member).await?;
    tracing::info!(user.id = %user.id, "account registered");
    Ok(user)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The session token: send it as `Authorization: Bearer <token>`. Browsers get it as an
    /// HttpOnly cookie too. Shown only here.
    pub token: String,
    /// When the session ends at the latest (it ends sooner if left idle).
    pub expires_at: DateTime<Utc>,
    /// A session unused for this long ends.
    pub idle_timeout_seconds: u64,
    pub user: UserView,
}

/// Logs in; every login makes a new session with a new token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse,
        headers(("set-cookie" = String, description = "The session cookie (HttpOnly, SameSite=Lax)"))),
        ProblemResponses))]
async fn login(
    State(app): State<AppState>,
    UserAgent(user_agent): UserAgent,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (cookie, body) = sign_in(&app, body, user_agent, ip).await?;
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Checks a login (rate limits first, per IP and per account, whether or not it exists) and opens
/// a session: the API's login and the sign-in page's. Answers the session cookie and the token.
pub(crate) async fn sign_in(
    app: &AppState,
    body: LoginRequest,
    user_agent: Option<String>,
    ip: std::net::IpAddr,
) -> Result<(HeaderValue, LoginResponse), ApiError> {
    let email =
        Email::try_from(body.email).map_err(|e| ApiError::validation(vec![e.within("email")]))?;
    limits::check(app, Policy::LoginIp, &ip.to_string(), true).await?;
    limits::check(app, Policy::LoginAccount, email.as_str(), true).await?;
    let user = authenticate(app, &email, body.password, ip).await?;
    let (token, session) = open_session(app, &user, user_agent, ip).await?;
    let sessions = &app.config.sessions;
    let cookie = session_cookie(
        token.expose(),
        sessions.absolute_seconds,
        sessions.cookie_secure,
    );
    let body = LoginResponse {
        token: token.expose().to_owned(),
        expires_at: session.absolute_expires_at,
        idle_timeout_seconds: sessions.idle_seconds,
        user: user.into(),
    };
    Ok((cookie, body))
}

/// The account whose password this is; a wrong e-mail or password is 401 `invalid_credentials`
/// (the same answer and about the same time for both), a banned account 403 `account_banned`.
/// Refusals are audited.
pub(crate) async fn authenticate(
    app: &AppState,
    email: &Email,
    password: String,
    ip: std::net::IpAddr,
) -> Result<User, ApiError> {
    if password.is_empty() || password.len() > 4 * Password::MAX_CHARS {
        return Err(ApiError::invalid_field(
            "password",
            "must be between 1 and 128 characters",
        ));
    }
    let (user, stored) = match users::find_credentials(&app.db, email).await? {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = app
        .passwords
        .verify(password, stored)
        .await
        .map_err(ApiError::internal)?;
    let refused = |actor: Option<Uuid>, reason: &str| {
        AuditEvent::new(action::LOGIN_FAILED)
            .maybe_actor(actor)
            .ip(ip)
            .detail("reason", reason)
    };
    let user = match user {
        Some(user) if matches => user,
        user => {
            tracing::info!("login refused: wrong e-mail or password");
            let event = match user {
                Some(user) => refused(Some(user.id), "bad_credentials"),
                None => refused(None, "unknown_account"),
            };
            app.audit.record(event).await;
            return Err(ApiError::unauthenticated("wrong e-mail or password")
                .with_code("invalid_credentials"));
        }
    };
    if user.banned_at.is_some() {
        app.audit.record(refused(Some(user.id), "banned")).await;
        return Err(ApiError::forbidden("this account has been banned").with_code("account_banned"));
    }
    Ok(user)
}

/// A new session for `user`, with a fresh token, audited.
pub(crate) async fn open_session(
    app: &AppState,
    user: &User,
    user_agent: Option<String>,
    ip: std::net::IpAddr,
) -> Result<(SessionToken, SessionRecord), ApiError> {
    let sessions = &app.config.sessions;
    let token = SessionToken::generate();
    let session = app
        .state
        .sessions
        .create(
            &token,
            NewSession {
                user_id: user.id,
                role: user.role,
                user_agent,
                idle_timeout: sessions.idle(),
                absolute_timeout: sessions.absolute(),
            },
        )
        .await?;
    tracing::info!(user.id = %user.id, session.id = %session.id, "logged in");
    app.audit
        .record(
            AuditEvent::new(action::LOGIN_SUCCEEDED)
                .actor(user.id)
                .target("session", session.id)
                .ip(ip),
        )
        .await;
    Ok((token, session))
}

pub(crate) fn session_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn clear_cookie(app: &AppState) -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::SET_COOKIE,
        session_cookie("", 0, app.config.sessions.cookie_secure),
    )]
}

/// Ends the current session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Logged out"), ProblemResponses))]
async fn logout(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
) -> Result<Response, ApiError> {
    let session = user.session()?;
    app.state.sessions.revoke_token(&session.token_hash).await?;
    tracing::info!(user.id = %user.id, session.id = %session.id, "logged out");
    app.audit
        .record(
            AuditEvent::new(action::LOGOUT)
                .actor(user.id)
                .target("session", session.id)
                .ip(ip),
        )
        .await;
    Ok((StatusCode::NO_CONTENT, clear_cookie(&app)).into_response())
}

/// Ends every session of the current user, on every device.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Every session ended"), ProblemResponses))]
async fn logout_all(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
) -> Result<Response, ApiError> {
    user.session()?;
    let ended = app.state.sessions.revoke_all(user.id).await?;
    tracing::info!(user.id = %user.id, sessions = ended, "logged out everywhere");
    app.audit
        .record(
            AuditEvent::new(action::LOGOUT_ALL)
                .actor(user.id)
                .target("user", user.id)
                .ip(ip)
                .detail("sessions", ended),
        )
        .await;
    Ok((StatusCode::NO_CONTENT, clear_cookie(&app)).into_response())
}

/// One of my sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When it ends if unused.
    pub idle_expires_at: DateTime<Utc>,
    /// When it ends whatever happens.
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    fn new(s: SessionRecord, current: Uuid) -> Self {
        Self {
            current: s.id == current,
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            idle_expires_at: s.idle_expires_at,
            expires_at: s.absolute_expires_at,
            user_agent: s.user_agent,
        }
    }
}

/// My live sessions, newest first.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [SessionView]), ProblemResponses))]
async fn list_sessions(
    State(app): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let current = user.session()?.id;
    let sessions = app.state.sessions.list_for_user(user.id).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionView::new(s, current))
            .collect(),
    ))
}

/// Ends one of my sessions (another device, say). Another user's session id is 404.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Session ended"), ProblemResponses))]
async fn end_session(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if app.state.sessions.revoke(user.id, id).await? {
        tracing::info!(user.id = %user.id, session.id = %id, "session ended");
        app.audit
            .record(
                AuditEvent::new(action::SESSION_ENDED)
                    .actor(user.id)
                    .target("session", id)
                    .ip(ip),
            )
            .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("session_not_found", "no such session"))
    }
}

/// The current user.
#[utoipa::path(get, path = "/me", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UserView), ProblemResponses))]
async fn me(State(app): State<AppState>, user: CurrentUser) -> Result<Json<UserView>, ApiError> {
    let found = users::find(&app.db, user.id).await?;
    found
        .map(|u| Json(u.into()))
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// 8 to 128 characters.
    pub new_password: String,
}

/// Changes my password. Every other session of mine ends; this one stays.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = ChangePassword,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Password changed, other sessions ended"), ProblemResponses))]
async fn change_password(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let current = user.session()?.id;
    let new = Password::try_from(body.new_password)
        .map_err(|e| ApiError::validation(vec![e.within("new_password")]))?;
    let stored = users::password_hash(&app.db, user.id).await?;
    let matches = app
        .passwords
        .verify(body.current_password, stored)
        .await
        .map_err(ApiError::internal)?;
    if !matches {
        return Err(
            ApiError::forbidden("the current password is wrong").with_code("wrong_password")
        );
    }
    let hash = app
        .passwords
        .hash(new.expose().to_owned())
        .await
        .map_err(ApiError::internal)?;
    users::set_password(&app.db, user.id, &hash).await?;
    let ended = end_sessions_but(&app, user.id, current).await?;
    tracing::info!(user.id = %user.id, sessions = ended, "password changed; other sessions ended");
    app.audit
        .record(
            AuditEvent::new(action::PASSWORD_CHANGED)
                .actor(user.id)
                .target("user", user.id)
                .ip(ip)
                .detail("sessions_ended", ended),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(example = "ana@example.com")]
    pub email: String,
}

/// Mails a single-use link to choose a new password, when the address belongs to an account. The
/// answer is the same either way, so it tells nobody which addresses have accounts.
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth",
    request_body = PasswordResetRequest,
    responses((status = 202, description = "If the address has an account, a link is on its way"),
        ProblemResponses))]
async fn request_password_reset(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    let email =
        Email::try_from(body.email).map_err(|e| ApiError::validation(vec![e.within("email")]))?;
    // Counted with login attempts: both are ways to try one's luck with an account.
    limits::check(&app, Policy::LoginIp, &ip.to_string(), true).await?;
    limits::check(&app, Policy::LoginAccount, email.as_str(), true).await?;
    let requested = AuditEvent::new(action::PASSWORD_RESET_REQUESTED).ip(ip);
    let user = match users::find_credentials(&app.db, &email).await? {
        Some((user, _)) if user.banned_at.is_none() => user,
        found => {
            let reason = if found.is_some() {
                "banned"
            } else {
                "unknown_account"
            };
            app.audit
                .record(requested.detail("sent", false).detail("reason", reason))
                .await;
            return Ok(StatusCode::ACCEPTED);
        }
    };
    send_reset_link(&app, &user).await?;
    app.audit
        .record(
            requested
                .actor(user.id)
                .target("user", user.id)
                .detail("sent", true),
        )
        .await;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The `token` from the mailed link.
    pub token: String,
    /// 8 to 128 characters.
    pub password: String,
}

/// Sets a new password with a mailed token. The token works once, within its lifetime; every
/// session of the account ends.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth",
    request_body = PasswordResetConfirm,
    responses((status = 204, description = "Password set; every session of the account ended"),
        (status = 400, description = "`reset_token_invalid`: unknown, used or expired", content_type = "application/problem+json"),
        ProblemResponses))]
async fn confirm_password_reset(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    // Checked before the token is spent, so a too-short password costs no second e-mail.
    let password = Password::try_from(body.password)
        .map_err(|e| ApiError::validation(vec![e.within("password")]))?;
    let user_id = take_reset_token(&app, &body.token).await?;
    let hash = app
        .passwords
        .hash(password.expose().to_owned())
        .await
        .map_err(ApiError::internal)?;
    if !users::set_password(&app.db, user_id, &hash).await? {
        return Err(reset_token_invalid());
    }
    let ended = app.state.sessions.revoke_all(user_id).await?;
    tracing::info!(user.id = %user_id, sessions = ended, "password reset; every session ended");
    app.audit
        .record(
            AuditEvent::new(action::PASSWORD_RESET_COMPLETED)
                .actor(user_id)
                .target("user", user_id)
                .ip(ip)
                .detail("sessions_ended", ended),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a user but `keep`; returns how many it ended.
async fn end_sessions_but(app: &AppState, user_id: Uuid, keep: Uuid) -> Result<usize, ApiError> {
    let mut ended = 0;
    for session in app.state.sessions.list_for_user(user_id).await? {
        if session.id != keep && app.state.sessions.revoke(user_id, session.id).await? {
            ended += 1;
        }
    }
    Ok(ended)
}

/// Issues a single-use reset token and queues the e-mail carrying its link.
async fn send_reset_link(app: &AppState, user: &User) -> Result<(), ApiError> {
    let token = SessionToken::generate();
    let ttl = app.config.sessions.password_reset_ttl();
    app.state
        .tokens
        .issue(TokenPurpose::PasswordReset, &token.hash(), user.id, ttl)
        .await
        .map_err(|e| ApiError::state(StatePart::OneTimeTokens, e))?;
    let mail = SendMail {
        to: user.email.clone(),
        message_key: format!("password-reset-{}", Uuid::now_v7()),
        template: Template::PasswordReset(PasswordReset {
            display_name: user.name.clone(),
            token: token.expose().to_owned(),
            expires_in_minutes: u32::try_from(app.config.sessions.password_reset_minutes)
                .unwrap_or(u32::MAX),
        }),
    };
    app.jobs.push(&mail).await?;
    tracing::info!(user.id = %user.id, "password reset link queued");
    Ok(())
}

fn reset_token_invalid() -> ApiError {
    ApiError::bad_request(
        "reset_token_invalid",
        "this reset link is unknown, used or expired; ask for a new one",
    )
}

/// Spends a reset token: the account it was issued for, or 400 `reset_token_invalid`.
async fn take_reset_token(app: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    if raw.is_empty() || raw.len() > 256 {
        return Err(reset_token_invalid());
    }
    let token = SessionToken::from_client(raw);
    app.state
        .tokens
        .take(TokenPurpose::PasswordReset, &token.hash())
        .await
        .map_err(|e| ApiError::state(StatePart::OneTimeTokens, e))?
        .ok_or_else(reset_token_invalid)
}
