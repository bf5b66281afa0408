//! Task changes flow through the outbox relay to the events queue and are consumed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tasklane_entity::task_events;
use tasklane_jobs::Transport;
use tasklane_jobs::embedded::SqlQueue;
use tasklane_testkit::fresh_context;

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
