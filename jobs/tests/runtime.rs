//! The worker runtime on each transport: success, retries with backoff, dead letters, replay,
//! and a clean shutdown. The Redis case needs a server (`scripts/test` provides one).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{fresh_db, wait_until};
use serde::{Deserialize, Serialize};
use tasklane_jobs::alerts::{Alerts, LogSink};
use tasklane_jobs::embedded::SqlQueue;
use tasklane_jobs::runtime::{QueueSpec, WorkerRuntime};
use tasklane_jobs::{DeadSelector, Job, JobError, NewJob, Registry, RetryOverride, RetryPolicies, Transport};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize)]
struct Echo {
    n: u32,
    /// `ok`, `flaky` (fails until switched on) or `fatal`.
    mode: String,
}

impl Job for Echo {
    const KIND: &'static str = "test.echo";
    const QUEUE: &'static str = "test";
}

/// Quick retries, three attempts in all.
fn quick_retries(max_attempts: u32) -> RetryPolicies {
    let mut policies = RetryPolicies::default();
    policies.queues.insert(
        "test".into(),
        RetryOverride {
            max_attempts: Some(max_attempts),
            base_delay: Some(Duration::from_millis(20)),
            max_delay: Some(Duration::from_millis(100)),
        },
    );
    policies
}

fn alerts() -> Alerts {
    Alerts::start(Arc::new(LogSink), Duration::from_millis(100), Arc::new(|queue, _| format!("replay {queue}")))
}

/// A runtime over `queue` with short pauses, for the application context `()`.
fn runtime(queue: Arc<dyn Transport>, registry: Registry<()>, name: &str) -> WorkerRuntime<()> {
    WorkerRuntime {
        idle_poll: Duration::from_millis(20),
        grace: Duration::from_secs(5),
        ..WorkerRuntime::new((), queue, registry, name, alerts())
    }
}

