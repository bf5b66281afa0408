//! Recurring jobs from a table the application gives. Every worker replica may run this
//! scheduler: each run is enqueued with a deduplication key naming its time slot (the job's
//! [`crate::Job::dedup_key`] should name the slot it is given), so replicas enqueue it once
//! between them, and the jobs are idempotent should a transport's deduplication let a second
//! one through.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{NewJob, Transport};

/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(1);

/// One time slot of a recurring job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The slot's number: whole periods since the Unix epoch.
    pub index: i64,
    /// When the scheduler noticed the slot had begun.
    pub now: DateTime<Utc>,
}

type Make = Box<dyn Fn(Slot) -> Option<serde_json::Result<NewJob>> + Send + Sync>;

/// A job enqueued once per period.
pub struct Recurring {
    /// What it is, for logs.
    pub name: &'static str,
    /// Its period.
    pub every: Duration,
    make: Make,
}

impl Recurring {
    /// A job made by `make` at the start of every `every` (at least a second); `make` may
    /// answer `None` to skip a slot (a daily job looking at each hour, say).
    pub fn new(
        name: &'static str,
        every: Duration,
        make: impl Fn(Slot) -> Option<serde_json::Result<NewJob>> + Send + Sync + 'static,
    ) -> Self {
        Self { name, every: every.max(Duration::from_secs(1)), make: Box::new(make) }
    }

    fn slot_at(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.every.as_secs() as i64)
    }
}

/// The jobs due in the slots starting at `now` that were not enqueued yet (`last` holds each
/// schedule's last slot).
fn due(table: &[Recurring], now: DateTime<Utc>, last: &mut [i64]) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    for (schedule, last) in table.iter().zip(last.iter_mut()) {
        let index = schedule.slot_at(now);
        if index == *last {
            continue;
        }
        *last = index;
        match (schedule.make)(Slot { index, now }) {
            Some(Ok(job)) => jobs.push(job),
            Some(Err(err)) => tracing::error!(job = schedule.name, error = %err, "cannot build a scheduled job"),
            None => {}
        }
    }
    jobs
}

/// Enqueues the recurring jobs of `table` until `shutdown` resolves.
pub async fn run(
    table: Vec<Recurring>,
    transport: Arc<dyn Transport>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last = vec![i64::MIN; table.len()];
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let jobs = due(&table, crate::now(), &mut last);
        if jobs.is_empty() {
            continue;
        }
        if let Err(err) = transport.enqueue(jobs).await {
            // Forget the slots so the next tick tries again.
            last.fill(i64::MIN);
            tracing::warn!(error = %err, "cannot enqueue scheduled jobs; will retry");
        }
    }
}

/// Every `every`, moves due retries of `queues` (those no worker of this process consumes)
/// into the queues proper until `shutdown` resolves (see [`Transport::promote_due`]): a queue
/// scaled to zero would otherwise keep its retries where an autoscaler watching it cannot
/// see them, and never wake. With no such queue it returns at once.
pub async fn promote_unconsumed(
    queues: Vec<String>,
    transport: Arc<dyn Transport>,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if queues.is_empty() {
        return;
    }
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        for queue in &queues {
            match transport.promote_due(queue).await {
                Ok(0) => {}
                Ok(promoted) => tracing::debug!(queue, promoted, "due retries moved into the queue"),
                Err(err) => tracing::warn!(queue, error = %err, "cannot move due retries into the queue; will retry"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn job(kind: &str, slot: Slot) -> Option<serde_json::Result<NewJob>> {
        Some(Ok(NewJob {
            queue: "q".into(),
            kind: kind.into(),
            version: 1,
            payload: serde_json::json!({ "slot": slot.index }),
            dedup_key: Some(format!("{kind}:{}", slot.index)),
        }))
    }

    #[test]
    fn each_slot_is_enqueued_once_and_a_job_may_skip_slots() {
        let table = vec![
            Recurring::new("often", Duration::from_secs(2), |slot| job("often", slot)),
            Recurring::new("minutely", Duration::from_secs(60), |slot| job("minutely", slot)),
            Recurring::new("at eight", Duration::from_secs(3600), |slot| {
                (slot.now.hour() == 8).then(|| job("at eight", slot)).flatten()
            }),
        ];
        let mut last = vec![i64::MIN; table.len()];
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let kinds = |jobs: Vec<NewJob>| jobs.into_iter().map(|job| job.kind).collect::<Vec<_>>();
        assert_eq!(kinds(due(&table, at("2026-11-25T07:59:59Z"), &mut last)), ["often", "minutely"]);
        assert!(due(&table, at("2026-11-25T07:59:59.5Z"), &mut last).is_empty());
        assert_eq!(kinds(due(&table, at("2026-11-25T08:00:00Z"), &mut last)), ["often", "minutely", "at eight"]);
        let again = due(&table, at("2026-11-25T08:00:02Z"), &mut last);
        assert_eq!(again[0].dedup_key.as_deref(), Some("often:897796801"));
    }
}
