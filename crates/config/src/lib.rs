//! Typed, layered configuration.
//!
//! Values come from three layers, each overriding the one before: the defaults written here, an
//! optional TOML file (`--config` or `CLUBPULSE_CONFIG`) with the same sections as [`Config`], and the
//! environment variables listed in [`VARS`] (from which the README's reference table is made). One struct
//! per area; secrets are wrapped in [`Secret`] so `Debug` never prints them.

mod vars;

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

pub use vars::{DefaultValue, VARS, Var, markdown_table};

/// Everything the service can be told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub sessions: SessionConfig,
    pub booking: BookingConfig,
    pub rate_limits: RateLimitConfig,
    pub jobs: JobsConfig,
    pub mail: MailConfig,
    pub payments: PaymentsConfig,
    pub audit: AuditConfig,
    pub search: SearchConfig,
    pub realtime: RealtimeConfig,
    pub webhooks: WebhooksConfig,
    pub log: LogConfig,
}

/// The HTTP listener and request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where `serve` listens. `CLUBPULSE_ADDR`, default `127.0.0.1:8080`.
    pub addr: SocketAddr,
    /// The address members reach the service at, for links and the CSRF origin check.
    /// `CLUBPULSE_PUBLIC_URL`, default `http://<addr>`.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes. `CLUBPULSE_BODY_LIMIT_BYTES`, default 65536.
    pub body_limit_bytes: usize,
    /// A request still running after this many seconds is answered 408. `CLUBPULSE_REQUEST_TIMEOUT_SECONDS`,
    /// default 30.
    pub request_timeout_seconds: u64,
    /// How long shutdown waits for in-flight requests. `CLUBPULSE_SHUTDOWN_GRACE_SECONDS`, default 20.
    pub shutdown_grace_seconds: u64,
    /// Origins besides the public URL's whose pages may send cookie-authenticated writes (a separate
    /// front-end, say). `CLUBPULSE_ALLOWED_ORIGINS`, comma-separated, default none.
    pub allowed_origins: Vec<String>,
    /// When set, `GET /metrics` asks for `Authorization: Bearer <token>`. `CLUBPULSE_METRICS_TOKEN`,
    /// default none (open, for a scraper on a private network).
    pub metrics_token: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            body_limit_bytes: 64 * 1024,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 20,
            allowed_origins: Vec::new(),
            metrics_token: None,
        }
    }
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// PostgreSQL: an external server, or the embedded cluster the service runs itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`. Unset: run the embedded cluster under `data_dir`.
    pub url: Option<Secret>,
    /// `CLUBPULSE_DATA_DIR`, default `./var`: the embedded cluster lives in `<data_dir>/postgres`.
    pub data_dir: PathBuf,
    /// Where the PostgreSQL 15 server binaries are. `CLUBPULSE_PG_BIN_DIR`, default
    /// `/usr/lib/postgresql/15/bin` (Debian's location).
    pub pg_bin_dir: PathBuf,
    /// Connection pool size per instance. `CLUBPULSE_DB_MAX_CONNECTIONS`, default 20.
    pub max_connections: u32,
    /// `DATABASE_REPLICA_URL`: a streaming standby of the primary for heavy reads. Unset: every
    /// read goes to the primary.
    pub replica_url: Option<Secret>,
    /// Reads leave the replica while it is further behind than this.
    /// `CLUBPULSE_REPLICA_MAX_LAG_SECONDS`, default 5.
    pub replica_max_lag_seconds: u64,
}

impl DatabaseConfig {
    pub fn replica_max_lag(&self) -> Duration {
        Duration::from_secs(self.replica_max_lag_seconds)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("./var"),
            pg_bin_dir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            max_connections: 20,
            replica_url: None,
            replica_max_lag_seconds: 5,
        }
    }
}

/// Redis, or (when no URL is set) the in-process twin of every Redis-backed part.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `REDIS_URL` (`redis://[:password@]host:port/db`). Several comma-separated URLs, or
    /// `cluster = true`, mean Redis Cluster seed nodes.
    pub url: Option<Secret>,
    /// `CLUBPULSE_REDIS_CLUSTER`, default false.
    pub cluster: bool,
    /// Prefix of every key the service writes, so instances of different deployments can share a
    /// server. `CLUBPULSE_REDIS_PREFIX`, default `cp:`.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster: false,
            key_prefix: "cp:".to_owned(),
        }
    }
}

