//! The SQS transport: long polling (20 s), batch receive (up to 10) and batched deletes with
//! failed entries retried, visibility-timeout extension while a job runs,
//! `ApproximateReceiveCount` as the attempt number, and a redrive policy to `<queue>-dlq` as
//! the safety net behind our own dead-lettering. Replay moves messages by receive → send →
//! delete, which works everywhere (the local emulator lacks `StartMessageMoveTask`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use serde::{Deserialize, Serialize};

use crate::transport::Sent;
use crate::{DeadJob, DeadSelector, Delivery, NewJob, QueueStats, Result, Transport};

/// SQS's longest visibility timeout and delay (12 hours).
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;

/// A job as carried in a message body.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Body {
    kind: String,
    version: u16,
    payload: serde_json::Value,
    enqueued_at_ms: i64,
    /// Present once dead: why, and after how many attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default)]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_at_ms: Option<i64>,
}

/// The SQS transport.
pub struct SqsQueue {
    client: Client,
    prefix: String,
    urls: tokio::sync::Mutex<HashMap<String, String>>,
    /// Receipt handles this replica holds, by queue, so shutdown can hand them back.
    held: Mutex<HashMap<String, String>>,
}

impl SqsQueue {
    /// A transport over `client`, with queue names `<prefix><queue>` and `<prefix><queue>-dlq`.
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            urls: tokio::sync::Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn name_of(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    async fn url(&self, name: &str) -> Result<String> {
        if let Some(url) = self.urls.lock().await.get(name) {
            return Ok(url.clone());
        }
        let url = self
            .client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .with_context(|| format!("SQS queue {name} not found; run `tasklane queues init`"))?;
        self.remember(name, url.queue_url()).await
    }

    /// Creates `<queue>` and `<queue>-dlq`, or updates them; safe to run again. The redrive
    /// policy moves a message to the DLQ once it was received `max_receives` times without
    /// being acknowledged (a job that crashes its worker every time never reaches our own
    /// dead-lettering), so it should equal the most attempts any job on the queue may get.
    pub async fn init_queue(&self, queue: &str, visibility: Duration, max_receives: u32) -> Result<(String, String)> {
        let dlq_name = self.dlq_name(queue);
        let dlq_url = self.create(&dlq_name).await?;
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .context("cannot read the DLQ's ARN")?;
        let dlq_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| anyhow!("SQS returned no ARN for {dlq_name}"))?;
        let url = self.create(&self.name_of(queue)).await?;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.max(1) });
        self.client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(QueueAttributeName::VisibilityTimeout, visibility.as_secs().to_string())
            .send()
            .await
            .context("cannot set the redrive policy")?;
        Ok((url, dlq_url))
    }

    async fn create(&self, name: &str) -> Result<String> {
        let url = self
            .client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .with_context(|| format!("cannot create SQS queue {name}"))?;
        self.remember(name, url.queue_url()).await
    }

    /// Caches the URL SQS answered for queue `name`.
    async fn remember(&self, name: &str, url: Option<&str>) -> Result<String> {
        let url = url.map(str::to_owned).ok_or_else(|| anyhow!("SQS returned no URL for {name}"))?;
        self.urls.lock().await.insert(name.to_owned(), url.clone());
        Ok(url)
    }

    async fn send_batch(&self, url: &str, bodies: Vec<String>) -> Result<()> {
        self.batched(Batch::Send, url, &bodies).await
    }

    /// Runs a batch call over `items` ten at a time, trying the entries SQS marks as failed
    /// again a few times.
    async fn batched(&self, batch: Batch, url: &str, items: &[String]) -> Result<()> {
        for chunk in items.chunks(10) {
            let mut pending: Vec<(String, String)> =
                chunk.iter().enumerate().map(|(i, item)| (i.to_string(), item.clone())).collect();
            for _ in 0..5 {
                let failed: Vec<String> = match batch {
                    Batch::Send => {
                        let entries = pending
                            .iter()
                            .map(|(id, body)| {
                                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                                    .id(id)
                                    .message_body(body)
                                    .build()
                            })
                            .collect::<std::result::Result<Vec<_>, _>>()?;
                        let sent =
                            self.client.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await;
                        sent?.failed().iter().map(|f| f.id().to_owned()).collect()
                    }
                    Batch::Delete => {
                        let entries = pending
                            .iter()
                            .map(|(id, receipt)| {
                                DeleteMessageBatchRequestEntry::builder().id(id).receipt_handle(receipt).build()
                            })
                            .collect::<std::result::Result<Vec<_>, _>>()?;
                        let deleted =
                            self.client.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await;
                        deleted?.failed().iter().map(|f| f.id().to_owned()).collect()
                    }
                };
                pending.retain(|(id, _)| failed.contains(id));
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(anyhow!("SQS failed {} message(s) of a {batch:?} batch after retries", pending.len()));
            }
        }
        Ok(())
    }

    fn delivery(queue: &str, message: &Message) -> Option<Delivery> {
        let receipt = message.receipt_handle()?;
        let receives = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1);
        let raw = message.body().unwrap_or_default();
        let Ok(body) = serde_json::from_str::<Body>(raw) else {
            return Some(Delivery::undecodable(receipt, queue, raw.to_owned(), receives));
        };
        Some(Delivery {
            id: receipt.to_owned(),
            queue: queue.to_owned(),
            kind: body.kind,
            version: body.version,
            payload: body.payload,
            attempt: body.attempts + receives,
            enqueued_at: chrono::DateTime::from_timestamp_millis(body.enqueued_at_ms).unwrap_or_else(crate::now),
        })
    }

    fn forget(&self, receipt: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(receipt);
        }
    }

    async fn delete(&self, queue_url: &str, receipts: &[String]) -> Result<()> {
        self.batched(Batch::Delete, queue_url, receipts).await
    }

    async fn set_visibility(&self, queue_url: &str, receipt: &str, seconds: u64) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds.min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await?;
        Ok(())
    }

    /// Walks the DLQ: every message is received (hidden for a while); the selected ones are
    /// listed, moved back to the queue or deleted, and every other one is made visible again.
    async fn walk_dead(&self, queue: &str, selector: &DeadSelector, action: DeadAction) -> Result<(u64, Vec<DeadJob>)> {
        let dlq = self.url(&self.dlq_name(queue)).await?;
        let main = self.url(&self.name_of(queue)).await?;
        let mut walk = DeadWalk::new(selector);
        while !walk.came_round {
            let messages = self.receive_dead(&dlq).await?;
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let Some(chosen) = walk.select(&message) else { continue };
                match (chosen, action) {
                    (Chosen::Kept(receipt), _) => walk.kept.push(receipt),
                    (Chosen::Taken { receipt, .. }, DeadAction::Purge) => self.delete(&dlq, &[receipt]).await?,
                    (Chosen::Taken { receipt, body, .. }, DeadAction::Replay) => {
                        let fresh = Body { error: None, attempts: 0, dead_at_ms: None, ..body };
                        self.send_batch(&main, vec![encode(&fresh)?]).await?;
                        self.delete(&dlq, &[receipt]).await?;
                    }
                    (Chosen::Taken { receipt, body, id }, DeadAction::List) => {
                        walk.listed.push(dead_job(queue, id, body));
                        walk.kept.push(receipt);
                    }
                }
            }
        }
        self.make_visible(&dlq, &walk.kept).await?;
        Ok((walk.taken, walk.listed))
    }

    /// The next batch of DLQ messages, hidden for a minute while the walk looks at them.
    async fn receive_dead(&self, dlq: &str) -> Result<Vec<Message>> {
        let received = self
            .client
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await?;
        Ok(received.messages.unwrap_or_default())
    }

    /// Makes messages looked at but kept visible again at once.
    async fn make_visible(&self, dlq: &str, receipts: &[String]) -> Result<()> {
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(0)
                        .build()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            self.client.change_message_visibility_batch().queue_url(dlq).set_entries(Some(entries)).send().await?;
        }
        Ok(())
    }

    fn dlq_name(&self, queue: &str) -> String {
        format!("{}-dlq", self.name_of(queue))
    }
}

