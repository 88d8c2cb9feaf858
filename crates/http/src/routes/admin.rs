//! Administration of accounts: revoke a user's sessions, ban a user.

use axum::{extract::State, http::StatusCode};
use clubpulse_storage::users;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    ApiError, AppState,
    error::responses::ProblemResponses,
    extract::{Admin, ApiPath},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revoke_sessions))
        .routes(routes!(ban))
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
    Ok(StatusCode::NO_CONTENT)
}
