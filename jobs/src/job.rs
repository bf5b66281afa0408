//! What a job is: a typed payload with a kind, a queue and a payload version, and what a
//! worker receives and answers.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A kind of background job: its payload type plus where it runs.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable name, e.g. `invoice.send`.
    const KIND: &'static str;
    /// The queue it goes to.
    const QUEUE: &'static str;
    /// Payload schema version. Raise it on incompatible changes and teach [`Job::decode`] the
    /// old shape, so payloads already queued still decode after a deploy.
    const VERSION: u16 = 1;

    /// Jobs with the same key on one queue are enqueued once.
    fn dedup_key(&self) -> Option<String> {
        None
    }

    /// Reads a payload written at `version`; the default accepts this version and older ones
    /// whose changes were additive (new fields with serde defaults).
    fn decode(version: u16, payload: serde_json::Value) -> Result<Self, JobError> {
        if version > Self::VERSION {
            return Err(JobError::permanent(format!(
                "{} payload version {version} is newer than this build understands ({})",
                Self::KIND,
                Self::VERSION
            )));
        }
        serde_json::from_value(payload)
            .map_err(|err| JobError::permanent(format!("{} payload does not decode: {err}", Self::KIND)))
    }
}

/// A job ready to be enqueued on any transport.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewJob {
    /// Target queue.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// Payload schema version.
    pub version: u16,
    /// The payload.
    pub payload: serde_json::Value,
    /// Deduplication key.
    pub dedup_key: Option<String>,
}

impl NewJob {
    /// Serialises a typed job.
    pub fn of<J: Job>(job: &J) -> serde_json::Result<Self> {
        Ok(Self {
            queue: J::QUEUE.to_owned(),
            kind: J::KIND.to_owned(),
            version: J::VERSION,
            payload: serde_json::to_value(job)?,
            dedup_key: job.dedup_key(),
        })
    }
}

/// The kind a transport gives an entry whose envelope it cannot read: the runtime
/// dead-letters it unrun, with an alert, instead of leaving it pending forever.
pub const UNDECODABLE: &str = "undecodable";

/// A job handed to a worker: the payload plus what the transport needs to acknowledge it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Transport-specific id (row id, stream entry id, SQS receipt handle).
    pub id: String,
    /// The queue it came from.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// Payload schema version.
    pub version: u16,
    /// The payload.
    pub payload: serde_json::Value,
    /// This delivery's number, 1 for the first.
    pub attempt: u32,
    /// When the job was first enqueued.
    pub enqueued_at: chrono::DateTime<chrono::Utc>,
}

impl Delivery {
    /// An entry of `queue` whose envelope could not be read; `raw` is its text, kept in the
    /// dead-letter queue for whoever investigates.
    pub fn undecodable(id: impl Into<String>, queue: &str, raw: String, attempt: u32) -> Self {
        Self {
            id: id.into(),
            queue: queue.to_owned(),
            kind: UNDECODABLE.to_owned(),
            version: 0,
            payload: serde_json::Value::String(raw),
            attempt: attempt.max(1),
            enqueued_at: crate::now(),
        }
    }
}

/// Why a handler did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a timeout, an unreachable service).
    #[error("{0}")]
    Retry(String),
    /// Will never work (a payload that cannot decode, a rejected address): dead-letter it now.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A failure worth retrying.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry(reason.into())
    }

    /// A failure not worth retrying.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent(reason.into())
    }
}

/// Infrastructure failures (a transport, a database) are worth another try.
impl From<anyhow::Error> for JobError {
    fn from(err: anyhow::Error) -> Self {
        Self::Retry(format!("{err:#}"))
    }
}

/// A database that failed or timed out may answer next time.
impl From<sea_orm::DbErr> for JobError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Retry(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }

    impl Job for Ping {
        const KIND: &'static str = "test.ping";
        const QUEUE: &'static str = "test";
        const VERSION: u16 = 2;
    }

    #[test]
    fn payloads_from_newer_builds_or_of_the_wrong_shape_fail_permanently() {
        assert!(matches!(Ping::decode(3, serde_json::json!({ "n": 1 })), Err(JobError::Permanent(_))));
        assert!(matches!(Ping::decode(1, serde_json::json!({ "n": "x" })), Err(JobError::Permanent(_))));
        assert_eq!(Ping::decode(1, serde_json::json!({ "n": 4 })).map(|p| p.n).ok(), Some(4));
    }
}
