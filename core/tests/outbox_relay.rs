//! The outbox relay against a real database (SQLite, or MariaDB with
//! `TASKLANE_TEST_MYSQL_URL`): a dead queue loses nothing and two relays publish each event once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasklane_core::events::TaskEventJob;
use tasklane_core::events::relay::publish_batch;
use tasklane_core::{AppContext, tasks};
use tasklane_jobs::embedded::SqlQueue;
use tasklane_jobs::{DeadJob, DeadSelector, Delivery, Job, NewJob, QueueStats, Transport};
use tasklane_testkit::fresh_context;

/// Counts what reaches the queue per event, and can be switched off like a dead broker.
struct Recording {
    inner: SqlQueue,
    up: Mutex<bool>,
    published: Mutex<HashMap<i64, u32>>,
}

type Res<T> = tasklane_jobs::Result<T>;

impl Recording {
    fn record(&self, jobs: &[NewJob]) -> Res<()> {
        if !*self.up.lock().unwrap() {
            return Err(anyhow::anyhow!("connection refused"));
        }
        for job in jobs {
            let event = TaskEventJob::decode(job.version, job.payload.clone()).unwrap();
            *self.published.lock().unwrap().entry(event.event_id).or_default() += 1;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Transport for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn shares_database(&self) -> bool {
        true
    }
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Res<()> {
        self.record(&jobs)?;
        self.inner.enqueue(jobs).await
    }
    async fn enqueue_within(&self, txn: &sea_orm::DatabaseTransaction, jobs: Vec<NewJob>) -> Res<()> {
        self.record(&jobs)?;
        self.inner.enqueue_within(txn, jobs).await
    }
    async fn claim(&self, q: &str, w: &str, m: usize, l: Duration) -> Res<Vec<Delivery>> {
        self.inner.claim(q, w, m, l).await
    }
    async fn extend(&self, d: &[Delivery], w: &str, l: Duration) -> Res<()> {
        self.inner.extend(d, w, l).await
    }
    async fn complete(&self, d: &Delivery, w: &str) -> Res<()> {
        self.inner.complete(d, w).await
    }
    async fn retry_later(&self, d: &Delivery, w: &str, t: Duration, e: &str) -> Res<()> {
        self.inner.retry_later(d, w, t, e).await
    }
    async fn bury(&self, d: &Delivery, w: &str, e: &str) -> Res<()> {
        self.inner.bury(d, w, e).await
    }
    async fn release(&self, w: &str) -> Res<u64> {
        self.inner.release(w).await
    }
    async fn stats(&self, q: &str) -> Res<QueueStats> {
        self.inner.stats(q).await
    }
    async fn dead(&self, q: &str, s: &DeadSelector) -> Res<Vec<DeadJob>> {
        self.inner.dead(q, s).await
    }
    async fn replay(&self, q: &str, s: &DeadSelector) -> Res<u64> {
        self.inner.replay(q, s).await
    }
    async fn purge(&self, q: &str, s: &DeadSelector) -> Res<u64> {
        self.inner.purge(q, s).await
    }
}

async fn write_tasks(ctx: &AppContext, count: usize) {
    let who = tasklane_testkit::member(ctx, "relay@example.com").await;
    for i in 0..count {
        let input = serde_json::from_value(serde_json::json!({ "name": format!("task {i}") })).unwrap();
        let task = tasks::create(ctx, &who, input).await.unwrap();
        let change = serde_json::from_value(serde_json::json!({ "status": "done" })).unwrap();
        tasks::update(ctx, &who, task.id, change, None).await.unwrap();
    }
}

#[tokio::test]
async fn the_relay_survives_a_dead_queue_and_two_relays_publish_each_event_once() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let transport = Arc::new(Recording {
        inner: SqlQueue::new(ctx.db.clone()),
        up: Mutex::new(false),
        published: Mutex::new(HashMap::new()),
    });
    write_tasks(&ctx, 30).await;
    // The queue is down: writes were accepted, nothing is lost, nothing is marked published.
    assert!(publish_batch(&ctx, transport.as_ref(), 10).await.is_err());
    assert!(transport.published.lock().unwrap().is_empty());

    *transport.up.lock().unwrap() = true;
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let (ctx, transport) = (ctx.clone(), transport.clone());
            tokio::spawn(async move { while publish_batch(&ctx, transport.as_ref(), 7).await.unwrap() > 0 {} })
        })
        .collect();
    for relay in relays {
        relay.await.unwrap();
    }
    let published = transport.published.lock().unwrap().clone();
    assert_eq!(published.len(), 60, "every event (created + status_changed per task) went out");
    assert!(published.values().all(|&n| n == 1), "an event was published twice: {published:?}");
    assert_eq!(transport.stats("events").await.unwrap().ready, 60);
    assert_eq!(publish_batch(&ctx, transport.as_ref(), 10).await.unwrap(), 0);
}
