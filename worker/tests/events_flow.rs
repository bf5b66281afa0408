//! Task changes flow through the outbox relay to the events queue and are consumed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tasklane_entity::task_events;
use tasklane_jobs::Transport;
use tasklane_jobs::embedded::SqlQueue;
use tasklane_testkit::{fresh_context, wait_until};

#[tokio::test]
async fn every_task_event_is_published_and_consumed() {
    let (ctx, _dir) = fresh_context(|config| config.worker.shutdown_grace_secs = 5).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(tasklane_worker::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));

    let who = tasklane_testkit::member(&ctx, "flow@example.com").await;
    for i in 0..25 {
        let input = serde_json::from_value(serde_json::json!({ "name": format!("flow {i}") })).unwrap();
        tasklane_core::tasks::create(&ctx, &who, input).await.unwrap();
    }

    let queue = SqlQueue::new(ctx.db.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let unpublished = task_events::Entity::find()
            .filter(task_events::Column::PublishedAt.is_null())
            .count(&ctx.db)
            .await
            .unwrap();
        let stats = queue.stats("events").await.unwrap();
        if unpublished == 0 && stats.ready + stats.in_flight + stats.scheduled + stats.dead == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "events not drained: {unpublished} unpublished, {stats:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(task_events::Entity::find().count(&ctx.db).await.unwrap(), 25);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("workers did not stop").unwrap().unwrap();
}

#[tokio::test]
async fn a_replica_narrowed_to_one_queue_consumes_only_it_and_publishes_nothing() {
    let (ctx, _dir) = fresh_context(|config| {
        config.worker.shutdown_grace_secs = 5;
        config.worker.queues = vec![tasklane_core::queues::EVENTS.to_owned()];
        config.worker.publish = false;
    })
    .await;
    let who = tasklane_testkit::member(&ctx, "narrow@example.com").await;
    for i in 0..4 {
        let input = serde_json::from_value(serde_json::json!({ "name": format!("narrow {i}") })).unwrap();
        tasklane_core::tasks::create(&ctx, &who, input).await.unwrap();
    }
    let queue = SqlQueue::new(ctx.db.clone());
    let sweep = tasklane_core::notify::reminders::DeadlineSweep { slot: 1 };
    queue.enqueue(vec![tasklane_jobs::NewJob::of(&sweep).unwrap()]).await.unwrap();
    // Half the outbox published by hand: this replica has no relay of its own.
    assert_eq!(tasklane_core::events::relay::publish_batch(&ctx, &queue, 2).await.unwrap(), 2);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(tasklane_worker::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    wait_until("the narrowed replica to consume the published events", Duration::from_secs(20), async || {
        let stats = queue.stats("events").await.unwrap();
        stats.ready + stats.in_flight + stats.scheduled + stats.dead == 0
    })
    .await;
    // A relay polls every 250 ms and the scheduler enqueues its sweeps at once: give either a
    // second to show itself.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unpublished =
        task_events::Entity::find().filter(task_events::Column::PublishedAt.is_null()).count(&ctx.db).await.unwrap();
    assert_eq!(unpublished, 2, "a replica with publish = false ran the outbox relay");
    let maintenance = queue.stats("maintenance").await.unwrap();
    assert_eq!(
        (maintenance.ready, maintenance.in_flight, maintenance.scheduled),
        (1, 0, 0),
        "the maintenance queue holds just the sweep enqueued here, untouched"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("workers did not stop").unwrap().unwrap();
}
