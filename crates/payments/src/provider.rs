//! The payment port: create an intent to pay, ask how it stands, give money back.

use std::fmt;

use uuid::Uuid;

/// What to ask the member to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest {
    /// The booking it pays for (Stripe keeps it as the intent's `metadata[booking_id]`).
    pub booking_id: Uuid,
    pub amount_cents: i64,
    /// ISO 4217, any case.
    pub currency: String,
    /// The same key for every retry of one checkout, so the provider creates one intent.
    pub idempotency_key: String,
}

/// Where an intent stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    /// Waiting for the member (or staff, on site).
    Pending,
    Succeeded,
    /// The last attempt failed (a declined card); the member may try again.
    Failed,
    /// The intent was cancelled and can no longer succeed.
    Cancelled,
}

/// An intent to pay, as the provider reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct Intent {
    /// The provider's id (`pi_…`).
    pub provider_ref: String,
    /// What the member's browser confirms the payment with; `None` on site.
    pub client_secret: Option<String>,
    pub status: IntentStatus,
    pub amount_cents: i64,
    /// Why the last attempt failed, when it did.
    pub failure_message: Option<String>,
    /// The booking the intent was created for, from its metadata.
    pub booking_id: Option<Uuid>,
}

impl fmt::Debug for Intent {
    // The client secret lets anyone holding it confirm the payment: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intent")
            .field("provider_ref", &self.provider_ref)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("status", &self.status)
            .field("amount_cents", &self.amount_cents)
            .field("failure_message", &self.failure_message)
            .field("booking_id", &self.booking_id)
            .finish()
    }
}

/// A refund the provider made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundMade {
    /// The provider's id for it (`re_…`).
    pub provider_ref: String,
}

/// A provider call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached, timed out or failed on its side (5xx, 429), after the
    /// retries: the same call may work later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx): repeating it will not help.
    #[error("the payment provider refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The provider's answer could not be understood.
    #[error("the payment provider's answer is unreadable: {0}")]
    Protocol(String),
    /// The provider is misconfigured (a bad API URL).
    #[error("the payment provider is misconfigured: {0}")]
    Config(String),
}

impl ProviderError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Whoever takes the money. Implementations are cheap to share across tasks.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + fmt::Debug {
    /// The provider's name as stored with each payment (`onsite`, `stripe`).
    fn name(&self) -> &'static str;

    /// Starts a payment; the same idempotency key returns the same intent.
    async fn create_intent(&self, request: &IntentRequest) -> Result<Intent, ProviderError>;

    /// How an intent stands now (reconciliation asks this when a webhook may have been lost).
    async fn retrieve(&self, provider_ref: &str) -> Result<Intent, ProviderError>;

    /// Gives `amount_cents` of a succeeded intent back; the same idempotency key refunds once.
    async fn refund(
        &self,
        provider_ref: &str,
        amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<RefundMade, ProviderError>;
}
