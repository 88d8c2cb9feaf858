//! Single-use tokens in this process: one instance, no Redis. A restart forgets them, which only
//! means a member asks for a new reset link (or that a signature seen just before the restart
//! could be replayed within its window, on a single instance only).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use uuid::Uuid;

use super::{OneTimeTokens, TokenPurpose};
use crate::{StateError, TokenHash};

/// Tokens in a mutex-guarded map; expired ones are dropped whenever one is issued.
#[derive(Debug, Default)]
pub struct MemoryOneTimeTokens {
    tokens: Mutex<HashMap<(TokenPurpose, String), (Uuid, Instant)>>,
}

impl MemoryOneTimeTokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<(TokenPurpose, String), (Uuid, Instant)>> {
        // Every update is a single map operation, so a poisoned lock is simply taken over.
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl OneTimeTokens for MemoryOneTimeTokens {
    async fn issue(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        subject: Uuid,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let now = Instant::now();
        let mut tokens = self.lock();
        tokens.retain(|_, (_, expires)| *expires > now);
        tokens.insert((purpose, token.as_str().to_owned()), (subject, now + ttl));
        Ok(())
    }

    async fn take(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
    ) -> Result<Option<Uuid>, StateError> {
        let taken = self.lock().remove(&(purpose, token.as_str().to_owned()));
        Ok(taken.and_then(|(subject, expires)| (expires > Instant::now()).then_some(subject)))
    }

    async fn peek(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
    ) -> Result<Option<Uuid>, StateError> {
        let tokens = self.lock();
        let found = tokens.get(&(purpose, token.as_str().to_owned()));
        Ok(found.and_then(|(subject, expires)| (*expires > Instant::now()).then_some(*subject)))
    }

    async fn first_sighting(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let now = Instant::now();
        let mut tokens = self.lock();
        tokens.retain(|_, (_, expires)| *expires > now);
        let key = (purpose, token.as_str().to_owned());
        if tokens.contains_key(&key) {
            return Ok(false);
        }
        // A sighting has no subject; the nil id stands in its place.
        tokens.insert(key, (Uuid::nil(), now + ttl));
        Ok(true)
    }
}
