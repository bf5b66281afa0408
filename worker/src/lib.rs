//! The composition root of tasklane's background work: picks the transport, the mailer and
//! the alert sink from configuration, and runs an apalis worker for each of its queues (the job
//! platform's runtime) and, unless turned off, the outbox relay and the recurring scheduler in
//! this process.

pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use tasklane_core::AppContext;
use tasklane_core::config::EmailTransport;
use tasklane_core::events::relay;
use tasklane_core::jobs::JobServices;
use tasklane_core::notify::discord::DiscordSink;
use tasklane_core::notify::email::Postman;
use tasklane_core::notify::email::file::FileMailer;
use tasklane_core::notify::email::mailer::Mailer;
use tasklane_core::notify::email::ses::SesMailer;
use tasklane_core::queues;
use tasklane_jobs::alert_ledger::SqlAlertLedger;
use tasklane_jobs::alerts::{AlertSettings, AlertSink, Alerts, LogSink, ReplayHint};
use tasklane_jobs::runtime::{LostJobsHook, QueueSpec, WorkerRuntime};
use tasklane_jobs::sqs::SqsQueue;
use tasklane_jobs::{Registry, Transport, schedule};

/// How many events the outbox relay publishes per batch.
const RELAY_BATCH: u64 = 500;
/// How often the relay looks for events written by other processes (the API replicas); one
/// indexed query each time.
const RELAY_POLL: Duration = Duration::from_millis(250);

/// How often a publishing replica moves due retries into the queues it does not consume, so a
/// queue's autoscaler sees them even when that queue's replicas scaled to zero.
const PROMOTE_EVERY: Duration = Duration::from_secs(5);

/// The SQS transport, on the outbound AWS configuration shared with SES and DynamoDB.
pub async fn sqs_transport(app: &AppContext) -> SqsQueue {
    queues::sqs_transport(&app.config, &app.outbound).await
}

/// The transport the configuration asks for (one per process, shared with the API).
pub async fn transport(app: &AppContext) -> anyhow::Result<Arc<dyn Transport>> {
    app.transport().await
}

/// The mailer the configuration asks for.
pub async fn mailer(app: &AppContext) -> Box<dyn Mailer> {
    match app.config.notify.email {
        EmailTransport::File => Box::new(FileMailer::new(app.config.data_dir.join("mail"))),
        EmailTransport::Ses => Box::new(SesMailer::new(app.outbound.ses().await.clone())),
    }
}

/// Where dead-letter alerts go: Discord when a webhook is set, the log otherwise.
pub fn alert_sink(app: &AppContext) -> Arc<dyn AlertSink> {
    let Some(url) = &app.config.notify.discord_webhook_url else {
        return Arc::new(LogSink);
    };
    match app.outbound.http() {
        Ok(client) => Arc::new(DiscordSink::new(client, url.clone())),
        Err(err) => {
            tracing::error!(error = %err, "cannot build an HTTP client for Discord; alerts go to the log");
            Arc::new(LogSink)
        }
    }
}

/// The operator command that replays a queue's dead jobs of one kind.
fn replay_hint() -> ReplayHint {
    Arc::new(|queue, kind| format!("tasklane dlq replay {queue} --kind {kind}"))
}

/// Builds the transport and runs [`run_with`] with every job kind, retried as configured.
pub async fn run(app: AppContext, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let transport = transport(&app).await?;
    let registry = tasklane_core::jobs::configured_registry(&app.config)?;
    run_with(app, transport, registry, stop).await
}

/// Runs a worker for each configured queue over `transport` (and the outbox relay and the
/// scheduler when this replica publishes) until `stop` resolves; then running jobs get the
/// configured grace period and the rest go back to the queue.
pub async fn run_with(
    app: AppContext,
    transport: Arc<dyn Transport>,
    registry: Registry<JobServices>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = app.config.worker.clone();
    telemetry::spawn_sampler(app.clone(), transport.clone());
    let services = JobServices { app: app.clone(), postman: Arc::new(Postman::new(&app, mailer(&app).await)) };
    let alerting = AlertSettings {
        window: Duration::from_secs(app.config.notify.alert_window_secs),
        cooldown: Duration::from_secs(app.config.notify.alert_cooldown_secs),
        ledger: Arc::new(SqlAlertLedger::new(app.db.clone())),
    };
    let alerts = Alerts::start_with(alert_sink(&app), replay_hint(), alerting);
    let recovering = (app.clone(), transport.clone());
    let on_lost_jobs: LostJobsHook = Arc::new(move |queues| {
        let (app, transport) = recovering.clone();
        Box::pin(async move {
            match tasklane_core::recovery::recover(&app, transport.as_ref()).await {
                Ok(recovered) => tracing::warn!(?queues, ?recovered, "queued again the work the lost queues held"),
                Err(err) => {
                    tracing::error!(?queues, error = %err, "cannot queue the lost work again; run `tasklane queues recover`")
                }
            }
        })
    });
    let runtime = WorkerRuntime {
        lease: Duration::from_secs(settings.lease_secs.max(1)),
        grace: Duration::from_secs(settings.shutdown_grace_secs),
        on_lost_jobs: Some(on_lost_jobs),
        ..WorkerRuntime::new(services, transport.clone(), registry, settings.name.clone(), alerts)
    };
    let consumed = queues::consumed_by(&settings)?;
    let specs =
        consumed.iter().map(|name| QueueSpec { name: name.clone(), concurrency: settings.concurrency }).collect();
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    let when_stopped = || {
        let mut rx = stopped_rx.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    };
    let publishers = settings.publish.then(|| {
        let recurring = tasklane_core::jobs::recurring(&app.config);
        let unconsumed =
            queues::ALL.iter().filter(|queue| !consumed.iter().any(|own| own == *queue)).map(|q| (*q).to_owned());
        let promoter =
            schedule::promote_unconsumed(unconsumed.collect(), transport.clone(), PROMOTE_EVERY, when_stopped());
        [
            tokio::spawn(schedule::run(recurring, transport.clone(), when_stopped())),
            tokio::spawn(promoter),
            tokio::spawn(relay::run(app, transport, RELAY_BATCH, RELAY_POLL, when_stopped())),
        ]
    });
    tracing::info!(
        worker = %settings.name,
        queues = ?consumed,
        scheduler_and_relay = settings.publish,
        "workers running"
    );
    let workers = runtime.run(specs, async move {
        stop.await;
        let _ = stopped_tx.send(true);
    });
    let result = workers.await;
    for publisher in publishers.into_iter().flatten() {
        let _ = publisher.await;
    }
    result
}
