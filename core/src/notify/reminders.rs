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
/// Tasks read per page, and new reminders written per sweep and kind (the next sweep writes
/// the rest).
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

/// Writes the reminders due at `now` and returns the email jobs to enqueue. Tasks are read in
/// (deadline, id) order a page at a time, past those already reminded, so however many of
/// them there are, the ones not yet reminded are reached.
pub async fn remind(app: &AppContext, now: DateTime<Utc>) -> Result<Vec<NewJob>> {
    let mut jobs = Vec::new();
    let windows =
        [(NotificationKind::DueSoon, now, now + DUE_SOON), (NotificationKind::Overdue, now - OVERDUE_LOOKBACK, now)];
    for (kind, from, to) in windows {
        let mut after: Option<(chrono::NaiveDateTime, i64)> = None;
        let mut written = 0;
        while written < SWEEP_LIMIT {
            let page = due_page(app, from, to, after).await?;
            let Some(last) = page.last() else { break };
            after = last.deadline.map(|deadline| (deadline, last.id));
            let full = page.len() as u64 == SWEEP_LIMIT;
            for (source, task, pic) in unreminded(app, kind, page).await? {
                let details = Details {
                    task_id: task.id,
                    task_name: task.name.clone(),
                    deadline: task.deadline,
                    ..Default::default()
                };
                let delivery = Delivery { source: &source, kind, event_id: None, details: &details };
                jobs.extend(deliver(app, &delivery, &[&pic]).await?);
                written += 1;
            }
            if !full {
                break;
            }
        }
    }
    Ok(jobs)
}

/// Open tasks with a PIC whose deadline is in `(from, to]`, after `after` in (deadline, id) order.
async fn due_page(
    app: &AppContext,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<(chrono::NaiveDateTime, i64)>,
) -> Result<Vec<tasks::Model>> {
    let mut select = tasks::Entity::find()
        .filter(tasks::Column::Status.ne(TaskStatus::Done.as_str()))
        .filter(tasks::Column::PicId.is_not_null())
        .filter(tasks::Column::Deadline.gt(crate::stored(from)))
        .filter(tasks::Column::Deadline.lte(crate::stored(to)));
    if let Some((deadline, id)) = after {
        select =
            select.filter(sea_orm::Condition::any().add(tasks::Column::Deadline.gt(deadline)).add(
                sea_orm::Condition::all().add(tasks::Column::Deadline.eq(deadline)).add(tasks::Column::Id.gt(id)),
            ));
    }
    Ok(select
        .order_by_asc(tasks::Column::Deadline)
        .order_by_asc(tasks::Column::Id)
        .limit(SWEEP_LIMIT)
        .all(&app.db)
        .await?)
}

/// Of `page`, the tasks whose PIC has not been reminded of this deadline yet, with the
/// reminder's source and the PIC.
async fn unreminded(
    app: &AppContext,
    kind: NotificationKind,
    page: Vec<tasks::Model>,
) -> Result<Vec<(String, TaskView, users::Model)>> {
    let candidates: Vec<(String, TaskView)> = page
        .into_iter()
        .map(TaskView::from)
        .filter_map(|task| {
            let deadline = task.deadline?.timestamp();
            Some((format!("{}:{}:{deadline}", kind.as_str().trim_start_matches("task."), task.id), task))
        })
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
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
    let waiting: Vec<(String, TaskView)> = candidates
        .into_iter()
        .filter(|(source, task)| task.pic_id.is_some_and(|pic| !done.contains(&(source.clone(), pic))))
        .collect();
    let pic_ids: HashSet<i64> = waiting.iter().filter_map(|(_, task)| task.pic_id).collect();
    let pics: std::collections::HashMap<i64, users::Model> = users::Entity::find()
        .filter(users::Column::Id.is_in(pic_ids))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|user| (user.id, user))
        .collect();
    Ok(waiting
        .into_iter()
        .filter_map(|(source, task)| {
            let pic = pics.get(&task.pic_id?)?.clone();
            Some((source, task, pic))
        })
        .collect())
}
