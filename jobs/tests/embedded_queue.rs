//! The embedded SQL queue against a real database (SQLite, or MariaDB with
//! `TASKLANE_TEST_MYSQL_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::fresh_db;
use tasklane_jobs::embedded::SqlQueue;
use tasklane_jobs::{DeadSelector, NewJob, Transport};

const LEASE: Duration = Duration::from_secs(30);

fn job(queue: &str, n: u32, dedup: Option<&str>) -> NewJob {
    NewJob {
        queue: queue.to_owned(),
        kind: "test.noop".to_owned(),
        version: 1,
        payload: serde_json::json!({ "n": n }),
        dedup_key: dedup.map(str::to_owned),
    }
}

#[tokio::test]
async fn publish_claim_complete_and_dedup() {
    let test = fresh_db().await;
    let queue = SqlQueue::new(test.db.clone());
    let jobs = vec![job("q", 1, Some("a")), job("q", 2, Some("a")), job("q", 3, None), job("other", 4, None)];
    queue.enqueue(jobs).await.unwrap();
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight, stats.dead), (2, 0, 0), "the second 'a' was deduplicated");

    let claimed = queue.claim("q", "w1", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|d| d.attempt == 1 && d.queue == "q"));
    assert!(queue.claim("q", "w2", 10, LEASE).await.unwrap().is_empty(), "leased jobs are not handed out twice");
    assert_eq!(queue.stats("q").await.unwrap().in_flight, 2);
    for delivery in &claimed {
        queue.complete(delivery, "w1").await.unwrap();
    }
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
    assert_eq!(queue.stats("other").await.unwrap().ready, 1);
}

#[tokio::test]
async fn a_job_is_due_the_moment_it_is_enqueued() {
    // Enqueue and claim are written and compared with one clock to the microsecond: on a fast
    // machine a claim within the same millisecond as the enqueue still finds the job.
    let test = fresh_db().await;
    let queue = SqlQueue::new(test.db.clone());
    for n in 0..50 {
        queue.enqueue(vec![job("q", n, None)]).await.unwrap();
        let claimed = queue.claim("q", "w", 1, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1, "job {n} was not due right after it was enqueued");
        queue.complete(&claimed[0], "w").await.unwrap();
    }
}

#[tokio::test]
async fn retries_then_the_dead_letter_queue_then_replay_and_purge() {
    let test = fresh_db().await;
    let queue = SqlQueue::new(test.db.clone());
    queue.enqueue(vec![job("q", 1, None), job("q", 2, None)]).await.unwrap();

    // A retry in the future is scheduled, not due.
    let first = queue.claim("q", "w", 1, LEASE).await.unwrap().remove(0);
    queue.retry_later(&first, "w", Duration::from_secs(3600), "not yet").await.unwrap();
    let stats = queue.stats("q").await.unwrap();
    assert_eq!((stats.ready, stats.scheduled), (1, 1));

    // A due retry comes back with the next attempt number, until it is buried.
    let second = queue.claim("q", "w", 1, LEASE).await.unwrap().remove(0);
    assert_ne!(second.id, first.id);
    queue.retry_later(&second, "w", Duration::ZERO, "flaky").await.unwrap();
    let again = queue.claim("q", "w", 1, LEASE).await.unwrap().remove(0);
    assert_eq!((again.id.as_str(), again.attempt), (second.id.as_str(), 2));
    queue.bury(&again, "w", "gave up").await.unwrap();

    let dead = queue.dead("q", &DeadSelector::default()).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("gave up"));
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(queue.stats("q").await.unwrap().dead, 1);

    let by_kind = DeadSelector { kind: Some("other.kind".into()), ..Default::default() };
    assert_eq!(queue.replay("q", &by_kind).await.unwrap(), 0);
    let by_id = DeadSelector { ids: vec![dead[0].id.clone()], ..Default::default() };
    assert_eq!(queue.replay("q", &by_id).await.unwrap(), 1);
    let replayed = queue.claim("q", "w", 1, LEASE).await.unwrap().remove(0);
    assert_eq!((replayed.id.as_str(), replayed.attempt), (dead[0].id.as_str(), 1));
    queue.bury(&replayed, "w", "still broken").await.unwrap();
    assert_eq!(queue.purge("q", &DeadSelector::default()).await.unwrap(), 1);
    assert_eq!(queue.stats("q").await.unwrap().dead, 0);
}

