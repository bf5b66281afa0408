//! Background jobs: what a job kind is (name, queue, payload version, retry policy, dedup),
//! how handlers are registered and dispatched, and the transports that carry jobs.
//!
//! Delivery is at least once; handlers must be idempotent. A handler answers success, retry
//! later, or fail permanently (straight to the dead-letter queue).

pub mod alerts;
pub mod embedded;
pub mod handlers;
pub mod redis;
pub mod relay;
pub mod routed;
pub mod schedule;
pub mod sqs;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{AppContext, Result};

/// The queue task events are published to by the outbox relay.
pub const EVENTS_QUEUE: &str = "events";

/// The queue of scheduled sweeps (deadline reminders, digests, archiving, pruning).
pub const MAINTENANCE_QUEUE: &str = "maintenance";

/// Every queue this build's handlers consume.
pub const QUEUES: &[&str] = &[EVENTS_QUEUE, crate::notify::email::EMAIL_QUEUE, MAINTENANCE_QUEUE];

fn redis_transport(app: &AppContext) -> anyhow::Result<redis::RedisQueue> {
    use secrecy::ExposeSecret;
    let Some(url) = &app.config.redis_url else {
        anyhow::bail!("TASKLANE_QUEUE={:?} needs TASKLANE_REDIS_URL", app.config.queue);
    };
    redis::RedisQueue::connect(url.expose_secret(), &app.config.redis_prefix)
}

/// The transport the configuration asks for.
pub async fn transport(app: &AppContext) -> anyhow::Result<Arc<dyn Transport>> {
    match app.config.queue {
        crate::config::QueueTransport::Embedded => Ok(Arc::new(embedded::SqlQueue::new(app.db.clone()))),
        crate::config::QueueTransport::Redis => Ok(Arc::new(redis_transport(app)?)),
        crate::config::QueueTransport::Sqs => {
            let sqs = sqs::SqsQueue::connect(&app.config.sqs_queue_prefix).await;
            Ok(Arc::new(routed::Routed::new(Arc::new(sqs), Arc::new(redis_transport(app)?))))
        }
    }
}

/// How often and how patiently a job is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Deliveries allowed in all (the first one included).
    pub max_attempts: u32,
    /// Delay before the second delivery; it doubles with each further one.
    pub base_delay: Duration,
    /// Longest delay between deliveries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(600) }
    }
}

impl RetryPolicy {
    /// The delay after failed delivery number `attempt` (1-based): exponential, capped, with
    /// jitter in its upper half so a burst of failures does not retry in lockstep.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// True when delivery number `attempt` was the last one allowed.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }
}

/// A kind of background job: its payload type plus where and how it runs.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable name, e.g. `task.event`.
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

    /// How it is retried.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Reads a payload written at `version`; the default accepts this version and older ones
    /// whose changes were additive (new fields with serde defaults).
    fn decode(version: u16, payload: serde_json::Value) -> std::result::Result<Self, JobError> {
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
    /// Deliveries allowed.
    pub max_attempts: u32,
}

impl NewJob {
    /// Serialises a typed job.
    pub fn of<J: Job>(job: &J) -> Result<Self> {
        Ok(Self {
            queue: J::QUEUE.to_owned(),
            kind: J::KIND.to_owned(),
            version: J::VERSION,
            payload: serde_json::to_value(job).map_err(anyhow::Error::from)?,
            dedup_key: job.dedup_key(),
            max_attempts: J::retry_policy().max_attempts,
        })
    }
}

/// A job handed to a worker: the payload plus what the transport needs to acknowledge it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Transport-specific id (row id, stream entry id, SQS message id).
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
    /// Deliveries allowed.
    pub max_attempts: u32,
    /// When the job was first enqueued.
    pub enqueued_at: chrono::DateTime<chrono::Utc>,
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

impl From<crate::Error> for JobError {
    fn from(err: crate::Error) -> Self {
        // Domain client errors are bugs in the job, not in the world: retrying will not help.
        match err {
            crate::Error::Client { .. } => Self::Permanent(err.to_string()),
            crate::Error::Internal(inner) => Self::Retry(format!("{inner:#}")),
        }
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(err: sea_orm::DbErr) -> Self {
        crate::Error::from(err).into()
    }
}

/// What a handler gets besides its payload.
#[derive(Clone)]
pub struct JobContext {
    /// Database, configuration and clients.
    pub app: AppContext,
    /// This delivery's number, 1 for the first.
    pub attempt: u32,
    /// Where follow-up jobs are enqueued.
    pub jobs: Arc<dyn Transport>,
}

type Handler = Arc<dyn Fn(JobContext, Delivery) -> BoxFuture<'static, std::result::Result<(), JobError>> + Send + Sync>;

/// Which handler runs each job kind, with that kind's retry policy.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, (Handler, RetryPolicy)>,
}

