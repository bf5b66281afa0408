//! With the Redis transport down, the API keeps accepting task changes; when Redis is back
//! (empty, as after a restart without persistence) the relay and the workers reconnect by
//! themselves and every event reaches the handler exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tasklane_core::events::{TaskEventJob, relay};
use tasklane_jobs::alerts::{Alerts, LogSink};
use tasklane_jobs::redis::RedisQueue;
use tasklane_jobs::runtime::{QueueSpec, WorkerRuntime};
use tasklane_jobs::{JobError, Registry, Transport};
use tasklane_testkit::{fresh_context, wait_until};

struct RedisServer(Child);

impl RedisServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn events_written_while_redis_is_down_are_delivered_once_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = Some(RedisServer::start(port));
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let queue: Arc<dyn Transport> =
        Arc::new(RedisQueue::connect(&format!("redis://127.0.0.1:{port}"), "outage:").unwrap());

    let seen: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
    let mut registry = Registry::<()>::default();
    {
        let seen = seen.clone();
        registry.register(move |_ctx, event: TaskEventJob| {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap().entry(event.event_id).or_default() += 1;
                Ok::<(), JobError>(())
            }
        });
    }
    let alerts = Alerts::start(Arc::new(LogSink), Duration::from_secs(1), Arc::new(|queue, _| queue.to_owned()));
    let runtime = WorkerRuntime {
        idle_poll: Duration::from_millis(20),
        grace: Duration::from_secs(2),
        ..WorkerRuntime::new((), queue.clone(), registry, "outage-worker", alerts)
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let relay = tokio::spawn(relay::run(
        ctx.clone(),
        queue.clone(),
        100,
        Duration::from_millis(100),
        until_stopped(stopped.clone()),
    ));
    let workers =
        tokio::spawn(runtime.run(vec![QueueSpec { name: "events".into(), concurrency: 4 }], until_stopped(stopped)));

    let who = tasklane_testkit::member(&ctx, "outage@example.com").await;
    let write = async |count: usize| {
        for i in 0..count {
            let input = serde_json::from_value(serde_json::json!({ "name": format!("outage {i}") })).unwrap();
            tasklane_core::tasks::create(&ctx, &who, input).await.expect("task writes must not need the queue");
        }
    };

    write(10).await;
    wait_until("the first events", Duration::from_secs(30), async || seen.lock().unwrap().len() == 10).await;

    redis.take();
    let started = Instant::now();
    write(10).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "task writes stalled behind the dead queue: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 10, "nothing can be delivered while Redis is down");

    let _redis = RedisServer::start(port);
    wait_until("the events written during the outage", Duration::from_secs(60), async || {
        seen.lock().unwrap().len() == 20
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.values().all(|&n| n == 1), "an event was handled twice: {seen:?}");

    stop.send(true).unwrap();
    relay.await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), workers).await.expect("workers did not stop").unwrap().unwrap();
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn a_redis_that_loses_its_data_mid_run_still_notifies_every_event_once() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use tasklane_core::jobs::JobContext;
    use tasklane_entity::{notifications, task_events};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _redis = RedisServer::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let (ctx, _dir) = fresh_context(|config| {
        config.queue = tasklane_core::config::QueueTransport::Redis;
        config.redis_url = Some(url.clone().into());
        config.redis_prefix = "loss:".into();
        // One event at a time, held at a gate below; the rest wait in Redis.
        config.worker.concurrency = 1;
        config.worker.lease_secs = 3;
    })
    .await;
    let cara = tasklane_testkit::member(&ctx, "cara@example.com").await;
    let pia = tasklane_testkit::member(&ctx, "pia@example.com").await;
    let transport = tasklane_worker::transport(&ctx).await.unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut registry = tasklane_core::jobs::configured_registry(&ctx.config).unwrap();
    {
        let gate = gate.clone();
        registry.register(move |job_ctx: JobContext, event: TaskEventJob| {
            let gate = gate.clone();
            async move {
                gate.acquire().await.map_err(|err| JobError::retry(err.to_string()))?.forget();
                let emails = tasklane_core::notify::fanout::fan_out(&job_ctx.state.app, &event).await?;
                job_ctx.jobs.enqueue(emails).await.map_err(|err| JobError::retry(err.to_string()))
            }
        });
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(tasklane_worker::run_with(ctx.clone(), transport.clone(), registry, async move {
        let _ = stopped.await;
    }));

    const EVENTS: u64 = 10;
    for n in 0..EVENTS {
        let input =
            serde_json::from_value(serde_json::json!({ "name": format!("lost {n}"), "pic": pia.user_id })).unwrap();
        tasklane_core::tasks::create(&ctx, &cara, input).await.unwrap();
    }
    wait_until("every event published, one of them held by the worker", Duration::from_secs(30), async || {
        let unpublished = task_events::Entity::find()
            .filter(task_events::Column::PublishedAt.is_null())
            .count(&ctx.db)
            .await
            .unwrap();
        let stats = transport.stats("events").await.unwrap();
        unpublished == 0 && stats.in_flight >= 1 && stats.ready >= 1
    })
    .await;

    // Redis loses everything: the jobs of the events still queued are gone.
    let mut redis = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut redis).await.unwrap();
    gate.add_permits(10_000);

    let in_app = || {
        notifications::Entity::find()
            .filter(notifications::Column::UserId.eq(pia.user_id))
            .filter(notifications::Column::Channel.eq("in_app"))
            .count(&ctx.db)
    };
    wait_until("every event notified after the recovery", Duration::from_secs(60), async || {
        in_app().await.unwrap() == EVENTS
    })
    .await;
    // One notification per event (the rows are unique per event and person), and no more later.
    assert_eq!(in_app().await.unwrap(), EVENTS);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), worker).await.expect("the worker did not stop").unwrap().unwrap();
}
