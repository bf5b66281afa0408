//! tasklane's job runtime. Each queue is consumed by an apalis worker whose backend is one of
//! our transports; handlers, the retry policy and dead-lettering are the same for all of them.
//!
//! Retries are the transport's, not apalis's in-process retry layer: a job waiting for its
//! next attempt must survive the worker dying, and must not hold a lease meanwhile. So a
//! failed job is acknowledged back to the transport as "run again after this delay" (or "dead")
//! by our acknowledger, which apalis calls after every job.

pub mod runtime;
pub mod telemetry;

pub use runtime::{QueueSpec, WorkerRuntime};

use std::time::Duration;

use tasklane_core::AppContext;
use tasklane_core::jobs::{QUEUES, handlers, relay, schedule, transport};

/// How many events the outbox relay publishes per batch.
const RELAY_BATCH: u64 = 500;
/// How often the relay looks for events written by other processes (the API replicas); one
/// indexed query each time.
const RELAY_POLL: Duration = Duration::from_millis(250);

/// Runs the outbox relay and a worker for every queue until `stop` resolves; then running jobs
/// get the configured grace period and the rest go back to the queue.
pub async fn run(app: AppContext, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    run_with(app, handlers::registry(), stop).await
}

/// [`run`] with a registry of one's own (different retry policies, extra job kinds).
pub async fn run_with(
    app: AppContext,
    registry: tasklane_core::jobs::Registry,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let transport = transport(&app).await?;
    let settings = app.config.worker.clone();
    let runtime = WorkerRuntime {
        lease: Duration::from_secs(settings.lease_secs.max(1)),
        grace: Duration::from_secs(settings.shutdown_grace_secs),
        ..WorkerRuntime::new(app.clone(), transport.clone(), registry, settings.name.clone())
    };
    let queues =
        QUEUES.iter().map(|name| QueueSpec { name: (*name).to_owned(), concurrency: settings.concurrency }).collect();
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    let when_stopped = || {
        let mut rx = stopped_rx.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    };
    let scheduler = tokio::spawn(schedule::run(app.clone(), transport.clone(), when_stopped()));
    let relay = tokio::spawn(relay::run(app, transport, RELAY_BATCH, RELAY_POLL, when_stopped()));
    tracing::info!(worker = %settings.name, "workers, scheduler and outbox relay running");
    let workers = runtime.run(queues, async move {
        stop.await;
        let _ = stopped_tx.send(true);
    });
    let result = workers.await;
    let _ = relay.await;
    let _ = scheduler.await;
    result
}
