//! Who hears about a task event, and the notification rows (and email jobs) written for them.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use tasklane_entity::{notifications, tasks, users};
use tasklane_jobs::NewJob;

use super::email::SendEmail;
use super::model::{ChangeLine, Channel, DeliveryStatus, Details, NotificationKind};
use super::prefs::{EmailDelivery, NotificationPrefs};
use crate::events::{Changes, TaskEventJob};
use crate::tasks::view::TaskView;
use crate::{AppContext, Result};

/// Who hears about a notification of `kind` on `task`, before removing the actor and
/// unreachable accounts; `previous_pic` is who was in charge before a reassignment.
pub fn recipients(kind: NotificationKind, task: &TaskView, previous_pic: Option<i64>) -> Vec<i64> {
    let wanted = match kind {
        NotificationKind::Created | NotificationKind::Deleted => vec![task.pic_id, task.supervisor_id],
        NotificationKind::Assigned => vec![task.pic_id, previous_pic, task.supervisor_id],
        NotificationKind::StatusChanged => vec![task.creator_id, task.pic_id, task.supervisor_id],
        NotificationKind::Updated | NotificationKind::DueSoon | NotificationKind::Overdue => vec![task.pic_id],
        NotificationKind::ReportWeekly | NotificationKind::ReportMonthly => Vec::new(),
    };
    let mut ids = Vec::new();
    for id in wanted.into_iter().flatten() {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Writes the notifications for one task event and returns the email jobs to enqueue.
pub async fn fan_out(app: &AppContext, event: &TaskEventJob) -> Result<Vec<NewJob>> {
    let changes = &event.payload.changes;
    let task = match &event.payload.task {
        Some(task) => task.clone(),
        // Events written before they carried the task: the task as it is now is the best guess.
        None => match tasks::Entity::find_by_id(event.task_id).one(&app.db).await? {
            Some(task) => task.into(),
            None => return Ok(Vec::new()),
        },
    };
    let kind = NotificationKind::from(event.kind);
    let previous_pic = changes.pic_id.as_ref().and_then(|change| change.old);
    let mut wanted = recipients(kind, &task, previous_pic);
    wanted.retain(|id| Some(*id) != event.actor_id);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let people = load_users(app, wanted.clone()).await?;
    let details = Details {
        task_id: task.id,
        task_name: task.name.clone(),
        actor: None,
        actor_id: event.actor_id,
        changes: change_lines(changes),
        deadline: task.deadline,
    };
    let recipients: Vec<&users::Model> = wanted.iter().filter_map(|id| people.get(id)).collect();
    let source = format!("event:{}", event.event_id);
    deliver(app, &Delivery { source: &source, kind, event_id: Some(event.event_id), details: &details }, &recipients)
        .await
}

async fn load_users(app: &AppContext, ids: Vec<i64>) -> Result<HashMap<i64, users::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found = users::Entity::find().filter(users::Column::Id.is_in(ids)).all(&app.db).await?;
    Ok(found.into_iter().map(|user| (user.id, user)).collect())
}

/// What changed, as messages show it, in a fixed order: statuses and priorities as codes
/// (translated when rendered), people by id (named when shown), deadlines in RFC 3339, long
/// text cut.
fn change_lines(changes: &Changes) -> Vec<ChangeLine> {
    let text = |value: &String| (!value.is_empty()).then(|| value.chars().take(500).collect::<String>());
    let instant = |at: Option<DateTime<Utc>>| at.map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    let line = |field: &str, old: Option<String>, new: Option<String>| ChangeLine {
        field: field.to_owned(),
        old,
        new,
        ..Default::default()
    };
    let people = |field: &str, old: Option<i64>, new: Option<i64>| ChangeLine {
        field: field.to_owned(),
        old_user: old,
        new_user: new,
        ..Default::default()
    };
    let mut lines = Vec::new();
    if let Some(change) = &changes.name {
        lines.push(line("name", text(&change.old), text(&change.new)));
    }
    if let Some(change) = &changes.status {
        lines.push(line("status", Some(change.old.as_str().into()), Some(change.new.as_str().into())));
    }
    if let Some(change) = &changes.priority {
        lines.push(line("priority", Some(change.old.as_str().into()), Some(change.new.as_str().into())));
    }
    if let Some(change) = &changes.deadline {
        lines.push(line("deadline", instant(change.old), instant(change.new)));
    }
    if let Some(change) = &changes.pic_id {
        lines.push(people("pic", change.old, change.new));
    }
    if let Some(change) = &changes.supervisor_id {
        lines.push(people("supervisor", change.old, change.new));
    }
    if let Some(change) = &changes.contents {
        lines.push(line("contents", text(&change.old), text(&change.new)));
    }
    lines
}

/// One reason to notify: where it came from and what it says.
pub(crate) struct Delivery<'a> {
    /// Unique per cause: `event:<id>`, `due_soon:<task>:<deadline>`, …
    pub source: &'a str,
    /// Notification kind.
    pub kind: NotificationKind,
    /// The task event behind it.
    pub event_id: Option<i64>,
    /// What it says.
    pub details: &'a Details,
}

/// How `user` gets an email of `kind`: as they chose, and never to an address not yet
/// verified when verification is required (in-app notifications still arrive).
pub(crate) fn email_delivery(app: &AppContext, user: &users::Model, kind: NotificationKind) -> Option<EmailDelivery> {
    if app.config.accounts.email_verification && user.email_verified_at.is_none() {
        return None;
    }
    NotificationPrefs::from_stored(&user.notification_prefs).email_for(kind)
}

