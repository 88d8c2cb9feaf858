//! The web app: server-rendered pages for members (search, a facility's week, holding and paying,
//! their bookings and notifications) and the manager's dashboard, from the same binary as the API.
//!
//! Pages are askama templates compiled into the binary and work without JavaScript: every action is
//! a form posting to a page route that answers with a redirect (post/redirect/get) or the page
//! again with what went wrong. One small module script (`assets/app.js`) adds the live parts over
//! the API's WebSocket: hold countdowns, the week grid turning free or taken as others hold and
//! release, notifications on every page and the dashboard's activity feed. No inline scripts: the
//! content security policy allows only the service's own files.
//!
//! Page handlers call the booking service and storage directly, the same functions the API's
//! routes call, so a page and the API can never disagree about a rule.

pub mod account;
pub mod admin;
pub mod assets;
pub mod charts;
pub mod i18n;
pub mod pages;
mod week;

use askama::Template;
use axum::{
    Router,
    extract::{FromRequestParts, OriginalUri},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use clubpulse_booking::Actor;
use clubpulse_domain::Role;
use uuid::Uuid;

use crate::{ApiError, AppState, extract::CurrentUser};
use i18n::{Lang, Text};

/// The page routes (not in the OpenAPI document: they answer HTML).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/facilities/{id}", get(pages::facility))
        .route("/facilities/{id}/hold", post(pages::hold))
        .route("/facilities/{id}/waitlist", post(pages::join_waitlist))
        .route("/bookings/{id}", get(pages::booking))
        .route("/bookings/{id}/confirm", post(pages::confirm))
        .route("/bookings/{id}/cancel", post(pages::cancel))
        .route("/bookings/{id}/mark-paid", post(pages::mark_paid))
        .route("/bookings/{id}/calendar.ics", get(pages::calendar_event))
        .route("/me/bookings", get(pages::my_bookings))
        .route("/me/waitlist/{id}/leave", post(pages::leave_waitlist))
        .route("/me/notifications", get(pages::notifications))
        .route(
            "/me/notifications/{id}/read",
            post(pages::read_notification),
        )
        .route("/login", get(account::login_page).post(account::login))
        .route(
            "/register",
            get(account::register_page).post(account::register),
        )
        .route("/logout", post(account::logout))
        .route("/lang/{code}", get(account::switch_language))
        .route("/admin", get(admin::dashboard))
        .route("/assets/{file}", get(assets::serve))
        // Pages and assets are text that shrinks several times over; the API is left as it is.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

/// Whoever is looking at a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub user: CurrentUser,
}

impl Viewer {
    pub fn actor(&self) -> Actor {
        (&self.user).into()
    }

    pub fn is_staff(&self) -> bool {
        self.role.includes(Role::Staff)
    }
}

/// What every page's frame shows: the language, who is signed in, the unread count, the assets.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub lang: Lang,
    pub t: &'static Text,
    pub viewer: Option<Viewer>,
    pub unread: usize,
    /// The latest few notifications, for the list in every page's header.
    pub inbox: Vec<InboxItem>,
    /// The page's own path and query, for the language switch and sign-in to come back to.
    pub here: String,
    pub css: String,
    pub js: String,
    pub icon: String,
}

impl Chrome {
    pub fn signed_in(&self) -> bool {
        self.viewer.is_some()
    }

    pub fn is_staff(&self) -> bool {
        self.viewer.as_ref().is_some_and(Viewer::is_staff)
    }

    pub fn viewer_name(&self) -> &str {
        self.viewer.as_ref().map_or("", |v| v.name.as_str())
    }

    /// The link that switches to the other language and comes back here.
    pub fn switch_href(&self) -> String {
        format!(
            "/lang/{}?next={}",
            self.lang.other().code(),
            urlencode(&self.here)
        )
    }

    pub fn login_href(&self) -> String {
        format!("/login?next={}", urlencode(&self.here))
    }
}

/// A page request by someone signed in: the page's frame and who they are. Anyone else is sent
/// to sign in, and comes back here after.
#[derive(Debug)]
pub struct SignedIn {
    pub c: Chrome,
    pub viewer: Viewer,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Redirect> {
        let Ok(c) = Chrome::from_request_parts(parts, app).await;
        if let Some(viewer) = c.viewer.clone() {
            return Ok(Self { c, viewer });
        }
        // A form posted while signed out comes back to the page it was on, not to its action.
        let next = if matches!(parts.method, Method::GET | Method::HEAD) {
            c.here.clone()
        } else {
            referring_path(&parts.headers).unwrap_or_else(|| "/".to_owned())
        };
        Err(Redirect::to(&format!("/login?next={}", urlencode(&next))))
    }
}