/// What a walk over a DLQ has seen and chosen so far.
struct DeadWalk<'a> {
    selector: &'a DeadSelector,
    limit: u64,
    taken: u64,
    seen: HashSet<String>,
    /// A message came round a second time: the walk has seen the whole DLQ.
    came_round: bool,
    kept: Vec<String>,
    listed: Vec<DeadJob>,
}

/// One DLQ message, selected or not.
enum Chosen {
    /// Selected: acted on.
    Taken { id: String, receipt: String, body: Body },
    /// Not selected, unreadable or seen before: left where it is.
    Kept(String),
}

impl<'a> DeadWalk<'a> {
    fn new(selector: &'a DeadSelector) -> Self {
        Self {
            selector,
            limit: selector.limit.unwrap_or(u64::MAX),
            taken: 0,
            seen: HashSet::new(),
            came_round: false,
            kept: Vec::new(),
            listed: Vec::new(),
        }
    }

    /// Whether the walk takes `message`, counting it against the limit when it does.
    fn select(&mut self, message: &Message) -> Option<Chosen> {
        let (id, receipt) = (message.message_id()?, message.receipt_handle()?.to_owned());
        if !self.seen.insert(id.to_owned()) {
            self.came_round = true;
            return Some(Chosen::Kept(receipt));
        }
        let body: Option<Body> = message.body().and_then(|b| serde_json::from_str(b).ok());
        match body {
            Some(body) if self.taken < self.limit && self.selector.takes(id, &body.kind) => {
                self.taken += 1;
                Some(Chosen::Taken { id: id.to_owned(), receipt, body })
            }
            _ => Some(Chosen::Kept(receipt)),
        }
    }
}

