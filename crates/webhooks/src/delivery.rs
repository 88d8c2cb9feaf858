//! The delivery job: `webhook.deliver {delivery_id}` POSTs one event to one endpoint.
//!
//! Each attempt sends the same body (`{id, type, created, data}`, built from what the fan-out
//! stored), signed afresh with the endpoint's secret and the attempt's time in
//! `ClubPulse-Signature: t=<unix seconds>,v1=<hex>`. A 2xx answer completes the delivery; any
//! other answer, a timeout or a connection error records the attempt and fails the job, which the
//! queue retries with back-off and dead-letters after its last attempt (the delivery is then
//! `dead`). Redirects are not followed and no proxy is used: the target checked is the target
//! reached. A target whose addresses are not public is a permanent failure (see
//! [`crate::target`]).
//!
//! An endpoint failing since more than `CLUBPULSE_WEBHOOK_DISABLE_AFTER_HOURS` (counted from the
//! first failure after its last success) is disabled by the next failure, and the admin who
//! registered it gets a `webhook.disabled` notification.
//!
//! The job may run before the relay transaction that recorded its delivery has committed: a
//! delivery not found is looked up again once no relay is in a transaction. One still missing was
//! deleted with its endpoint, or rolled back with its batch (whose next delivery records new
//! deliveries, with jobs of their own): either way there is nothing to send.

use std::sync::Arc;

use chrono::Utc;
use clubpulse_config::WebhooksConfig;
use clubpulse_jobs::{Job, JobContext, JobFailure, Registry};
use clubpulse_storage::{
    notifications::{self, NewNotification},
    outbox,
    webhooks::{self, Disabled, Failure, Pending},
};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    events, signature,
    target::{self, ForbiddenTarget, GuardedResolver, TargetError},
};

/// The header deliveries are signed in.
pub const SIGNATURE_HEADER: &str = "ClubPulse-Signature";

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = "ClubPulse-Webhooks/1";

/// The notification kind an endpoint's admin gets when it is disabled.
pub const DISABLED_KIND: &str = "webhook.disabled";

/// Deliver one recorded delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub delivery_id: Uuid,
}

impl Job for DeliverWebhook {
    const KIND: &'static str = "webhook.deliver";

    /// One live job per delivery, however often the fan-out queues it.
    fn unique_key(&self) -> Option<String> {
        Some(format!("webhook-delivery:{}", self.delivery_id))
    }
}

/// Runs delivery jobs.
#[derive(Debug, Clone)]
pub struct Deliverer {
    db: PgPool,
    client: reqwest::Client,
    allow_private: bool,
    disable_after: chrono::Duration,
}

/// How one attempt went.
enum Attempt {
    Delivered(u16),
    Failed {
        status: Option<u16>,
        error: String,
        permanent: bool,
    },
}

impl Deliverer {
    /// A deliverer with its own HTTP client: the guarded resolver, the configured timeout, no
    /// redirects, no proxy.
    pub fn new(db: PgPool, config: &WebhooksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: config.allow_private_targets,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(USER_AGENT)
            .timeout(config.timeout())
            .connect_timeout(config.timeout())
            .build()?;
        Ok(Self {
            db,
            client,
            allow_private: config.allow_private_targets,
            disable_after: chrono::Duration::from_std(config.disable_after())
                .unwrap_or(chrono::Duration::MAX),
        })
    }

    /// Runs one attempt of `job`.
    pub async fn run(&self, job: &DeliverWebhook, ctx: &JobContext) -> Result<(), JobFailure> {
        let Some(pending) = self.load(job.delivery_id).await? else {
            tracing::info!(job.id = %ctx.id, webhook.delivery = %job.delivery_id, "the delivery no longer exists (its endpoint was deleted); nothing to send");
            return Ok(());
        };
        let d = &pending.delivery;
        // A dead delivery is sent again: its job only runs again when an admin retried it from
        // the dead-letter queue.
        if d.status == "succeeded" {
            return Ok(());
        }
        if !pending.enabled {
            webhooks::record_skipped(&self.db, d.id, "not sent: the endpoint is disabled")
                .await
                .map_err(JobFailure::new)?;
            return Ok(());
        }
        let attempt = self.attempt(&pending).await;
        match attempt {
            Attempt::Delivered(status) => {
                let mut tx = self.db.begin().await.map_err(JobFailure::new)?;
                webhooks::record_success(&mut tx, d.id, d.endpoint_id, i32::from(status))
                    .await
                    .map_err(JobFailure::new)?;
                tx.commit().await.map_err(JobFailure::new)?;
                tracing::info!(job.id = %ctx.id, webhook.endpoint = %d.endpoint_id, webhook.delivery = %d.id, http.status = status, attempt = ctx.attempt, "webhook delivered");
                Ok(())
            }
            Attempt::Failed {
                status,
                error,
                permanent,
            } => self.failed(&pending, ctx, status, error, permanent).await,
        }
    }

    /// The delivery, waiting for a relay that may still be committing it.
    async fn load(&self, id: Uuid) -> Result<Option<Pending>, JobFailure> {
        if let Some(found) = webhooks::delivery(&self.db, id)
            .await
            .map_err(JobFailure::new)?
        {
            return Ok(Some(found));
        }
        webhooks::wait_for_relay(&self.db)
            .await
            .map_err(JobFailure::new)?;
        webhooks::delivery(&self.db, id)
            .await
            .map_err(JobFailure::new)
    }

