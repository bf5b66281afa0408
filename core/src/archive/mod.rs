//! The event archive: every task event kept for analysis. `local` keeps them in the
//! application database; `dynamodb` copies them to a DynamoDB table (keyed by task and time,
//! with an index by actor) and, once copied and older than the retention period, prunes them
//! from the database. Copies are keyed by event id, so writing one twice leaves one item.

pub mod dynamodb;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::task_events;

use tasklane_jobs::Job;

use crate::config::ArchiveStore;
use crate::tasks::EventView;
use crate::{AppContext, Result, queues};

/// Which events `tasklane archive query` reads back.
#[derive(Clone, Debug)]
pub enum ArchiveQuery {
    /// One task's events.
    Task(i64),
    /// Everything one user did.
    Actor(i64),
}

/// Copies events not yet archived to the archive store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArchiveSweep {
    /// The sweep's time slot, so replicas enqueue each sweep once.
    pub slot: i64,
}

impl Job for ArchiveSweep {
    const KIND: &'static str = "events.archive";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("archive:{}", self.slot))
    }
}

/// Deletes archived events older than the retention period from the database.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneEvents {
    /// The prune's time slot.
    pub slot: i64,
}

impl Job for PruneEvents {
    const KIND: &'static str = "events.prune";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("prune:{}", self.slot))
    }
}

/// Events read from the database per archive batch.
const SWEEP_BATCH: u64 = 500;
/// How long one sweep job keeps going before leaving the rest to the next.
const SWEEP_BUDGET: Duration = Duration::from_secs(20);

/// Archives events until none are left or the time budget is spent; returns how many.
pub async fn sweep(app: &AppContext) -> Result<usize> {
    if app.config.archive.store == ArchiveStore::Local {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    let mut archived = 0;
    while started.elapsed() < SWEEP_BUDGET {
        let events = task_events::Entity::find()
            .filter(task_events::Column::ArchivedAt.is_null())
            .order_by_asc(task_events::Column::Id)
            .limit(SWEEP_BATCH)
            .all(&app.db)
            .await?;
        if events.is_empty() {
            break;
        }
        let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
        let batch: Vec<EventView> = events.into_iter().map(EventView::from).collect();
        dynamodb::write(app.outbound.dynamodb().await, &app.config.archive.dynamodb_table, &batch).await?;
        task_events::Entity::update_many()
            .col_expr(task_events::Column::ArchivedAt, Expr::value(crate::stored_now()))
            .filter(task_events::Column::Id.is_in(ids.clone()))
            .exec(&app.db)
            .await?;
        archived += ids.len();
        metrics::counter!("tasklane_events_archived_total").increment(ids.len() as u64);
        if (ids.len() as u64) < SWEEP_BATCH {
            break;
        }
    }
    Ok(archived)
}

/// Deletes events archived to DynamoDB and older than the retention period; returns how many.
/// Nothing is pruned with the `local` archive: the database is the archive.
///
/// An event goes once the task's next event, which replaced its state, is also past the
/// cutoff (or once the task's deletion is): a task's state at the cutoff stays, and with it
/// reports of every period inside the retention.
pub async fn prune(app: &AppContext, now: DateTime<Utc>) -> Result<u64> {
    if app.config.archive.store == ArchiveStore::Local {
        return Ok(0);
    }
    let cutoff = crate::stored(retention_horizon(app, now));
    let result = task_events::Entity::delete_many()
        .filter(task_events::Column::ArchivedAt.is_not_null())
        .filter(
            Condition::any().add(task_events::Column::SupersededAt.lt(cutoff)).add(
                Condition::all()
                    .add(task_events::Column::Kind.eq("task.deleted"))
                    .add(task_events::Column::CreatedAt.lt(cutoff)),
            ),
        )
        .exec(&app.db)
        .await?;
    Ok(result.rows_affected)
}

/// The oldest instant whose events the database still holds in full at `now`: the retention
/// cutoff with the DynamoDB archive, none with the local one.
pub fn retention_horizon(app: &AppContext, now: DateTime<Utc>) -> DateTime<Utc> {
    match app.config.archive.store {
        ArchiveStore::Local => DateTime::<Utc>::MIN_UTC,
        ArchiveStore::Dynamodb => now - chrono::Duration::days(i64::from(app.config.archive.retention_days)),
    }
}

/// Creates the archive's storage (the DynamoDB table and its index) if it does not exist;
/// says what it did.
pub async fn init(app: &AppContext) -> anyhow::Result<String> {
    match app.config.archive.store {
        ArchiveStore::Local => Ok("the local archive is the task_events table; nothing to create".into()),
        ArchiveStore::Dynamodb => {
            dynamodb::create_table(app.outbound.dynamodb().await, &app.config.archive.dynamodb_table).await
        }
    }
}

/// Reads archived events back, oldest first, optionally only those since `since`.
pub async fn query(app: &AppContext, query: &ArchiveQuery, since: Option<DateTime<Utc>>) -> Result<Vec<EventView>> {
    match app.config.archive.store {
        ArchiveStore::Local => {
            let mut select = task_events::Entity::find().order_by_asc(task_events::Column::CreatedAt);
            select = match query {
                ArchiveQuery::Task(id) => select.filter(task_events::Column::TaskId.eq(*id)),
                ArchiveQuery::Actor(id) => select.filter(task_events::Column::ActorId.eq(*id)),
            };
            if let Some(since) = since {
                select = select.filter(task_events::Column::CreatedAt.gte(crate::stored(since)));
            }
            let events = select.order_by_asc(task_events::Column::Id).all(&app.db).await?;
            Ok(events.into_iter().map(EventView::from).collect())
        }
        ArchiveStore::Dynamodb => {
            Ok(dynamodb::query(app.outbound.dynamodb().await, &app.config.archive.dynamodb_table, query, since).await?)
        }
    }
}
