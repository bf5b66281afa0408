//! The Redis transport, on Redis Streams: one stream per queue read through a consumer group,
//! acknowledged with `XACK` + `XDEL` so finished jobs do not pile up; the pending-entries list
//! and `XAUTOCLAIM` hand a dead worker's jobs to another; a sorted set holds delayed retries,
//! promoted in bounded batches by a script; `<queue>:dead` is the dead-letter stream. Every
//! operation is O(1) or O(log n) in the backlog.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamRangeReply, StreamReadReply};
use redis::{AsyncCommands, Script, Value};
use serde::{Deserialize, Serialize};

use crate::transport::Sent;
use crate::{DeadJob, DeadSelector, Delivery, NewJob, QueueStats, Result, Transport};

const GROUP: &str = "workers";
/// Deduplication keys are remembered this long.
const DEDUP_TTL_SECS: u64 = 24 * 3600;
/// Delayed retries promoted per claim, at most.
const PROMOTE_BATCH: usize = 1000;

/// A job as stored in a stream entry, a delayed-set member or a dead entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    kind: String,
    version: u16,
    payload: serde_json::Value,
    /// Deliveries made before this entry was written (a retry is a new entry).
    attempts_before: u32,
    enqueued_at_ms: i64,
    /// Makes delayed-set members unique.
    #[serde(default)]
    uid: String,
}

impl Stored {
    fn from_delivery(delivery: &Delivery) -> Self {
        Self {
            kind: delivery.kind.clone(),
            version: delivery.version,
            payload: delivery.payload.clone(),
            attempts_before: delivery.attempt,
            enqueued_at_ms: delivery.enqueued_at.timestamp_millis(),
            uid: delivery.id.clone(),
        }
    }
}

fn encode(stored: &Stored) -> Result<String> {
    Ok(serde_json::to_string(stored)?)
}

fn decode(entry: &StreamId) -> Option<Stored> {
    let text: String = entry.get("job")?;
    serde_json::from_str(&text).ok()
}

fn now_ms() -> i64 {
    crate::now().timestamp_millis()
}

/// Acknowledges an entry only if `consumer` still owns it, then deletes it and, for a retry or
/// a dead job, writes it where it goes next — all in one atomic step.
const ACK: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[4] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
elseif ARGV[4] == 'dead' then
  redis.call('XADD', KEYS[3], '*', 'job', ARGV[6], 'error', ARGV[7], 'dead_at_ms', ARGV[5])
end
return 1
";

/// Moves due delayed retries (at most ARGV[2]) onto the stream.
const PROMOTE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
";

/// Adds jobs, skipping those whose deduplication key was seen recently.
const ENQUEUE: &str = r"
local added = 0
for i = 3, #ARGV, 2 do
  local key = ARGV[i]
  if key == '' or redis.call('SET', ARGV[1] .. key, '1', 'NX', 'EX', ARGV[2]) then
    redis.call('XADD', KEYS[1], '*', 'job', ARGV[i + 1])
    added = added + 1
  end
end
return added
";

/// Resets the idle time of the entries `consumer` still owns (lease extension).
const EXTEND: &str = r"
local kept = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending > 0 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
";

/// The Redis Streams transport.
pub struct RedisQueue {
    conn: ConnectionManager,
    prefix: String,
    ack: Script,
    promote: Script,
    enqueue: Script,
    extend: Script,
    groups: Mutex<HashSet<String>>,
    /// Queues whose consumer group vanished under us since [`Transport::lost_queues`] last asked.
    lost: Mutex<Vec<String>>,
    /// Per queue: where the next `XAUTOCLAIM` scan starts, and when it last ran.
    reclaim: Mutex<HashMap<String, (String, Instant)>>,
    client: redis::Client,
    config: redis::aio::ConnectionManagerConfig,
    /// Per queue and worker: a connection of its own for `XREADGROUP … BLOCK`, which would
    /// otherwise hold up every other command on the shared one.
    readers: tokio::sync::Mutex<HashMap<(String, String), ConnectionManager>>,
}

