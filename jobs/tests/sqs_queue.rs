//! The SQS transport against moto, the local AWS emulator (`scripts/test` starts it and sets
//! `AWS_ENDPOINT_URL`); each test uses queues of its own. Never run against real AWS.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

mod common;

use tasklane_jobs::sqs::SqsQueue;
use tasklane_jobs::{DeadSelector, NewJob, Transport};

async fn fresh_queue() -> SqsQueue {
    let queue = common::sqs_queue().await;
    queue.init_queue("q", Duration::from_secs(30), 8).await.unwrap();
    // Initialising again changes nothing and does not fail.
    queue.init_queue("q", Duration::from_secs(30), 8).await.unwrap();
    queue
}

fn job(n: u32) -> NewJob {
    NewJob {
        queue: "q".to_owned(),
        kind: "test.noop".to_owned(),
        version: 1,
        payload: serde_json::json!({ "n": n }),
        dedup_key: None,
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn publish_consume_retry_bury_replay_purge() {
    let queue = fresh_queue().await;
    queue.enqueue(vec![job(1), job(2)]).await.unwrap();
    assert_eq!(queue.stats("q").await.unwrap().ready, 2);

    let mut claimed = queue.claim("q", "w", 10, LEASE).await.unwrap();
    while claimed.len() < 2 {
        claimed.extend(queue.claim("q", "w", 10, LEASE).await.unwrap());
    }
    assert!(claimed.iter().all(|d| d.attempt == 1));
    let (done, flaky) = (claimed.remove(0), claimed.remove(0));
    queue.complete(&done, "w").await.unwrap();

    // A retry with no delay comes straight back, one attempt further.
    queue.retry_later(&flaky, "w", Duration::ZERO, "flaky").await.unwrap();
    let again = queue.claim("q", "w", 10, LEASE).await.unwrap().remove(0);
    assert_eq!((again.attempt, &again.payload), (2, &flaky.payload));
    queue.bury(&again, "w", "gave up").await.unwrap();

    let dead = queue.dead("q", &DeadSelector::default()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].last_error.as_deref()), (2, Some("gave up")));
    // Listing put them back: they are still there to replay.
    let by_kind = DeadSelector { kind: Some("test.noop".into()), ..Default::default() };
    assert_eq!(queue.replay("q", &by_kind).await.unwrap(), 1);
    let replayed = queue.claim("q", "w", 10, LEASE).await.unwrap().remove(0);
    assert_eq!((replayed.attempt, &replayed.payload), (1, &flaky.payload));
    queue.bury(&replayed, "w", "still broken").await.unwrap();
    assert_eq!(queue.purge("q", &DeadSelector::default()).await.unwrap(), 1);
    assert!(queue.dead("q", &DeadSelector::default()).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn a_bad_receipt_handle_does_not_keep_the_other_leases_from_being_extended() {
    let queue = fresh_queue().await;
    queue.enqueue(vec![job(1), job(2)]).await.unwrap();
    let short = Duration::from_secs(2);
    let mut held = queue.claim("q", "w", 10, short).await.unwrap();
    while held.len() < 2 {
        held.extend(queue.claim("q", "w", 10, short).await.unwrap());
    }
    // The first handle is one SQS no longer knows (its message deleted meanwhile, say).
    let gone = tasklane_jobs::Delivery { id: "not-a-receipt-handle".into(), ..held[0].clone() };
    let all = [gone, held[0].clone(), held[1].clone()];
    let err = queue.extend(&all, "w", LEASE).await.unwrap_err();
    assert!(err.to_string().starts_with("1 of 3"), "{err}");
    // Well past the short lease, the two real ones are still held: nobody else receives them.
    let until = std::time::Instant::now() + short * 2;
    while std::time::Instant::now() < until {
        assert!(queue.claim("q", "other", 10, LEASE).await.unwrap().is_empty(), "a lease was not extended");
    }
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn released_messages_are_visible_again_at_once() {
    let queue = fresh_queue().await;
    queue.enqueue(vec![job(1)]).await.unwrap();
    let held = queue.claim("q", "leaving", 10, LEASE).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(queue.release("leaving").await.unwrap(), 1);
    let taken = queue.claim("q", "staying", 10, LEASE).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempt, 2, "SQS counts every receive");
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn routed_queues_ride_sqs_and_the_others_ride_redis() {
    use std::sync::Arc;
    use tasklane_jobs::routed::Routed;

    let sqs = Arc::new(fresh_queue().await);
    sqs.init_queue("events", Duration::from_secs(30), 8).await.unwrap();
    let redis = Arc::new(common::redis_queue_with_prefix(&common::redis_prefix()));
    let routed = Routed::new(vec![("events".to_owned(), sqs.clone() as Arc<dyn Transport>)], redis.clone());
    let to = |queue: &str| NewJob { queue: queue.to_owned(), ..job(1) };
    routed.enqueue(vec![to("events"), to("slow"), to("slow")]).await.unwrap();
    assert_eq!(sqs.stats("events").await.unwrap().ready, 1);
    assert_eq!(redis.stats("slow").await.unwrap().ready, 2);
    assert_eq!(routed.stats("slow").await.unwrap().transport, "redis");
    let claimed = routed.claim("events", "w", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    routed.complete(&claimed[0], "w").await.unwrap();
    assert_eq!(sqs.stats("events").await.unwrap().in_flight + sqs.stats("events").await.unwrap().ready, 0);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn the_redrive_policy_dead_letters_a_job_that_crashes_its_worker_after_the_configured_receives() {
    let queue = common::sqs_queue().await;
    queue.init_queue("q", Duration::from_secs(30), 2).await.unwrap();
    queue.enqueue(vec![job(1)]).await.unwrap();
    // A worker that dies mid-job every time: it receives the job and never acknowledges it.
    let short = Duration::from_secs(1);
    for expected in 1..=2 {
        let mut got = queue.claim("q", "crashing", 10, short).await.unwrap();
        while got.is_empty() {
            got = queue.claim("q", "crashing", 10, short).await.unwrap();
        }
        assert_eq!(got[0].attempt, expected);
    }
    // The next receive finds nothing: SQS itself moved the job to the DLQ.
    common::wait_until("SQS to move the job to the DLQ", Duration::from_secs(60), async || {
        let claimed = queue.claim("q", "crashing", 10, short).await.unwrap();
        assert!(claimed.is_empty(), "a third delivery: {claimed:?}");
        queue.stats("q").await.unwrap().dead == 1
    })
    .await;
    let dead = queue.dead("q", &DeadSelector::default()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, serde_json::json!({ "n": 1 }));
}
