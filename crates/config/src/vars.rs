//! The one table of environment variables.
//!
//! Each variable is declared here once, with its file key, its default, what it means, how its value
//! is parsed and what the merged setting must satisfy. The same table drives [`Config::apply_env`],
//! [`Config::validate`] and the README's reference table ([`markdown_table`]; a test fails when the
//! README differs), so a variable cannot be read without being documented, and an invalid setting
//! always names its own variable.

use std::{fmt, net::IpAddr, str::FromStr};

use crate::{Config, LogFormat, PaymentProviderKind, Secret};

/// One environment variable.
#[derive(Debug)]
pub struct Var {
    /// The variable's name, e.g. `CLUBPULSE_HOLD_SECONDS`.
    pub name: &'static str,
    /// The same setting in the TOML file (`section.field`); empty when the file has none.
    pub key: &'static str,
    pub default: DefaultValue,
    /// What it sets, for the README (Markdown).
    pub meaning: &'static str,
    /// A value the variable refuses, so tests can prove the refusal names the variable; `None` for
    /// free-form values (paths, filters) that nothing here can judge.
    pub rejects: Option<&'static str>,
    /// Reads a (trimmed, non-empty) value into the configuration, or says why it cannot.
    set: fn(&mut Config, &str) -> Result<(), String>,
    /// What the merged setting (default, file or environment) must satisfy.
    check: fn(&Config) -> Result<(), String>,
}

/// A variable's default, as documented.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// Unset unless given.
    None,
    /// This literal value; a test proves the code's default is the same.
    Is(&'static str),
    /// Worked out at start (written as a description, not a literal).
    Derived(&'static str),
}

impl fmt::Display for DefaultValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Is(value) | Self::Derived(value) => write!(f, "`{value}`"),
        }
    }
}

impl Var {
    pub(crate) fn set(&self, config: &mut Config, value: &str) -> Result<(), String> {
        (self.set)(config, value)
    }

    pub(crate) fn check(&self, config: &Config) -> Result<(), String> {
        (self.check)(config)
    }
}

/// The README's environment-variable table, generated from [`VARS`].
pub fn markdown_table() -> String {
    let mut table =
        String::from("| variable | file key | default | meaning |\n| --- | --- | --- | --- |\n");
    for var in VARS {
        let key = if var.key.is_empty() {
            " ".to_owned()
        } else {
            format!(" `{}` ", var.key)
        };
        table.push_str(&format!(
            "| `{}` |{key}| {} | {} |\n",
            var.name, var.default, var.meaning
        ));
    }
    table
}

fn parse<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    value.parse().map_err(|e: T::Err| e.to_string())
}

fn flag(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("use on or off (true or false)".to_owned()),
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn any(_: &Config) -> Result<(), String> {
    Ok(())
}

fn positive<T: PartialEq + From<u8>>(value: T) -> Result<(), String> {
    if value == T::from(0) {
        Err("must be at least 1".to_owned())
    } else {
        Ok(())
    }
}

/// A positive rate limit: 0 would refuse everything.
fn limit(value: u32) -> Result<(), String> {
    positive(value).map_err(|_| {
        "a limit of 0 would refuse everything; use CLUBPULSE_RATE_LIMITS=off to disable limits"
            .to_owned()
    })
}

fn http_url(url: Option<&str>) -> Result<(), String> {
    match url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            Err(format!("{url:?} is not an http(s) URL"))
        }
        _ => Ok(()),
    }
}

/// Checks a URL's scheme without printing the URL (it may hold a password).
fn scheme(url: Option<&Secret>, schemes: &[&str]) -> Result<(), String> {
    let Some(url) = url else { return Ok(()) };
    let ok = |u: &str| {
        schemes
            .iter()
            .any(|s| u.trim().starts_with(&format!("{s}://")))
    };
    if url.expose().split(',').all(ok) {
        Ok(())
    } else {
        let schemes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        Err(format!(
            "must be a URL starting with {}",
            schemes.join(" or ")
        ))
    }
}