/// How long a claim waits on an empty stream for new entries.
const BLOCK_MS: u64 = 1000;

impl RedisQueue {
    /// Connects lazily (a Redis that is down at start-up is retried, not fatal) with
    /// reconnection, under key prefix `prefix`.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        // The URL may hold a password: the error names the setting, never the value.
        let client = redis::Client::open(url).context("the Redis URL does not parse")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .context("cannot set up the Redis connection")?;
        Ok(Self {
            conn,
            client,
            config,
            readers: tokio::sync::Mutex::new(HashMap::new()),
            prefix: prefix.to_owned(),
            ack: Script::new(ACK),
            promote: Script::new(PROMOTE),
            enqueue: Script::new(ENQUEUE),
            extend: Script::new(EXTEND),
            groups: Mutex::new(HashSet::new()),
            lost: Mutex::new(Vec::new()),
            reclaim: Mutex::new(HashMap::new()),
        })
    }

    fn stream(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    fn delayed(&self, queue: &str) -> String {
        format!("{}{queue}:delayed", self.prefix)
    }

    fn dead_stream(&self, queue: &str) -> String {
        format!("{}{queue}:dead", self.prefix)
    }

    async fn ensure_group(&self, queue: &str) -> Result<()> {
        if self.groups.lock().map(|g| g.contains(queue)).unwrap_or(false) {
            return Ok(());
        }
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream(queue))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match created {
            Ok(()) => {}
            Err(err) if err.to_string().contains("BUSYGROUP") => {}
            Err(err) => return Err(anyhow::Error::from(err).context("cannot create the consumer group")),
        }
        if let Ok(mut groups) = self.groups.lock() {
            groups.insert(queue.to_owned());
        }
        Ok(())
    }

    fn delivery(queue: &str, entry: &StreamId, delivered: u32) -> Option<Delivery> {
        let Some(stored) = decode(entry) else {
            let raw = format!("{:?}", entry.map);
            return Some(Delivery::undecodable(entry.id.clone(), queue, raw, delivered));
        };
        Some(Delivery {
            id: entry.id.clone(),
            queue: queue.to_owned(),
            kind: stored.kind,
            version: stored.version,
            payload: stored.payload,
            attempt: stored.attempts_before + delivered.max(1),
            enqueued_at: chrono::DateTime::from_timestamp_millis(stored.enqueued_at_ms).unwrap_or_else(crate::now),
        })
    }

    /// Takes over entries idle longer than the lease (their worker died), at most once per
    /// half lease per queue so a healthy queue pays nothing for it.
    async fn reclaim(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        let cursor = {
            let Ok(mut state) = self.reclaim.lock() else { return Ok(Vec::new()) };
            let entry = state.entry(queue.to_owned()).or_insert_with(|| ("0-0".to_owned(), Instant::now() - lease));
            if entry.1.elapsed() < lease / 2 {
                return Ok(Vec::new());
            }
            entry.1 = Instant::now();
            entry.0.clone()
        };
        let mut conn = self.conn.clone();
        let stream = self.stream(queue);
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(GROUP)
            .arg(worker)
            .arg(lease.as_millis() as u64)
            .arg(&cursor)
            .arg("COUNT")
            .arg(max)
            .query_async(&mut conn)
            .await?;
        if let Ok(mut state) = self.reclaim.lock() {
            // A full batch means more are waiting (a stopped worker's handed-back jobs, say):
            // the next claim looks again at once instead of half a lease later.
            let checked = if reply.claimed.len() >= max {
                Instant::now().checked_sub(lease).unwrap_or_else(Instant::now)
            } else {
                Instant::now()
            };
            state.insert(queue.to_owned(), (reply.next_stream_id.clone(), checked));
        }
        let mut deliveries = Vec::with_capacity(reply.claimed.len());
        for entry in &reply.claimed {
            let pending: StreamPendingCountReply = conn.xpending_count(&stream, GROUP, &entry.id, &entry.id, 1).await?;
            let delivered = pending.ids.first().map_or(1, |p| p.times_delivered as u32);
            if let Some(delivery) = Self::delivery(queue, entry, delivered) {
                deliveries.push(delivery);
            }
        }
        Ok(deliveries)
    }

    async fn acknowledge(
        &self,
        delivery: &Delivery,
        worker: &str,
        action: &str,
        score: i64,
        next: &str,
        error: &str,
    ) -> Result<()> {
        let queue = &delivery.queue;
        self.ack
            .key(self.stream(queue))
            .key(self.delayed(queue))
            .key(self.dead_stream(queue))
            .arg(GROUP)
            .arg(&delivery.id)
            .arg(worker)
            .arg(action)
            .arg(score)
            .arg(next)
            .arg(error)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Moves up to [`PROMOTE_BATCH`] due delayed jobs of `queue` into its stream.
    async fn promote_batch(&self, queue: &str) -> Result<u64> {
        let promoted = self
            .promote
            .key(self.delayed(queue))
            .key(self.stream(queue))
            .arg(now_ms())
            .arg(PROMOTE_BATCH)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(u64::try_from(promoted).unwrap_or(0))
    }

    /// One attempt at claiming (see [`Transport::claim`]).
    async fn claim_once(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        self.ensure_group(queue).await?;
        self.promote_batch(queue).await?;
        let mut deliveries = self.reclaim(queue, worker, max, lease).await?;
        if deliveries.len() < max {
            // Wait for new entries only when there is nothing else to hand out.
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP").arg(GROUP).arg(worker).arg("COUNT").arg(max - deliveries.len());
            let mut reader = if deliveries.is_empty() {
                read.arg("BLOCK").arg(BLOCK_MS);
                self.reader(queue, worker).await?
            } else {
                self.conn.clone()
            };
            let reply: Option<StreamReadReply> =
                read.arg("STREAMS").arg(self.stream(queue)).arg(">").query_async(&mut reader).await?;
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                deliveries.extend(key.ids.iter().filter_map(|entry| Self::delivery(queue, entry, 1)));
            }
        }
        Ok(deliveries)
    }

    async fn reader(&self, queue: &str, worker: &str) -> Result<ConnectionManager> {
        let mut readers = self.readers.lock().await;
        let key = (queue.to_owned(), worker.to_owned());
        if let Some(reader) = readers.get(&key) {
            return Ok(reader.clone());
        }
        let reader = ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            .context("cannot set up a Redis reader connection")?;
        readers.insert(key, reader.clone());
        Ok(reader)
    }

    /// The dead entries a selector takes, oldest first.
    async fn select_dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<(StreamId, Stored)>> {
        let mut conn = self.conn.clone();
        let dead = self.dead_stream(queue);
        let limit = selector.limit.map_or(usize::MAX, |l| l as usize);
        let mut found = Vec::new();
        if !selector.ids.is_empty() {
            for id in &selector.ids {
                let reply: StreamRangeReply = conn.xrange(&dead, id, id).await?;
                found.extend(reply.ids);
            }
        } else {
            let mut start = "-".to_owned();
            loop {
                let reply: StreamRangeReply = conn.xrange_count(&dead, &start, "+", 500).await?;
                let page = reply.ids.len();
                if let Some(last) = reply.ids.last() {
                    start = format!("({}", last.id);
                }
                found.extend(reply.ids);
                if page < 500 || found.len() >= limit && selector.kind.is_none() {
                    break;
                }
            }
        }
        Ok(found
            .into_iter()
            .filter_map(|entry| decode(&entry).map(|stored| (entry, stored)))
            .filter(|(_, stored)| selector.kind.as_deref().is_none_or(|kind| stored.kind == kind))
            .take(limit)
            .collect())
    }
}