#[tokio::test]
async fn embedded_jobs_succeed_retry_die_and_come_back_on_replay() {
    let test = fresh_db().await;
    succeed_retry_die_and_replay(Arc::new(SqlQueue::new(test.db.clone()))).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn redis_jobs_succeed_retry_die_and_come_back_on_replay() {
    succeed_retry_die_and_replay(Arc::new(redis_queue())).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn sqs_jobs_succeed_retry_die_and_come_back_on_replay() {
    let queue = common::sqs_queue().await;
    queue.init_queue("test", Duration::from_secs(30), 3).await.unwrap();
    succeed_retry_die_and_replay(Arc::new(queue)).await;
}

/// A Redis transport under a key prefix of its own.
fn redis_queue() -> tasklane_jobs::redis::RedisQueue {
    common::redis_queue_with_prefix(&common::redis_prefix())
}

async fn succeed_retry_die_and_replay(queue: Arc<dyn Transport>) {
    let runs: Arc<Mutex<HashMap<u32, Vec<u32>>>> = Arc::default();
    let healed = Arc::new(AtomicBool::new(false));
    let mut registry = Registry::new(quick_retries(3));
    {
        let (runs, healed) = (runs.clone(), healed.clone());
        registry.register(move |job_ctx, echo: Echo| {
            let (runs, healed) = (runs.clone(), healed.clone());
            async move {
                runs.lock().unwrap().entry(echo.n).or_default().push(job_ctx.attempt);
                match echo.mode.as_str() {
                    "flaky" if !healed.load(Ordering::SeqCst) => Err(JobError::retry("not yet")),
                    "fatal" => Err(JobError::permanent("cannot ever work")),
                    _ => Ok(()),
                }
            }
        });
    }
    let mut jobs: Vec<NewJob> = (0..20).map(|n| NewJob::of(&Echo { n, mode: "ok".into() }).unwrap()).collect();
    jobs.push(NewJob::of(&Echo { n: 100, mode: "flaky".into() }).unwrap());
    jobs.push(NewJob::of(&Echo { n: 200, mode: "fatal".into() }).unwrap());
    jobs.push(NewJob { kind: "test.unknown".into(), ..NewJob::of(&Echo { n: 300, mode: "ok".into() }).unwrap() });
    queue.enqueue(jobs).await.unwrap();

    let runtime = runtime(queue.clone(), registry, "test-worker-1");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runtime.run(vec![QueueSpec { name: "test".into(), concurrency: 4 }], async move {
        let _ = stopped.await;
    }));

    wait_until("the queue to drain into the dead-letter queue", WAIT, async || {
        let stats = queue.stats("test").await.unwrap();
        stats.dead == 3 && stats.ready + stats.in_flight + stats.scheduled == 0
    })
    .await;
    {
        let runs = runs.lock().unwrap();
        assert!((0..20).all(|n| runs[&n] == [1]), "every good job ran once: {runs:?}");
        assert_eq!(runs[&100], [1, 2, 3], "the flaky job was tried max_attempts times");
        assert_eq!(runs[&200], [1], "a permanent failure is not retried");
        assert!(!runs.contains_key(&300), "an unknown kind never reaches a handler");
    }
    let dead = queue.dead("test", &DeadSelector::default()).await.unwrap();
    let unknown = dead.iter().find(|d| d.kind == "test.unknown").unwrap();
    assert!(unknown.last_error.as_deref().unwrap().contains("no handler"));

    // Once the cause is fixed, replaying the flaky job makes it succeed.
    healed.store(true, Ordering::SeqCst);
    let flaky = dead.iter().find(|d| d.payload["n"] == 100).unwrap();
    let replayed =
        queue.replay("test", &DeadSelector { ids: vec![flaky.id.clone()], ..Default::default() }).await.unwrap();
    assert_eq!(replayed, 1);
    wait_until("the replayed job to succeed", WAIT, async || runs.lock().unwrap()[&100].len() == 4).await;
    wait_until("the replayed job to be acknowledged", WAIT, async || queue.stats("test").await.unwrap().dead == 2)
        .await;
    assert_eq!(queue.purge("test", &DeadSelector::default()).await.unwrap(), 2);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("the worker did not stop").unwrap().unwrap();
}

#[derive(Serialize, Deserialize)]
struct Slow {
    n: u32,
}

impl Job for Slow {
    const KIND: &'static str = "test.slow";
    const QUEUE: &'static str = "slow";
}

/// Jobs that run three times longer than their lease are extended, not handed to a second
/// worker: each runs once, never two at a time. (A 2 s lease, extended every 0.7 s: with 1 s,
/// a loaded test machine once let every lease lapse between two extensions.)
async fn slow_jobs_keep_their_lease(queue: Arc<dyn Transport>) {
    let starts: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
    let registry = || {
        let starts = starts.clone();
        let mut registry = Registry::default();
        registry.register(move |_ctx, job: Slow| {
            let starts = starts.clone();
            async move {
                *starts.lock().unwrap().entry(job.n).or_default() += 1;
                tokio::time::sleep(Duration::from_secs(6)).await;
                Ok(())
            }
        });
        registry
    };
    queue.enqueue((0..4).map(|n| NewJob::of(&Slow { n }).unwrap()).collect()).await.unwrap();
    let mut stops = Vec::new();
    let mut workers = Vec::new();
    for name in ["slow-a", "slow-b"] {
        let runtime = WorkerRuntime { lease: Duration::from_secs(2), ..runtime(queue.clone(), registry(), name) };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        workers.push(tokio::spawn(runtime.run(vec![QueueSpec { name: "slow".into(), concurrency: 2 }], async move {
            let _ = stopped.await;
        })));
    }
    wait_until("the slow jobs to finish", WAIT, async || {
        let stats = queue.stats("slow").await.unwrap();
        stats.ready + stats.in_flight + stats.scheduled == 0
    })
    .await;
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 4);
    assert!(starts.values().all(|&n| n == 1), "a job ran twice: {starts:?}");
    for stop in stops {
        stop.send(()).unwrap();
    }
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(10), worker).await.expect("a worker did not stop").unwrap().unwrap();
    }
}

