//! `TASKLANE_QUEUE=sqs`: events and notifications ride SQS, scheduled and long jobs (reports,
//! archiving) ride Redis. This transport sends each queue to the one that carries it.

use std::sync::Arc;
use std::time::Duration;

use super::{DeadJob, DeadSelector, Delivery, NewJob, QueueStats, Transport};
use crate::Result;

/// Queues carried by SQS in `sqs` mode; every other queue is on Redis.
pub const SQS_QUEUES: &[&str] = &[super::EVENTS_QUEUE, crate::notify::email::EMAIL_QUEUE];

/// Routes each queue to SQS or Redis.
pub struct Routed {
    sqs: Arc<dyn Transport>,
    redis: Arc<dyn Transport>,
}

impl Routed {
    /// Events and notifications on `sqs`, the rest on `redis`.
    pub fn new(sqs: Arc<dyn Transport>, redis: Arc<dyn Transport>) -> Self {
        Self { sqs, redis }
    }

    fn route(&self, queue: &str) -> &dyn Transport {
        if SQS_QUEUES.contains(&queue) { self.sqs.as_ref() } else { self.redis.as_ref() }
    }
}

#[async_trait::async_trait]
impl Transport for Routed {
    fn name(&self) -> &'static str {
        "sqs+redis"
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<()> {
        let (to_sqs, to_redis): (Vec<NewJob>, Vec<NewJob>) =
            jobs.into_iter().partition(|job| SQS_QUEUES.contains(&job.queue.as_str()));
        if !to_sqs.is_empty() {
            self.sqs.enqueue(to_sqs).await?;
        }
        if !to_redis.is_empty() {
            self.redis.enqueue(to_redis).await?;
        }
        Ok(())
    }

    async fn claim(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        self.route(queue).claim(queue, worker, max, lease).await
    }

    async fn extend(&self, deliveries: &[Delivery], worker: &str, lease: Duration) -> Result<()> {
        let (on_sqs, on_redis): (Vec<Delivery>, Vec<Delivery>) =
            deliveries.iter().cloned().partition(|d| SQS_QUEUES.contains(&d.queue.as_str()));
        self.sqs.extend(&on_sqs, worker, lease).await?;
        self.redis.extend(&on_redis, worker, lease).await
    }

    async fn complete(&self, delivery: &Delivery, worker: &str) -> Result<()> {
        self.route(&delivery.queue).complete(delivery, worker).await
    }

    async fn retry_later(&self, delivery: &Delivery, worker: &str, delay: Duration, error: &str) -> Result<()> {
        self.route(&delivery.queue).retry_later(delivery, worker, delay, error).await
    }

    async fn bury(&self, delivery: &Delivery, worker: &str, error: &str) -> Result<()> {
        self.route(&delivery.queue).bury(delivery, worker, error).await
    }

    async fn release(&self, worker: &str) -> Result<u64> {
        Ok(self.sqs.release(worker).await? + self.redis.release(worker).await?)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.route(queue).stats(queue).await
    }

    async fn dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<DeadJob>> {
        self.route(queue).dead(queue, selector).await
    }

    async fn replay(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        self.route(queue).replay(queue, selector).await
    }

    async fn purge(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        self.route(queue).purge(queue, selector).await
    }
}