impl FromRequestParts<AppState> for Chrome {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = Lang::negotiate(&parts.headers);
        let here = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |u| u.0.clone())
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let viewer = viewer(parts, app).await;
        let (unread, inbox) = match &viewer {
            Some(v) => inbox(app, v.id).await,
            None => (0, Vec::new()),
        };
        Ok(Self {
            lang,
            t: lang.text(),
            viewer,
            unread,
            inbox,
            here,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            icon: assets::url("icon.svg"),
        })
    }
}

/// A notification in the header's list.
#[derive(Debug, Clone)]
pub struct InboxItem {
    pub title: String,
    pub unread: bool,
    pub href: String,
}

/// How many notifications the header lists.
const INBOX: usize = 5;

/// The viewer's unread count (up to 100) and their latest notifications; a failure to read them
/// is logged and shows none, since no page depends on them.
async fn inbox(app: &AppState, user: Uuid) -> (usize, Vec<InboxItem>) {
    use clubpulse_storage::notifications::list_for_user;
    let unread = list_for_user(&app.db, user, true, 100).await;
    let latest = list_for_user(&app.db, user, false, INBOX as i64).await;
    match (unread, latest) {
        (Ok(unread), Ok(latest)) => {
            let items = latest
                .into_iter()
                .map(|n| InboxItem {
                    href: n
                        .data
                        .get("booking_id")
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.parse::<Uuid>().ok())
                        .map_or_else(
                            || "/me/notifications".to_owned(),
                            |id| format!("/bookings/{id}"),
                        ),
                    unread: n.read_at.is_none(),
                    title: n.title,
                })
                .collect();
            (unread.len(), items)
        }
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(error = %err, "reading a member's notifications for a page failed");
            (0, Vec::new())
        }
    }
}

/// The signed-in user of a page request: a missing or ended session is nobody (the page shows
/// "sign in"); a session store that cannot answer is logged and treated the same way, so pages
/// that need no account keep working.
async fn viewer(parts: &mut Parts, app: &AppState) -> Option<Viewer> {
    crate::extract::session_token(&parts.headers)?;
    let user = match CurrentUser::from_request_parts(parts, app).await {
        Ok(user) => user,
        Err(err) => {
            if !err.status().is_client_error() {
                tracing::warn!(code = err.code(), "a page could not read its session");
            }
            return None;
        }
    };
    let name = match clubpulse_storage::users::find(&app.db, user.id).await {
        Ok(Some(found)) => found.name,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(error = %err, "a page could not load its user");
            String::new()
        }
    };
    Some(Viewer {
        id: user.id,
        name,
        role: user.role,
        user,
    })
}

/// A rendered page with its status. Pages are personal: never stored by shared caches.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-cache"),
                ),
            ],
            html,
        )
            .into_response(),
        Err(err) => ApiError::internal(anyhow::anyhow!("rendering a page: {err}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    c: &'a Chrome,
    title: &'a str,
    detail: String,
    code: &'a str,
}

/// The error page for a failed action or lookup, in the viewer's language where we have the
/// words, with the API's stable code shown for support.
pub fn error_page(c: &Chrome, err: &ApiError) -> Response {
    let (code, detail, _) = err.describe();
    let status = err.status();
    if status.is_server_error() {
        tracing::warn!(code, "a page failed: {detail}");
    }
    let (title, detail) = match status {
        StatusCode::NOT_FOUND => (c.t.not_found, c.t.go_home.to_owned()),
        StatusCode::FORBIDDEN => (c.t.forbidden, detail),
        s if s.is_server_error() => (c.t.error_title, c.t.try_again.to_owned()),
        _ => (c.t.error_title, detail),
    };
    page(
        status,
        &ErrorPage {
            c,
            title,
            detail,
            code,
        },
    )
}

/// Unknown paths: a browser navigating to a page gets a page saying so, in its language; anything
/// else (the API, scripts) the problem document.
pub async fn not_found(c: Chrome, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let err = ApiError::not_found("not_found", "no such resource");
    if wants_html(&headers) && !uri.path().starts_with("/api/") {
        error_page(&c, &err)
    } else {
        err.into_response()
    }
}

/// A form that could not be read: the page it came from is told plainly.
pub fn bad_form(c: &Chrome) -> Response {
    error_page(
        c,
        &ApiError::bad_request(
            "invalid_form",
            "the form was incomplete; go back and try again",
        ),
    )
}

/// The path and query of the page a request came from (its `Referer`), when it is on this site.
fn referring_path(headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let after_scheme = referer.split_once("://")?.1;
    let path = &after_scheme[after_scheme.find('/')?..];
    Some(safe_next(Some(path)))
}

/// A path inside this site to come back to after signing in; anything else goes home.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) use crate::extract::cookie;

/// Whether a request would rather read a page than a problem document (a browser navigating).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/me/bookings?x=1")), "/me/bookings?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn urlencode_keeps_paths_readable() {
        assert_eq!(
            urlencode("/facilities/a?week=2026-12-01&x=ñ"),
            "/facilities/a%3Fweek%3D2026-12-01%26x%3D%C3%B1"
        );
    }
}