/// Pending entries handed back per round trip when a consumer stops.
const RELEASE_PAGE: usize = 1_000;

#[async_trait::async_trait]
impl Transport for RedisQueue {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<()> {
        let sent = Sent::of(&jobs);
        let mut by_queue: HashMap<String, Vec<NewJob>> = HashMap::new();
        for job in jobs {
            by_queue.entry(job.queue.clone()).or_default().push(job);
        }
        let now = now_ms();
        for (queue, jobs) in by_queue {
            for chunk in jobs.chunks(500) {
                let mut invocation = self.enqueue.key(self.stream(&queue));
                invocation.arg(format!("{}{queue}:dedup:", self.prefix)).arg(DEDUP_TTL_SECS);
                for job in chunk {
                    let stored = Stored {
                        kind: job.kind.clone(),
                        version: job.version,
                        payload: job.payload.clone(),
                        attempts_before: 0,
                        enqueued_at_ms: now,
                        uid: String::new(),
                    };
                    invocation.arg(job.dedup_key.clone().unwrap_or_default()).arg(encode(&stored)?);
                }
                invocation.invoke_async::<i64>(&mut self.conn.clone()).await?;
            }
        }
        sent.record();
        Ok(())
    }

    async fn claim(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        match self.claim_once(queue, worker, max, lease).await {
            // A Redis that lost its data (restarted without persistence, failed over to an
            // empty replica) has no consumer group any more: every job it held is gone. Say
            // so, make the group again and carry on.
            Err(err) if format!("{err:#}").contains("NOGROUP") => {
                if let Ok(mut groups) = self.groups.lock() {
                    groups.remove(queue);
                }
                if let Ok(mut lost) = self.lost.lock() {
                    lost.push(queue.to_owned());
                }
                tracing::error!(%queue, "Redis lost this queue's jobs (its consumer group is gone)");
                self.claim_once(queue, worker, max, lease).await
            }
            other => other,
        }
    }

