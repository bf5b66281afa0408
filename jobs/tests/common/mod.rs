//! What the transport tests share: a fresh, migrated database per test (SQLite in a temporary
//! directory, or a new MariaDB/MySQL database when `TASKLANE_TEST_MYSQL_URL` names a server),
//! Redis and SQS transports under names of their own, and waiting with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rand::Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use tasklane_jobs::redis::RedisQueue;
use tasklane_jobs::sqs::SqsQueue;

/// A random name fit for a database, a key prefix or a queue name.
pub fn unique_name() -> String {
    let mut rng = rand::rng();
    (0..16).map(|_| char::from(b'a' + rng.random_range(0..26))).collect()
}

/// A database removed (SQLite) or left for `scripts/test` to drop (MySQL) after the test.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    dir: std::path::PathBuf,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh database with the embedded queue's table.
pub async fn fresh_db() -> TestDb {
    let name = unique_name();
    let dir = std::env::temp_dir().join(format!("tasklane-jobs-test-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = match std::env::var("TASKLANE_TEST_MYSQL_URL") {
        Ok(server) if !server.is_empty() => {
            let server = server.trim_end_matches('/').to_owned();
            let admin = Database::connect(&server).await.expect("cannot reach the MySQL test server");
            admin.execute_unprepared(&format!("CREATE DATABASE tl_test_{name}")).await.unwrap();
            admin.close().await.ok();
            format!("{server}/tl_test_{name}")
        }
        _ => format!("sqlite://{}/jobs.db?mode=rwc", dir.display()),
    };
    let mut options = sea_orm::ConnectOptions::new(url.clone());
    options.sqlx_logging(false).max_connections(8);
    if options.get_url().starts_with("sqlite:") {
        options.max_connections(1);
    }
    let db = Database::connect(options).await.unwrap();
    tasklane_migration::Migrator::up(&db, None).await.unwrap();
    TestDb { db, url, dir }
}

/// A Redis transport under a key prefix of its own.
pub fn redis_queue_with_prefix(prefix: &str) -> RedisQueue {
    let url = std::env::var("TASKLANE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    RedisQueue::connect(&url, prefix).unwrap()
}

/// A key prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("tl-test:{}:", unique_name())
}

/// An SQS transport (on the local emulator only) whose queues are named for this test alone.
pub async fn sqs_queue() -> SqsQueue {
    sqs_queue_with_prefix(&format!("tl-test-{}-", unique_name())).await
}

/// An SQS client on the local emulator only.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must point at the local emulator");
    assert!(endpoint.contains("127.0.0.1") || endpoint.contains("localhost"), "refusing to test against {endpoint}");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    aws_sdk_sqs::Client::new(&config)
}

/// An SQS transport whose queues are named `<prefix><queue>`.
pub async fn sqs_queue_with_prefix(prefix: &str) -> SqsQueue {
    SqsQueue::new(sqs_client().await, prefix)
}

/// Polls `done` until it holds, failing the test with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
