//! The manager's dashboard.

use askama::Template;
use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use clubpulse_storage::{
    clubs::{self, Club},
    facilities::{self, Filter},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, error_page, page};
use crate::{ApiError, AppState};

#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    from: Option<String>,
    to: Option<String>,
    club_id: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Dashboard<'a> {
    c: &'a Chrome,
    clubs: Vec<Club>,
    club_id: Option<Uuid>,
    from: String,
    to: String,
    /// The facilities whose live events the activity feed shows.
    watched: String,
}

impl Dashboard<'_> {
    fn selected(&self, id: &Uuid) -> bool {
        self.club_id == Some(*id)
    }
}

/// `GET /admin` (staff).
pub async fn dashboard(
    State(app): State<AppState>,
    c: Chrome,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Response {
    let viewer = match c.require_viewer() {
        Ok(v) => v,
        Err(redirect) => return redirect.into_response(),
    };
    if !viewer.is_staff() {
        return error_page(&c, &ApiError::forbidden("the dashboard is for club staff"));
    }
    let query = query.map(|q| q.0).unwrap_or_default();
    let clubs = match clubs::list(&app.db).await {
        Ok(list) => list,
        Err(err) => return error_page(&c, &err.into()),
    };
    let club_id = query
        .club_id
        .as_deref()
        .and_then(|id| id.parse::<Uuid>().ok())
        .filter(|id| clubs.iter().any(|c| c.id == *id));
    let facilities = match facilities::list(
        &app.db,
        &Filter {
            club_id,
            limit: 500,
            ..Filter::default()
        },
    )
    .await
    {
        Ok(list) => list,
        Err(err) => return error_page(&c, &err.into()),
    };
    // The socket's own `user` channel counts against the subscription cap.
    let watched: Vec<serde_json::Value> = facilities
        .iter()
        .take(app.config.realtime.max_subscriptions.saturating_sub(1))
        .map(|f| serde_json::json!({"id": f.id, "name": f.name}))
        .collect();
    let watched = serde_json::Value::Array(watched).to_string();
    page(
        StatusCode::OK,
        &Dashboard {
            c: &c,
            clubs,
            club_id,
            from: query.from.unwrap_or_default(),
            to: query.to.unwrap_or_default(),
            watched,
        },
    )
}
