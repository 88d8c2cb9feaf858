//! The API's routes, one module per area, merged with their OpenAPI document.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod bookings;
pub mod classes;
pub mod clubs;
pub mod facilities;
pub mod health;
pub mod jobs;
pub mod search;

use axum::Router;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Club Pulse",
        description = "Booking platform for sports clubs. Errors are RFC 9457 problem+json documents \
                       with a stable `code`. Authenticate with the session cookie set by login, or \
                       with `Authorization: Bearer <token>`.",
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "admin", description = "Administration"),
        (name = "clubs", description = "Clubs"),
        (name = "facilities", description = "Facilities"),
        (name = "bookings", description = "Holds, bookings, availability and popular times"),
        (name = "classes", description = "Classes and enrolments"),
        (name = "search", description = "Natural-language search, similar facilities, favourites and recommendations"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::extract::SESSION_COOKIE,
            ))),
        );
    }
}

/// The OpenAPI document and the router it describes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .merge(auth::router())
                .merge(admin::router())
                .merge(audit::router())
                .merge(jobs::router())
                .merge(clubs::router())
                .merge(facilities::router())
                .merge(bookings::router())
                .merge(classes::router())
                .merge(search::router()),
        )
        .merge(health::router())
        .split_for_parts()
}

/// Every route, plus `/openapi.json` and the `/docs` page that renders it.
pub fn router(state: AppState) -> Router {
    let (api_routes, openapi) = api();
    api_routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .with_state(state)
}