/// Login sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused for this long ends. `CLUBPULSE_SESSION_IDLE_SECONDS`, default 86400 (1 day).
    pub idle_seconds: u64,
    /// A session ends this long after login, however much it is used.
    /// `CLUBPULSE_SESSION_ABSOLUTE_SECONDS`, default 2592000 (30 days).
    pub absolute_seconds: u64,
    /// Mark the session cookie `Secure` (set it when served over HTTPS). `CLUBPULSE_COOKIE_SECURE`,
    /// default false.
    pub cookie_secure: bool,
    /// How long a password-reset link works. `CLUBPULSE_PASSWORD_RESET_MINUTES`, default 30.
    pub password_reset_minutes: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_seconds: 24 * 60 * 60,
            password_reset_minutes: 30,
            absolute_seconds: 30 * 24 * 60 * 60,
            cookie_secure: false,
        }
    }
}

impl SessionConfig {
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_seconds)
    }

    pub fn password_reset_ttl(&self) -> Duration {
        Duration::from_secs(self.password_reset_minutes.saturating_mul(60))
    }

    pub fn absolute(&self) -> Duration {
        Duration::from_secs(self.absolute_seconds)
    }
}

/// The WebSocket connections' limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Frames a socket may have waiting before it is cut off as a slow reader.
    /// `CLUBPULSE_WS_SEND_QUEUE`, default 256.
    pub send_queue: usize,
    /// Channels one connection may watch at once. `CLUBPULSE_WS_MAX_SUBSCRIPTIONS`, default 32.
    pub max_subscriptions: usize,
    /// How often the server pings each socket. `CLUBPULSE_WS_HEARTBEAT_SECONDS`, default 25.
    pub heartbeat_seconds: u64,
    /// How long a socket may stay silent before it is closed. `CLUBPULSE_WS_IDLE_SECONDS`,
    /// default 60.
    pub idle_seconds: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            send_queue: 256,
            max_subscriptions: 32,
            heartbeat_seconds: 25,
            idle_seconds: 60,
        }
    }
}

impl RealtimeConfig {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }

    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_seconds)
    }
}

/// The booking engine's rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BookingConfig {
    /// How long a hold protects a slot while the member pays. `CLUBPULSE_HOLD_SECONDS`, default 300.
    pub hold_seconds: u64,
    /// Active holds one member may have at once (a weekly series counts once).
    /// `CLUBPULSE_MAX_ACTIVE_HOLDS`, default 3.
    pub max_active_holds: u32,
    /// How far ahead a booking may start. `CLUBPULSE_BOOKING_WINDOW_DAYS`, default 30.
    pub window_days: u32,
    /// How soon a booking may start. `CLUBPULSE_MIN_NOTICE_MINUTES`, default 0 (any future slot).
    pub min_notice_minutes: u32,
    /// How often the sweeper looks for expired holds. `CLUBPULSE_SWEEP_INTERVAL_MS`, default 1000.
    pub sweep_interval_ms: u64,
    /// How long a cached availability day may live without being read again.
    /// `CLUBPULSE_AVAILABILITY_TTL_SECONDS`, default 600.
    pub availability_ttl_seconds: u64,
    /// How long a waitlist offer (a hold made for the first waiter) lasts.
    /// `CLUBPULSE_WAITLIST_OFFER_SECONDS`, default 900.
    pub waitlist_offer_seconds: u64,
    /// Waiting or offered waitlist entries one member may have at once.
    /// `CLUBPULSE_WAITLIST_MAX_ENTRIES`, default 5.
    pub waitlist_max_entries: u32,
}

impl Default for BookingConfig {
    fn default() -> Self {
        Self {
            hold_seconds: 300,
            max_active_holds: 3,
            window_days: 30,
            min_notice_minutes: 0,
            sweep_interval_ms: 1000,
            availability_ttl_seconds: 600,
            waitlist_offer_seconds: 900,
            waitlist_max_entries: 5,
        }
    }
}

impl BookingConfig {
    pub fn hold(&self) -> Duration {
        Duration::from_secs(self.hold_seconds)
    }

    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }

    pub fn availability_ttl(&self) -> Duration {
        Duration::from_secs(self.availability_ttl_seconds)
    }
}

