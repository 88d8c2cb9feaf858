//! Club Pulse webhooks.
//!
//! # Layout
//!
//! - [`signature`]: the `t=<unix seconds>,v1=<hex HMAC-SHA256>` signature scheme, as Stripe signs
//!   its webhooks. The payment provider's webhooks are verified with it (`Stripe-Signature`), and the
//!   service signs its own outbound deliveries with it (`ClubPulse-Signature`).

pub mod signature;
