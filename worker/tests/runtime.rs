//! The worker runtime on each transport: success, retries with backoff, dead letters, replay,
//! and a clean shutdown. The Redis case needs a server (`scripts/test` provides one).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasklane_core::jobs::embedded::SqlQueue;
use tasklane_core::jobs::redis::RedisQueue;
use tasklane_core::jobs::sqs::SqsQueue;
use tasklane_core::jobs::{DeadSelector, Job, JobError, NewJob, Registry, RetryPolicy, Transport};
use tasklane_core::testing::{assert_local_aws, fresh_context, wait_until};

const WAIT: Duration = Duration::from_secs(20);
use tasklane_worker::{QueueSpec, WorkerRuntime};

#[derive(Serialize, Deserialize)]
struct Echo {
    n: u32,
    /// `ok`, `flaky` (fails until switched on) or `fatal`.
    mode: String,
}

impl Job for Echo {
    const KIND: &'static str = "test.echo";
    const QUEUE: &'static str = "test";

    fn retry_policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(20), max_delay: Duration::from_millis(100) }
    }
}

#[tokio::test]
async fn embedded_jobs_succeed_retry_die_and_come_back_on_replay() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let queue = Arc::new(SqlQueue::new(ctx.db.clone()));
    succeed_retry_die_and_replay(ctx, queue).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn redis_jobs_succeed_retry_die_and_come_back_on_replay() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    succeed_retry_die_and_replay(ctx, Arc::new(redis_queue())).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn sqs_jobs_succeed_retry_die_and_come_back_on_replay() {
    assert_local_aws();
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let prefix = format!("tl-test-{}-", tasklane_core::auth::tokens::new_id().replace('_', "x"));
    let queue = SqsQueue::connect(&prefix).await;
    queue.init_queue("test", Duration::from_secs(30)).await.unwrap();
    succeed_retry_die_and_replay(ctx, Arc::new(queue)).await;
}

/// A Redis transport under a key prefix of its own.
fn redis_queue() -> RedisQueue {
    let url = std::env::var("TASKLANE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tl-test:{}:", tasklane_core::auth::tokens::new_id());
    RedisQueue::connect(&url, &prefix).unwrap()
}

async fn succeed_retry_die_and_replay(ctx: tasklane_core::AppContext, queue: Arc<dyn Transport>) {
    let runs: Arc<Mutex<HashMap<u32, Vec<u32>>>> = Arc::default();
    let healed = Arc::new(AtomicBool::new(false));
    let mut registry = Registry::default();
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

    let runtime = WorkerRuntime {
        idle_poll: Duration::from_millis(20),
        grace: Duration::from_secs(5),
        ..WorkerRuntime::new(ctx.clone(), queue.clone(), registry, "test-worker-1")
    };
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
/// worker: each runs once, never two at a time.
async fn slow_jobs_keep_their_lease(ctx: tasklane_core::AppContext, queue: Arc<dyn Transport>) {
    let starts: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
    let registry = || {
        let starts = starts.clone();
        let mut registry = Registry::default();
        registry.register(move |_ctx, job: Slow| {
            let starts = starts.clone();
            async move {
                *starts.lock().unwrap().entry(job.n).or_default() += 1;
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(())
            }
        });
        registry
    };
    queue.enqueue((0..4).map(|n| NewJob::of(&Slow { n }).unwrap()).collect()).await.unwrap();
    let mut stops = Vec::new();
    let mut workers = Vec::new();
    for name in ["slow-a", "slow-b"] {
        let runtime = WorkerRuntime {
            lease: Duration::from_secs(1),
            idle_poll: Duration::from_millis(20),
            grace: Duration::from_secs(5),
            ..WorkerRuntime::new(ctx.clone(), queue.clone(), registry(), name)
        };
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
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let queue = Arc::new(SqlQueue::new(ctx.db.clone()));
    slow_jobs_keep_their_lease(ctx, queue).await;
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn redis_slow_jobs_keep_their_lease() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    slow_jobs_keep_their_lease(ctx, Arc::new(redis_queue())).await;
}
