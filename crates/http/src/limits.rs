//! Rate limits: every route per client IP, and per-purpose limits (login per IP and per account,
//! holds and checkouts per member), each one atomic check in the shared state, exact across
//! instances (see `clubpulse_state::rate_limit`).
//!
//! Answers carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds), and their
//! `X-RateLimit-*` twins; a refusal is a 429 problem with `Retry-After`.
//!
//! When the shared state is unreachable the policy is explicit: reads (GET, HEAD) go ahead unlimited,
//! so public pages stay up; writes, logins included, fail closed with 503
//! `rate_limiter_unavailable` after the bounded Redis timeout, and recover by themselves when Redis
//! returns.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use clubpulse_config::RateLimitConfig;
use clubpulse_state::{Decision, Limit};
use ipnet::IpNet;

use crate::{ApiError, AppState};

const WINDOW: Duration = Duration::from_secs(60);

/// What a limit is for; the key space of each is separate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every route, per client IP.
    Global,
    /// Login attempts per client IP.
    LoginIp,
    /// Login attempts per account (e-mail), whether or not it exists.
    LoginAccount,
    /// Holds per member.
    Booking,
    /// Confirmations (checkouts) per member.
    Checkout,
    /// Requests per API key.
    ApiKey,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::LoginIp => "login-ip",
            Self::LoginAccount => "login-account",
            Self::Booking => "booking",
            Self::Checkout => "checkout",
            Self::ApiKey => "api-key",
        }
    }

    fn per_ip(self) -> bool {
        matches!(self, Self::Global | Self::LoginIp)
    }
}

/// The parsed limits configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    config: RateLimitConfig,
    allow: Vec<IpNet>,
    proxies: Vec<IpNet>,
}

fn networks(entries: &[String], what: &str) -> anyhow::Result<Vec<IpNet>> {
    entries
        .iter()
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("{what}: {e:?} is not an IP address or CIDR"))
        })
        .collect()
}

impl Limits {
    pub fn new(config: &RateLimitConfig) -> anyhow::Result<Self> {
        Ok(Self {
            allow: networks(&config.allow, "CLUBPULSE_RATE_LIMIT_ALLOW")?,
            proxies: networks(&config.trusted_proxies, "CLUBPULSE_TRUSTED_PROXIES")?,
            config: config.clone(),
        })
    }

    fn max(&self, policy: Policy) -> u32 {
        match policy {
            Policy::Global => self.config.global_per_ip,
            Policy::LoginIp | Policy::LoginAccount => self.config.login,
            Policy::Booking => self.config.booking,
            Policy::Checkout => self.config.checkout,
            Policy::ApiKey => self.config.api_key,
        }
    }

    /// The client's address: the socket's, unless the socket is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left could be
    /// forged by the client).
    pub fn client_ip(&self, socket: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.proxies.iter().any(|n| n.contains(ip));
        if !trusted(&socket) {
            return socket;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(socket)
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// The client address the limits used, for handlers.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::from([127, 0, 0, 1]))))
    }
}

/// Counts a request against `policy` for `subject`. `Ok(None)` when limits are off, the subject is
/// an exempt IP, or (for reads) the shared state is unreachable.
pub async fn check(
    app: &AppState,
    policy: Policy,
    subject: &str,
    write: bool,
) -> Result<Option<Decision>, ApiError> {
    let limits = &app.limits;
    if !limits.config.enabled {
        return Ok(None);
    }
    if policy.per_ip() && subject.parse::<IpAddr>().is_ok_and(|ip| limits.exempt(ip)) {
        return Ok(None);
    }
    let limit = Limit {
        max: limits.max(policy),
        window: WINDOW,
    };
    let key = format!("{}:{subject}", policy.name());
    let checked = app.state.rate_limiter.check(&key, limit).await;
    if let Ok(decision) = &checked {
        let outcome = if decision.allowed {
            "admitted"
        } else {
            "refused"
        };
        metrics::counter!("clubpulse_rate_limit_decisions_total", "policy" => policy.name(), "outcome" => outcome)
            .increment(1);
    }
    match checked {
        Ok(decision) if decision.allowed => Ok(Some(decision)),
        Ok(decision) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests ({} per minute); try again shortly",
                decision.limit
            ),
        )
        .with_headers(headers(&decision))),
        Err(err) if !write => {
            tracing::warn!(error = %err, "rate limiter unreachable; letting a read through");
            Ok(None)
        }
        Err(err) => Err(ApiError::unavailable(
            "rate_limiter_unavailable",
            "the service cannot check request limits right now; try again shortly",
            err.into(),
        )),
    }
}

/// The `RateLimit-*` headers and their `X-RateLimit-*` twins (and `Retry-After` on a refusal).
pub fn headers(decision: &Decision) -> Vec<(HeaderName, HeaderValue)> {
    let reset = decision.reset_after.as_secs_f64().ceil() as u64;
    let mut out = Vec::with_capacity(7);
    for (limit, remaining, reset_name) in [
        ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
        (
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ),
    ] {
        out.push((
            HeaderName::from_static(limit),
            HeaderValue::from(decision.limit),
        ));
        out.push((
            HeaderName::from_static(remaining),
            HeaderValue::from(decision.remaining),
        ));
        out.push((
            HeaderName::from_static(reset_name),
            HeaderValue::from(reset),
        ));
    }
    if let Some(retry) = decision.retry_after {
        let seconds = retry.as_secs_f64().ceil().max(1.0) as u64;
        out.push((axum::http::header::RETRY_AFTER, HeaderValue::from(seconds)));
    }
    out
}

/// The per-IP limit on every route (but `/health` and `/ready`, for probes), and the client IP for
/// handlers.
pub async fn per_ip(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let socket = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let ip = app.limits.client_ip(socket, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    if matches!(req.uri().path(), "/health" | "/ready") {
        return next.run(req).await;
    }
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    match check(&app, Policy::Global, &ip.to_string(), write).await {
        Err(refusal) => refusal.into_response(),
        Ok(decision) => {
            let mut response = next.run(req).await;
            if let Some(decision) = decision {
                for (name, value) in headers(&decision) {
                    response.headers_mut().entry(name).or_insert(value);
                }
            }
            response
        }
    }
}
