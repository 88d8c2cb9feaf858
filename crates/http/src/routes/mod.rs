//! The API's routes, one module per area, merged with their OpenAPI document.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod bookings;
pub mod calendar;
pub mod classes;
pub mod clubs;
pub mod facilities;
pub mod health;
pub mod jobs;
pub mod notifications;
pub mod payments;
pub mod realtime;
pub mod search;
pub mod stats;
pub mod waitlist;
pub mod webhooks;

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
    components(schemas(
        crate::error::Problem,
        crate::error::ProblemField,
        search::SearchMode,
        clubpulse_realtime::ClientMessage,
        clubpulse_realtime::ServerMessage,
        clubpulse_realtime::HeldSlot,
        webhooks::WebhookEvent,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "admin", description = "Administration"),
        (name = "clubs", description = "Clubs"),
        (name = "facilities", description = "Facilities"),
        (name = "bookings", description = "Holds, bookings, availability and popular times"),
        (name = "classes", description = "Classes and enrolments"),
        (name = "payments", description = "Checkout, payments and refunds, on site or through Stripe, and the provider's webhook"),
        (name = "waitlist", description = "Waiting for a taken slot, and the offers made when it frees"),
        (name = "notifications", description = "A member's notifications"),
        (name = "webhooks", description = "Outbound webhooks: endpoints that receive booking, payment and waitlist events as signed `POST`s. A delivery's body is the `WebhookEvent` schema (`created` is RFC 3339); its `ClubPulse-Signature: t=<unix seconds>,v1=<hex>` header is the HMAC-SHA256 of `\"{t}.{raw body}\"` with the endpoint's secret. Failures are retried with back-off through the job queue, under the same event `id`"),
        (name = "search", description = "Natural-language search, similar facilities, favourites and recommendations"),
        (name = "realtime", description = "Live slot events and notifications over a WebSocket; the messages are the `ClientMessage` and `ServerMessage` schemas"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

/// The `signature` security scheme, as documented in [`crate::signature`].
const SIGNATURE_DESCRIPTION: &str = "Required, with the API key, on every request made with a key \
created with `require_signature: true`. Value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`, items \
separated by commas, `t` and `v1` exactly once (other items are ignored). `v1` is the lower- or \
upper-case hex HMAC-SHA256, keyed with the UTF-8 bytes of the key's signing secret (`cps_...`, \
shown once at creation or rotation), of the canonical string: `t`, the method (`GET`), the path \
as sent (`/api/v1/bookings`, percent-encoding untouched), the query as sent without `?` (empty \
when none), and the lower-case hex SHA-256 of the body as sent (of no bytes when none), joined \
by a single `\\n` with no trailing one. `t` must be within 300 seconds of the server's clock \
either way, and each signature is accepted once. Refusals are 401 with `code` \
`signature_required`, `signature_malformed`, `signature_invalid`, `signature_expired` or \
`signature_replayed`; 503 `signature_nonces_unavailable` when the store of seen signatures is \
unreachable. After `POST /api/v1/admin/api-keys/{id}/signing-secret`, the previous secret stays \
valid for the grace period asked for.";

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key made by an admin (`POST /api/v1/admin/api-keys`), also accepted as \
                 `Authorization: Bearer`. A key made with `require_signature` must come with the \
                 `signature` scheme's header on every request.",
            ))),
        );
        components.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "ClubPulse-Signature",
                SIGNATURE_DESCRIPTION,
            ))),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::extract::SESSION_COOKIE,
            ))),
        );
    }
}

/// Answers every operation may give whatever it does, added to each operation that does not
/// document them itself: 429 (the per-IP limit applies to every route) and 503 (the database or a
/// shared-state part is unreachable). Without them a client generator or a fuzzer holding the
/// server to its document would call a correct answer undocumented.
fn document_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = || {
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
            .build()
    };
    let common = [
        (
            "429",
            "Rate limited (`rate_limited`), with `Retry-After` and the `RateLimit-*` headers",
        ),
        (
            "503",
            "A dependency is unreachable; `code` names it (`database_unavailable`, \
             `database_contention`, `sessions_unavailable`, `rate_limiter_unavailable`, ...)",
        ),
    ];
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
            item.head.as_mut(),
            item.options.as_mut(),
            item.trace.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in common {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content(crate::error::PROBLEM_JSON, problem())
                                .build(),
                        )
                    });
            }
        }
    }
}

/// The OpenAPI document and the router it describes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = routes();
    document_common_responses(&mut openapi);
    (router, openapi)
}

fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
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
                .merge(calendar::router())
                .merge(payments::router())
                .merge(classes::router())
                .merge(waitlist::router())
                .merge(webhooks::router())
                .merge(notifications::router())
                .merge(search::router())
                .merge(stats::router())
                .merge(realtime::router()),
        )
        .merge(health::router())
        .split_for_parts()
}

/// Every route, plus `/openapi.json` and the `/docs` page that renders it.
pub fn router(state: AppState) -> Router {
    let (api_routes, openapi) = api();
    api_routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(crate::web::router())
        .fallback(crate::web::not_found)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    // That every `$ref` resolves is tested on the document as served (tests/api/operations.rs).

    #[test]
    fn every_operation_documents_429_and_503() {
        let doc = serde_json::to_value(super::api().1).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in ["429", "503"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}
