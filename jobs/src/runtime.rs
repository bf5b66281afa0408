//! Runs apalis workers for a set of queues until shutdown. Each queue is consumed by an apalis
//! worker whose backend is one of the transports; handlers, the retry policy and
//! dead-lettering are the same for all of them.
//!
//! Retries are the transport's, not apalis's in-process retry layer: a job waiting for its
//! next attempt must survive the worker dying, and must not hold a lease meanwhile. So a
//! failed job is acknowledged back to the transport as "run again after this delay" (or
//! "dead") by our acknowledger, which apalis calls after every job.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis_core::backend::custom::{BackendBuilder, CustomBackend};
use apalis_core::error::BoxDynError;
use apalis_core::monitor::Monitor;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::data::Data;
use apalis_core::task::{ExecutionContext, Task};
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use apalis_core::worker::ext::ack::AcknowledgementExt;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};

use crate::alerts::{Alerts, DeadLetter};
use crate::{Delivery, JobContext, JobError, Registry, Transport};

/// One queue to consume and how many of its jobs may run at once.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    /// Queue name.
    pub name: String,
    /// Jobs of this queue running at once in this replica.
    pub concurrency: usize,
}

/// Everything the workers share; `C` is the application's context handed to every handler.
pub struct WorkerRuntime<C> {
    /// The application's context.
    pub state: C,
    /// Where jobs come from.
    pub transport: Arc<dyn Transport>,
    /// Which handler runs which job kind.
    pub registry: Arc<Registry<C>>,
    /// This replica's unique name (leases and pending entries are held under it).
    pub name: String,
    /// How long a claimed job is reserved before another worker may take it; extended while
    /// the job runs.
    pub lease: Duration,
    /// How long to wait before asking an empty queue again.
    pub idle_poll: Duration,
    /// How long in-flight jobs get to finish after a shutdown signal.
    pub grace: Duration,
    /// Where dead-lettered jobs are announced.
    pub alerts: Alerts,
    /// Called with the queues the transport found emptied under it (a Redis that lost its
    /// data), so the application can enqueue again what it can rebuild.
    pub on_lost_jobs: Option<LostJobsHook>,
}

/// What the application does about queues that lost their jobs.
pub type LostJobsHook = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, ()> + Send + Sync>;

