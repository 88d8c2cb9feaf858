//! Club Pulse over HTTP: the JSON API, its documentation, health checks, and the server that runs
//! them.
//!
//! # Layout
//!
//! - [`app`]: [`App::build`] binds a listener and assembles the router; [`App::run_until_stopped`]
//!   serves until a shutdown signal, then drains in-flight requests.
//! - [`error`]: [`ApiError`], the one error type, rendered as RFC 9457 problem+json.
//! - [`extract`]: request extractors: JSON/query/path with problem+json rejections, and
//!   authentication ([`extract::CurrentUser`], [`extract::Staff`], [`extract::Admin`]).
//! - [`limits`]: rate limits per IP, per account and per member, and the client IP.
//! - [`metrics`]: the Prometheus recorder and `GET /metrics`.
//! - [`middleware`]: request ids, request logging, request metrics, security headers, and the
//!   problem+json safety net.
//! - [`parse`]: request parsing shared by the routes (instants, ranges, spans, page sizes).
//! - [`signature`]: signed API requests (`ClubPulse-Signature`): the canonical string, the
//!   middleware that verifies it once per signature, and its refusals.
//! - [`routes`]: one module per area, each with its own `router()`, merged with the OpenAPI document.
//! - [`views`]: response shapes shared by several areas.
//! - [`web`]: the web app's pages, their templates, words in two languages and assets.

pub mod app;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod parse;
pub mod routes;
pub mod signature;
pub mod views;
pub mod web;

pub use app::{App, AppState, load_search};
pub use error::ApiError;
