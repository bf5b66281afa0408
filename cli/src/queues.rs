//! `tasklane queues …` and `tasklane dlq …`: queue depths and dead-letter handling.

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tasklane_core::config::QueueTransport;
use tasklane_core::jobs::configured_registry;
use tasklane_core::{AppContext, queues};
use tasklane_jobs::{DeadJob, DeadSelector, RetryPolicy, Transport};
use tasklane_worker::transport;

use crate::{Format, confirm, output};

#[derive(Subcommand)]
pub enum QueuesAction {
    /// Create the SQS queues with their dead-letter queues and redrive policies (safe to rerun).
    Init,
    /// Depth, in flight, scheduled, dead and oldest age of every queue, and the retry
    /// policy of every job kind.
    Stats,
    /// Queue again what a queue that lost its jobs held (Redis restarted without
    /// persistence): events published in the last hour, emails still waiting, pending
    /// reports. Safe to run any time: every job is idempotent.
    Recover,
}

/// Which dead jobs a command takes.
#[derive(Args)]
pub struct Selection {
    /// Only the job with this id (repeatable).
    #[arg(long = "id")]
    ids: Vec<String>,
    /// Only jobs of this kind.
    #[arg(long)]
    kind: Option<String>,
    /// At most this many.
    #[arg(long)]
    limit: Option<u64>,
}

impl Selection {
    fn selector(&self) -> DeadSelector {
        DeadSelector { ids: self.ids.clone(), kind: self.kind.clone(), limit: self.limit }
    }

    fn is_everything(&self) -> bool {
        self.ids.is_empty() && self.kind.is_none() && self.limit.is_none()
    }
}