impl<C: Clone> Clone for WorkerRuntime<C> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            transport: self.transport.clone(),
            registry: self.registry.clone(),
            name: self.name.clone(),
            lease: self.lease,
            idle_poll: self.idle_poll,
            grace: self.grace,
            alerts: self.alerts.clone(),
            on_lost_jobs: self.on_lost_jobs.clone(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> WorkerRuntime<C> {
    /// A runtime with the usual timings (30 s lease, 100 ms idle poll, 25 s grace) for the
    /// replica called `name` (unique among replicas), announcing dead letters through `alerts`.
    pub fn new(
        state: C,
        transport: Arc<dyn Transport>,
        registry: Registry<C>,
        name: impl Into<String>,
        alerts: Alerts,
    ) -> Self {
        Self {
            state,
            transport,
            registry: Arc::new(registry),
            name: name.into(),
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(100),
            grace: Duration::from_secs(25),
            alerts,
            on_lost_jobs: None,
        }
    }
}

/// Jobs this replica is running, so their leases can be extended.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashMap<String, Delivery>>>);

impl InFlight {
    fn add(&self, delivery: &Delivery) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(delivery.id.clone(), delivery.clone());
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    fn snapshot(&self) -> Vec<Delivery> {
        self.0.lock().map(|map| map.values().cloned().collect()).unwrap_or_default()
    }
}

/// What the apalis handler needs.
struct Shared<C> {
    runtime: WorkerRuntime<C>,
    in_flight: InFlight,
}

impl<C: Clone> Clone for Shared<C> {
    fn clone(&self) -> Self {
        Self { runtime: self.runtime.clone(), in_flight: self.in_flight.clone() }
    }
}

async fn run_job<C: Clone + Send + Sync + 'static>(
    delivery: Delivery,
    shared: Data<Shared<C>>,
) -> Result<(), BoxDynError> {
    let ctx = JobContext {
        state: shared.runtime.state.clone(),
        attempt: delivery.attempt,
        jobs: shared.runtime.transport.clone(),
    };
    // OpenTelemetry's messaging names, so dashboards made for any queue consumer read it.
    let labels = [
        ("messaging_system", shared.runtime.transport.name().to_owned()),
        ("messaging_destination_name", delivery.queue.clone()),
        ("messaging_operation_name", "process".to_owned()),
        ("kind", delivery.kind.clone()),
    ];
    let started = std::time::Instant::now();
    let result = shared.runtime.registry.dispatch(ctx, delivery).await;
    metrics::histogram!("messaging_process_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    result.map_err(|err| Box::new(err) as BoxDynError)
}

/// When a worker loop of this process last made progress — claimed jobs, found its queue
/// empty, failed to reach it, or finished a job — in milliseconds since the epoch (0: never).
static LAST_BEAT_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn beat() {
    LAST_BEAT_MS.store(crate::now().timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
}

/// How long ago a worker loop of this process last made progress; `None` before the first.
/// A liveness probe reads it: a worker whose loops stopped turning (every slot stuck in a job
/// that never ends, a wedged runtime) goes stale, whatever its dependencies say.
pub fn since_last_beat() -> Option<Duration> {
    let last = LAST_BEAT_MS.load(std::sync::atomic::Ordering::Relaxed);
    (last > 0).then(|| Duration::from_millis(u64::try_from(crate::now().timestamp_millis() - last).unwrap_or(0)))
}

/// Gives the platform's metrics their help text in the process's recorder (call it once the
/// recorder is installed).
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!("tasklane_jobs_enqueued_total", "Jobs handed to the transport, by queue and kind.");
    describe_counter!(
        "tasklane_jobs_total",
        "Job runs by queue, kind and outcome (success, retry, failure, dead_letter)."
    );
    describe_histogram!(
        "messaging_process_duration_seconds",
        Unit::Seconds,
        "How long a job ran (OpenTelemetry messaging.process.duration)."
    );
    describe_histogram!("tasklane_job_queue_wait_seconds", Unit::Seconds, "Time from enqueue to the start of a run.");
    describe_counter!("tasklane_alerts_sent_total", "Dead-letter alerts sent.");
    describe_counter!("tasklane_alerts_failed_total", "Dead-letter alerts that could not be sent.");
}

/// How a run of a job ended, as `tasklane_jobs_total` counts it.
#[derive(Clone, Copy)]
enum Outcome {
    /// It ran to the end.
    Success,
    /// It failed and will run again later.
    Retry,
    /// It failed in a way no retry mends, and went to the dead letters.
    Failure,
    /// It failed on its last allowed attempt, or could not be run at all, and went to the dead letters.
    DeadLetter,
}

fn count_outcome(delivery: &Delivery, outcome: Outcome) {
    let outcome = match outcome {
        Outcome::Success => "success",
        Outcome::Retry => "retry",
        Outcome::Failure => "failure",
        Outcome::DeadLetter => "dead_letter",
    };
    let labels = [("queue", delivery.queue.clone()), ("kind", delivery.kind.clone()), ("outcome", outcome.to_owned())];
    metrics::counter!("tasklane_jobs_total", &labels).increment(1);
}

/// Moves a job to its queue's dead letters and announces it.
async fn dead_letter<C>(
    runtime: &WorkerRuntime<C>,
    delivery: &Delivery,
    reason: String,
    outcome: Outcome,
) -> anyhow::Result<()> {
    tracing::warn!(queue = %delivery.queue, kind = %delivery.kind, id = %delivery.id,
        attempt = delivery.attempt, %reason, "job dead-lettered");
    count_outcome(delivery, outcome);
    runtime.alerts.dead_lettered(DeadLetter {
        queue: delivery.queue.clone(),
        kind: delivery.kind.clone(),
        error: reason.clone(),
    });
    runtime.transport.bury(delivery, &runtime.name, &reason).await
}

/// Why a job just claimed must not run: its entry cannot be read, or it has been handed out
/// more often than its retry policy allows, which only happens when the workers running it
/// died each time (a job that crashes its worker would otherwise loop forever).
fn unrunnable<C>(runtime: &WorkerRuntime<C>, delivery: &Delivery) -> Option<String> {
    if delivery.kind == crate::UNDECODABLE {
        return Some("the queue entry cannot be decoded".to_owned());
    }
    let policy = runtime.registry.retry_policy(&delivery.queue, &delivery.kind);
    policy.exhausted(delivery.attempt.saturating_sub(1)).then(|| {
        format!(
            "delivered {} times without finishing (its worker stopped while running it); dead-lettered unrun",
            delivery.attempt
        )
    })
}

/// Tells the transport how each job ended: done, again later, or dead.
struct Acknowledger<C> {
    shared: Shared<C>,
}

impl<C: Clone> Clone for Acknowledger<C> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<C: Clone + Send + Sync + 'static> apalis_core::worker::ext::ack::Acknowledge<()> for Acknowledger<C> {
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<(), std::io::Error>>;

    fn ack(&mut self, result: &Result<(), BoxDynError>, ctx: &ExecutionContext) -> Self::Future {
        let shared = self.shared.clone();
        let delivery = ctx.data().get::<Delivery>().cloned();
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(err) => Err(match err.downcast_ref::<JobError>() {
                Some(JobError::Permanent(reason)) => (true, reason.clone()),
                Some(JobError::Retry(reason)) => (false, reason.clone()),
                // A panic or a timeout from a layer: worth another try.
                None => (false, err.to_string()),
            }),
        };
        async move {
            beat();
            let Some(delivery) = delivery else { return Ok(()) };
            shared.in_flight.remove(&delivery.id);
            let runtime = &shared.runtime;
            let transport = runtime.transport.as_ref();
            let done = match outcome {
                Ok(()) => {
                    count_outcome(&delivery, Outcome::Success);
                    transport.complete(&delivery, &runtime.name).await
                }
                Err((permanent, reason)) => {
                    let policy = runtime.registry.retry_policy(&delivery.queue, &delivery.kind);
                    if permanent {
                        dead_letter(runtime, &delivery, reason, Outcome::Failure).await
                    } else if policy.exhausted(delivery.attempt) {
                        dead_letter(runtime, &delivery, reason, Outcome::DeadLetter).await
                    } else {
                        count_outcome(&delivery, Outcome::Retry);
                        let delay = policy.delay_after(delivery.attempt);
                        tracing::info!(queue = %delivery.queue, kind = %delivery.kind, id = %delivery.id,
                            attempt = delivery.attempt, ?delay, %reason, "job will be retried");
                        transport.retry_later(&delivery, &runtime.name, delay, &reason).await
                    }
                }
            };
            // An acknowledgement that cannot be written is not lost work: the lease runs out
            // and the job is delivered again.
            if let Err(err) = done {
                tracing::warn!(error = %err, id = %delivery.id, "acknowledgement failed; the job will be redelivered");
            }
            Ok(())
        }
        .boxed()
    }
}

