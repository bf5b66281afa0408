//! Queue throughput: N no-op jobs enqueued, then processed by one worker runtime in this
//! process, per transport. Prints enqueue/s, process/s, p50/p99 queue latency (enqueue to
//! handler; with everything enqueued first it is dominated by the backlog) and the process's
//! peak RSS. Run with 1,000 and 100,000 queued to see that the
//! rate holds as the backlog grows:
//!
//! `cargo bench -p tasklane-worker --bench throughput`
//! Knobs: `BENCH_JOBS` (comma list, default `1000,100000`), `BENCH_TRANSPORTS`
//! (`embedded,redis`), `BENCH_CONCURRENCY` (64), `BENCH_REDIS_URL` (`redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tasklane_jobs::alerts::{Alerts, LogSink};
use tasklane_jobs::embedded::SqlQueue;
use tasklane_jobs::redis::RedisQueue;
use tasklane_jobs::runtime::{QueueSpec, WorkerRuntime};
use tasklane_jobs::{Job, JobError, NewJob, Registry, Transport};

#[derive(Serialize, Deserialize)]
struct Noop {
    /// When it was enqueued (Unix milliseconds), to measure queue latency in the handler.
    enqueued_at_ms: i64,
}

impl Job for Noop {
    const KIND: &'static str = "bench.noop";
    const QUEUE: &'static str = "bench";
}

async fn run(label: &str, transport: Arc<dyn Transport>, jobs: u64, concurrency: usize) {
    let started = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1000) {
        let enqueued_at_ms = chrono::Utc::now().timestamp_millis();
        transport.enqueue(chunk.iter().map(|_| NewJob::of(&Noop { enqueued_at_ms }).unwrap()).collect()).await.unwrap();
    }
    let enqueue_secs = started.elapsed().as_secs_f64();

    let latencies: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::with_capacity(jobs as usize)));
    let mut registry = Registry::<()>::default();
    {
        let latencies = latencies.clone();
        registry.register(move |_ctx, job: Noop| {
            let latencies = latencies.clone();
            async move {
                let waited = chrono::Utc::now().timestamp_millis() - job.enqueued_at_ms;
                latencies.lock().unwrap().push(waited);
                Ok::<(), JobError>(())
            }
        });
    }
    let alerts = Alerts::start(Arc::new(LogSink), Duration::from_secs(10), Arc::new(|queue, _| queue.to_owned()));
    let runtime = WorkerRuntime {
        idle_poll: Duration::from_millis(5),
        ..WorkerRuntime::new((), transport.clone(), registry, format!("bench-{label}"), alerts)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let processing = Instant::now();
    let worker = tokio::spawn(runtime.run(vec![QueueSpec { name: "bench".into(), concurrency }], async move {
        let _ = stopped.await;
    }));
    // Poll the handler's own count, not the queue: counting a large backlog would load the
    // very database being measured.
    while (latencies.lock().unwrap().len() as u64) < jobs {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let process_secs = processing.elapsed().as_secs_f64();
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let mut latencies = latencies.lock().unwrap().clone();
    assert_eq!(latencies.len() as u64, jobs, "every job ran exactly once");
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{label:<9} {jobs:>7} jobs   enqueue {:>8.0}/s   process {:>7.0}/s   queue latency p50 {:>6} ms p99 {:>6} ms   peak RSS {:>5.1} MiB",
        jobs as f64 / enqueue_secs,
        jobs as f64 / process_secs,
        pick(0.5),
        pick(0.99),
        tasklane_testkit::peak_rss_mib(None)
    );
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_JOBS")
        .unwrap_or_else(|_| "1000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let transports = std::env::var("BENCH_TRANSPORTS").unwrap_or_else(|_| "embedded,redis".into());
    let concurrency = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    for transport in transports.split(',') {
        for &jobs in &sizes {
            let (ctx, _dir) = tasklane_testkit::fresh_context(|_| {}).await;
            let queue: Arc<dyn Transport> = match transport.trim() {
                "embedded" => Arc::new(SqlQueue::new(ctx.db.clone())),
                "redis" => {
                    let prefix = format!("tl-bench:{}:", tasklane_core::auth::tokens::new_id());
                    Arc::new(RedisQueue::connect(&redis_url, &prefix).unwrap())
                }
                other => panic!("unknown transport {other}"),
            };
            run(transport.trim(), queue, jobs, concurrency).await;
        }
    }
}
