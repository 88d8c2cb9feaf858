//! A Stripe-compatible provider: the PaymentIntents and Refunds API over HTTP, and the webhook
//! events Stripe sends.
//!
//! Every create and refund carries an `Idempotency-Key`, so a retry after a timeout (the request may
//! have reached Stripe) creates nothing twice. Network errors, timeouts, 429 and 5xx are retried
//! with exponential back-off and jitter; a 4xx is Stripe's verdict and is returned at once. The
//! secret key is sent as a bearer token and never appears in `Debug`, logs or errors.

use std::time::Duration;

use clubpulse_config::Secret;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use crate::provider::{
    Intent, IntentRequest, IntentStatus, PaymentProvider, ProviderError, RefundMade,
};

/// Attempts per call, the first included.
const ATTEMPTS: u32 = 3;
/// The first retry's delay; each further one doubles it.
const BACKOFF: Duration = Duration::from_millis(200);
/// A call that takes longer is abandoned (and retried, with the same idempotency key).
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The Stripe provider.
#[derive(Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("base", &self.base)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Stripe {
    /// A client for the API at `base` (`https://api.stripe.com`, or an emulator's address).
    pub fn new(base: &str, key: Secret) -> Result<Self, ProviderError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ProviderError::Config(
                "the Stripe API URL must start with http:// or https://".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ClubPulse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok(Self { http, base, key })
    }

    /// One API call, retried on what may pass: network errors, timeouts, 429 and 5xx.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, ProviderError> {
        let url = format!("{}{path}", self.base);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.key.expose());
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if !form.is_empty() {
                request = request.form(form);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    // Without the URL: it is ours, but errors should carry nothing but the cause.
                    last = err.without_url().to_string();
                    tracing::warn!(attempt, error = %last, path, "the payment provider did not answer");
                    continue;
                }
            };
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
            if status.is_success() {
                return serde_json::from_slice(&body)
                    .map_err(|e| ProviderError::Protocol(format!("{path}: {e}")));
            }
            let message = error_message(&body);
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                last = format!("{status}: {message}");
                tracing::warn!(
                    attempt,
                    status = status.as_u16(),
                    path,
                    "the payment provider failed; retrying"
                );
                continue;
            }
            return Err(ProviderError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
        Err(ProviderError::Unavailable(last))
    }
}

/// Exponential back-off with equal jitter: half the delay fixed, half random.
fn backoff(attempt: u32) -> Duration {
    let full = BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(8));
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        message: Option<String>,
    }
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error.message)
        .unwrap_or_else(|| "no error message".to_owned())
}

/// A PaymentIntent as the API (and a webhook event's `data.object`) shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntentObject {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentError {
    #[serde(default)]
    pub message: Option<String>,
}