#[tokio::test]
async fn embedded_slow_jobs_keep_their_lease() {
    let test = fresh_db().await;
    slow_jobs_keep_their_lease(Arc::new(SqlQueue::new(test.db.clone()))).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn redis_slow_jobs_keep_their_lease() {
    slow_jobs_keep_their_lease(Arc::new(redis_queue())).await;
}

/// A kind configured for two attempts is tried exactly twice, then dead-lettered, whatever its
/// queue's own policy says.
async fn dead_after_the_configured_attempts(queue: Arc<dyn Transport>) {
    let runs: Arc<Mutex<Vec<u32>>> = Arc::default();
    let mut policies = quick_retries(8);
    policies.kinds.insert("test.echo".into(), RetryOverride { max_attempts: Some(2), ..RetryOverride::default() });
    let mut registry = Registry::new(policies);
    {
        let runs = runs.clone();
        registry.register(move |job_ctx, _: Echo| {
            let runs = runs.clone();
            async move {
                runs.lock().unwrap().push(job_ctx.attempt);
                Err::<(), _>(JobError::retry("always failing"))
            }
        });
    }
    queue.enqueue(vec![NewJob::of(&Echo { n: 1, mode: "flaky".into() }).unwrap()]).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runtime(queue.clone(), registry, "two-attempts").run(
        vec![QueueSpec { name: "test".into(), concurrency: 2 }],
        async move {
            let _ = stopped.await;
        },
    ));
    wait_until("the job to be dead-lettered", WAIT, async || {
        let stats = queue.stats("test").await.unwrap();
        stats.dead == 1 && stats.ready + stats.in_flight + stats.scheduled == 0
    })
    .await;
    assert_eq!(*runs.lock().unwrap(), [1, 2], "tried exactly twice");
    let dead = queue.dead("test", &DeadSelector::default()).await.unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, 2));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("the worker did not stop").unwrap().unwrap();
}

#[tokio::test]
async fn embedded_kinds_configured_for_two_attempts_die_after_two() {
    let test = fresh_db().await;
    dead_after_the_configured_attempts(Arc::new(SqlQueue::new(test.db.clone()))).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn redis_kinds_configured_for_two_attempts_die_after_two() {
    dead_after_the_configured_attempts(Arc::new(redis_queue())).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn sqs_kinds_configured_for_two_attempts_die_after_two() {
    let queue = common::sqs_queue().await;
    queue.init_queue("test", Duration::from_secs(30), 2).await.unwrap();
    dead_after_the_configured_attempts(Arc::new(queue)).await;
}

/// Keeps every alert it is sent.
#[derive(Clone, Default)]
struct KeptAlerts(Arc<Mutex<Vec<tasklane_jobs::alerts::DeadLetterGroup>>>);

#[async_trait::async_trait]
impl tasklane_jobs::alerts::AlertSink for KeptAlerts {
    async fn send(&self, groups: &[tasklane_jobs::alerts::DeadLetterGroup], _dropped: u64) -> anyhow::Result<()> {
        self.0.lock().unwrap().extend(groups.iter().cloned());
        Ok(())
    }
}

/// Runs a worker over `queue` with an `Echo` handler counting its runs, until the queue has
/// `dead` dead letters; returns the runs and the alerts sent.
async fn run_until_dead(queue: Arc<dyn Transport>, dead: u64) -> (u32, Vec<tasklane_jobs::alerts::DeadLetterGroup>) {
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut registry = Registry::new(quick_retries(3));
    {
        let runs = runs.clone();
        registry.register(move |_, _: Echo| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), JobError>(()) }
        });
    }
    let kept = KeptAlerts::default();
    let alerts = Alerts::start(
        Arc::new(kept.clone()),
        Duration::from_millis(50),
        Arc::new(|queue, _| format!("replay {queue}")),
    );
    let runtime = WorkerRuntime {
        idle_poll: Duration::from_millis(20),
        grace: Duration::from_secs(5),
        // Short, so jobs left by dead workers are taken over quickly.
        lease: Duration::from_secs(1),
        ..WorkerRuntime::new((), queue.clone(), registry, "healthy-worker", alerts)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runtime.run(vec![QueueSpec { name: "test".into(), concurrency: 2 }], async move {
        let _ = stopped.await;
    }));
    wait_until("the job to be dead-lettered", WAIT, async || queue.stats("test").await.unwrap().dead == dead).await;
    wait_until("the alert", WAIT, async || !kept.0.lock().unwrap().is_empty()).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("the worker did not stop").unwrap().unwrap();
    let alerts = kept.0.lock().unwrap().clone();
    (runs.load(Ordering::SeqCst), alerts)
}

