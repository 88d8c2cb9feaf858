//! The in-process session store: one instance, no Redis. Lost on restart, like a Redis without
//! persistence; members then log in again.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{NewSession, SessionRecord, SessionStore, SessionToken, TokenHash, after};
use crate::StateError;

#[derive(Debug, Default)]
struct Inner {
    by_token: HashMap<TokenHash, SessionRecord>,
    by_user: HashMap<Uuid, HashMap<Uuid, TokenHash>>,
}

impl Inner {
    fn remove(&mut self, token: &TokenHash) -> Option<SessionRecord> {
        let record = self.by_token.remove(token)?;
        if let Some(ids) = self.by_user.get_mut(&record.user_id) {
            ids.remove(&record.id);
            if ids.is_empty() {
                self.by_user.remove(&record.user_id);
            }
        }
        Some(record)
    }

    /// The live record for `token`, dropping it if it has expired.
    fn live(&mut self, token: &TokenHash, now: DateTime<Utc>) -> Option<&mut SessionRecord> {
        let expired = self
            .by_token
            .get(token)
            .is_some_and(|r| r.idle_expires_at <= now || r.absolute_expires_at <= now);
        if expired {
            self.remove(token);
        }
        self.by_token.get_mut(token)
    }
}

/// Sessions in a mutex-guarded map; the lock is never held across an await.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    inner: Mutex<Inner>,
}

impl MemorySessionStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than losing every session, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(
        &self,
        token: &SessionToken,
        session: NewSession,
    ) -> Result<SessionRecord, StateError> {
        let record = SessionRecord::start(token, session);
        let mut inner = self.lock();
        inner
            .by_user
            .entry(record.user_id)
            .or_default()
            .insert(record.id, record.token_hash.clone());
        inner
            .by_token
            .insert(record.token_hash.clone(), record.clone());
        Ok(record)
    }

    async fn touch(
        &self,
        token: &TokenHash,
        idle_timeout: Duration,
    ) -> Result<Option<SessionRecord>, StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        Ok(inner.live(token, now).map(|record| {
            record.last_seen_at = now;
            record.idle_expires_at = after(now, idle_timeout).min(record.absolute_expires_at);
            record.clone()
        }))
    }

    async fn list_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        let tokens: Vec<TokenHash> = inner
            .by_user
            .get(&user_id)
            .map(|ids| ids.values().cloned().collect())
            .unwrap_or_default();
        let mut sessions: Vec<SessionRecord> = tokens
            .iter()
            .filter_map(|t| inner.live(t, now).map(|r| r.clone()))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    async fn revoke(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        let token = inner
            .by_user
            .get(&user_id)
            .and_then(|ids| ids.get(&session_id))
            .cloned();
        let Some(token) = token else { return Ok(false) };
        let live = inner.live(&token, now).is_some();
        inner.remove(&token);
        Ok(live)
    }

    async fn revoke_token(&self, token: &TokenHash) -> Result<bool, StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        let live = inner.live(token, now).is_some();
        inner.remove(token);
        Ok(live)
    }

    async fn revoke_all(&self, user_id: Uuid) -> Result<u64, StateError> {
        let now = Utc::now();
        let mut inner = self.lock();
        let tokens: Vec<TokenHash> = inner
            .by_user
            .remove(&user_id)
            .map(|ids| ids.into_values().collect())
            .unwrap_or_default();
        let mut live = 0;
        for token in tokens {
            if inner
                .by_token
                .remove(&token)
                .is_some_and(|r| r.idle_expires_at > now && r.absolute_expires_at > now)
            {
                live += 1;
            }
        }
        Ok(live)
    }
}
