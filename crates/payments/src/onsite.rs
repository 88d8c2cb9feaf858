//! On-site payment: the club takes the money at the desk. Nothing is called anywhere; a checkout
//! records that the member will pay there, staff mark the booking paid, and a refund is handed back
//! at the desk and recorded.

use crate::provider::{
    Intent, IntentRequest, IntentStatus, PaymentProvider, ProviderError, RefundMade,
};

/// The on-site provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnSite;

#[async_trait::async_trait]
impl PaymentProvider for OnSite {
    fn name(&self) -> &'static str {
        "onsite"
    }

    async fn create_intent(&self, request: &IntentRequest) -> Result<Intent, ProviderError> {
        Ok(Intent {
            provider_ref: format!("onsite_{}", request.idempotency_key),
            client_secret: None,
            status: IntentStatus::Pending,
            amount_cents: request.amount_cents,
            failure_message: None,
            booking_id: Some(request.booking_id),
        })
    }

    /// On site, only staff settle a payment: it stays pending until they do.
    async fn retrieve(&self, provider_ref: &str) -> Result<Intent, ProviderError> {
        Ok(Intent {
            provider_ref: provider_ref.to_owned(),
            client_secret: None,
            status: IntentStatus::Pending,
            amount_cents: 0,
            failure_message: None,
            booking_id: None,
        })
    }

    async fn refund(
        &self,
        _provider_ref: &str,
        _amount_cents: i64,
        idempotency_key: &str,
    ) -> Result<RefundMade, ProviderError> {
        Ok(RefundMade {
            provider_ref: format!("onsite_refund_{idempotency_key}"),
        })
    }
}
