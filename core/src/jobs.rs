//! What tasklane runs on the job platform: the job kinds and their handlers, the recurring
//! jobs, the retry policies from configuration, and the context handlers get.

use std::sync::Arc;
use std::time::Duration;

use chrono::Timelike;
use tasklane_jobs::schedule::Recurring;
use tasklane_jobs::{JobError, NewJob, Registry, RetryOverride, RetryPolicies};

use crate::archive::{self, ArchiveSweep, PruneEvents};
use crate::config::{ArchiveStore, Config, JobsConfig};
use crate::events::TaskEventJob;
use crate::housekeeping::{self, PruneExpired, PruneWords};
use crate::notify::email::{self, AccountMail, DigestSweep, Postman, SendDigest, SendEmail};
use crate::notify::{fanout, reminders};
use crate::reports::{
    self,
    generate::{GenerateReport, ReportsDue},
};
use crate::{AppContext, queues};

/// What every job handler gets: the application and the adapters the worker picked.
#[derive(Clone)]
pub struct JobServices {
    /// Database, configuration and clients.
    pub app: AppContext,
    /// Sends emails through the configured mailer.
    pub postman: Arc<Postman>,
}

/// A handler's context.
pub type JobContext = tasklane_jobs::JobContext<JobServices>;

/// The retry policies in force: the configured default, then tasklane's own per-queue
/// defaults (emails wait 10 s before their first retry, as mail services throttle in bursts),
/// then the configured per-queue and per-kind overrides, field by field.
pub fn retry_policies(config: &JobsConfig) -> RetryPolicies {
    let mut policies = RetryPolicies { default: config.default_policy(), ..RetryPolicies::default() };
    let built_in = RetryOverride { base_delay: Some(Duration::from_secs(10)), ..RetryOverride::default() };
    policies.queues.insert(queues::EMAIL.to_owned(), built_in);
    for (queue, settings) in &config.queues {
        let entry = policies.queues.entry(queue.clone()).or_default();
        *entry = settings.to_override().over(*entry);
    }
    for (kind, settings) in &config.kinds {
        policies.kinds.insert(kind.clone(), settings.to_override());
    }
    policies
}

/// [`registry`] with the configured retry policies, refusing overrides for queues or job
/// kinds that do not exist (a typo would otherwise be silently ignored).
pub fn configured_registry(config: &Config) -> anyhow::Result<Registry<JobServices>> {
    let registry = registry(retry_policies(&config.jobs));
    let kinds = registry.kinds();
    if let Some(queue) = config.jobs.queues.keys().find(|queue| !queues::ALL.contains(&queue.as_str())) {
        anyhow::bail!("[jobs.queues.{queue}]: no such queue; the queues are {}", queues::ALL.join(", "));
    }
    if let Some(kind) = config.jobs.kinds.keys().find(|kind| !kinds.iter().any(|(_, known)| known == kind)) {
        let known: Vec<&str> = kinds.iter().map(|(_, kind)| *kind).collect();
        anyhow::bail!("[jobs.kinds.{kind:?}]: no such job kind; the kinds are {}", known.join(", "));
    }
    Ok(registry)
}

/// Every job kind with its handler, retried as `policies` say.
pub fn registry(policies: RetryPolicies) -> Registry<JobServices> {
    let mut registry = Registry::new(policies);
    registry
        .register(task_event)
        .register(|ctx: JobContext, job: SendEmail| async move {
            email::send_email(&ctx.state.app, &ctx.state.postman, job).await
        })
        .register(|ctx: JobContext, mail: AccountMail| async move {
            email::send_account_mail(&ctx.state.app, &ctx.state.postman, mail).await
        })
        .register(|ctx: JobContext, job: SendDigest| async move {
            email::send_digest(&ctx.state.app, &ctx.state.postman, job).await
        })
        .register(|ctx: JobContext, job: DigestSweep| async move {
            let digests = email::digest_jobs(&ctx.state.app, job.day).await?;
            enqueue(&ctx, digests).await
        })
        .register(|ctx: JobContext, _: reminders::DeadlineSweep| async move {
            let emails = reminders::remind(&ctx.state.app, crate::now()).await?;
            enqueue(&ctx, emails).await
        })
        .register(|ctx: JobContext, _: ArchiveSweep| async move {
            archive::sweep(&ctx.state.app).await?;
            Ok(())
        })
        .register(|ctx: JobContext, _: PruneEvents| async move {
            let pruned = archive::prune(&ctx.state.app, crate::now()).await?;
            if pruned > 0 {
                tracing::info!(pruned, "pruned archived task events past retention");
            }
            Ok(())
        })
        .register(|ctx: JobContext, job: GenerateReport| async move {
            let emails = reports::generate::generate(&ctx.state.app, &job).await?;
            enqueue(&ctx, emails).await
        })
        .register(|ctx: JobContext, _: ReportsDue| async move {
            let app = &ctx.state.app;
            let enqueued = reports::generate::schedule(app, ctx.jobs.as_ref(), app.clock.now()).await?;
            if enqueued > 0 {
                tracing::info!(enqueued, "scheduled the reports of closed periods");
            }
            Ok(())
        })
        .register(|ctx: JobContext, _: PruneExpired| async move {
            let pruned = housekeeping::prune(&ctx.state.app).await?;
            if pruned != housekeeping::Pruned::default() {
                tracing::info!(?pruned, "pruned expired sessions, tokens and sign-in counters");
            }
            Ok(())
        })
        .register(|ctx: JobContext, _: PruneWords| async move {
            let pruned = housekeeping::prune_words(&ctx.state.app).await?;
            if pruned > 0 {
                tracing::info!(pruned, "took the words no task holds out of the known words");
            }
            Ok(())
        });
    registry
}