    async fn extend(&self, deliveries: &[Delivery], worker: &str, _lease: Duration) -> Result<()> {
        let mut by_queue: HashMap<&str, Vec<&str>> = HashMap::new();
        for delivery in deliveries {
            by_queue.entry(delivery.queue.as_str()).or_default().push(delivery.id.as_str());
        }
        for (queue, ids) in by_queue {
            let mut invocation = self.extend.key(self.stream(queue));
            invocation.arg(GROUP).arg(worker);
            for id in ids {
                invocation.arg(id);
            }
            invocation.invoke_async::<i64>(&mut self.conn.clone()).await?;
        }
        Ok(())
    }

    async fn complete(&self, delivery: &Delivery, worker: &str) -> Result<()> {
        self.acknowledge(delivery, worker, "done", 0, "", "").await
    }

    async fn retry_later(&self, delivery: &Delivery, worker: &str, delay: Duration, error: &str) -> Result<()> {
        let due = now_ms() + delay.as_millis() as i64;
        let next = encode(&Stored::from_delivery(delivery))?;
        self.acknowledge(delivery, worker, "retry", due, &next, error).await
    }

    async fn bury(&self, delivery: &Delivery, worker: &str, error: &str) -> Result<()> {
        let dead = encode(&Stored::from_delivery(delivery))?;
        self.acknowledge(delivery, worker, "dead", now_ms(), &dead, error).await
    }