/// Of the recipients of instant emails, those who got `TASKLANE_LIMIT_EMAILS_PER_HOUR` or
/// more in the last hour (one grouped query).
async fn flooded<'a>(
    app: &AppContext,
    recipients: impl Iterator<Item = &'a (&'a users::Model, Option<EmailDelivery>)>,
) -> Result<std::collections::HashSet<i64>> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::{Expr, ExprTrait};
    let ids: Vec<i64> = recipients.map(|(user, _)| user.id).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let since = crate::stored_now() - chrono::Duration::hours(1);
    let counts: Vec<(i64, i64)> = notifications::Entity::find()
        .select_only()
        .column(notifications::Column::UserId)
        .column_as(Expr::col(notifications::Column::Id).count(), "emails")
        .filter(notifications::Column::UserId.is_in(ids))
        .filter(notifications::Column::Channel.eq(Channel::Email.as_str()))
        .filter(notifications::Column::Status.ne(DeliveryStatus::Digest.as_str()))
        .filter(notifications::Column::CreatedAt.gte(since))
        .group_by(notifications::Column::UserId)
        .into_tuple()
        .all(&app.db)
        .await?;
    let limit = i64::from(app.config.limits.emails_per_hour);
    Ok(counts.into_iter().filter(|(_, emails)| *emails >= limit).map(|(user, _)| user).collect())
}

/// Writes in-app and (as preferences allow) email rows for each recipient, skipping disabled
/// accounts and rows that already exist, and returns a send job for every instant email.
pub(crate) async fn deliver(
    app: &AppContext,
    delivery: &Delivery<'_>,
    recipients: &[&users::Model],
) -> Result<Vec<NewJob>> {
    let now = crate::stored_now();
    let details = serde_json::to_value(delivery.details).map_err(anyhow::Error::from)?;
    let routes: Vec<(&users::Model, Option<EmailDelivery>)> = recipients
        .iter()
        .filter(|user| !user.disabled)
        .map(|user| (*user, email_delivery(app, user, delivery.kind)))
        .collect();
    let flooded = flooded(app, routes.iter().filter(|(_, route)| *route == Some(EmailDelivery::Instant))).await?;
    let mut rows = Vec::new();
    let mut instant = Vec::new();
    for (user, route) in routes {
        let row = |channel: Channel, status: DeliveryStatus| notifications::ActiveModel {
            user_id: Set(user.id),
            source: Set(delivery.source.to_owned()),
            event_id: Set(delivery.event_id),
            task_id: Set(Some(delivery.details.task_id)),
            kind: Set(delivery.kind.as_str().to_owned()),
            channel: Set(channel.as_str().to_owned()),
            status: Set(status.as_str().to_owned()),
            attempts: Set(0),
            last_error: Set(None),
            details: Set(details.clone()),
            created_at: Set(now),
            sent_at: Set((channel == Channel::InApp).then_some(now)),
            read_at: Set(None),
            ..Default::default()
        };
        rows.push(row(Channel::InApp, DeliveryStatus::Delivered));
        match route {
            // A flood of them becomes part of the digest instead of hundreds of emails.
            Some(EmailDelivery::Instant) if flooded.contains(&user.id) => {
                rows.push(row(Channel::Email, DeliveryStatus::Digest));
            }
            Some(EmailDelivery::Instant) => {
                rows.push(row(Channel::Email, DeliveryStatus::Pending));
                instant.push(user.id);
            }
            Some(EmailDelivery::DailyDigest) => rows.push(row(Channel::Email, DeliveryStatus::Digest)),
            Some(EmailDelivery::Off) | None => {}
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let in_app = rows.iter().filter(|row| row.channel.as_ref() == Channel::InApp.as_str()).count() as u64;
    notifications::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                notifications::Column::Source,
                notifications::Column::UserId,
                notifications::Column::Channel,
            ])
            .do_nothing_on([notifications::Column::Id])
            .to_owned(),
        )
        .exec_without_returning(&app.db)
        .await?;
    crate::telemetry::count_notifications("in_app", "delivered", in_app);
    // A job for every email meant to go now, including those an earlier, interrupted
    // delivery wrote without enqueueing: a job whose email went out already does nothing.
    let jobs =
        instant.into_iter().map(|user_id| NewJob::of(&SendEmail { source: delivery.source.to_owned(), user_id }));
    Ok(jobs.collect::<serde_json::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::fields::{Priority, TaskStatus};

    fn task() -> TaskView {
        TaskView {
            id: 1,
            name: "t".into(),
            contents: String::new(),
            status: TaskStatus::Pending,
            priority: Priority::Medium,
            deadline: None,
            pic_id: Some(10),
            supervisor_id: Some(20),
            creator_id: Some(30),
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            completed_at: None,
            started_at: None,
        }
    }

    #[test]
    fn each_kind_reaches_the_people_it_concerns() {
        use NotificationKind::*;
        assert_eq!(recipients(Created, &task(), None), vec![10, 20]);
        assert_eq!(recipients(StatusChanged, &task(), None), vec![30, 10, 20]);
        assert_eq!(recipients(Deleted, &task(), None), vec![10, 20]);
        assert_eq!(recipients(Updated, &task(), None), vec![10]);
        assert_eq!(recipients(Assigned, &task(), Some(11)), vec![10, 11, 20]);
        assert_eq!(recipients(Overdue, &task(), None), vec![10]);
    }

    #[test]
    fn a_person_in_two_roles_is_notified_once() {
        let mut both = task();
        both.supervisor_id = Some(10);
        assert_eq!(recipients(NotificationKind::Created, &both, None), vec![10]);
    }
}
