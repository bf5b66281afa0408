//! The embedded queue: jobs in the configured SQL database (SQLite or MySQL), so a small
//! deployment needs neither Redis nor AWS. Workers claim due jobs in batches under a lease
//! (`FOR UPDATE SKIP LOCKED` on MySQL, the single writer on SQLite); every acknowledgement is
//! fenced by worker and attempt, so a worker whose lease was taken over cannot touch the job.
//!
//! The application creates the `jobs` table with its other migrations: the columns of
//! [`table::Model`], a unique index on (`queue`, `dedup_key`) and an index on (`queue`,
//! `state`, `run_at`, `id`) for claiming.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
mod table;

use table::{Column, Entity};

use crate::grouped::Grouped;
use crate::transport::Sent;
use crate::{DeadJob, DeadSelector, Delivery, NewJob, QueueStats, Result, Transport};

const READY: &str = "ready";
const RUNNING: &str = "running";
const DEAD: &str = "dead";

/// The SQL-backed transport.
#[derive(Clone)]
pub struct SqlQueue {
    db: DatabaseConnection,
    /// Finished jobs are deleted in groups; each keeps its own fence, so a late
    /// acknowledgement still deletes nothing.
    completions: Arc<Grouped<Condition>>,
}

impl SqlQueue {
    /// A queue in `db` (migrated with the rest of the schema).
    pub fn new(db: DatabaseConnection) -> Self {
        let deleting = db.clone();
        let completions = Grouped::new(COMPLETE_BATCH, move |fences: Vec<Condition>| {
            let db = deleting.clone();
            async move {
                let any = fences.into_iter().fold(Condition::any(), Condition::add);
                retrying(|| Entity::delete_many().filter(any.clone()).exec(&db))
                    .await
                    .map(|_| ())
                    .map_err(|err| format!("{err:#}"))
            }
        });
        Self { db, completions: Arc::new(completions) }
    }
}

/// Most finished jobs deleted by one statement.
const COMPLETE_BATCH: usize = 256;

