//! Club Pulse payment providers.
//!
//! The booking service owns the payment rules (what a payment may confirm, when money is given
//! back); this crate owns talking to whoever takes the money, behind one port.
//!
//! # Layout
//!
//! - [`provider`]: the port, [`PaymentProvider`], with the intents and refunds it deals in.
//! - [`onsite`]: [`OnSite`], where the club takes the money at the desk and staff record it.
//! - [`stripe`]: [`Stripe`], a Stripe-compatible HTTP client (idempotency keys on every create and
//!   refund, timeouts, retries with back-off on network errors and 5xx), and the webhook events it
//!   sends, [`stripe::Event`].

pub mod onsite;
pub mod provider;
pub mod stripe;

use std::sync::Arc;

use clubpulse_config::{PaymentProviderKind, PaymentsConfig};

pub use onsite::OnSite;
pub use provider::{
    Intent, IntentRequest, IntentStatus, PaymentProvider, ProviderError, RefundMade,
};
pub use stripe::Stripe;

/// The provider a deployment is configured with.
pub fn from_config(config: &PaymentsConfig) -> Result<Arc<dyn PaymentProvider>, ProviderError> {
    Ok(match config.provider {
        PaymentProviderKind::OnSite => Arc::new(OnSite),
        PaymentProviderKind::Stripe => Arc::new(Stripe::new(
            &config.stripe_api_url,
            config.stripe_secret_key.clone(),
        )?),
    })
}
