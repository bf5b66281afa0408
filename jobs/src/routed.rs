//! Several transports behind one: each queue goes to the transport a route table names
//! (say, order and invoice queues on SQS, scheduled and long jobs on Redis), the rest to a
//! fallback.

use std::sync::Arc;
use std::time::Duration;

use crate::{DeadJob, DeadSelector, Delivery, NewJob, QueueStats, Result, Transport};

/// Routes each queue to the transport that carries it.
pub struct Routed {
    routes: Vec<(String, Arc<dyn Transport>)>,
    fallback: Arc<dyn Transport>,
}

impl Routed {
    /// The queues named in `routes` on their transports, every other queue on `fallback`.
    pub fn new(routes: Vec<(String, Arc<dyn Transport>)>, fallback: Arc<dyn Transport>) -> Self {
        Self { routes, fallback }
    }

    fn route(&self, queue: &str) -> &Arc<dyn Transport> {
        self.routes.iter().find(|(name, _)| name == queue).map_or(&self.fallback, |(_, transport)| transport)
    }

    /// Every distinct transport behind this one, each once.
    fn transports(&self) -> Vec<&Arc<dyn Transport>> {
        let mut all: Vec<&Arc<dyn Transport>> = Vec::new();
        for transport in self.routes.iter().map(|(_, transport)| transport).chain([&self.fallback]) {
            if !all.iter().any(|seen| Arc::ptr_eq(seen, transport)) {
                all.push(transport);
            }
        }
        all
    }

    /// Splits `items` by the transport their queue is on.
    fn split<T>(&self, items: Vec<T>, queue: impl Fn(&T) -> &str) -> Vec<(&Arc<dyn Transport>, Vec<T>)> {
        let mut groups: Vec<(&Arc<dyn Transport>, Vec<T>)> = Vec::new();
        for item in items {
            let transport = self.route(queue(&item));
            match groups.iter_mut().find(|(seen, _)| Arc::ptr_eq(seen, transport)) {
                Some((_, group)) => group.push(item),
                None => groups.push((transport, vec![item])),
            }
        }
        groups
    }
}

#[async_trait::async_trait]
impl Transport for Routed {
    fn name(&self) -> &'static str {
        "routed"
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<()> {
        for (transport, jobs) in self.split(jobs, |job| job.queue.as_str()) {
            transport.enqueue(jobs).await?;
        }
        Ok(())
    }

    async fn claim(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        self.route(queue).claim(queue, worker, max, lease).await
    }

    async fn extend(&self, deliveries: &[Delivery], worker: &str, lease: Duration) -> Result<()> {
        for (transport, deliveries) in self.split(deliveries.to_vec(), |d| d.queue.as_str()) {
            transport.extend(&deliveries, worker, lease).await?;
        }
        Ok(())
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
        let mut released = 0;
        for transport in self.transports() {
            released += transport.release(worker).await?;
        }
        Ok(released)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.route(queue).stats(queue).await
    }

    fn tells_oldest_age(&self, queue: &str) -> bool {
        self.route(queue).tells_oldest_age(queue)
    }

    async fn promote_due(&self, queue: &str) -> Result<u64> {
        self.route(queue).promote_due(queue).await
    }

    fn lost_queues(&self) -> Vec<String> {
        self.transports().into_iter().flat_map(|transport| transport.lost_queues()).collect()
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