/// A task event reached the events queue: notify the people it concerns. The notification
/// rows make this idempotent; the archive copies events on its own schedule.
async fn task_event(ctx: JobContext, event: TaskEventJob) -> Result<(), JobError> {
    let emails = fanout::fan_out(&ctx.state.app, &event).await?;
    enqueue(&ctx, emails).await
}

async fn enqueue(ctx: &JobContext, jobs: Vec<NewJob>) -> Result<(), JobError> {
    if !jobs.is_empty() {
        ctx.jobs.enqueue(jobs).await?;
    }
    Ok(())
}

/// The recurring jobs `config` calls for: the archive sweep every 2 s and event pruning
/// hourly (DynamoDB archive only), the deadline sweep every minute, digests daily at the
/// configured hour, expired sessions pruned and closed report periods looked for every
/// 10 minutes, known words no task holds pruned hourly.
pub fn recurring(config: &Config) -> Vec<Recurring> {
    let mut table = vec![
        Recurring::new("deadline sweep", Duration::from_secs(60), |slot| {
            Some(NewJob::of(&reminders::DeadlineSweep { slot: slot.index }))
        }),
        Recurring::new("prune expired sessions", Duration::from_secs(600), |slot| {
            Some(NewJob::of(&PruneExpired { slot: slot.index }))
        }),
        Recurring::new("prune unheld words", Duration::from_secs(3600), |slot| {
            Some(NewJob::of(&PruneWords { slot: slot.index }))
        }),
        Recurring::new("scheduled reports", Duration::from_secs(600), |slot| {
            Some(NewJob::of(&ReportsDue { slot: slot.index }))
        }),
    ];
    let digest_hour = config.notify.digest_hour_utc;
    table.push(Recurring::new("daily digests", Duration::from_secs(3600), move |slot| {
        (slot.now.hour() == digest_hour).then(|| NewJob::of(&DigestSweep { day: slot.now.date_naive() }))
    }));
    if config.archive.store == ArchiveStore::Dynamodb {
        table.push(Recurring::new("archive sweep", Duration::from_secs(2), |slot| {
            Some(NewJob::of(&ArchiveSweep { slot: slot.index }))
        }));
        table.push(Recurring::new("prune archived events", Duration::from_secs(3600), |slot| {
            Some(NewJob::of(&PruneEvents { slot: slot.index }))
        }));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_a_kind_uses_is_consumed_and_archiving_follows_the_configuration() {
        let registry = registry(RetryPolicies::default());
        for (queue, kind) in registry.kinds() {
            assert!(queues::ALL.contains(&queue), "{kind} is on {queue}, which no worker consumes");
        }
        let mut config = Config::from_sources(None, |_| None).unwrap();
        let names = |config: &Config| recurring(config).iter().map(|r| r.name).collect::<Vec<_>>();
        assert!(!names(&config).contains(&"archive sweep"));
        config.archive.store = ArchiveStore::Dynamodb;
        assert!(names(&config).contains(&"archive sweep"));
    }

    #[test]
    fn configured_overrides_sit_on_top_of_the_built_in_ones_and_typos_are_refused() {
        let file = "[jobs.queues.email]\nmax_attempts = 3\n[jobs.kinds.\"email.send\"]\nmax_attempts = 2\n";
        let config = Config::from_sources(Some(file), |_| None).unwrap();
        let registry = configured_registry(&config).unwrap();
        let digest = registry.retry_policy(queues::EMAIL, "email.digest");
        assert_eq!((digest.max_attempts, digest.base_delay), (3, Duration::from_secs(10)));
        assert_eq!(registry.retry_policy(queues::EMAIL, "email.send").max_attempts, 2);
        assert_eq!(registry.retry_policy(queues::EVENTS, "task.event").max_attempts, 8);
        assert_eq!(registry.max_attempts_on(queues::EMAIL), 3);
        let typo = Config::from_sources(Some("[jobs.kinds.\"email.sned\"]\nmax_attempts = 2\n"), |_| None).unwrap();
        assert!(configured_registry(&typo).err().unwrap().to_string().contains("no such job kind"));
        let queue = Config::from_sources(Some("[jobs.queues.mail]\nmax_attempts = 2\n"), |_| None).unwrap();
        assert!(configured_registry(&queue).is_err());
    }
}