fn dead_job(queue: &str, id: String, body: Body) -> DeadJob {
    DeadJob {
        id,
        queue: queue.to_owned(),
        kind: body.kind,
        attempts: body.attempts,
        last_error: body.error,
        payload: body.payload,
        dead_at: body.dead_at_ms.and_then(chrono::DateTime::from_timestamp_millis),
    }
}

/// Which batch call [`SqsQueue::batched`] makes.
#[derive(Clone, Copy, Debug)]
enum Batch {
    Send,
    Delete,
}

/// What [`SqsQueue::walk_dead`] does with the selected dead messages.
#[derive(Clone, Copy)]
enum DeadAction {
    List,
    Replay,
    Purge,
}

fn encode(body: &Body) -> Result<String> {
    Ok(serde_json::to_string(body)?)
}

#[async_trait::async_trait]
impl Transport for SqsQueue {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<()> {
        let sent = Sent::of(&jobs);
        let mut by_queue: HashMap<String, Vec<String>> = HashMap::new();
        let now = crate::now().timestamp_millis();
        for job in jobs {
            let body = Body {
                kind: job.kind,
                version: job.version,
                payload: job.payload,
                enqueued_at_ms: now,
                error: None,
                attempts: 0,
                dead_at_ms: None,
            };
            by_queue.entry(job.queue).or_default().push(encode(&body)?);
        }
        for (queue, bodies) in by_queue {
            let url = self.url(&self.name_of(&queue)).await?;
            self.send_batch(&url, bodies).await?;
        }
        sent.record();
        Ok(())
    }

