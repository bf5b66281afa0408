//! Rebuilding work a queue lost (a Redis restarted without persistence, or failed over to an
//! empty replica): the database knows what should be queued, so it is queued again. Every
//! handler is idempotent, so work that was not lost after all runs once more and does nothing.

use chrono::Duration;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use tasklane_entity::{notifications, reports, task_events};
use tasklane_jobs::{NewJob, Transport};

use crate::notify::email::SendEmail;
use crate::notify::model::{Channel, DeliveryStatus};
use crate::reports::ReportStatus;
use crate::reports::generate::GenerateReport;
use crate::{AppContext, Result};

/// How far back published events are published again: their jobs may have been waiting in
/// the queue that was lost.
pub const EVENT_LOOKBACK: Duration = Duration::hours(1);

/// Jobs enqueued per round trip.
const CHUNK: usize = 500;

/// What a recovery queued again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Task events handed back to the outbox relay.
    pub events: u64,
    /// Emails waiting to be sent.
    pub emails: u64,
    /// Reports waiting to be built.
    pub reports: u64,
}

/// Queues again everything that may have been lost: the events published within
/// [`EVENT_LOOKBACK`] (the relay publishes them again), the emails still waiting that no
/// worker holds, and the reports still pending.
pub async fn recover(app: &AppContext, transport: &dyn Transport) -> Result<Recovered> {
    let now = crate::stored(app.clock.now());
    let republished = task_events::Entity::update_many()
        .col_expr(task_events::Column::PublishedAt, Expr::value(Option::<chrono::NaiveDateTime>::None))
        .filter(task_events::Column::PublishedAt.gte(now - EVENT_LOOKBACK))
        .exec(&app.db)
        .await?;
    app.events_written.notify_one();

    let waiting: Vec<(String, i64)> = notifications::Entity::find()
        .select_only()
        .columns([notifications::Column::Source, notifications::Column::UserId])
        .filter(notifications::Column::Channel.eq(Channel::Email.as_str()))
        .filter(notifications::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(
            Condition::any()
                .add(notifications::Column::ClaimedUntil.is_null())
                .add(notifications::Column::ClaimedUntil.lt(now)),
        )
        .into_tuple()
        .all(&app.db)
        .await?;
    let emails = waiting.into_iter().map(|(source, user_id)| NewJob::of(&SendEmail { source, user_id }));
    let emails = enqueue(transport, emails.collect::<serde_json::Result<Vec<_>>>()?).await?;

    let pending: Vec<(i64, chrono::NaiveDateTime)> = reports::Entity::find()
        .select_only()
        .columns([reports::Column::Id, reports::Column::RequestedAt])
        .filter(reports::Column::Status.eq(ReportStatus::Pending.as_str()))
        .into_tuple()
        .all(&app.db)
        .await?;
    let reports = pending.into_iter().map(|(report_id, requested_at)| {
        NewJob::of(&GenerateReport { report_id, requested_at: requested_at.and_utc() })
    });
    let reports = enqueue(transport, reports.collect::<serde_json::Result<Vec<_>>>()?).await?;

    Ok(Recovered { events: republished.rows_affected, emails, reports })
}

async fn enqueue(transport: &dyn Transport, jobs: Vec<NewJob>) -> Result<u64> {
    let count = jobs.len() as u64;
    for chunk in jobs.chunks(CHUNK) {
        transport.enqueue(chunk.to_vec()).await?;
    }
    Ok(count)
}
