//! The Redis Streams transport against a real Redis (`scripts/test` starts one); each test
//! works under a key prefix of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

mod common;

use common::{redis_prefix as prefix, redis_queue_with_prefix as queue_with_prefix};
use tasklane_jobs::{DeadSelector, NewJob, Transport};

fn job(n: u32, dedup: Option<&str>) -> NewJob {
    NewJob {
        queue: "q".to_owned(),
        kind: "test.noop".to_owned(),
        version: 1,
        payload: serde_json::json!({ "n": n }),
        dedup_key: dedup.map(str::to_owned),
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn publish_claim_ack_dedup_and_stats() {
    let queue = queue_with_prefix(&prefix());
    queue.enqueue(vec![job(1, Some("a")), job(2, Some("a")), job(3, None)]).await.unwrap();
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight), (2, 0), "the second 'a' was deduplicated");
    let claimed = queue.claim("q", "w1", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|d| d.attempt == 1));
    assert!(queue.claim("q", "w2", 10, LEASE).await.unwrap().is_empty());
    assert_eq!(queue.stats("q").await.unwrap().in_flight, 2);
    for delivery in &claimed {
        queue.complete(delivery, "w1").await.unwrap();
    }
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight, stats.dead), (0, 0, 0), "finished entries are deleted");
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn retries_are_delayed_then_dead_then_replayed_and_purged() {
    let queue = queue_with_prefix(&prefix());
    queue.enqueue(vec![job(1, None), job(2, None)]).await.unwrap();
    let mut claimed = queue.claim("q", "w", 2, LEASE).await.unwrap();
    let (later, soon) = (claimed.remove(0), claimed.remove(0));
    queue.retry_later(&later, "w", Duration::from_secs(3600), "not yet").await.unwrap();
    queue.retry_later(&soon, "w", Duration::ZERO, "flaky").await.unwrap();
    assert_eq!(queue.stats("q").await.unwrap().scheduled, 2);
    let again = queue.claim("q", "w", 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1, "only the due retry comes back");
    assert_eq!((again[0].attempt, &again[0].payload), (2, &soon.payload));
    queue.bury(&again[0], "w", "gave up").await.unwrap();

    let dead = queue.dead("q", &DeadSelector::default()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].last_error.as_deref()), (2, Some("gave up")));
    assert_eq!(queue.replay("q", &DeadSelector { kind: Some("other".into()), ..Default::default() }).await.unwrap(), 0);
    assert_eq!(
        queue.replay("q", &DeadSelector { ids: vec![dead[0].id.clone()], ..Default::default() }).await.unwrap(),
        1
    );
    let replayed = queue.claim("q", "w", 10, LEASE).await.unwrap();
    assert_eq!((replayed.len(), replayed[0].attempt), (1, 1));
    queue.bury(&replayed[0], "w", "still broken").await.unwrap();
    assert_eq!(queue.purge("q", &DeadSelector::default()).await.unwrap(), 1);
    assert_eq!(queue.stats("q").await.unwrap().dead, 0);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn a_dead_workers_jobs_are_reclaimed_and_its_late_acks_ignored() {
    let prefix = prefix();
    let (crashed, survivor) = (queue_with_prefix(&prefix), queue_with_prefix(&prefix));
    crashed.enqueue(vec![job(1, None)]).await.unwrap();
    let lease = Duration::from_millis(200);
    let stale = crashed.claim("q", "crashed", 1, lease).await.unwrap().remove(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let taken = loop {
        if let Some(delivery) = survivor.claim("q", "survivor", 1, lease).await.unwrap().into_iter().next() {
            break delivery;
        }
        assert!(Instant::now() < deadline, "the idle entry was never reclaimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((taken.id.as_str(), taken.attempt), (stale.id.as_str(), 2));
    crashed.complete(&stale, "crashed").await.unwrap();
    assert_eq!(survivor.stats("q").await.unwrap().in_flight, 1, "the stale worker's ack was ignored");
    survivor.complete(&taken, "survivor").await.unwrap();
    assert_eq!(survivor.stats("q").await.unwrap().in_flight, 0);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn released_jobs_go_to_the_next_worker_at_once() {
    let prefix = prefix();
    let (leaving, staying) = (queue_with_prefix(&prefix), queue_with_prefix(&prefix));
    leaving.enqueue(vec![job(1, None), job(2, None)]).await.unwrap();
    let held = leaving.claim("q", "leaving", 2, LEASE).await.unwrap();
    leaving.extend(&held, "leaving", LEASE).await.unwrap();
    assert_eq!(leaving.release("leaving").await.unwrap(), 2);
    let taken = staying.claim("q", "staying", 2, LEASE).await.unwrap();
    assert_eq!(taken.len(), 2);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn a_stopping_worker_hands_back_everything_it_holds() {
    let prefix = prefix();
    let (leaving, staying) = (queue_with_prefix(&prefix), queue_with_prefix(&prefix));
    let count = 2_500;
    leaving.enqueue((0..count).map(|n| job(n, None)).collect()).await.unwrap();
    let mut held = 0;
    while held < count as usize {
        let claimed = leaving.claim("q", "leaving", 500, LEASE).await.unwrap();
        assert!(!claimed.is_empty(), "only {held} of {count} claimed");
        held += claimed.len();
    }
    // More than one page of them, every one handed back; the emptied consumer is gone.
    assert_eq!(leaving.release("leaving").await.unwrap(), u64::from(count));
    let mut taken = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while taken < count as usize {
        assert!(Instant::now() < deadline, "only {taken} of {count} came back");
        taken += staying.claim("q", "staying", 500, LEASE).await.unwrap().len();
    }
    assert_eq!(taken, count as usize);
}

/// The group's lag as `XINFO GROUPS` reports it: what a KEDA `redis-streams` trigger with
/// `lagCount` scales on.
async fn group_lag(prefix: &str, queue: &str) -> i64 {
    let url = std::env::var("TASKLANE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let groups: Vec<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("XINFO").arg("GROUPS").arg(format!("{prefix}{queue}")).query_async(&mut conn).await.unwrap();
    match groups[0].get("lag") {
        Some(redis::Value::Int(lag)) => *lag,
        other => panic!("no lag in XINFO GROUPS (Redis 7 reports it): {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn due_retries_of_a_queue_nobody_consumes_become_lag_an_autoscaler_sees() {
    let prefix = prefix();
    let queue = std::sync::Arc::new(queue_with_prefix(&prefix));
    queue.enqueue(vec![job(1, None), job(2, None), job(3, None)]).await.unwrap();
    let claimed = queue.claim("q", "w", 3, LEASE).await.unwrap();
    queue.retry_later(&claimed[0], "w", Duration::ZERO, "flaky").await.unwrap();
    queue.retry_later(&claimed[1], "w", Duration::ZERO, "flaky").await.unwrap();
    queue.retry_later(&claimed[2], "w", Duration::from_secs(3600), "not yet").await.unwrap();
    // The worker that failed them is gone (scaled to zero): nothing claims, so nothing promotes.
    assert_eq!(group_lag(&prefix, "q").await, 0);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let promoter = tokio::spawn(tasklane_jobs::schedule::promote_unconsumed(
        vec!["q".to_owned()],
        queue.clone(),
        Duration::from_millis(50),
        async move {
            let _ = stopped.await;
        },
    ));
    common::wait_until("the due retries to show as lag", Duration::from_secs(10), async || {
        group_lag(&prefix, "q").await == 2
    })
    .await;
    stop.send(()).unwrap();
    promoter.await.unwrap();
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.ready, stats.scheduled), (2, 1), "the retry not yet due stays delayed");
    let again = queue.claim("q", "w2", 10, LEASE).await.unwrap();
    assert_eq!(again.iter().map(|d| d.attempt).collect::<Vec<_>>(), [2, 2]);
}
