//! A transaction whose caller is cancelled while it begins leaves no transaction open on the
//! pooled connection (MariaDB; SQLx counts a transaction only once `BEGIN` has answered).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, Statement};
use tasklane_jobs::transactions::begin;

#[tokio::test]
async fn a_begin_cancelled_midway_leaves_no_transaction_open() {
    let test = common::fresh_db().await;
    if !test.url.starts_with("mysql:") {
        return;
    }
    // One connection, so each check reads the connection the cancelled `BEGIN` used.
    let mut options = ConnectOptions::new(test.url.clone());
    options.sqlx_logging(false).max_connections(1).min_connections(1);
    let db = Database::connect(options).await.unwrap();
    let in_transaction = async || {
        let check = Statement::from_string(db.get_database_backend(), "SELECT @@in_transaction");
        db.query_one_raw(check).await.unwrap().unwrap().try_get_by_index::<u64>(0).unwrap()
    };
    let (mut cancelled, mut left_open) = (0, 0);
    for micros in 0..3_000 {
        match tokio::time::timeout(Duration::from_micros(micros / 3), begin(&db)).await {
            Ok(txn) => drop(txn),
            Err(_) => cancelled += 1,
        }
        if in_transaction().await != 0 {
            left_open += 1;
            db.execute_unprepared("ROLLBACK").await.unwrap();
        }
    }
    assert!(cancelled > 10, "only {cancelled} BEGINs were cancelled");
    assert_eq!(left_open, 0, "of {cancelled} cancelled BEGINs, {left_open} left transactions open");
}
