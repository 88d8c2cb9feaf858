//! Single-use tokens with a time to live (password-reset links): issued for one account, taken at
//! most once, gone by themselves at their expiry.
//!
//! Only the token's hash is stored (the same SHA-256 as session tokens), so the store never holds
//! anything that could be mailed again.
//!
//! The same store remembers what may be *seen* only once for a while ([`OneTimeTokens::first_sighting`],
//! a `SET NX` with a time to live): the nonces of signed API requests, so a replayed signature is
//! refused for as long as its timestamp would be accepted.
//!
//! And it remembers, for a while, who wrote recently ([`TokenPurpose::RecentWrite`], read with
//! [`OneTimeTokens::peek`]), so a member's reads go to the primary database until the read replica
//! has their write, on whichever instance they land.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use self::{memory::MemoryOneTimeTokens, redis::RedisOneTimeTokens};
use crate::{StateError, TokenHash};

/// What a token is for; a token issued for one purpose is never accepted for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    PasswordReset,
    /// A signed API request's signature, remembered so it is accepted once.
    SignatureNonce,
    /// A user who wrote recently; issued again on every write, so it lasts from the latest one.
    RecentWrite,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password-reset",
            Self::SignatureNonce => "signature-nonce",
            Self::RecentWrite => "recent-write",
        }
    }
}

/// Where single-use tokens live.
#[async_trait]
pub trait OneTimeTokens: Send + Sync + 'static {
    /// Remembers that `token` stands for `subject` for `ttl`.
    async fn issue(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        subject: Uuid,
        ttl: Duration,
    ) -> Result<(), StateError>;

    /// The subject of `token`, exactly once: a second take, a take after the expiry or a take of an
    /// unknown token is `None`. Concurrent takes of one token give it to one caller only.
    async fn take(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
    ) -> Result<Option<Uuid>, StateError>;

    /// The subject of `token` without taking it: `None` once expired or taken, or if never issued.
    async fn peek(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
    ) -> Result<Option<Uuid>, StateError>;

    /// Remembers `token` for `ttl` if it is not remembered yet: `true` the first time, `false`
    /// while an earlier sighting is remembered. Concurrent sightings of one token give `true` to
    /// one caller only; after `ttl` the token counts as new again.
    async fn first_sighting(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        ttl: Duration,
    ) -> Result<bool, StateError>;
}