#[derive(Subcommand)]
pub enum DlqAction {
    /// List dead jobs of a queue.
    List {
        /// Queue name.
        queue: String,
        #[command(flatten)]
        selection: Selection,
    },
    /// Show one dead job with its payload and last error.
    Show {
        /// Queue name.
        queue: String,
        /// Job id.
        id: String,
    },
    /// Put dead jobs back on their queue with fresh attempts.
    Replay {
        /// Queue name.
        queue: String,
        #[command(flatten)]
        selection: Selection,
        /// Replay every dead job of the queue (required when no --id, --kind or --limit is given).
        #[arg(long)]
        all: bool,
        /// Show what would be replayed and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead jobs for good.
    Purge {
        /// Queue name.
        queue: String,
        #[command(flatten)]
        selection: Selection,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn queues(ctx: &AppContext, action: QueuesAction, format: Format) -> anyhow::Result<()> {
    if let QueuesAction::Init = action {
        return init(ctx).await;
    }
    let transport = transport(ctx).await?;
    if let QueuesAction::Recover = action {
        let recovered = tasklane_core::recovery::recover(ctx, transport.as_ref()).await?;
        let row = vec![recovered.events.to_string(), recovered.emails.to_string(), recovered.reports.to_string()];
        return output::print(format, &["events republished", "emails", "reports"], [row], &recovered);
    }
    let registry = configured_registry(&ctx.config)?;
    let mut all = Vec::new();
    for queue in queues::ALL {
        all.push(transport.stats(queue).await?);
    }
    let policies: Vec<KindPolicy> = registry
        .kinds()
        .into_iter()
        .map(|(queue, kind)| KindPolicy::new(queue, kind, registry.retry_policy(queue, kind)))
        .collect();
    if format == Format::Json {
        let reports: Vec<QueueReport> = all
            .iter()
            .map(|stats| QueueReport {
                stats,
                retry_policies: policies.iter().filter(|p| p.queue == stats.queue).collect(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    output::print(
        format,
        &["queue", "transport", "ready", "in flight", "scheduled", "dead", "oldest"],
        all.iter().map(|s| {
            vec![
                s.queue.clone(),
                s.transport.to_owned(),
                s.ready.to_string(),
                s.in_flight.to_string(),
                s.scheduled.to_string(),
                s.dead.to_string(),
                s.oldest_age_secs.map_or_else(|| "-".to_owned(), |secs| format!("{secs}s")),
            ]
        }),
        &all,
    )?;
    println!();
    output::print(
        format,
        &["queue", "job kind", "attempts", "backoff", "dead-lettered after"],
        policies.iter().map(|p| {
            vec![
                p.queue.to_owned(),
                p.kind.to_owned(),
                p.max_attempts.to_string(),
                format!("{}s doubling to {}s", p.backoff_base_secs, p.backoff_max_secs),
                format!("about {}s", p.dead_lettered_after_secs),
            ]
        }),
        &policies,
    )
}

/// One queue's figures and the retry policies of the job kinds on it.
#[derive(serde::Serialize)]
struct QueueReport<'a> {
    #[serde(flatten)]
    stats: &'a tasklane_jobs::QueueStats,
    retry_policies: Vec<&'a KindPolicy>,
}

/// The retry policy in force for one job kind.
#[derive(serde::Serialize)]
struct KindPolicy {
    queue: &'static str,
    kind: &'static str,
    max_attempts: u32,
    backoff_base_secs: u64,
    backoff_max_secs: u64,
    /// The longest a failing job waits before it is dead-lettered.
    dead_lettered_after_secs: u64,
}

impl KindPolicy {
    fn new(queue: &'static str, kind: &'static str, policy: RetryPolicy) -> Self {
        Self {
            queue,
            kind,
            max_attempts: policy.max_attempts,
            backoff_base_secs: policy.base_delay.as_secs(),
            backoff_max_secs: policy.max_delay.as_secs(),
            dead_lettered_after_secs: policy.longest_wait().as_secs(),
        }
    }
}

fn print_dead(format: Format, jobs: &[DeadJob]) -> anyhow::Result<()> {
    output::print(
        format,
        &["id", "kind", "attempts", "died", "last error"],
        jobs.iter().map(|job| {
            vec![
                job.id.clone(),
                job.kind.clone(),
                job.attempts.to_string(),
                job.dead_at.map_or_else(|| "-".to_owned(), |at| at.format("%Y-%m-%d %H:%M:%S").to_string()),
                job.last_error.clone().unwrap_or_default().chars().take(60).collect(),
            ]
        }),
        &jobs,
    )
}

async fn init(ctx: &AppContext) -> anyhow::Result<()> {
    if ctx.config.queue != QueueTransport::Sqs {
        eprintln!("nothing to create: the {:?} transport makes its queues itself", ctx.config.queue);
        return Ok(());
    }
    let sqs = tasklane_worker::sqs_transport(ctx).await;
    let registry = configured_registry(&ctx.config)?;
    let lease = Duration::from_secs(ctx.config.worker.lease_secs);
    for queue in queues::ON_SQS {
        let attempts = registry.max_attempts_on(queue);
        let (url, dlq) = sqs.init_queue(queue, lease, attempts).await?;
        println!("{queue}: {url} (dead letters after {attempts} receives: {dlq})");
    }
    Ok(())
}

pub async fn dlq(ctx: &AppContext, action: DlqAction, format: Format) -> anyhow::Result<()> {
    let transport = transport(ctx).await?;
    match action {
        DlqAction::List { queue, selection } => {
            print_dead(format, &transport.dead(&queue, &selection.selector()).await?)
        }
        DlqAction::Show { queue, id } => {
            let selector = DeadSelector { ids: vec![id.clone()], ..Default::default() };
            let Some(job) = transport.dead(&queue, &selector).await?.into_iter().next() else {
                bail!("no dead job {id} in queue {queue}");
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&job)?),
                Format::Table => {
                    println!(
                        "id:         {}\nqueue:      {}\nkind:       {}\nattempts:   {}",
                        job.id, job.queue, job.kind, job.attempts
                    );
                    println!("last error: {}", job.last_error.as_deref().unwrap_or("-"));
                    println!("payload:\n{}", serde_json::to_string_pretty(&job.payload)?);
                }
            }
            Ok(())
        }
        DlqAction::Replay { queue, selection, all, dry_run } => {
            if selection.is_everything() && !all {
                bail!("say which jobs to replay: --id, --kind, --limit, or --all for every dead job of {queue}");
            }
            let selector = selection.selector();
            if dry_run {
                let jobs = transport.dead(&queue, &selector).await?;
                eprintln!("dry run: {} job(s) would be replayed", jobs.len());
                return print_dead(format, &jobs);
            }
            let replayed = replay_with_progress(transport.as_ref(), &queue, &selector).await?;
            if replayed > 0 && transport.stats(&queue).await?.dead == 0 {
                // The alerts said these jobs died: say they are back, once, when none are left.
                if let Err(err) = tasklane_worker::alert_sink(ctx).cleared(&queue, replayed).await {
                    eprintln!("warning: cannot announce the replay: {err:#}");
                }
            }
            report(format, "replayed", replayed)
        }
        DlqAction::Purge { queue, selection, yes } => {
            let selector = selection.selector();
            let count = transport.dead(&queue, &selector).await?.len();
            if count == 0 {
                return report(format, "purged", 0);
            }
            if !yes && !confirm(&format!("Delete {count} dead job(s) from {queue} for good?"))? {
                bail!("not confirmed; nothing purged (pass --yes to skip the question)");
            }
            let purged = transport.purge(&queue, &selector).await?;
            report(format, "purged", purged)
        }
    }
}

/// Jobs replayed per step, so a long replay shows progress and an interruption loses little.
const REPLAY_STEP: u64 = 500;

/// Replays in steps, with a progress bar on a terminal (indicatif hides it elsewhere).
async fn replay_with_progress(transport: &dyn Transport, queue: &str, selector: &DeadSelector) -> anyhow::Result<u64> {
    let total = transport.dead(queue, selector).await?.len() as u64;
    let progress = ProgressBar::new(total).with_message(format!("replaying {queue}"));
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)") {
        progress.set_style(style.progress_chars("#>-"));
    }
    let mut replayed = 0;
    while replayed < total {
        let step = DeadSelector { limit: Some(REPLAY_STEP.min(total - replayed)), ..selector.clone() };
        let moved = transport.replay(queue, &step).await?;
        if moved == 0 {
            break;
        }
        replayed += moved;
        progress.set_position(replayed);
    }
    progress.finish_and_clear();
    Ok(replayed)
}

fn report(format: Format, verb: &str, count: u64) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::json!({ verb: count })),
        Format::Table => println!("{verb} {count} job(s)"),
    }
    Ok(())
}