    async fn release(&self, worker: &str) -> Result<u64> {
        let queues: Vec<String> = self.groups.lock().map(|g| g.iter().cloned().collect()).unwrap_or_default();
        let mut conn = self.conn.clone();
        let mut released = 0;
        for queue in queues {
            let stream = self.stream(&queue);
            // Page through everything the consumer holds, however much that is.
            let mut after = "-".to_owned();
            loop {
                let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg(&after)
                    .arg("+")
                    .arg(RELEASE_PAGE)
                    .arg(worker)
                    .query_async(&mut conn)
                    .await?;
                let Some(last) = pending.ids.last() else { break };
                after = format!("({}", last.id);
                // Parked under a placeholder consumer with a huge idle time, they are the first
                // thing any other worker's next reclaim picks up.
                let mut claim = redis::cmd("XCLAIM");
                claim.arg(&stream).arg(GROUP).arg("released").arg(0);
                for id in &pending.ids {
                    claim.arg(&id.id);
                }
                claim.arg("IDLE").arg(i64::from(i32::MAX)).arg("JUSTID");
                let _: Value = claim.query_async(&mut conn).await?;
                released += pending.ids.len() as u64;
                if pending.ids.len() < RELEASE_PAGE {
                    break;
                }
            }
            // Deleting a consumer drops what it still holds from the group's pending list, where
            // nobody would reclaim it: only an empty one goes.
            let held: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(&stream)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(1)
                .arg(worker)
                .query_async(&mut conn)
                .await?;
            if held.ids.is_empty() {
                let _: Value = redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg(worker)
                    .query_async(&mut conn)
                    .await?;
            } else {
                tracing::warn!(%queue, worker, "jobs arrived while releasing; the consumer stays so they can be reclaimed");
            }
        }
        Ok(released)
    }

    fn lost_queues(&self) -> Vec<String> {
        self.lost.lock().map(|mut lost| std::mem::take(&mut *lost)).unwrap_or_default()
    }

    async fn promote_due(&self, queue: &str) -> Result<u64> {
        let mut promoted = 0;
        loop {
            let batch = self.promote_batch(queue).await?;
            promoted += batch;
            if batch < PROMOTE_BATCH as u64 {
                return Ok(promoted);
            }
        }
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.ensure_group(queue).await?;
        let mut conn = self.conn.clone();
        let stream = self.stream(queue);
        let (length, scheduled, dead): (u64, u64, u64) = redis::pipe()
            .xlen(&stream)
            .zcard(self.delayed(queue))
            .xlen(self.dead_stream(queue))
            .query_async(&mut conn)
            .await?;
        let summary: Value = redis::cmd("XPENDING").arg(&stream).arg(GROUP).query_async(&mut conn).await?;
        let in_flight = match &summary {
            Value::Array(parts) => parts.first().and_then(|v| redis::from_redis_value_ref::<u64>(v).ok()).unwrap_or(0),
            _ => 0,
        };
        let oldest: StreamRangeReply = conn.xrange_count(&stream, "-", "+", 1).await?;
        let oldest_age_secs = oldest.ids.first().and_then(|entry| {
            let millis: i64 = entry.id.split('-').next()?.parse().ok()?;
            u64::try_from((now_ms() - millis) / 1000).ok()
        });
        Ok(QueueStats {
            queue: queue.to_owned(),
            transport: self.name(),
            ready: length.saturating_sub(in_flight),
            in_flight,
            scheduled,
            dead,
            oldest_age_secs,
        })
    }

    async fn dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<DeadJob>> {
        Ok(self
            .select_dead(queue, selector)
            .await?
            .into_iter()
            .map(|(entry, stored)| DeadJob {
                id: entry.id.clone(),
                queue: queue.to_owned(),
                kind: stored.kind,
                attempts: stored.attempts_before,
                last_error: entry.get("error"),
                payload: stored.payload,
                dead_at: entry.get::<i64>("dead_at_ms").and_then(chrono::DateTime::from_timestamp_millis),
            })
            .collect())
    }

    async fn replay(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        let selected = self.select_dead(queue, selector).await?;
        let mut conn = self.conn.clone();
        for chunk in selected.chunks(200) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (entry, stored) in chunk {
                let fresh = Stored { attempts_before: 0, uid: String::new(), ..stored.clone() };
                pipe.xadd(self.stream(queue), "*", &[("job", encode(&fresh)?)]).ignore();
                pipe.xdel(self.dead_stream(queue), &[&entry.id]).ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
        }
        Ok(selected.len() as u64)
    }

    async fn purge(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        let selected = self.select_dead(queue, selector).await?;
        let mut conn = self.conn.clone();
        for chunk in selected.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|(entry, _)| entry.id.as_str()).collect();
            let _: u64 = conn.xdel(self.dead_stream(queue), &ids).await?;
        }
        Ok(selected.len() as u64)
    }
}
