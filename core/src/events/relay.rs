//! The transactional outbox relay: publishes `task_events` rows that have no `published_at`
//! to the events queue in batches, then marks them published. Several relays may run at once:
//! on MySQL each batch is locked with `FOR UPDATE SKIP LOCKED`, on SQLite the single writer
//! serialises them. While the queue is unreachable nothing is marked, so every event goes out
//! once it is back (at least once; consumers deduplicate on the event id).

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tasklane_entity::task_events;
use tasklane_jobs::{NewJob, Transport};

use super::TaskEventJob;
use crate::{AppContext, Result};

/// Publishes one batch of unpublished events; returns how many went out.
pub async fn publish_batch(ctx: &AppContext, transport: &dyn Transport, batch: u64) -> Result<usize> {
    let mysql = ctx.db.get_database_backend() == DbBackend::MySql;
    if !transport.shares_database() && !mysql {
        // SQLite has one connection: holding a transaction while a remote queue answers (or
        // times out) would stall every API write. The single embedded relay needs no lock.
        return publish(&ctx.db, transport, batch, false).await;
    }
    // Read committed: the locking read then takes no gap locks, so task writes inserting new
    // events are never blocked behind a relay waiting on a slow queue.
    let isolation = mysql.then_some(sea_orm::IsolationLevel::ReadCommitted);
    let txn = tasklane_jobs::transactions::begin_with(&ctx.db, isolation, None).await?;
    let published = publish(&txn, transport, batch, mysql).await?;
    txn.commit().await?;
    Ok(published)
}

/// The outbox backlog: how many events wait to be published, and how many seconds the oldest
/// of them has waited (both read from the unpublished-events index).
pub async fn backlog(ctx: &AppContext) -> Result<(u64, f64)> {
    use sea_orm::PaginatorTrait;
    let unpublished = || task_events::Entity::find().filter(task_events::Column::PublishedAt.is_null());
    let waiting = unpublished().count(&ctx.db).await?;
    let oldest = unpublished().order_by_asc(task_events::Column::Id).one(&ctx.db).await?;
    let age =
        oldest.map_or(0.0, |event| (crate::stored_now() - event.created_at).num_milliseconds().max(0) as f64 / 1000.0);
    Ok((waiting, age))
}

/// Reads a batch, enqueues it and marks it published, all through `db`: inside a transaction
/// that holds the rows (so a refused enqueue leaves them unpublished), or directly.
async fn publish(
    db: &impl TransactionOrPool,
    transport: &dyn Transport,
    batch: u64,
    skip_locked: bool,
) -> Result<usize> {
    let mut pending = task_events::Entity::find()
        .filter(task_events::Column::PublishedAt.is_null())
        .order_by_asc(task_events::Column::Id)
        .limit(batch);
    if skip_locked {
        pending = pending.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let events = pending.all(db).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    let jobs: Vec<NewJob> = events.into_iter().map(TaskEventJob::outbound).collect();
    db.enqueue_through(transport, jobs).await?;
    task_events::Entity::update_many()
        .col_expr(task_events::Column::PublishedAt, Expr::value(crate::stored_now()))
        .filter(task_events::Column::Id.is_in(ids.clone()))
        .exec(db)
        .await?;
    Ok(ids.len())
}

/// A connection the relay can publish through: a transaction lets a transport that lives in
/// the same database enqueue atomically with marking the events published.
#[async_trait::async_trait]
trait TransactionOrPool: ConnectionTrait + Sync {
    async fn enqueue_through(&self, transport: &dyn Transport, jobs: Vec<NewJob>) -> Result<()>;
}

#[async_trait::async_trait]
impl TransactionOrPool for sea_orm::DatabaseTransaction {
    async fn enqueue_through(&self, transport: &dyn Transport, jobs: Vec<NewJob>) -> Result<()> {
        Ok(transport.enqueue_within(self, jobs).await?)
    }
}

#[async_trait::async_trait]
impl TransactionOrPool for sea_orm::DatabaseConnection {
    async fn enqueue_through(&self, transport: &dyn Transport, jobs: Vec<NewJob>) -> Result<()> {
        Ok(transport.enqueue(jobs).await?)
    }
}

/// Runs the relay until `shutdown` resolves: a batch right after events are written in this
/// process, otherwise every `poll` (for events written by other processes), and back-off while
/// the queue is unreachable.
pub async fn run(
    ctx: AppContext,
    transport: Arc<dyn Transport>,
    batch: u64,
    poll: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    loop {
        let wait = match publish_batch(&ctx, transport.as_ref(), batch).await {
            Ok(published) if published as u64 == batch => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                poll
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %err, failures, "outbox relay cannot publish; will retry");
                (poll * 2u32.saturating_pow(failures.min(5))).min(Duration::from_secs(5))
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = ctx.events_written.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