impl Registry {
    /// Registers `handler` for job kind `J`.
    pub fn register<J, F, Fut>(&mut self, handler: F) -> &mut Self
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<(), JobError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |ctx, delivery: Delivery| {
            let handler = handler.clone();
            Box::pin(async move {
                let job = J::decode(delivery.version, delivery.payload)?;
                handler(ctx, job).await
            })
        });
        self.handlers.insert(J::KIND, (erased, J::retry_policy()));
        self
    }

    /// Replaces the retry policy of an already registered kind (tests and tuning).
    pub fn set_retry_policy(&mut self, kind: &str, policy: RetryPolicy) -> &mut Self {
        if let Some((_, current)) = self.handlers.get_mut(kind) {
            *current = policy;
        }
        self
    }

    /// The retry policy of a kind (the default for unknown kinds).
    pub fn retry_policy(&self, kind: &str) -> RetryPolicy {
        self.handlers.get(kind).map(|(_, policy)| *policy).unwrap_or_default()
    }

    /// Runs the handler for `delivery`; an unknown kind fails permanently.
    pub async fn dispatch(&self, ctx: JobContext, delivery: Delivery) -> std::result::Result<(), JobError> {
        match self.handlers.get(delivery.kind.as_str()) {
            Some((handler, _)) => handler(ctx, delivery).await,
            None => Err(JobError::permanent(format!("no handler for job kind {}", delivery.kind))),
        }
    }
}

/// Depth and age of one queue, as `tasklane queues stats` shows them.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct QueueStats {
    /// Queue name.
    pub queue: String,
    /// Transport name.
    pub transport: &'static str,
    /// Due and waiting.
    pub ready: u64,
    /// Held by a worker.
    pub in_flight: u64,
    /// Waiting for a later run (retries).
    pub scheduled: u64,
    /// In the dead-letter queue.
    pub dead: u64,
    /// Age in seconds of the oldest waiting job.
    pub oldest_age_secs: Option<u64>,
}

/// A job in a dead-letter queue.
#[derive(Clone, Debug, Serialize)]
pub struct DeadJob {
    /// Transport-specific id.
    pub id: String,
    /// Queue.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// Deliveries made.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: Option<String>,
    /// The payload.
    pub payload: serde_json::Value,
    /// When it died.
    pub dead_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which dead jobs a replay or purge takes.
#[derive(Clone, Debug, Default)]
pub struct DeadSelector {
    /// Only these ids.
    pub ids: Vec<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// A transport: where jobs wait between enqueue and a worker finishing them.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Short name (`embedded`, `redis`, `sqs`).
    fn name(&self) -> &'static str;
    /// Enqueues jobs; a job whose dedup key is already queued is skipped.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<()>;
    /// True when the queue lives in the application database (the embedded transport).
    fn shares_database(&self) -> bool {
        false
    }
    /// Enqueues jobs as part of `txn` where the transport lives in the same database (so the
    /// outbox and the queue commit together); other transports enqueue straight away.
    async fn enqueue_within(&self, txn: &sea_orm::DatabaseTransaction, jobs: Vec<NewJob>) -> Result<()> {
        let _ = txn;
        self.enqueue(jobs).await
    }
    /// Takes up to `max` due jobs of `queue` for `worker`, leased for `lease`.
    async fn claim(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>>;
    /// Extends the lease on jobs `worker` is still running.
    async fn extend(&self, deliveries: &[Delivery], worker: &str, lease: Duration) -> Result<()>;
    /// The job succeeded: forget it.
    async fn complete(&self, delivery: &Delivery, worker: &str) -> Result<()>;
    /// The job failed: run it again after `delay`.
    async fn retry_later(&self, delivery: &Delivery, worker: &str, delay: Duration, error: &str) -> Result<()>;
    /// The job failed for good: move it to the dead-letter queue.
    async fn bury(&self, delivery: &Delivery, worker: &str, error: &str) -> Result<()>;
    /// Gives every job `worker` still holds back to the queue (graceful shutdown).
    async fn release(&self, worker: &str) -> Result<u64>;
    /// Depth and age of a queue.
    async fn stats(&self, queue: &str) -> Result<QueueStats>;
    /// Lists dead jobs.
    async fn dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<DeadJob>>;
    /// Puts the selected dead jobs back on their queue with fresh attempts; returns how many.
    async fn replay(&self, queue: &str, selector: &DeadSelector) -> Result<u64>;
    /// Deletes the selected dead jobs; returns how many.
    async fn purge(&self, queue: &str, selector: &DeadSelector) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy =
            RetryPolicy { max_attempts: 8, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(60) };
        for attempt in 1..=10 {
            let full = Duration::from_secs(2 * (1u64 << (attempt - 1))).min(Duration::from_secs(60));
            let delay = policy.delay_after(attempt);
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay:?}");
        }
        assert!(!policy.exhausted(7));
        assert!(policy.exhausted(8));
    }

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