    async fn claim(&self, queue: &str, _worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        let url = self.url(&self.name_of(queue)).await?;
        let received = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(20)
            .visibility_timeout(lease.as_secs().clamp(1, MAX_VISIBILITY_SECS) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await?;
        let deliveries: Vec<Delivery> = received.messages().iter().filter_map(|m| Self::delivery(queue, m)).collect();
        if let Ok(mut held) = self.held.lock() {
            for delivery in &deliveries {
                held.insert(delivery.id.clone(), queue.to_owned());
            }
        }
        Ok(deliveries)
    }

    async fn extend(&self, deliveries: &[Delivery], _worker: &str, lease: Duration) -> Result<()> {
        // Each job on its own: a receipt handle that fails (the message was deleted, or its
        // visibility ran out) must not keep the others from being extended.
        let extended = futures_util::future::join_all(deliveries.iter().map(|delivery| async move {
            let url = self.url(&self.name_of(&delivery.queue)).await?;
            self.set_visibility(&url, &delivery.id, lease.as_secs()).await
        }))
        .await;
        let mut failed = 0;
        for (delivery, outcome) in deliveries.iter().zip(extended) {
            if let Err(err) = outcome {
                failed += 1;
                tracing::warn!(queue = %delivery.queue, kind = %delivery.kind, attempt = delivery.attempt,
                    error = %format!("{err:#}"), "cannot extend a job's lease; it may be handed to another worker");
            }
        }
        if failed > 0 {
            return Err(anyhow!("{failed} of {} job leases were not extended", deliveries.len()));
        }
        Ok(())
    }

    async fn complete(&self, delivery: &Delivery, _worker: &str) -> Result<()> {
        let url = self.url(&self.name_of(&delivery.queue)).await?;
        self.delete(&url, std::slice::from_ref(&delivery.id)).await?;
        self.forget(&delivery.id);
        Ok(())
    }

    async fn retry_later(&self, delivery: &Delivery, _worker: &str, delay: Duration, _error: &str) -> Result<()> {
        let url = self.url(&self.name_of(&delivery.queue)).await?;
        self.set_visibility(&url, &delivery.id, delay.as_secs()).await?;
        self.forget(&delivery.id);
        Ok(())
    }

    async fn bury(&self, delivery: &Delivery, _worker: &str, error: &str) -> Result<()> {
        let dlq = self.url(&self.dlq_name(&delivery.queue)).await?;
        let body = Body {
            kind: delivery.kind.clone(),
            version: delivery.version,
            payload: delivery.payload.clone(),
            enqueued_at_ms: delivery.enqueued_at.timestamp_millis(),
            error: Some(error.to_owned()),
            attempts: delivery.attempt,
            dead_at_ms: Some(crate::now().timestamp_millis()),
        };
        self.send_batch(&dlq, vec![encode(&body)?]).await?;
        self.complete(delivery, "").await
    }

    async fn release(&self, _worker: &str) -> Result<u64> {
        let held: Vec<(String, String)> =
            self.held.lock().map(|h| h.iter().map(|(r, q)| (r.clone(), q.clone())).collect()).unwrap_or_default();
        // Each on its own: a handle SQS no longer honours (its visibility ran out and someone
        // else received it) is no reason to keep the others.
        let outcomes = futures_util::future::join_all(held.iter().map(|(receipt, queue)| async move {
            let url = self.url(&self.name_of(queue)).await?;
            self.set_visibility(&url, receipt, 0).await
        }))
        .await;
        let mut released = 0;
        for ((receipt, queue), outcome) in held.iter().zip(outcomes) {
            match outcome {
                Ok(()) => released += 1,
                Err(err) => {
                    tracing::debug!(%queue, error = %format!("{err:#}"), "a held job could not be handed back; its visibility runs out instead")
                }
            }
            self.forget(receipt);
        }
        Ok(released)
    }

    fn tells_oldest_age(&self, _queue: &str) -> bool {
        false
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let count = |attributes: &HashMap<QueueAttributeName, String>, name: &QueueAttributeName| {
            attributes.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        let mut figures = Vec::new();
        for name in [self.name_of(queue), self.dlq_name(queue)] {
            let url = self.url(&name).await?;
            let attributes = self
                .client
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await?;
            figures.push(attributes.attributes().cloned().unwrap_or_default());
        }
        let (main, dead) = (&figures[0], &figures[1]);
        Ok(QueueStats {
            queue: queue.to_owned(),
            transport: self.name(),
            ready: count(main, &QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(main, &QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            scheduled: count(main, &QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            dead: count(dead, &QueueAttributeName::ApproximateNumberOfMessages),
            oldest_age_secs: None,
        })
    }

    async fn dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<DeadJob>> {
        Ok(self.walk_dead(queue, selector, DeadAction::List).await?.1)
    }

    async fn replay(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        Ok(self.walk_dead(queue, selector, DeadAction::Replay).await?.0)
    }

    async fn purge(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        Ok(self.walk_dead(queue, selector, DeadAction::Purge).await?.0)
    }
}
