//! Deadline reminders: the PIC of an open task hears once when it is due within a day and once
//! when it becomes overdue, per deadline (moving the deadline earns a new reminder).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::{notifications, tasks, users};

use tasklane_jobs::{Job, NewJob};

use super::fanout::{Delivery, deliver};
use super::model::{Channel, Details, NotificationKind};
use crate::tasks::fields::TaskStatus;
use crate::tasks::view::TaskView;
use crate::{AppContext, Result, queues};

/// How far ahead a deadline counts as "due soon".
pub const DUE_SOON: Duration = Duration::hours(24);
/// How far back an overdue task is still reminded about (covers workers down for a while).
const OVERDUE_LOOKBACK: Duration = Duration::days(7);
/// Tasks looked at per sweep and kind; the next sweep takes the rest.
const SWEEP_LIMIT: u64 = 1000;

/// Looks for tasks due soon or overdue and notifies their PICs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadlineSweep {
    /// The sweep's time slot, so replicas enqueue each sweep once.
    pub slot: i64,
}

impl Job for DeadlineSweep {
    const KIND: &'static str = "tasks.deadline_sweep";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("deadline_sweep:{}", self.slot))
    }
}

/// Writes the reminders due at `now` and returns the email jobs to enqueue.
pub async fn remind(app: &AppContext, now: DateTime<Utc>) -> Result<Vec<NewJob>> {
    let mut jobs = Vec::new();
    let windows =
        [(NotificationKind::DueSoon, now, now + DUE_SOON), (NotificationKind::Overdue, now - OVERDUE_LOOKBACK, now)];
    for (kind, from, to) in windows {
        let due = tasks::Entity::find()
            .filter(tasks::Column::Status.ne(TaskStatus::Done.as_str()))
            .filter(tasks::Column::PicId.is_not_null())
            .filter(tasks::Column::Deadline.gt(crate::stored(from)))
            .filter(tasks::Column::Deadline.lte(crate::stored(to)))
            .order_by_asc(tasks::Column::Deadline)
            .limit(SWEEP_LIMIT)
            .all(&app.db)
            .await?;
        let candidates: Vec<(String, TaskView)> = due
            .into_iter()
            .map(TaskView::from)
            .filter_map(|task| {
                let deadline = task.deadline?.timestamp();
                Some((format!("{}:{}:{deadline}", kind.as_str().trim_start_matches("task."), task.id), task))
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let done: HashSet<(String, i64)> = notifications::Entity::find()
            .select_only()
            .column(notifications::Column::Source)
            .column(notifications::Column::UserId)
            .filter(notifications::Column::Source.is_in(candidates.iter().map(|(source, _)| source.clone())))
            .filter(notifications::Column::Channel.eq(Channel::InApp.as_str()))
            .into_tuple()
            .all(&app.db)
            .await?
            .into_iter()
            .collect();
        for (source, task) in candidates {
            let Some(pic_id) = task.pic_id else { continue };
            if done.contains(&(source.clone(), pic_id)) {
                continue;
            }
            let Some(pic) = users::Entity::find_by_id(pic_id).one(&app.db).await? else { continue };
            let details = Details {
                task_id: task.id,
                task_name: task.name.clone(),
                actor: None,
                changes: Vec::new(),
                deadline: task.deadline,
            };
            let delivery = Delivery { source: &source, kind, event_id: None, details: &details };
            jobs.extend(deliver(app, &delivery, &[&pic]).await?);
        }
    }
    Ok(jobs)
}