impl<C: Clone + Send + Sync + 'static> WorkerRuntime<C> {
    /// Runs one apalis worker per queue until `shutdown` resolves, then waits up to the grace
    /// period for running jobs and hands every job still held back to the queue.
    pub async fn run(
        self,
        queues: Vec<QueueSpec>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let in_flight = InFlight::default();
        let shared = Shared { runtime: self.clone(), in_flight: in_flight.clone() };
        let heartbeat = tokio::spawn(extend_leases(self.clone(), in_flight.clone()));
        let mut monitor = Monitor::new().shutdown_timeout(self.grace);
        for spec in queues {
            let shared = shared.clone();
            monitor = monitor.register(move |index| {
                let backend = backend(shared.clone(), spec.name.clone(), spec.concurrency);
                WorkerBuilder::new(format!("{}-{}-{index}", shared.runtime.name, spec.name))
                    .backend(backend)
                    .data(shared.clone())
                    .ack_with(Acknowledger { shared: shared.clone() })
                    .concurrency(spec.concurrency)
                    .build(run_job::<C>)
            });
        }
        let result = monitor
            .run_with_signal(async move {
                shutdown.await;
                Ok(())
            })
            .await;
        heartbeat.abort();
        let released = self.transport.release(&self.name).await?;
        if released > 0 {
            tracing::info!(released, "handed unfinished jobs back to the queue");
        }
        result.map_err(|err| anyhow::anyhow!("worker monitor failed: {err}"))
    }
}