/// Request rate limits, each per minute.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `CLUBPULSE_RATE_LIMITS=off` disables every limit (for benchmarks only). Default on.
    pub enabled: bool,
    /// Requests per minute per client IP, on every route. `CLUBPULSE_RATE_LIMIT_GLOBAL`, default 100.
    pub global_per_ip: u32,
    /// Login attempts per minute per IP, and per account. `CLUBPULSE_RATE_LIMIT_LOGIN`, default 5.
    pub login: u32,
    /// Holds (bookings) a member may ask for per minute. `CLUBPULSE_RATE_LIMIT_BOOKING`, default 20.
    pub booking: u32,
    /// Checkouts (confirmations) a member may make per minute. `CLUBPULSE_RATE_LIMIT_CHECKOUT`,
    /// default 10.
    pub checkout: u32,
    /// Requests per minute per API key. `CLUBPULSE_RATE_LIMIT_API_KEY`, default 600.
    pub api_key: u32,
    /// IPs and CIDRs exempt from the per-IP limits. `CLUBPULSE_RATE_LIMIT_ALLOW`, comma-separated.
    pub allow: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (IPs or CIDRs). `CLUBPULSE_TRUSTED_PROXIES`,
    /// comma-separated, default none: the client IP is the socket's.
    pub trusted_proxies: Vec<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            global_per_ip: 100,
            login: 5,
            booking: 20,
            checkout: 10,
            api_key: 600,
            allow: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Background jobs: the queue (Redis, or PostgreSQL without it) and the worker pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run a worker pool inside `serve`. `CLUBPULSE_WORKER`, default on; turn it off when
    /// `clubpulse worker` processes run the jobs instead.
    pub run_in_server: bool,
    /// Jobs one worker pool runs at once. `CLUBPULSE_JOB_CONCURRENCY`, default 8.
    pub concurrency: usize,
    /// Attempts before a job is dead-lettered. `CLUBPULSE_JOB_MAX_ATTEMPTS`, default 5.
    pub max_attempts: u32,
    /// The first retry waits about this long, doubling each time (with jitter).
    /// `CLUBPULSE_JOB_BACKOFF_BASE_MS`, default 1000.
    pub backoff_base_ms: u64,
    /// A job whose worker stopped renewing its lease for this long is given to another worker.
    /// `CLUBPULSE_JOB_VISIBILITY_SECONDS`, default 30.
    pub visibility_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            run_in_server: true,
            concurrency: 8,
            max_attempts: 5,
            backoff_base_ms: 1000,
            visibility_seconds: 30,
        }
    }
}

impl JobsConfig {
    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }

    pub fn visibility(&self) -> Duration {
        Duration::from_secs(self.visibility_seconds)
    }
}

/// Outbound webhooks: where deliveries may go and how long they may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Allow targets on private, loopback, link-local and other non-public addresses.
    /// `CLUBPULSE_WEBHOOK_ALLOW_PRIVATE_TARGETS`, default off: a webhook is a request the service
    /// makes on an admin's behalf, and without this check it could reach the service's own
    /// network (server-side request forgery).
    pub allow_private_targets: bool,
    /// How long one delivery attempt may take, connecting included.
    /// `CLUBPULSE_WEBHOOK_TIMEOUT_SECONDS`, default 10.
    pub timeout_seconds: u64,
    /// An endpoint whose deliveries have failed for longer than this is disabled, and its admin
    /// told. `CLUBPULSE_WEBHOOK_DISABLE_AFTER_HOURS`, default 24.
    pub disable_after_hours: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout_seconds: 10,
            disable_after_hours: 24,
        }
    }
}

impl WebhooksConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    pub fn disable_after(&self) -> Duration {
        Duration::from_secs(self.disable_after_hours.saturating_mul(3600))
    }
}

/// Outgoing e-mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://[user:pass@]host:port` (plain or STARTTLS) or `smtps://…`. `CLUBPULSE_SMTP_URL`,
    /// default none: mail jobs are logged and completed without sending.
    pub smtp_url: Option<Secret>,
    /// The sender. `CLUBPULSE_MAIL_FROM`, default `Club Pulse <no-reply@localhost>`.
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Club Pulse <no-reply@localhost>".to_owned(),
        }
    }
}

/// Who takes the money, and how to reach them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// `onsite` (staff take payment at the club) or `stripe`. `CLUBPULSE_PAYMENT_PROVIDER`,
    /// default `onsite`.
    pub provider: PaymentProviderKind,
    /// The Stripe-compatible API. `CLUBPULSE_STRIPE_API_URL`, default `https://api.stripe.com`.
    pub stripe_api_url: String,
    /// The API's secret key. `CLUBPULSE_STRIPE_SECRET_KEY`, required with `stripe`.
    pub stripe_secret_key: Secret,
    /// Webhook signing secrets; a signature made with any of them is valid, so a secret can be
    /// rotated without losing events. `CLUBPULSE_STRIPE_WEBHOOK_SECRETS` (comma-separated).
    pub stripe_webhook_secrets: Vec<Secret>,
    /// How old a pending payment must be before reconciliation asks the provider about it (its
    /// webhook may have been lost). `CLUBPULSE_PAYMENT_RECONCILE_AFTER_SECONDS`, default 300.
    pub reconcile_after_seconds: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            provider: PaymentProviderKind::OnSite,
            stripe_api_url: "https://api.stripe.com".to_owned(),
            stripe_secret_key: Secret::new(""),
            stripe_webhook_secrets: Vec::new(),
            reconcile_after_seconds: 300,
        }
    }
}