    async fn attempt(&self, pending: &Pending) -> Attempt {
        let d = &pending.delivery;
        let failed = |error: String, permanent: bool| Attempt::Failed {
            status: None,
            error,
            permanent,
        };
        let url = match target::parse(&pending.url) {
            Ok(url) => url,
            Err(err) => return failed(format!("the endpoint's URL {err}"), true),
        };
        // An IP literal never reaches the resolver: check it here. Names are checked by the
        // resolver, on the addresses the client then connects to.
        if let Err(err @ TargetError::Forbidden) = target::check_literal(&url, self.allow_private) {
            return failed(err.to_string(), true);
        }
        let body = events::body(
            d.event_id,
            &d.event_type,
            pending.event_created_at,
            &pending.payload,
        );
        let signed = signature::header(pending.secret.as_bytes(), Utc::now().timestamp(), &body);
        let Ok(signed) = HeaderValue::from_str(&signed) else {
            return failed("the signature is not a header value".to_owned(), true);
        };
        let sent = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Attempt::Delivered(response.status().as_u16())
            }
            Ok(response) => {
                let status = response.status();
                let error = if status.is_redirection() {
                    format!("answered {status}; redirects are not followed")
                } else {
                    format!("answered {status}")
                };
                Attempt::Failed {
                    status: Some(status.as_u16()),
                    error,
                    permanent: false,
                }
            }
            Err(err) if is_forbidden(&err) => failed(TargetError::Forbidden.to_string(), true),
            Err(err) if err.is_timeout() => failed("timed out".to_owned(), false),
            Err(err) => failed(describe(err), false),
        }
    }

    async fn failed(
        &self,
        pending: &Pending,
        ctx: &JobContext,
        status: Option<u16>,
        error: String,
        permanent: bool,
    ) -> Result<(), JobFailure> {
        let d = &pending.delivery;
        let mut tx = self.db.begin().await.map_err(JobFailure::new)?;
        let disabled = webhooks::record_failure(
            &mut tx,
            &Failure {
                delivery_id: d.id,
                endpoint_id: d.endpoint_id,
                status: status.map(i32::from),
                error: &error,
                last: permanent || ctx.is_last_attempt(),
                disable_after: self.disable_after,
            },
        )
        .await
        .map_err(JobFailure::new)?;
        if let Some(disabled) = &disabled {
            tell_admin(&mut tx, disabled).await?;
        }
        tx.commit().await.map_err(JobFailure::new)?;
        tracing::warn!(job.id = %ctx.id, webhook.endpoint = %d.endpoint_id, webhook.delivery = %d.id, attempt = ctx.attempt, permanent, error = %error, "webhook delivery failed");
        if disabled.is_some() {
            tracing::warn!(webhook.endpoint = %d.endpoint_id, "webhook endpoint disabled: it has been failing for too long");
            return Err(JobFailure::permanent(format!(
                "{error}; the endpoint has been failing for too long and is now disabled"
            )));
        }
        Err(if permanent {
            JobFailure::permanent(error)
        } else {
            JobFailure::new(error)
        })
    }
}

/// Stores the `webhook.disabled` notification for the admin who registered the endpoint.
async fn tell_admin(tx: &mut sqlx::PgConnection, disabled: &Disabled) -> Result<(), JobFailure> {
    let Some(admin) = disabled.created_by else {
        return Ok(());
    };
    let host = reqwest::Url::parse(&disabled.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "its target".to_owned());
    let notification = NewNotification {
        id: Uuid::new_v4(),
        user_id: admin,
        kind: DISABLED_KIND,
        title: "A webhook endpoint was disabled".to_owned(),
        body: format!(
            "Deliveries to {host} have failed since {}; the endpoint receives nothing more. \
             Register it again once it answers.",
            disabled.failing_since.format("%Y-%m-%d %H:%M UTC")
        ),
        data: serde_json::json!({
            "endpoint_id": disabled.endpoint_id,
            "url": disabled.url,
            "failing_since": disabled.failing_since,
        }),
    };
    let stored = notifications::insert(tx, &notification)
        .await
        .map_err(JobFailure::new)?;
    if let Some(stored) = stored {
        // The relay publishes it on the admin's `user` channel, so an open dashboard hears of it.
        outbox::record(
            tx,
            outbox::NOTIFICATION_CREATED,
            stored.id,
            None,
            &serde_json::json!({"notification_id": stored.id, "user_id": stored.user_id}),
        )
        .await
        .map_err(JobFailure::new)?;
    }
    Ok(())
}

/// Whether the request failed because the resolver refused every address of the target.
fn is_forbidden(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        // By type, and by message where a layer of the client re-boxed the resolver's error.
        if cause.downcast_ref::<ForbiddenTarget>().is_some()
            || cause.to_string().contains(ForbiddenTarget::MESSAGE)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The error and its causes, without the URL (which may carry a token in its query).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Registers the `webhook.deliver` handler.
pub fn register(registry: &mut Registry, db: PgPool, config: &WebhooksConfig) {
    match Deliverer::new(db, config) {
        Ok(deliverer) => {
            registry.register::<DeliverWebhook, _>(move |job: DeliverWebhook, ctx: JobContext| {
                let deliverer = deliverer.clone();
                async move { deliverer.run(&job, &ctx).await }
            });
        }
        Err(err) => {
            // Only a broken TLS setup fails here; the jobs then wait, retried, for a fixed build.
            tracing::error!(error = %err, "the webhook client cannot be built; deliveries will fail");
            let message = format!("the webhook client cannot be built: {err}");
            registry.register::<DeliverWebhook, _>(move |_: DeliverWebhook, _: JobContext| {
                let message = message.clone();
                async move { Err(JobFailure::new(message)) }
            });
        }
    }
}