type JobStream = futures_util::stream::BoxStream<'static, Result<Option<Task<Delivery>>, BoxDynError>>;
type NoSink = futures_util::sink::SinkMapErr<futures_util::sink::Drain<Task<Delivery>>, fn(Infallible) -> BoxDynError>;

/// The apalis backend for one queue: claims batches from the transport and yields them one at
/// a time; an empty or unreachable queue is asked again after a pause, never busily.
/// Jobs are enqueued through the [`Transport`], not through apalis, so its sink is never used.
#[expect(clippy::expect_used, reason = "start-up: the builder only fails when a part is missing, and all are given")]
fn backend<C: Clone + Send + Sync + 'static>(
    shared: Shared<C>,
    queue: String,
    batch: usize,
) -> CustomBackend<Delivery, (), JobStream, NoSink> {
    let fetcher = move |_: &mut (), _: &(), _: &WorkerContext| -> JobStream {
        let state = (shared.clone(), queue.clone(), VecDeque::<Delivery>::new(), 0u32);
        futures_util::stream::unfold(state, move |(shared, queue, mut buffer, mut failures)| async move {
            let runtime = &shared.runtime;
            loop {
                beat();
                if let Some(delivery) = buffer.pop_front() {
                    let waited = (crate::now() - delivery.enqueued_at).to_std().unwrap_or_default();
                    metrics::histogram!("tasklane_job_queue_wait_seconds", "queue" => delivery.queue.clone())
                        .record(waited.as_secs_f64());
                    let task = TaskBuilder::new(delivery.clone()).data(delivery).build();
                    return Some((Ok(Some(task)), (shared, queue, buffer, failures)));
                }
                match runtime.transport.claim(&queue, &runtime.name, batch, runtime.lease).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        failures = 0;
                        for delivery in claimed {
                            if let Some(reason) = unrunnable(runtime, &delivery) {
                                if let Err(err) = dead_letter(runtime, &delivery, reason, Outcome::DeadLetter).await {
                                    tracing::warn!(error = %err, id = %delivery.id, "cannot dead-letter a job; it will come back");
                                }
                                continue;
                            }
                            // Leased from now on, so extended from now on, even while waiting
                            // here for a free slot.
                            shared.in_flight.add(&delivery);
                            buffer.push_back(delivery);
                        }
                    }
                    Ok(_) => tokio::time::sleep(runtime.idle_poll).await,
                    Err(err) => {
                        // The transport is down: wait and try again, longer each time.
                        failures = failures.saturating_add(1);
                        let pause =
                            (runtime.idle_poll * 2u32.saturating_pow(failures.min(6))).min(Duration::from_secs(5));
                        tracing::warn!(%queue, error = %err, ?pause, "cannot claim jobs; retrying");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        })
        .boxed()
    };
    let no_sink = |_: &mut (), _: &()| -> NoSink {
        futures_util::sink::drain().sink_map_err((|never| match never {}) as fn(Infallible) -> BoxDynError)
    };
    BackendBuilder::new()
        .database(())
        .fetcher(fetcher)
        .sink(no_sink)
        .build()
        .expect("the job backend has a fetcher and a sink")
}

async fn extend_leases<C>(runtime: WorkerRuntime<C>, in_flight: InFlight) {
    let mut ticker = tokio::time::interval(runtime.lease / 3);
    loop {
        ticker.tick().await;
        let lost = runtime.transport.lost_queues();
        if !lost.is_empty() {
            for queue in &lost {
                runtime.alerts.dead_lettered(DeadLetter {
                    queue: queue.clone(),
                    kind: "(every job)".to_owned(),
                    error: "the queue lost its jobs (Redis restarted without persistence?); lost work is being enqueued again".to_owned(),
                });
            }
            if let Some(hook) = &runtime.on_lost_jobs {
                hook(lost).await;
            }
        }
        let running = in_flight.snapshot();
        if running.is_empty() {
            continue;
        }
        if let Err(err) = runtime.transport.extend(&running, &runtime.name, runtime.lease).await {
            tracing::warn!(error = %err, "cannot extend job leases; they may be handed to another worker");
        }
    }
}