#[tokio::test]
async fn a_dead_workers_jobs_come_back_and_its_late_acks_are_ignored() {
    let test = fresh_db().await;
    let queue = SqlQueue::new(test.db.clone());
    queue.enqueue(vec![job("q", 1, None)]).await.unwrap();
    let stale = queue.claim("q", "dead-worker", 1, Duration::ZERO).await.unwrap().remove(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let taken = loop {
        let claimed = queue.claim("q", "live-worker", 1, LEASE).await.unwrap();
        if let Some(delivery) = claimed.into_iter().next() {
            break delivery;
        }
        assert!(std::time::Instant::now() < deadline, "the expired lease was never taken over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((taken.id.as_str(), taken.attempt), (stale.id.as_str(), 2));
    // The first worker wakes up and acknowledges: fenced off, the job stays with the second.
    queue.complete(&stale, "dead-worker").await.unwrap();
    queue.bury(&stale, "dead-worker", "late").await.unwrap();
    assert_eq!(queue.stats("q").await.unwrap().in_flight, 1);
    queue.complete(&taken, "live-worker").await.unwrap();
    assert_eq!(queue.stats("q").await.unwrap().in_flight, 0);
}

#[tokio::test]
async fn release_hands_jobs_back_without_spending_an_attempt() {
    let test = fresh_db().await;
    let queue = SqlQueue::new(test.db.clone());
    queue.enqueue(vec![job("q", 1, None), job("q", 2, None)]).await.unwrap();
    let held = queue.claim("q", "leaving", 2, LEASE).await.unwrap();
    queue.extend(&held, "leaving", LEASE).await.unwrap();
    assert_eq!(queue.release("leaving").await.unwrap(), 2);
    let again = queue.claim("q", "staying", 2, LEASE).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|d| d.attempt == 1));
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_job() {
    let test = fresh_db().await;
    let queue = SqlQueue::new(test.db.clone());
    queue.enqueue((0..200).map(|n| job("q", n, None)).collect()).await.unwrap();
    let mut workers = Vec::new();
    for w in 0..4 {
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let mut seen = Vec::new();
            loop {
                let claimed = queue.claim("q", &name, 7, LEASE).await.unwrap();
                if claimed.is_empty() {
                    return seen;
                }
                for delivery in claimed {
                    queue.complete(&delivery, &name).await.unwrap();
                    seen.push(delivery.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (200, 200));
}

#[tokio::test]
async fn leases_are_timed_by_the_database_clock() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let test = fresh_db().await;
    // On MariaDB, one connection whose clock runs an hour ahead stands for a database server
    // whose clock disagrees with this process's; SQLite's clock is the process's own.
    let skew = match test.db.get_database_backend() {
        DbBackend::MySql => chrono::Duration::hours(1),
        _ => chrono::Duration::zero(),
    };
    let db = sea_orm::Database::connect(sea_orm::ConnectOptions::new(test.url.clone()).max_connections(1).to_owned())
        .await
        .unwrap();
    if skew > chrono::Duration::zero() {
        db.execute_unprepared("SET timestamp = UNIX_TIMESTAMP() + 3600").await.unwrap();
    }
    let queue = SqlQueue::new(db.clone());
    queue.enqueue(vec![job("q", 1, None)]).await.unwrap();
    let held = queue.claim("q", "w", 1, LEASE).await.unwrap();
    assert_eq!(held.len(), 1);
    let lease_of = || async {
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT lease_until FROM jobs"))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<chrono::NaiveDateTime>("", "lease_until").unwrap().and_utc()
    };
    let expected = chrono::Utc::now() + skew + chrono::Duration::from_std(LEASE).unwrap();
    let claimed_lease = lease_of().await;
    assert!(
        (claimed_lease - expected).num_seconds().abs() < 5,
        "lease until {claimed_lease}, expected about {expected}"
    );
    queue.extend(&held, "w", LEASE * 2).await.unwrap();
    let extended = lease_of().await;
    assert!((extended - claimed_lease).num_seconds() >= 25, "extended to {extended} from {claimed_lease}");
}
