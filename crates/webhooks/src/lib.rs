//! Club Pulse webhooks.
//!
//! # Layout
//!
//! - [`signature`]: the `t=<unix seconds>,v1=<hex HMAC-SHA256>` signature scheme, as Stripe signs
//!   its webhooks. The payment provider's webhooks are verified with it (`Stripe-Signature`), and the
//!   service signs its own outbound deliveries with it (`ClubPulse-Signature`).
//! - [`events`]: the outbound event types, and the webhook events an outbox event makes.
//! - [`target`]: which URLs and addresses a webhook may target (no private, loopback or link-local
//!   ones), and the resolver that enforces it at connect time.
//! - [`fanout`]: called by the outbox relay in its transaction: records one delivery per
//!   subscribed endpoint and event, and queues its job.
//! - [`delivery`]: the `webhook.deliver` job: signs, sends, records each attempt, retries through
//!   the job queue, and disables an endpoint that has been failing for too long.
//!
//! The endpoints' SQL is in `clubpulse_storage::webhooks`, their API in the HTTP crate.

pub mod delivery;
pub mod events;
pub mod fanout;
pub mod signature;
pub mod target;

/// A new endpoint secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}