/// Runs `operation` again when the database broke a deadlock by aborting it: concurrent
/// claims and acknowledgements lock the same index entries in different orders on MySQL.
async fn retrying<T, F, Fut>(mut operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sea_orm::DbErr>>,
{
    let mut tries = 0;
    loop {
        match operation().await {
            Err(err) if tries < 8 && is_transient_conflict(&err) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(2 << tries)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// True when the database aborted a statement to break a deadlock or a lock wait; it can
/// simply be run again.
fn is_transient_conflict(err: &sea_orm::DbErr) -> bool {
    let text = err.to_string();
    // MySQL/MariaDB 1213 (deadlock) and 1205 (lock wait timeout); SQLite "database is locked".
    text.contains("1213") || text.contains("1205") || text.contains("database is locked")
}

fn after(at: chrono::NaiveDateTime, delay: Duration) -> chrono::NaiveDateTime {
    at + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

/// The database's clock `delay` from now (UTC, a naive date-time as the table stores it), as an
/// expression of the statement that writes or compares it. Every time the table holds is
/// written and compared with it, so workers on machines whose clocks disagree still agree on
/// when a job is due and when a lease has run out. On MySQL the statement reads the server's
/// `UTC_TIMESTAMP(6)` itself, without a round trip to ask for it first. SQLite runs inside
/// this process, so its clock is the process's own: read here to the microsecond, because
/// SQLite's `'now'` has only milliseconds and a job written a moment ago would not yet be due
/// by it.
fn database_time(backend: DbBackend, delay: Duration) -> Expr {
    if backend != DbBackend::MySql {
        return Expr::val(after(crate::now().naive_utc(), delay));
    }
    match i64::try_from(delay.as_micros()) {
        Ok(0) => Expr::cust("UTC_TIMESTAMP(6)"),
        Ok(micros) => Expr::cust_with_values("UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND", [micros]),
        Err(_) => Expr::val(chrono::NaiveDateTime::MAX),
    }
}

/// [`database_time`] now, read as a value (for a queue's statistics, which report ages).
async fn database_now(db: &impl ConnectionTrait) -> std::result::Result<chrono::NaiveDateTime, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    if backend != DbBackend::MySql {
        return Ok(crate::now().naive_utc());
    }
    let sql = "SELECT CAST(UTC_TIMESTAMP(6) AS CHAR) AS now";
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("the database did not say what time it is".into()))?;
    let text: String = row.try_get("", "now")?;
    chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
        .map_err(|err| sea_orm::DbErr::Custom(format!("the database's time {text:?} does not parse: {err}")))
}

fn delivery(row: table::Model) -> Delivery {
    Delivery {
        id: row.id.to_string(),
        queue: row.queue,
        kind: row.kind,
        version: u16::try_from(row.version).unwrap_or(0),
        payload: row.payload,
        attempt: u32::try_from(row.attempts).unwrap_or(0),
        enqueued_at: row.enqueued_at.and_utc(),
    }
}

/// Clears the lease: the job is no longer held by any worker.
fn unleased(update: sea_orm::UpdateMany<Entity>) -> sea_orm::UpdateMany<Entity> {
    update
        .col_expr(Column::LeaseUntil, Expr::value(Option::<chrono::NaiveDateTime>::None))
        .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
}

/// The row a delivery may still acknowledge: same id, same worker, same attempt.
fn fenced(delivery: &Delivery, worker: &str) -> Condition {
    Condition::all()
        .add(Column::Id.eq(delivery.id.parse::<i64>().unwrap_or(-1)))
        .add(Column::State.eq(RUNNING))
        .add(Column::LeaseOwner.eq(worker))
        .add(Column::Attempts.eq(delivery.attempt as i32))
}

fn selected(queue: &str, selector: &DeadSelector) -> Condition {
    let mut condition = Condition::all().add(Column::Queue.eq(queue)).add(Column::State.eq(DEAD));
    if !selector.ids.is_empty() {
        let ids: Vec<i64> = selector.ids.iter().filter_map(|id| id.parse().ok()).collect();
        condition = condition.add(Column::Id.is_in(ids));
    }
    if let Some(kind) = &selector.kind {
        condition = condition.add(Column::Kind.eq(kind.as_str()));
    }
    condition
}

/// Inserts jobs through `db` (a pool or a transaction), skipping duplicate dedup keys.
/// Rows per insert statement: SQLite allows at most 32,766 bound values in one.
const INSERT_CHUNK: usize = 500;

async fn insert(db: &impl ConnectionTrait, new_jobs: Vec<NewJob>) -> Result<()> {
    for chunk in new_jobs.chunks(INSERT_CHUNK) {
        insert_chunk(db, chunk).await?;
    }
    Ok(())
}

async fn insert_chunk(db: &impl ConnectionTrait, new_jobs: &[NewJob]) -> Result<()> {
    let now = database_time(db.get_database_backend(), Duration::ZERO);
    let mut insert = Query::insert();
    insert
        .into_table(Entity)
        .columns([
            Column::Queue,
            Column::Kind,
            Column::Version,
            Column::Payload,
            Column::DedupKey,
            Column::State,
            Column::Attempts,
            Column::RunAt,
            Column::EnqueuedAt,
        ])
        .on_conflict(OnConflict::columns([Column::Queue, Column::DedupKey]).do_nothing_on([Column::Id]).to_owned());
    for job in new_jobs {
        let row: [Expr; 9] = [
            Expr::val(job.queue.as_str()),
            Expr::val(job.kind.as_str()),
            Expr::val(job.version as i16),
            Expr::val(job.payload.clone()),
            Expr::val(job.dedup_key.clone()),
            Expr::val(READY),
            Expr::val(0),
            now.clone(),
            now.clone(),
        ];
        insert.values(row).map_err(|err| sea_orm::DbErr::Custom(err.to_string()))?;
    }
    db.execute(&insert).await?;
    Ok(())
}

impl SqlQueue {
    /// One attempt at claiming (see [`Transport::claim`]).
    async fn claim_once(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> std::result::Result<Vec<Delivery>, sea_orm::DbErr> {
        let txn = crate::transactions::begin(&self.db).await?;
        let backend = txn.get_database_backend();
        let now = || database_time(backend, Duration::ZERO);
        let skip_locked = backend == DbBackend::MySql;
        let lock = |select: sea_orm::Select<Entity>| {
            if skip_locked { select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked) } else { select }
        };
        // Due jobs in index order; other claimers skip the rows locked here instead of waiting.
        let mut rows = lock(
            Entity::find()
                .filter(Column::Queue.eq(queue))
                .filter(Column::State.eq(READY))
                .filter(Expr::col(Column::RunAt).lte(now()))
                .order_by_asc(Column::RunAt)
                .order_by_asc(Column::Id)
                .limit(max as u64),
        )
        .all(&txn)
        .await?;
        if rows.len() < max {
            // Jobs of a worker that died come back once their lease has run out.
            let orphans = lock(
                Entity::find()
                    .filter(Column::Queue.eq(queue))
                    .filter(Column::State.eq(RUNNING))
                    .filter(Expr::col(Column::LeaseUntil).lt(now()))
                    .limit((max - rows.len()) as u64),
            )
            .all(&txn)
            .await?;
            rows.extend(orphans);
        }
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        Entity::update_many()
            .col_expr(Column::State, Expr::value(RUNNING))
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .col_expr(Column::LeaseUntil, database_time(backend, lease))
            .col_expr(Column::LeaseOwner, Expr::value(worker))
            .filter(Column::Id.is_in(ids))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows
            .into_iter()
            .map(|mut row| {
                row.attempts += 1;
                delivery(row)
            })
            .collect())
    }

    /// Ids of the dead jobs a selector takes, honouring its limit.
    async fn selected_ids(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<i64>> {
        let mut query = Entity::find().select_only().column(Column::Id).filter(selected(queue, selector));
        if let Some(limit) = selector.limit {
            query = query.limit(limit);
        }
        Ok(query.order_by_asc(Column::Id).into_tuple::<i64>().all(&self.db).await?)
    }
}

#[async_trait::async_trait]
impl Transport for SqlQueue {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn shares_database(&self) -> bool {
        true
    }

    async fn enqueue(&self, new_jobs: Vec<NewJob>) -> Result<()> {
        let sent = Sent::of(&new_jobs);
        insert(&self.db, new_jobs).await?;
        sent.record();
        Ok(())
    }

    async fn enqueue_within(&self, txn: &sea_orm::DatabaseTransaction, new_jobs: Vec<NewJob>) -> Result<()> {
        let sent = Sent::of(&new_jobs);
        insert(txn, new_jobs).await?;
        sent.record();
        Ok(())
    }

    async fn claim(&self, queue: &str, worker: &str, max: usize, lease: Duration) -> Result<Vec<Delivery>> {
        retrying(|| self.claim_once(queue, worker, max, lease)).await
    }

    async fn extend(&self, deliveries: &[Delivery], worker: &str, lease: Duration) -> Result<()> {
        let ids: Vec<i64> = deliveries.iter().filter_map(|d| d.id.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let db = &self.db;
        retrying(|| {
            let ids = ids.clone();
            async move {
                Entity::update_many()
                    .col_expr(Column::LeaseUntil, database_time(db.get_database_backend(), lease))
                    .filter(Column::Id.is_in(ids))
                    .filter(Column::State.eq(RUNNING))
                    .filter(Column::LeaseOwner.eq(worker))
                    .exec(db)
                    .await
            }
        })
        .await?;
        Ok(())
    }

    async fn complete(&self, delivery: &Delivery, worker: &str) -> Result<()> {
        self.completions.submit(fenced(delivery, worker)).await
    }

    async fn retry_later(&self, delivery: &Delivery, worker: &str, delay: Duration, error: &str) -> Result<()> {
        let db = &self.db;
        retrying(|| async move {
            unleased(Entity::update_many())
                .col_expr(Column::State, Expr::value(READY))
                .col_expr(Column::RunAt, database_time(db.get_database_backend(), delay))
                .col_expr(Column::LastError, Expr::value(error))
                .filter(fenced(delivery, worker))
                .exec(db)
                .await
        })
        .await?;
        Ok(())
    }

    async fn bury(&self, delivery: &Delivery, worker: &str, error: &str) -> Result<()> {
        let db = &self.db;
        retrying(|| async move {
            unleased(Entity::update_many())
                .col_expr(Column::State, Expr::value(DEAD))
                .col_expr(Column::DeadAt, database_time(db.get_database_backend(), Duration::ZERO))
                .col_expr(Column::LastError, Expr::value(error))
                .filter(fenced(delivery, worker))
                .exec(db)
                .await
        })
        .await?;
        Ok(())
    }

    async fn release(&self, worker: &str) -> Result<u64> {
        // A released job was handed out but not finished; it does not count as an attempt.
        let released = unleased(Entity::update_many())
            .col_expr(Column::State, Expr::value(READY))
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
            .filter(Column::State.eq(RUNNING))
            .filter(Column::LeaseOwner.eq(worker))
            .exec(&self.db)
            .await?;
        Ok(released.rows_affected)
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let now = database_now(&self.db).await?;
        let count =
            |condition: Condition| Entity::find().filter(Column::Queue.eq(queue)).filter(condition).count(&self.db);
        let ready = count(Condition::all().add(Column::State.eq(READY)).add(Column::RunAt.lte(now))).await?;
        let scheduled = count(Condition::all().add(Column::State.eq(READY)).add(Column::RunAt.gt(now))).await?;
        let in_flight = count(Condition::all().add(Column::State.eq(RUNNING))).await?;
        let dead = count(Condition::all().add(Column::State.eq(DEAD))).await?;
        let oldest: Option<chrono::NaiveDateTime> = Entity::find()
            .select_only()
            .column_as(Column::EnqueuedAt.min(), "oldest")
            .filter(Column::Queue.eq(queue))
            .filter(Column::State.ne(DEAD))
            .into_tuple::<Option<chrono::NaiveDateTime>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok(QueueStats {
            queue: queue.to_owned(),
            transport: self.name(),
            ready,
            in_flight,
            scheduled,
            dead,
            oldest_age_secs: oldest.map(|at| u64::try_from((now - at).num_seconds()).unwrap_or(0)),
        })
    }

    async fn dead(&self, queue: &str, selector: &DeadSelector) -> Result<Vec<DeadJob>> {
        let mut query = Entity::find().filter(selected(queue, selector)).order_by_asc(Column::Id);
        if let Some(limit) = selector.limit {
            query = query.limit(limit);
        }
        let rows = query.all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|row| DeadJob {
                id: row.id.to_string(),
                queue: row.queue,
                kind: row.kind,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                last_error: row.last_error,
                payload: row.payload,
                dead_at: row.dead_at.map(|at| DateTime::<Utc>::from_naive_utc_and_offset(at, Utc)),
            })
            .collect())
    }

    async fn replay(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        let ids = self.selected_ids(queue, selector).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let replayed = Entity::update_many()
            .col_expr(Column::State, Expr::value(READY))
            .col_expr(Column::Attempts, Expr::value(0))
            .col_expr(Column::RunAt, database_time(self.db.get_database_backend(), Duration::ZERO))
            .col_expr(Column::DeadAt, Expr::value(Option::<chrono::NaiveDateTime>::None))
            .filter(Column::Id.is_in(ids))
            .filter(Column::State.eq(DEAD))
            .exec(&self.db)
            .await?;
        Ok(replayed.rows_affected)
    }

    async fn purge(&self, queue: &str, selector: &DeadSelector) -> Result<u64> {
        let ids = self.selected_ids(queue, selector).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let purged =
            Entity::delete_many().filter(Column::Id.is_in(ids)).filter(Column::State.eq(DEAD)).exec(&self.db).await?;
        Ok(purged.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Timelike;

    #[tokio::test]
    async fn the_sqlite_clock_has_the_microseconds_that_jobs_are_written_with() {
        // SQLite's own `'now'` stops at milliseconds: a job written at 12.3456 s would not be due
        // by it until 12.346 s, and a claim within that millisecond would miss it.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let mut sub_millisecond = Vec::new();
        for _ in 0..5 {
            sub_millisecond.push(super::database_now(&db).await.unwrap().nanosecond() % 1_000_000);
        }
        assert!(sub_millisecond.iter().any(|&part| part != 0), "{sub_millisecond:?}");
    }
}