impl PaymentsConfig {
    pub fn reconcile_after(&self) -> Duration {
        Duration::from_secs(self.reconcile_after_seconds)
    }
}

/// The payment providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PaymentProviderKind {
    #[serde(rename = "onsite")]
    OnSite,
    #[serde(rename = "stripe")]
    Stripe,
}

/// The audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// `CLUBPULSE_AUDIT=off` records nothing (for measuring its cost only). Default on.
    pub enabled: bool,
    /// How often buffered events are chained into PostgreSQL. `CLUBPULSE_AUDIT_FLUSH_SECONDS`,
    /// default 5.
    pub flush_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_seconds: 5,
        }
    }
}

impl AuditConfig {
    pub fn flush_interval(&self) -> Duration {
        Duration::from_secs(self.flush_seconds)
    }
}

/// Natural-language facility search.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// `CLUBPULSE_SEARCH=off` disables search and loads no model. Default on.
    pub enabled: bool,
    /// A sentence-transformers model folder (`config.json`, `tokenizer.json`,
    /// `model.safetensors`). `CLUBPULSE_MODEL_DIR`, default `./var/models/all-MiniLM-L6-v2`.
    pub model_dir: PathBuf,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model_dir: PathBuf::from("./var/models/all-MiniLM-L6-v2"),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter. `CLUBPULSE_LOG`, default `info,sqlx=warn`.
    pub filter: String,
    /// `json` (one object per line) or `pretty`. `CLUBPULSE_LOG_FORMAT`, default `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info,sqlx=warn".to_owned(),
            format: LogFormat::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A value that must not be printed (a URL with a password in it). `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is invalid: {source}")]
    File {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// A variable whose value cannot be read as its type.
    #[error("{name}={value:?} is invalid: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// A setting (from the file or the environment) outside what its variable allows.
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// Defaults, then `file` (when given), then the process environment.
    pub fn load(file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let file = file.or_else(|| std::env::var_os("CLUBPULSE_CONFIG").map(PathBuf::from));
        let mut config = match file {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::File {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Overrides fields from the environment variables in [`VARS`], read through `var` (so tests need
    /// not touch the process environment), then [`validate`](Self::validate)s the result. An empty
    /// variable counts as unset.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for v in VARS {
            let Some(value) = var(v.name).filter(|value| !value.trim().is_empty()) else {
                continue;
            };
            v.set(self, value.trim())
                .map_err(|reason| ConfigError::Env {
                    name: v.name,
                    value: if v.name.ends_with("_URL") {
                        "<redacted>".to_owned()
                    } else {
                        value.clone()
                    },
                    reason,
                })?;
        }
        self.validate()
    }

    /// Checks every setting, whatever layer it came from; the first one that is not acceptable is
    /// named by its environment variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        VARS.iter().try_for_each(|v| {
            v.check(self).map_err(|reason| ConfigError::Invalid {
                name: v.name,
                reason,
            })
        })
    }

    /// The origins (`scheme://host[:port]`) whose pages may send cookie-authenticated writes: the
    /// public URL's and the configured ones.
    pub fn trusted_origins(&self) -> Vec<String> {
        let public = self.public_url();
        let origin = match public.find("://") {
            Some(i) => match public[i + 3..].find('/') {
                Some(j) => public[..i + 3 + j].to_owned(),
                None => public,
            },
            None => public,
        };
        let mut origins = vec![origin.to_ascii_lowercase()];
        origins.extend(
            self.server
                .allowed_origins
                .iter()
                .map(|o| o.to_ascii_lowercase()),
        );
        origins
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.addr))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_match_the_documented_contract() {
        let config = Config::default();
        assert_eq!(config.server.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database.data_dir, PathBuf::from("./var"));
        assert!(config.database.url.is_none());
        assert!(config.redis.url.is_none());
        assert_eq!(config.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        let mut config: Config =
            toml::from_str("[server]\naddr = \"0.0.0.0:9000\"\n[sessions]\nidle_seconds = 60\n")
                .unwrap();
        assert_eq!(config.server.addr.port(), 9000);
        assert_eq!(config.sessions.absolute_seconds, 30 * 24 * 3600);
        config
            .apply_env(env(&[
                ("CLUBPULSE_SESSION_IDLE_SECONDS", "120"),
                ("REDIS_URL", "redis://127.0.0.1:6379/2"),
                ("CLUBPULSE_COOKIE_SECURE", "true"),
                ("CLUBPULSE_PUBLIC_URL", "https://club.example/"),
            ]))
            .unwrap();
        assert_eq!(config.server.addr.port(), 9000);
        assert_eq!(config.sessions.idle_seconds, 120);
        assert!(config.sessions.cookie_secure);
        assert_eq!(config.public_url(), "https://club.example");
        assert_eq!(
            config.redis.url.as_ref().map(Secret::expose),
            Some("redis://127.0.0.1:6379/2")
        );
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let err = Config::default()
            .apply_env(env(&[("CLUBPULSE_ADDR", "not-an-address")]))
            .unwrap_err();
        assert!(err.to_string().starts_with("CLUBPULSE_ADDR="), "{err}");
        let err = Config::default()
            .apply_env(env(&[("CLUBPULSE_MAX_ACTIVE_HOLDS", "0")]))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("CLUBPULSE_MAX_ACTIVE_HOLDS "),
            "{err}"
        );
    }

    /// The error's first word is the variable itself (`NAME=…` or `NAME is invalid`), so a variable
    /// whose name begins another's (`CLUBPULSE_RATE_LIMIT…`) cannot pass for it.
    fn names_only(err: &ConfigError, name: &str) -> bool {
        let text = err.to_string();
        text.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('=') || rest.starts_with(' '))
    }

    #[test]
    fn every_variable_refuses_a_bad_value_by_its_own_name() {
        let mut tried = 0;
        for var in VARS {
            let Some(bad) = var.rejects else { continue };
            let err = Config::default()
                .apply_env(env(&[(var.name, bad)]))
                .expect_err(var.name);
            assert!(names_only(&err, var.name), "{}={bad}: {err}", var.name);
            tried += 1;
        }
        assert!(tried >= 35, "only {tried} variables were tried");
    }

    #[test]
    fn a_bad_setting_in_the_file_is_named_by_its_variable() {
        let config: Config = toml::from_str("[booking]\nmax_active_holds = 0\n").unwrap();
        let err = config.validate().unwrap_err();
        assert!(names_only(&err, "CLUBPULSE_MAX_ACTIVE_HOLDS"), "{err}");
    }

    #[test]
    fn each_variable_is_declared_once_with_a_key_the_file_knows() {
        let mut names: Vec<&str> = VARS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARS.len(), "a variable is declared twice");
        for var in VARS.iter().filter(|v| !v.key.is_empty()) {
            let (section, field) = var.key.split_once('.').unwrap();
            // A key the file does not know is refused (`deny_unknown_fields`), so a wrong key in the
            // table shows up here as an error naming it.
            let text = format!("[{section}]\n{field} = {}\n", sample(var));
            let parsed = toml::from_str::<Config>(&text);
            let unknown = parsed
                .as_ref()
                .err()
                .is_some_and(|e| e.to_string().contains("unknown field"));
            assert!(!unknown, "{}: {text}: {parsed:?}", var.name);
        }
    }

    /// A TOML value of roughly the right type, enough to tell a known key from an unknown one.
    fn sample(var: &Var) -> String {
        match var.default {
            DefaultValue::Is(v) if v.parse::<u64>().is_ok() => v.to_owned(),
            DefaultValue::Is("on" | "off" | "true" | "false") => "true".to_owned(),
            _ if var.key.ends_with("allow")
                || var.key.ends_with("proxies")
                || var.key.ends_with("origins") =>
            {
                "[]".to_owned()
            }
            _ => "\"x\"".to_owned(),
        }
    }

    #[test]
    fn documented_defaults_are_the_defaults_in_code() {
        let defaults = format!("{:?}", Config::default());
        for var in VARS {
            if let DefaultValue::Is(value) = var.default {
                let mut config = Config::default();
                config.apply_env(env(&[(var.name, value)])).unwrap();
                assert_eq!(format!("{config:?}"), defaults, "{}={value}", var.name);
            }
        }
    }

    #[test]
    fn the_readme_table_is_the_table_in_code() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        let header = "| variable | file key | default | meaning |";
        let start = readme.find(header).expect("the README has the table");
        let table: String = readme[start..]
            .lines()
            .take_while(|line| line.starts_with('|'))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(
            table == markdown_table(),
            "the README's environment table differs from `VARS`; replace it with:\n\n{}",
            markdown_table()
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<Config>("[server]\nadress = \"x\"\n").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let mut config = Config::default();
        config
            .apply_env(env(&[("DATABASE_URL", "postgres://u:hunter2@db/x")]))
            .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