/// IP addresses or CIDR blocks (`10.0.0.0/8`, `::1`).
fn networks(entries: &[String]) -> Result<(), String> {
    for entry in entries {
        let (ip, prefix) = match entry.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (entry.as_str(), None),
        };
        let bad = || format!("{entry:?} is not an IP address or CIDR");
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        if let Some(prefix) = prefix {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match prefix.parse::<u8>() {
                Ok(p) if p <= max => {}
                _ => return Err(bad()),
            }
        }
    }
    Ok(())
}

/// Every environment variable the service reads, in the README's order.
pub static VARS: &[Var] = &[
    Var {
        name: "CLUBPULSE_CONFIG",
        key: "",
        default: DefaultValue::None,
        meaning: "path of the TOML file",
        rejects: None,
        // Read by `Config::load` before the file, so before this table is applied.
        set: |_, _| Ok(()),
        check: any,
    },
    Var {
        name: "CLUBPULSE_ADDR",
        key: "server.addr",
        default: DefaultValue::Is("127.0.0.1:8080"),
        meaning: "where `serve` listens",
        rejects: Some("localhost"),
        set: |c, v| parse(v).map(|x| c.server.addr = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_PUBLIC_URL",
        key: "server.public_url",
        default: DefaultValue::Derived("http://<bound address>"),
        meaning: "the address members reach the service at; its origin may send cookie-authenticated writes",
        rejects: Some("club.example"),
        set: |c, v| {
            c.server.public_url = Some(v.to_owned());
            Ok(())
        },
        check: |c| http_url(c.server.public_url.as_deref()),
    },
    Var {
        name: "CLUBPULSE_BODY_LIMIT_BYTES",
        key: "server.body_limit_bytes",
        default: DefaultValue::Is("65536"),
        meaning: "largest request body (larger: 413); at least 1024",
        rejects: Some("100"),
        set: |c, v| parse(v).map(|x| c.server.body_limit_bytes = x),
        check: |c| {
            if c.server.body_limit_bytes < 1024 {
                Err("must be at least 1024".to_owned())
            } else {
                Ok(())
            }
        },
    },
    Var {
        name: "CLUBPULSE_REQUEST_TIMEOUT_SECONDS",
        key: "server.request_timeout_seconds",
        default: DefaultValue::Is("30"),
        meaning: "a request running longer is answered 408",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.server.request_timeout_seconds = x),
        check: |c| positive(c.server.request_timeout_seconds),
    },
    Var {
        name: "CLUBPULSE_SHUTDOWN_GRACE_SECONDS",
        key: "server.shutdown_grace_seconds",
        default: DefaultValue::Is("20"),
        meaning: "how long shutdown waits for in-flight requests",
        rejects: Some("-1"),
        set: |c, v| parse(v).map(|x| c.server.shutdown_grace_seconds = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_ALLOWED_ORIGINS",
        key: "server.allowed_origins",
        default: DefaultValue::None,
        meaning: "other origins whose pages may send cookie-authenticated writes (comma-separated)",
        rejects: Some("club.example"),
        set: |c, v| {
            c.server.allowed_origins = list(v)
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect();
            Ok(())
        },
        check: |c| {
            c.server
                .allowed_origins
                .iter()
                .try_for_each(|o| http_url(Some(o)))
        },
    },
    Var {
        name: "CLUBPULSE_METRICS_TOKEN",
        key: "server.metrics_token",
        default: DefaultValue::None,
        meaning: "bearer token `GET /metrics` asks for (at least 16 characters); unset leaves it open",
        rejects: Some("short"),
        set: |c, v| {
            c.server.metrics_token = Some(Secret::new(v));
            Ok(())
        },
        check: |c| match &c.server.metrics_token {
            Some(token) if token.expose().chars().count() < 16 => {
                Err("must be at least 16 characters".to_owned())
            }
            Some(token) if !token.expose().chars().all(|ch| ch.is_ascii_graphic()) => {
                Err("must be printable ASCII without spaces".to_owned())
            }
            _ => Ok(()),
        },
    },
    Var {
        name: "DATABASE_URL",
        key: "database.url",
        default: DefaultValue::None,
        meaning: "PostgreSQL URL (`?sslmode=require` for TLS); unset runs the embedded cluster",
        rejects: Some("mysql://db/clubpulse"),
        set: |c, v| {
            c.database.url = Some(Secret::new(v));
            Ok(())
        },
        check: |c| scheme(c.database.url.as_ref(), &["postgres", "postgresql"]),
    },
    Var {
        name: "CLUBPULSE_DATA_DIR",
        key: "database.data_dir",
        default: DefaultValue::Is("./var"),
        meaning: "the embedded cluster lives in `<dir>/postgres`",
        rejects: None,
        set: |c, v| {
            c.database.data_dir = v.into();
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_PG_BIN_DIR",
        key: "database.pg_bin_dir",
        default: DefaultValue::Is("/usr/lib/postgresql/15/bin"),
        meaning: "PostgreSQL server binaries for the embedded cluster",
        rejects: None,
        set: |c, v| {
            c.database.pg_bin_dir = v.into();
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_DB_MAX_CONNECTIONS",
        key: "database.max_connections",
        default: DefaultValue::Is("20"),
        meaning: "connection pool size per instance",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.database.max_connections = x),
        check: |c| positive(c.database.max_connections),
    },
    Var {
        name: "DATABASE_REPLICA_URL",
        key: "database.replica_url",
        default: DefaultValue::None,
        meaning: "a streaming standby of the primary: search, listings, stats and availability rebuilds read it while it keeps up; unset reads the primary",
        rejects: Some("mysql://replica/clubpulse"),
        set: |c, v| {
            c.database.replica_url = Some(Secret::new(v));
            Ok(())
        },
        check: |c| scheme(c.database.replica_url.as_ref(), &["postgres", "postgresql"]),
    },
    Var {
        name: "CLUBPULSE_REPLICA_MAX_LAG_SECONDS",
        key: "database.replica_max_lag_seconds",
        default: DefaultValue::Is("5"),
        meaning: "reads leave the replica while it lags more than this; a member who wrote within it reads the primary",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.database.replica_max_lag_seconds = x),
        check: |c| positive(c.database.replica_max_lag_seconds),
    },
    Var {
        name: "REDIS_URL",
        key: "redis.url",
        default: DefaultValue::None,
        meaning: "`redis://[:password@]host:port/db` (the db index is honoured); several comma-separated URLs are Redis Cluster seed nodes; unset uses in-process state",
        rejects: Some("127.0.0.1:6379"),
        set: |c, v| {
            c.redis.url = Some(Secret::new(v));
            Ok(())
        },
        check: |c| scheme(c.redis.url.as_ref(), &["redis", "rediss"]),
    },
    Var {
        name: "CLUBPULSE_REDIS_CLUSTER",
        key: "redis.cluster",
        default: DefaultValue::Is("false"),
        meaning: "treat a single `REDIS_URL` as a cluster seed node",
        rejects: Some("maybe"),
        set: |c, v| flag(v).map(|x| c.redis.cluster = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_REDIS_PREFIX",
        key: "redis.key_prefix",
        default: DefaultValue::Is("cp:"),
        meaning: "prefix of every Redis key",
        rejects: None,
        set: |c, v| {
            c.redis.key_prefix = v.to_owned();
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_SESSION_IDLE_SECONDS",
        key: "sessions.idle_seconds",
        default: DefaultValue::Is("86400"),
        meaning: "a session unused this long ends (86400: a day)",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.sessions.idle_seconds = x),
        check: |c| positive(c.sessions.idle_seconds),
    },
    Var {
        name: "CLUBPULSE_SESSION_ABSOLUTE_SECONDS",
        key: "sessions.absolute_seconds",
        default: DefaultValue::Is("2592000"),
        meaning: "a session ends this long after login regardless (2592000: 30 days)",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.sessions.absolute_seconds = x),
        check: |c| positive(c.sessions.absolute_seconds),
    },
    Var {
        name: "CLUBPULSE_COOKIE_SECURE",
        key: "sessions.cookie_secure",
        default: DefaultValue::Is("false"),
        meaning: "mark the session cookie `Secure` (set behind HTTPS)",
        rejects: Some("maybe"),
        set: |c, v| flag(v).map(|x| c.sessions.cookie_secure = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_PASSWORD_RESET_MINUTES",
        key: "sessions.password_reset_minutes",
        default: DefaultValue::Is("30"),
        meaning: "how long a mailed password-reset link works",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.sessions.password_reset_minutes = x),
        check: |c| positive(c.sessions.password_reset_minutes),
    },
    Var {
        name: "CLUBPULSE_HOLD_SECONDS",
        key: "booking.hold_seconds",
        default: DefaultValue::Is("300"),
        meaning: "how long a hold protects a slot while the member pays",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.hold_seconds = x),
        check: |c| positive(c.booking.hold_seconds),
    },
    Var {
        name: "CLUBPULSE_MAX_ACTIVE_HOLDS",
        key: "booking.max_active_holds",
        default: DefaultValue::Is("3"),
        meaning: "active holds per member (a weekly series counts once)",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.max_active_holds = x),
        check: |c| positive(c.booking.max_active_holds),
    },
    Var {
        name: "CLUBPULSE_BOOKING_WINDOW_DAYS",
        key: "booking.window_days",
        default: DefaultValue::Is("30"),
        meaning: "how far ahead a booking may start",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.window_days = x),
        check: |c| positive(c.booking.window_days),
    },
    Var {
        name: "CLUBPULSE_MIN_NOTICE_MINUTES",
        key: "booking.min_notice_minutes",
        default: DefaultValue::Is("0"),
        meaning: "how soon a booking may start",
        rejects: Some("soon"),
        set: |c, v| parse(v).map(|x| c.booking.min_notice_minutes = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_SWEEP_INTERVAL_MS",
        key: "booking.sweep_interval_ms",
        default: DefaultValue::Is("1000"),
        meaning: "how often expired holds are released",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.sweep_interval_ms = x),
        check: |c| positive(c.booking.sweep_interval_ms),
    },
    Var {
        name: "CLUBPULSE_AVAILABILITY_TTL_SECONDS",
        key: "booking.availability_ttl_seconds",
        default: DefaultValue::Is("600"),
        meaning: "lifetime of a cached availability day",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.availability_ttl_seconds = x),
        check: |c| positive(c.booking.availability_ttl_seconds),
    },
    Var {
        name: "CLUBPULSE_WAITLIST_OFFER_SECONDS",
        key: "booking.waitlist_offer_seconds",
        default: DefaultValue::Is("900"),
        meaning: "how long a waitlist offer (a hold made for the first waiter when a slot frees) lasts; not counted in `CLUBPULSE_MAX_ACTIVE_HOLDS`",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.waitlist_offer_seconds = x),
        check: |c| {
            if c.booking.waitlist_offer_seconds == 0 || c.booking.waitlist_offer_seconds > 86_400 {
                Err("must be between 1 and 86400".to_owned())
            } else {
                Ok(())
            }
        },
    },
    Var {
        name: "CLUBPULSE_WAITLIST_MAX_ENTRIES",
        key: "booking.waitlist_max_entries",
        default: DefaultValue::Is("5"),
        meaning: "waiting or offered waitlist entries per member",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.booking.waitlist_max_entries = x),
        check: |c| {
            if c.booking.waitlist_max_entries == 0 || c.booking.waitlist_max_entries > 100 {
                Err("must be between 1 and 100".to_owned())
            } else {
                Ok(())
            }
        },
    },
    Var {
        name: "CLUBPULSE_WS_SEND_QUEUE",
        key: "realtime.send_queue",
        default: DefaultValue::Is("256"),
        meaning: "frames a WebSocket may have waiting before it is cut off as a slow reader (close code 1013)",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.realtime.send_queue = x),
        check: |c| positive(c.realtime.send_queue),
    },
    Var {
        name: "CLUBPULSE_WS_MAX_SUBSCRIPTIONS",
        key: "realtime.max_subscriptions",
        default: DefaultValue::Is("32"),
        meaning: "channels one WebSocket may watch at once, its own `user` channel included",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.realtime.max_subscriptions = x),
        check: |c| positive(c.realtime.max_subscriptions),
    },
    Var {
        name: "CLUBPULSE_WS_HEARTBEAT_SECONDS",
        key: "realtime.heartbeat_seconds",
        default: DefaultValue::Is("25"),
        meaning: "how often the server pings each WebSocket and checks its session is still live",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.realtime.heartbeat_seconds = x),
        check: |c| positive(c.realtime.heartbeat_seconds),
    },
    Var {
        name: "CLUBPULSE_WS_IDLE_SECONDS",
        key: "realtime.idle_seconds",
        default: DefaultValue::Is("60"),
        meaning: "how long a WebSocket may stay silent (not even a pong) before it is closed; more than the heartbeat",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.realtime.idle_seconds = x),
        check: |c| {
            if c.realtime.idle_seconds <= c.realtime.heartbeat_seconds {
                Err(format!(
                    "must be more than CLUBPULSE_WS_HEARTBEAT_SECONDS ({})",
                    c.realtime.heartbeat_seconds
                ))
            } else {
                Ok(())
            }
        },
    },
    Var {
        name: "CLUBPULSE_RATE_LIMITS",
        key: "rate_limits.enabled",
        default: DefaultValue::Is("on"),
        meaning: "`off` disables every limit (for benchmarks only)",
        rejects: Some("sometimes"),
        set: |c, v| flag(v).map(|x| c.rate_limits.enabled = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_RATE_LIMIT_GLOBAL",
        key: "rate_limits.global_per_ip",
        default: DefaultValue::Is("100"),
        meaning: "requests per minute per client IP, every route but `/health` and `/ready`",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.rate_limits.global_per_ip = x),
        check: |c| limit(c.rate_limits.global_per_ip),
    },
    Var {
        name: "CLUBPULSE_RATE_LIMIT_LOGIN",
        key: "rate_limits.login",
        default: DefaultValue::Is("5"),
        meaning: "login attempts per minute per IP, and per account",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.rate_limits.login = x),
        check: |c| limit(c.rate_limits.login),
    },
    Var {
        name: "CLUBPULSE_RATE_LIMIT_BOOKING",
        key: "rate_limits.booking",
        default: DefaultValue::Is("20"),
        meaning: "holds per minute per member",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.rate_limits.booking = x),
        check: |c| limit(c.rate_limits.booking),
    },
    Var {
        name: "CLUBPULSE_RATE_LIMIT_CHECKOUT",
        key: "rate_limits.checkout",
        default: DefaultValue::Is("10"),
        meaning: "confirmations (checkouts) per minute per member",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.rate_limits.checkout = x),
        check: |c| limit(c.rate_limits.checkout),
    },
    Var {
        name: "CLUBPULSE_RATE_LIMIT_API_KEY",
        key: "rate_limits.api_key",
        default: DefaultValue::Is("600"),
        meaning: "requests per minute per API key",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.rate_limits.api_key = x),
        check: |c| limit(c.rate_limits.api_key),
    },
    Var {
        name: "CLUBPULSE_RATE_LIMIT_ALLOW",
        key: "rate_limits.allow",
        default: DefaultValue::None,
        meaning: "IPs/CIDRs exempt from the per-IP limits (comma-separated)",
        rejects: Some("10.0.0.0/33"),
        set: |c, v| {
            c.rate_limits.allow = list(v);
            Ok(())
        },
        check: |c| networks(&c.rate_limits.allow),
    },
    Var {
        name: "CLUBPULSE_TRUSTED_PROXIES",
        key: "rate_limits.trusted_proxies",
        default: DefaultValue::None,
        meaning: "proxies whose `X-Forwarded-For` is believed (IPs/CIDRs); otherwise the client IP is the socket's",
        rejects: Some("proxy.local"),
        set: |c, v| {
            c.rate_limits.trusted_proxies = list(v);
            Ok(())
        },
        check: |c| networks(&c.rate_limits.trusted_proxies),
    },
    Var {
        name: "CLUBPULSE_WORKER",
        key: "jobs.run_in_server",
        default: DefaultValue::Is("on"),
        meaning: "run the background work inside `serve`: worker pool, hold sweeper, outbox relay (`off` when `clubpulse worker` processes do it)",
        rejects: Some("maybe"),
        set: |c, v| flag(v).map(|x| c.jobs.run_in_server = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_JOB_CONCURRENCY",
        key: "jobs.concurrency",
        default: DefaultValue::Is("8"),
        meaning: "jobs one worker pool runs at once",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.jobs.concurrency = x),
        check: |c| positive(c.jobs.concurrency),
    },
    Var {
        name: "CLUBPULSE_JOB_MAX_ATTEMPTS",
        key: "jobs.max_attempts",
        default: DefaultValue::Is("5"),
        meaning: "attempts before a job is dead-lettered",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.jobs.max_attempts = x),
        check: |c| positive(c.jobs.max_attempts),
    },
    Var {
        name: "CLUBPULSE_JOB_BACKOFF_BASE_MS",
        key: "jobs.backoff_base_ms",
        default: DefaultValue::Is("1000"),
        meaning: "the first retry waits about this long, doubling each time (with jitter)",
        rejects: Some("1s"),
        set: |c, v| parse(v).map(|x| c.jobs.backoff_base_ms = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_JOB_VISIBILITY_SECONDS",
        key: "jobs.visibility_seconds",
        default: DefaultValue::Is("30"),
        meaning: "a job whose worker stopped renewing its lease this long ago runs again elsewhere",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.jobs.visibility_seconds = x),
        check: |c| positive(c.jobs.visibility_seconds),
    },
    Var {
        name: "CLUBPULSE_SMTP_URL",
        key: "mail.smtp_url",
        default: DefaultValue::None,
        meaning: "`smtp://[user:pass@]host:port` (`?tls=required` for STARTTLS) or `smtps://…`; unset: mail jobs are logged, not sent",
        rejects: Some("mail.example:25"),
        set: |c, v| {
            c.mail.smtp_url = Some(Secret::new(v));
            Ok(())
        },
        check: |c| scheme(c.mail.smtp_url.as_ref(), &["smtp", "smtps"]),
    },
    Var {
        name: "CLUBPULSE_MAIL_FROM",
        key: "mail.from",
        default: DefaultValue::Is("Club Pulse <no-reply@localhost>"),
        meaning: "the sender of every message",
        rejects: None,
        set: |c, v| {
            c.mail.from = v.to_owned();
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_PAYMENT_PROVIDER",
        key: "payments.provider",
        default: DefaultValue::Is("onsite"),
        meaning: "`onsite` (staff mark bookings paid at the club; members may confirm their own holds) or `stripe` (members pay at checkout; a priced hold is confirmed by its payment)",
        rejects: Some("paypal"),
        set: |c, v| {
            c.payments.provider = match v {
                "onsite" => PaymentProviderKind::OnSite,
                "stripe" => PaymentProviderKind::Stripe,
                _ => return Err("use onsite or stripe".to_owned()),
            };
            Ok(())
        },
        check: |c| {
            if c.payments.provider == PaymentProviderKind::Stripe
                && c.payments.stripe_secret_key.expose().is_empty()
            {
                return Err("stripe needs CLUBPULSE_STRIPE_SECRET_KEY".to_owned());
            }
            Ok(())
        },
    },
    Var {
        name: "CLUBPULSE_STRIPE_API_URL",
        key: "payments.stripe_api_url",
        default: DefaultValue::Is("https://api.stripe.com"),
        meaning: "the Stripe-compatible API the payments go through",
        rejects: Some("api.stripe.com"),
        set: |c, v| {
            c.payments.stripe_api_url = v.to_owned();
            Ok(())
        },
        check: |c| http_url(Some(&c.payments.stripe_api_url)),
    },
    Var {
        name: "CLUBPULSE_STRIPE_SECRET_KEY",
        key: "payments.stripe_secret_key",
        default: DefaultValue::None,
        meaning: "the API's secret key (`sk_…`); never logged",
        rejects: None,
        set: |c, v| {
            c.payments.stripe_secret_key = Secret::new(v);
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_STRIPE_WEBHOOK_SECRETS",
        key: "payments.stripe_webhook_secrets",
        default: DefaultValue::None,
        meaning: "comma-separated webhook signing secrets (`whsec_…`); a signature made with any of them is valid, so a secret rotates without losing events",
        rejects: None,
        set: |c, v| {
            c.payments.stripe_webhook_secrets = list(v).into_iter().map(Secret::new).collect();
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_PAYMENT_RECONCILE_AFTER_SECONDS",
        key: "payments.reconcile_after_seconds",
        default: DefaultValue::Is("300"),
        meaning: "how old a pending payment must be before reconciliation asks the provider how it stands (a webhook may have been lost)",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.payments.reconcile_after_seconds = x),
        check: |c| positive(c.payments.reconcile_after_seconds),
    },
    Var {
        name: "CLUBPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS",
        key: "webhooks.allow_private_targets",
        default: DefaultValue::Is("off"),
        meaning: "`on` lets webhooks target private, loopback, link-local and other non-public addresses (refused otherwise, at registration and at every delivery)",
        rejects: Some("sometimes"),
        set: |c, v| flag(v).map(|x| c.webhooks.allow_private_targets = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_WEBHOOK_TIMEOUT_SECONDS",
        key: "webhooks.timeout_seconds",
        default: DefaultValue::Is("10"),
        meaning: "how long one webhook delivery attempt may take, connecting included; a timeout is retried",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.webhooks.timeout_seconds = x),
        check: |c| {
            if c.webhooks.timeout_seconds == 0 || c.webhooks.timeout_seconds > 300 {
                Err("must be between 1 and 300".to_owned())
            } else {
                Ok(())
            }
        },
    },
    Var {
        name: "CLUBPULSE_WEBHOOK_DISABLE_AFTER_HOURS",
        key: "webhooks.disable_after_hours",
        default: DefaultValue::Is("24"),
        meaning: "a webhook endpoint whose deliveries have failed for longer than this is disabled and its admin notified",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.webhooks.disable_after_hours = x),
        check: |c| {
            if c.webhooks.disable_after_hours == 0 || c.webhooks.disable_after_hours > 8760 {
                Err("must be between 1 and 8760".to_owned())
            } else {
                Ok(())
            }
        },
    },
    Var {
        name: "CLUBPULSE_AUDIT",
        key: "audit.enabled",
        default: DefaultValue::Is("on"),
        meaning: "`off` records nothing (for measuring the audit's cost only)",
        rejects: Some("maybe"),
        set: |c, v| flag(v).map(|x| c.audit.enabled = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_AUDIT_FLUSH_SECONDS",
        key: "audit.flush_seconds",
        default: DefaultValue::Is("5"),
        meaning: "how often buffered audit events are chained into PostgreSQL (and once more at shutdown)",
        rejects: Some("0"),
        set: |c, v| parse(v).map(|x| c.audit.flush_seconds = x),
        check: |c| positive(c.audit.flush_seconds),
    },
    Var {
        name: "CLUBPULSE_LOG",
        key: "log.filter",
        default: DefaultValue::Is("info,sqlx=warn"),
        meaning: "`tracing` filter, e.g. `info,clubpulse_http=debug`",
        rejects: None,
        set: |c, v| {
            c.log.filter = v.to_owned();
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_LOG_FORMAT",
        key: "log.format",
        default: DefaultValue::Is("json"),
        meaning: "`json` (one object per line) or `pretty`",
        rejects: Some("xml"),
        set: |c, v| {
            c.log.format = match v {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => return Err("use json or pretty".to_owned()),
            };
            Ok(())
        },
        check: any,
    },
    Var {
        name: "CLUBPULSE_SEARCH",
        key: "search.enabled",
        default: DefaultValue::Is("on"),
        meaning: "`off` runs without search (no model loaded; search answers 503 `search_disabled`)",
        rejects: Some("maybe"),
        set: |c, v| flag(v).map(|x| c.search.enabled = x),
        check: any,
    },
    Var {
        name: "CLUBPULSE_MODEL_DIR",
        key: "search.model_dir",
        default: DefaultValue::Is("./var/models/all-MiniLM-L6-v2"),
        meaning: "a sentence-transformers folder (`config.json`, `tokenizer.json`, `model.safetensors`; any BERT-family model, a multilingual one included); missing, the service refuses to start and names it. Nothing is ever downloaded",
        rejects: None,
        set: |c, v| {
            c.search.model_dir = v.into();
            Ok(())
        },
        check: any,
    },
];