/// A job whose workers die while running it, as many times as it may be tried, is
/// dead-lettered by the next worker without running, with one alert.
async fn a_job_that_kills_its_workers_is_dead_lettered_unrun(queue: Arc<dyn Transport>) {
    queue.enqueue(vec![NewJob::of(&Echo { n: 1, mode: "ok".into() }).unwrap()]).await.unwrap();
    let mut deliveries = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while deliveries < 3 {
        assert!(std::time::Instant::now() < deadline, "only {deliveries} deliveries");
        // Claimed under a lease that is over at once, never acknowledged: the worker died.
        deliveries += queue.claim("test", &format!("doomed-{deliveries}"), 1, Duration::ZERO).await.unwrap().len();
    }
    let (runs, alerts) = run_until_dead(queue.clone(), 1).await;
    assert_eq!(runs, 0, "the poison job ran again");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].dead.kind.as_str(), alerts[0].dead.count), ("test.echo", 1));
    assert!(alerts[0].dead.first_error.contains("delivered 4 times"), "{}", alerts[0].dead.first_error);
}

#[tokio::test]
async fn embedded_jobs_that_kill_their_workers_are_dead_lettered_unrun() {
    let test = fresh_db().await;
    a_job_that_kills_its_workers_is_dead_lettered_unrun(Arc::new(SqlQueue::new(test.db.clone()))).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn redis_jobs_that_kill_their_workers_are_dead_lettered_unrun() {
    a_job_that_kills_its_workers_is_dead_lettered_unrun(Arc::new(redis_queue())).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn sqs_jobs_that_kill_their_workers_are_dead_lettered_unrun() {
    let queue = common::sqs_queue().await;
    // A redrive limit above the attempts, so the worker is the one that sees it.
    queue.init_queue("test", Duration::from_secs(30), 10).await.unwrap();
    a_job_that_kills_its_workers_is_dead_lettered_unrun(Arc::new(queue)).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn an_undecodable_redis_entry_is_dead_lettered_with_an_alert() {
    let prefix = common::redis_prefix();
    let queue = common::redis_queue_with_prefix(&prefix);
    queue.stats("test").await.unwrap(); // creates the stream and its group
    let url = std::env::var("TASKLANE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{prefix}test"))
        .arg("*")
        .arg("job")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (runs, alerts) = run_until_dead(Arc::new(queue), 1).await;
    assert_eq!(runs, 0);
    assert_eq!(alerts[0].dead.kind, tasklane_jobs::UNDECODABLE);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn an_undecodable_sqs_message_is_dead_lettered_with_an_alert() {
    let prefix = format!("tl-test-{}-", common::unique_name());
    let queue = common::sqs_queue_with_prefix(&prefix).await;
    queue.init_queue("test", Duration::from_secs(30), 3).await.unwrap();
    let client = common::sqs_client().await;
    let url = client.get_queue_url().queue_name(format!("{prefix}test")).send().await.unwrap();
    client.send_message().queue_url(url.queue_url().unwrap()).message_body("{not json").send().await.unwrap();
    let (runs, alerts) = run_until_dead(Arc::new(queue), 1).await;
    assert_eq!(runs, 0);
    assert_eq!(alerts[0].dead.kind, tasklane_jobs::UNDECODABLE);
}
