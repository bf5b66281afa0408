//! Recurring jobs. Every worker replica runs this scheduler; each run is enqueued with a
//! deduplication key naming its time slot, so replicas enqueue it once between them (and the
//! jobs are idempotent should a transport's deduplication let a second one through).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};

use super::{NewJob, Transport};
use crate::archive::{ArchiveSweep, PruneEvents};
use crate::config::{ArchiveStore, Config};
use crate::notify::email::DigestSweep;
use crate::notify::reminders::DeadlineSweep;
use crate::{AppContext, Result};

/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(1);

/// One recurring job.
struct Recurring {
    every_secs: i64,
    make: fn(&Config, i64, DateTime<Utc>) -> Option<Result<NewJob>>,
}

fn recurring() -> [Recurring; 4] {
    [
        Recurring {
            every_secs: 2,
            make: |config, slot, _| {
                (config.archive.store == ArchiveStore::Dynamodb).then(|| NewJob::of(&ArchiveSweep { slot }))
            },
        },
        Recurring { every_secs: 60, make: |_, slot, _| Some(NewJob::of(&DeadlineSweep { slot })) },
        Recurring {
            every_secs: 3600,
            make: |config, _, now| {
                (now.hour() == config.notify.digest_hour_utc)
                    .then(|| NewJob::of(&DigestSweep { day: now.date_naive() }))
            },
        },
        Recurring {
            every_secs: 3600,
            make: |config, slot, _| {
                (config.archive.store == ArchiveStore::Dynamodb).then(|| NewJob::of(&PruneEvents { slot }))
            },
        },
    ]
}

/// The jobs due in the slots starting at `now` that were not enqueued yet (`last` holds each
/// schedule's last slot).
fn due(config: &Config, now: DateTime<Utc>, last: &mut [i64]) -> Result<Vec<NewJob>> {
    let mut jobs = Vec::new();
    for (schedule, last) in recurring().iter().zip(last.iter_mut()) {
        let slot = now.timestamp().div_euclid(schedule.every_secs);
        if slot == *last {
            continue;
        }
        *last = slot;
        if let Some(job) = (schedule.make)(config, slot, now) {
            jobs.push(job?);
        }
    }
    Ok(jobs)
}

/// Enqueues recurring jobs until `shutdown` resolves.
pub async fn run(app: AppContext, transport: Arc<dyn Transport>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut last = [i64::MIN; 4];
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let jobs = match due(&app.config, crate::now(), &mut last) {
            Ok(jobs) if jobs.is_empty() => continue,
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::error!(error = %err, "cannot build scheduled jobs");
                continue;
            }
        };
        if let Err(err) = transport.enqueue(jobs).await {
            // Forget the slots so the next tick tries again.
            last = [i64::MIN; 4];
            tracing::warn!(error = %err, "cannot enqueue scheduled jobs; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_slot_is_enqueued_once_and_the_digest_only_at_its_hour() {
        let mut config = Config::from_sources(None, |_| None).unwrap();
        config.archive.store = ArchiveStore::Dynamodb;
        config.notify.digest_hour_utc = 8;
        let mut last = [i64::MIN; 4];
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let kinds = |jobs: Vec<NewJob>| jobs.into_iter().map(|job| job.kind).collect::<Vec<_>>();
        let first = kinds(due(&config, at("2026-11-25T07:59:59Z"), &mut last).unwrap());
        assert_eq!(first, ["events.archive", "tasks.deadline_sweep", "events.prune"]);
        assert!(due(&config, at("2026-11-25T07:59:59.5Z"), &mut last).unwrap().is_empty());
        let next = kinds(due(&config, at("2026-11-25T08:00:00Z"), &mut last).unwrap());
        assert_eq!(next, ["events.archive", "tasks.deadline_sweep", "email.digest_sweep", "events.prune"]);
    }
}
