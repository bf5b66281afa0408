//! The transport port: where jobs wait between enqueue and a worker finishing them, and the
//! dead-letter queue an operator inspects, replays and purges.

use std::time::Duration;

use serde::Serialize;

use crate::{Delivery, NewJob, Result};

/// Depth and age of one queue, as an operator's `queues stats` shows them.
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

impl DeadSelector {
    /// True when a dead job with this id and kind is selected (the limit aside).
    pub fn takes(&self, id: &str, kind: &str) -> bool {
        (self.ids.is_empty() || self.ids.iter().any(|wanted| wanted == id))
            && self.kind.as_deref().is_none_or(|wanted| wanted == kind)
    }
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
    /// Enqueues jobs as part of `txn` where the transport lives in the same database (so an
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
    /// False where [`QueueStats::oldest_age_secs`] is never known for `queue` (SQS does not
    /// tell it), so that nobody reads "no age" as "nothing waits".
    fn tells_oldest_age(&self, queue: &str) -> bool {
        let _ = queue;
        true
    }
    /// Lists dead jobs.
    async fn dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<DeadJob>>;
    /// Puts the selected dead jobs back on their queue with fresh attempts; returns how many.
    async fn replay(&self, queue: &str, selector: &DeadSelector) -> Result<u64>;
    /// Deletes the selected dead jobs; returns how many.
    async fn purge(&self, queue: &str, selector: &DeadSelector) -> Result<u64>;
    /// Moves `queue`'s jobs whose retry delay is over into the queue proper, where consumers
    /// and autoscalers watching it see them; returns how many. Claiming does this too, so it
    /// matters for a queue nobody consumes at the moment (scaled to zero). Transports that keep
    /// delayed jobs in the queue itself have nothing to move.
    async fn promote_due(&self, queue: &str) -> Result<u64> {
        let _ = queue;
        Ok(0)
    }
    /// The queues found to have lost their jobs since the last call (a Redis restarted
    /// without persistence); the application re-enqueues what it can rebuild. Transports that
    /// cannot lose jobs report none.
    fn lost_queues(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Jobs handed to a transport, tallied by queue and kind, counted once the transport took them.
pub(crate) struct Sent(std::collections::HashMap<(String, String), u64>);

impl Sent {
    /// The tally of `jobs`.
    pub(crate) fn of(jobs: &[NewJob]) -> Self {
        let mut tally = std::collections::HashMap::new();
        for job in jobs {
            *tally.entry((job.queue.clone(), job.kind.clone())).or_insert(0) += 1;
        }
        Self(tally)
    }

    /// Adds the tally to `tasklane_jobs_enqueued_total`.
    pub(crate) fn record(self) {
        for ((queue, kind), count) in self.0 {
            metrics::counter!("tasklane_jobs_enqueued_total", "queue" => queue, "kind" => kind).increment(count);
        }
    }
}
