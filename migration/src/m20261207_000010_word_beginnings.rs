//! A search for a beginning of one or two characters (what a search box sends first) walks one
//! row list: every task gets a `task_words` row per such beginning of its words, written as
//! the beginning and a `*` (see `tasklane_entity::task_words::beginning_row`). Without them
//! such a search read the rows of every word the beginning stands for, thousands of tasks.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use tasklane_entity::task_words::MAX_BEGINNING_CHARS;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000010_word_beginnings"
    }
}

/// Task ids whose beginnings are written per transaction.
const BACKFILL_TASK_IDS: i64 = 1_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        // Derived from the word rows in SQL, so the tasks' text is not read again. A database
        // created at this version already has them (migration 9 writes them), hence the
        // ignored duplicates; `NOT LIKE '%*'` keeps beginnings from being derived from beginnings.
        let (insert, beginning, length) = match backend {
            DbBackend::MySql => ("INSERT IGNORE", "CONCAT(LEFT(word, {n}), '*')", "CHAR_LENGTH(word)"),
            _ => ("INSERT OR IGNORE", "substr(word, 1, {n}) || '*'", "length(word)"),
        };
        let mut next = Some(0_i64);
        while let Some(start) = next {
            let end = start + BACKFILL_TASK_IDS;
            let txn = db.begin().await?;
            for n in 1..=MAX_BEGINNING_CHARS {
                let beginning = beginning.replace("{n}", &n.to_string());
                let sql = format!(
                    "{insert} INTO task_words (task_id, word, created_at, updated_at, urgency_key, deadline_key) \
                     SELECT DISTINCT task_id, {beginning}, created_at, updated_at, urgency_key, deadline_key \
                     FROM task_words WHERE task_id >= ? AND task_id < ? AND {length} >= {n} AND word NOT LIKE '%*'"
                );
                txn.execute_raw(Statement::from_sql_and_values(backend, sql, [start.into(), end.into()])).await?;
            }
            txn.commit().await?;
            // Task ids may have gaps of any size: the next batch starts at the next task that has words.
            let following = Statement::from_sql_and_values(
                backend,
                "SELECT MIN(task_id) AS next FROM task_words WHERE task_id >= ?",
                [end.into()],
            );
            next = db
                .query_one_raw(following)
                .await?
                .map(|row| row.try_get::<Option<i64>>("", "next"))
                .transpose()?
                .flatten();
        }
        Ok(())
    }
}
