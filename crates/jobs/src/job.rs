//! What a job is: a kind, a JSON payload, when it may run, and optionally a unique key.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::JobError;

/// A typed job. Its serialized form is the payload; [`Job::KIND`] picks the handler.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct SendReceipt { booking_id: uuid::Uuid }
///
/// impl clubpulse_jobs::Job for SendReceipt {
///     const KIND: &'static str = "send_receipt";
///     // A second receipt for the same booking would be a nuisance.
///     fn unique_key(&self) -> Option<String> {
///         Some(format!("receipt:{}", self.booking_id))
///     }
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The name the job is stored and dispatched under. Renaming it strands queued jobs: keep it
    /// stable, and register the old name too during a transition.
    const KIND: &'static str;

    /// A key that at most one live (queued, scheduled or running) job may hold at a time, for jobs
    /// where a duplicate would do harm. `None` (the default) for jobs that may repeat.
    fn unique_key(&self) -> Option<String> {
        None
    }

    /// Attempts before the job is dead-lettered; `None` (the default) leaves it to the worker
    /// pool's [`WorkerOptions::max_attempts`](crate::WorkerOptions::max_attempts).
    fn max_attempts(&self) -> Option<u32> {
        None
    }
}

/// A job's identity: a UUIDv7 made by the enqueuing process, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// When a job becomes visible to workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunAt {
    /// At once.
    #[default]
    Now,
    /// Not before this instant (as the store's clock sees it).
    At(DateTime<Utc>),
    /// This long after the store receives the job, measured on the store's clock, so the
    /// enqueuing instance's clock does not matter.
    In(Duration),
}

impl From<DateTime<Utc>> for RunAt {
    fn from(at: DateTime<Utc>) -> Self {
        Self::At(at)
    }
}

impl From<Duration> for RunAt {
    fn from(delay: Duration) -> Self {
        Self::In(delay)
    }
}

/// An untyped job, for callers that build the kind and payload at run time (an admin tool, a
/// replay). [`JobSpec::from_job`] turns a typed job into one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub kind: String,
    pub payload: serde_json::Value,
    pub run_at: RunAt,
    /// See [`Job::unique_key`].
    pub unique_key: Option<String>,
    /// See [`Job::max_attempts`].
    pub max_attempts: Option<u32>,
}

impl JobSpec {
    /// A job of `kind` to run now, not unique, with the pool's default attempts.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            run_at: RunAt::Now,
            unique_key: None,
            max_attempts: None,
        }
    }

    /// The untyped form of `job`.
    pub fn from_job<J: Job>(job: &J) -> Result<Self, JobError> {
        Ok(Self {
            kind: J::KIND.to_owned(),
            payload: serde_json::to_value(job)?,
            run_at: RunAt::Now,
            unique_key: job.unique_key(),
            max_attempts: job.max_attempts(),
        })
    }
}

/// The answer to an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The new job's id, or the live job's when this was a duplicate.
    pub id: JobId,
    /// A live job already held the unique key, so nothing was enqueued.
    pub duplicate: bool,
}

/// Longest error message kept with a job; longer ones are cut (at a character boundary).
pub const MAX_ERROR_LEN: usize = 4096;

/// Why a handler did not finish its job. Any `std::error::Error` converts into one with `?`
/// (its message includes the chain of sources); [`JobFailure::new`] takes any message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    message: String,
    permanent: bool,
}

impl JobFailure {
    /// A failure worth retrying (a timeout, an unavailable service).
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: truncate(message.to_string()),
            permanent: false,
        }
    }

    /// A failure that no retry can fix (the booking no longer exists): the job goes straight to the
    /// dead-letter queue.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            permanent: true,
            ..Self::new(message)
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retries are pointless.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobFailure {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_converts_with_its_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let failure: JobFailure = Outer(std::io::Error::other("inner")).into();
        assert_eq!(failure.message(), "outer: inner");
        assert!(!failure.is_permanent());
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let failure = JobFailure::permanent("é".repeat(MAX_ERROR_LEN));
        assert!(failure.message().len() <= MAX_ERROR_LEN);
        assert!(failure.message().chars().all(|c| c == 'é'));
        assert!(failure.is_permanent());
    }

    #[test]
    fn a_job_id_round_trips_through_its_text() {
        let id = JobId::new();
        assert_eq!(id.to_string().parse::<JobId>().ok(), Some(id));
    }
}