impl From<PaymentIntentObject> for Intent {
    fn from(pi: PaymentIntentObject) -> Self {
        let failure_message = pi.last_payment_error.as_ref().map(|e| {
            e.message
                .clone()
                .unwrap_or_else(|| "the payment failed".to_owned())
        });
        let status = match pi.status.as_str() {
            "succeeded" => IntentStatus::Succeeded,
            "canceled" => IntentStatus::Cancelled,
            // Back to the start with an error: the last attempt failed.
            "requires_payment_method" if failure_message.is_some() => IntentStatus::Failed,
            _ => IntentStatus::Pending,
        };
        let booking_id = pi
            .metadata
            .as_ref()
            .and_then(|m| m.get("booking_id"))
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok());
        Intent {
            provider_ref: pi.id,
            client_secret: pi.client_secret,
            status,
            amount_cents: pi.amount,
            failure_message,
            booking_id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct RefundObject {
    id: String,
    #[serde(default)]
    status: Option<String>,
}

#[async_trait::async_trait]
impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn create_intent(&self, request: &IntentRequest) -> Result<Intent, ProviderError> {
        let form = [
            ("amount", request.amount_cents.to_string()),
            ("currency", request.currency.to_ascii_lowercase()),
            ("metadata[booking_id]", request.booking_id.to_string()),
        ];
        let pi: PaymentIntentObject = self
            .call(
                Method::POST,
                "/v1/payment_intents",
                &form,
                Some(&request.idempotency_key),
            )
            .await?;
        Ok(pi.into())
    }

    async fn retrieve(&self, provider_ref: &str) -> Result<Intent, ProviderError> {
        if !is_stripe_id(provider_ref) {
            return Err(ProviderError::Protocol(format!(
                "{provider_ref:?} is not a PaymentIntent id"
            )));
        }
        let pi: PaymentIntentObject = self
            .call(
                Method::GET,
                &format!("/v1/payment_intents/{provider_ref}"),
                &[],
                None,
            )
            .await?;
        Ok(pi.into())
    }

    async fn refund(
        &self,
        provider_ref: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<RefundMade, ProviderError> {
        let form = [
            ("payment_intent", provider_ref.to_owned()),
            ("amount", amount_cents.to_string()),
        ];
        let refund: RefundObject = self
            .call(Method::POST, "/v1/refunds", &form, Some(idempotency_key))
            .await?;
        match refund.status.as_deref() {
            Some("failed") | Some("canceled") => Err(ProviderError::Rejected {
                status: 200,
                message: format!(
                    "the refund {} {}",
                    refund.id,
                    refund.status.unwrap_or_default()
                ),
            }),
            _ => Ok(RefundMade {
                provider_ref: refund.id,
            }),
        }
    }
}

/// Whether `id` can be put in a URL path as a Stripe object id.
fn is_stripe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A webhook event, as Stripe posts it: `{id, type, created, data: {object}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// What an event means for a payment.
#[derive(Debug, Clone)]
pub enum EventEffect {
    Succeeded(Intent),
    Failed(Intent),
    /// An event type this service does not act on (it is acknowledged, and recorded once).
    Ignored,
}

impl Event {
    /// Reads an event from a webhook's raw body.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// What the event asks of a payment.
    pub fn effect(&self) -> Result<EventEffect, serde_json::Error> {
        let intent = || {
            serde_json::from_value::<PaymentIntentObject>(self.data.object.clone())
                .map(Intent::from)
        };
        Ok(match self.kind.as_str() {
            "payment_intent.succeeded" => EventEffect::Succeeded(intent()?),
            "payment_intent.payment_failed" => EventEffect::Failed(intent()?),
            _ => EventEffect::Ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use axum::{Router, http::HeaderMap, routing::post};

    use super::*;

    /// A server on loopback answering `/v1/payment_intents` with `failures` 503s first, recording
    /// the idempotency keys and authorisations it saw.
    async fn flaky(failures: usize) -> (String, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let app = Router::new().route(
            "/v1/payment_intents",
            post({
                let seen = seen.clone();
                move |headers: HeaderMap| async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    if let Ok(mut seen) = seen.lock() {
                        seen.push((header("idempotency-key"), header("authorization")));
                    }
                    if calls.fetch_add(1, Ordering::SeqCst) < failures {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            r#"{"error":{"message":"try later"}}"#.to_owned(),
                        )
                    } else {
                        (
                            axum::http::StatusCode::OK,
                            r#"{"id":"pi_1","status":"requires_payment_method","amount":1500,
                                "client_secret":"pi_1_secret_x","metadata":{"booking_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}}"#
                                .to_owned(),
                        )
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    fn request() -> IntentRequest {
        IntentRequest {
            booking_id: Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").expect("uuid"),
            amount_cents: 1500,
            currency: "EUR".to_owned(),
            idempotency_key: "checkout-1".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_create_is_retried_through_server_errors_with_one_idempotency_key() {
        let (base, seen) = flaky(2).await;
        let stripe = Stripe::new(&base, Secret::new("sk_test_123")).expect("client");
        let intent = stripe.create_intent(&request()).await.expect("created");
        assert_eq!(intent.provider_ref, "pi_1");
        assert_eq!(intent.status, IntentStatus::Pending);
        assert_eq!(intent.booking_id, Some(request().booking_id));
        let seen = seen.lock().expect("seen").clone();
        assert_eq!(seen.len(), 3);
        assert!(
            seen.iter()
                .all(|(key, auth)| key == "checkout-1" && auth == "Bearer sk_test_123")
        );
    }

    #[tokio::test]
    async fn a_provider_that_keeps_failing_is_unavailable_and_the_key_stays_secret() {
        let (base, _) = flaky(usize::MAX).await;
        let stripe = Stripe::new(&base, Secret::new("sk_test_hidden")).expect("client");
        let err = stripe.create_intent(&request()).await.expect_err("fails");
        assert!(err.is_transient(), "{err}");
        assert!(!err.to_string().contains("sk_test_hidden"));
        assert!(!format!("{stripe:?}").contains("sk_test_hidden"));
    }

    #[test]
    fn intent_statuses_map_to_what_the_service_acts_on() {
        let pi = |status: &str, error: bool| PaymentIntentObject {
            id: "pi_1".to_owned(),
            status: status.to_owned(),
            amount: 100,
            client_secret: Some("pi_1_secret".to_owned()),
            metadata: None,
            last_payment_error: error.then(|| PaymentError {
                message: Some("Your card was declined.".to_owned()),
            }),
        };
        assert_eq!(
            Intent::from(pi("succeeded", false)).status,
            IntentStatus::Succeeded
        );
        assert_eq!(
            Intent::from(pi("requires_payment_method", true)).status,
            IntentStatus::Failed
        );
        assert_eq!(
            Intent::from(pi("requires_payment_method", false)).status,
            IntentStatus::Pending
        );
        assert_eq!(
            Intent::from(pi("processing", false)).status,
            IntentStatus::Pending
        );
        assert_eq!(
            Intent::from(pi("canceled", false)).status,
            IntentStatus::Cancelled
        );
        assert!(!format!("{:?}", Intent::from(pi("succeeded", false))).contains("pi_1_secret"));
    }

    #[test]
    fn ids_that_cannot_be_a_path_segment_are_refused() {
        assert!(is_stripe_id("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        assert!(!is_stripe_id("../v1/charges"));
        assert!(!is_stripe_id(""));
    }
}
