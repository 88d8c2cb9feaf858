//! Login sessions: opaque bearer tokens whose hash is the key of a server-side record.
//!
//! A token is 32 random bytes (256 bits), shown to the client once and never stored: the store keeps
//! its SHA-256 ([`TokenHash`]). A session ends when it is idle for longer than the idle timeout, when
//! its absolute lifetime runs out, or when it is revoked; a revoked session is gone from the store, so
//! the next lookup on any instance finds nothing.

mod memory;
mod redis;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use clubpulse_domain::Role;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

pub use self::{memory::MemorySessionStore, redis::RedisSessionStore};
use crate::StateError;

/// The secret a client presents (cookie or `Authorization: Bearer`). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// 256 bits from a CSPRNG (`rand`'s thread generator, ChaCha seeded and reseeded from the
    /// operating system), URL-safe base64 without padding.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token a client sent; any string is accepted, an unknown one simply matches nothing.
    pub fn from_client(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// SHA-256 of a token, hex: what the store is keyed by. Knowing it does not let anyone log in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a login creates.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: Uuid,
    pub role: Role,
    /// The client's `User-Agent`, cut to 200 characters, so members can tell their devices apart.
    pub user_agent: Option<String>,
    pub idle_timeout: std::time::Duration,
    pub absolute_timeout: std::time::Duration,
}

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The public id members use to end one session (`DELETE /auth/sessions/{id}`); not a secret.
    pub id: Uuid,
    pub token_hash: TokenHash,
    pub user_id: Uuid,
    pub role: Role,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When the session ends if it is not used before then.
    pub idle_expires_at: DateTime<Utc>,
    /// When the session ends whatever happens.
    pub absolute_expires_at: DateTime<Utc>,
}

/// Where sessions live. Every method is one logical operation; implementations keep revocation
/// immediate: once `revoke*` returns, `touch` on any instance finds nothing.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session for `token` (its hash only).
    async fn create(
        &self,
        token: &SessionToken,
        session: NewSession,
    ) -> Result<SessionRecord, StateError>;

    /// Finds the live session for a token hash and marks it used, extending its idle deadline (never
    /// past the absolute one). `None` when unknown, expired or revoked.
    async fn touch(
        &self,
        token: &TokenHash,
        idle_timeout: std::time::Duration,
    ) -> Result<Option<SessionRecord>, StateError>;

    /// A user's live sessions, newest first.
    async fn list_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StateError>;

    /// Ends one session of `user_id` by its public id; `false` when there is no such live session of
    /// that user (another user's session id is treated as unknown).
    async fn revoke(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StateError>;

    /// Ends the session a token belongs to (logout); `false` when it was not live.
    async fn revoke_token(&self, token: &TokenHash) -> Result<bool, StateError>;

    /// Ends every session of a user; returns how many were live.
    async fn revoke_all(&self, user_id: Uuid) -> Result<u64, StateError>;
}

impl SessionRecord {
    /// The record of a session starting now, to the millisecond (what Redis keeps), with both
    /// deadlines computed from `session`'s timeouts.
    pub(crate) fn start(token: &SessionToken, session: NewSession) -> Self {
        let now = Utc::now();
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let absolute = after(now, session.absolute_timeout);
        Self {
            id: Uuid::new_v4(),
            token_hash: token.hash(),
            user_id: session.user_id,
            role: session.role,
            user_agent: trim_user_agent(session.user_agent),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: after(now, session.idle_timeout).min(absolute),
            absolute_expires_at: absolute,
        }
    }
}

/// `now + d`, saturating instead of overflowing on absurd durations.
pub(crate) fn after(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Cuts a `User-Agent` to what is worth keeping.
fn trim_user_agent(ua: Option<String>) -> Option<String> {
    ua.map(|ua| {
        ua.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    })
    .filter(|ua| !ua.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_consistently() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43, "32 bytes in unpadded base64");
        assert_eq!(a.hash(), SessionToken::from_client(a.expose()).hash());
        assert_eq!(a.hash().as_str().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
