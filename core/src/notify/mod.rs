//! Notifications: who hears about a task event, the in-app inbox, email (one job per email, or
//! a daily digest) and deadline reminders. Every notification is a row unique on (source,
//! recipient, channel), so a redelivered event or a repeated sweep never notifies twice.

pub mod discord;
pub mod email;
pub mod inbox;
pub mod prefs;
pub mod reminders;
pub mod templates;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasklane_entity::{notifications, tasks, users};

use crate::jobs::NewJob;
use crate::jobs::relay::TaskEventJob;
use crate::tasks::TaskView;
use crate::{AppContext, Result};
use prefs::{EmailDelivery, NotificationPrefs};

/// Every kind of notification, as preferences name them.
pub const KINDS: &[&str] = &[
    "task.created",
    "task.assigned",
    "task.status_changed",
    "task.updated",
    "task.deleted",
    "task.due_soon",
    "task.overdue",
];

/// The in-app channel (always on).
pub const IN_APP: &str = "in_app";
/// The email channel.
pub const EMAIL: &str = "email";

/// Delivery states of a notification row.
pub mod status {
    /// In-app: written, visible in the inbox.
    pub const DELIVERED: &str = "delivered";
    /// Email: waiting for its send job.
    pub const PENDING: &str = "pending";
    /// Email: waiting for the recipient's daily digest.
    pub const DIGEST: &str = "digest";
    /// Email: sent.
    pub const SENT: &str = "sent";
    /// Email: will not be sent (rejected address, recipient disabled).
    pub const FAILED: &str = "failed";
}

/// The task as an event saw it: enough to pick recipients and write the message.
#[derive(Clone, Debug, Deserialize)]
pub struct TaskSnapshot {
    /// Task id.
    pub id: i64,
    /// Title.
    pub name: String,
    /// Status code.
    pub status: String,
    /// Deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// Person in charge.
    pub pic_id: Option<i64>,
    /// Supervisor.
    pub supervisor_id: Option<i64>,
    /// Creator.
    pub creator_id: Option<i64>,
}

impl From<tasks::Model> for TaskSnapshot {
    fn from(task: tasks::Model) -> Self {
        let view = TaskView::from(task);
        Self {
            id: view.id,
            name: view.name,
            status: view.status.as_str().to_owned(),
            deadline: view.deadline,
            pic_id: view.pic_id,
            supervisor_id: view.supervisor_id,
            creator_id: view.creator_id,
        }
    }
}

/// One changed field as a message shows it: status and priority as codes (translated when
/// rendered), people as display names, deadlines as RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeLine {
    /// `name`, `contents`, `status`, `priority`, `deadline`, `pic`, `supervisor`.
    pub field: String,
    /// The value before.
    pub old: Option<String>,
    /// The value after.
    pub new: Option<String>,
}

/// What a notification says, stored with it so it can be shown and sent after the task,
/// the actor or the people named in it are gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Details {
    /// The task.
    pub task_id: i64,
    /// Its name at the time.
    pub task_name: String,
    /// Who did it (display name); none for reminders or a deleted account.
    pub actor: Option<String>,
    /// What changed.
    pub changes: Vec<ChangeLine>,
    /// The task's deadline at the time.
    pub deadline: Option<DateTime<Utc>>,
}

/// Who hears about an event of `kind`, before removing the actor and unreachable accounts.
pub fn recipients(kind: &str, task: &TaskSnapshot, changes: &serde_json::Map<String, Value>) -> Vec<i64> {
    let previous_pic = changes.get("pic_id").and_then(|change| change.get("old")).and_then(Value::as_i64);
    let wanted = match kind {
        "task.created" | "task.deleted" => vec![task.pic_id, task.supervisor_id],
        "task.assigned" => vec![task.pic_id, previous_pic, task.supervisor_id],
        "task.status_changed" => vec![task.creator_id, task.pic_id, task.supervisor_id],
        "task.updated" | "task.due_soon" | "task.overdue" => vec![task.pic_id],
        _ => Vec::new(),
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
    let changes = event.payload.get("changes").and_then(Value::as_object).cloned().unwrap_or_default();
    let snapshot = event.payload.get("task").and_then(|task| serde_json::from_value::<TaskSnapshot>(task.clone()).ok());
    let task = match snapshot {
        Some(task) => task,
        // Events written before they carried the task: the task as it is now is the best guess.
        None => match tasks::Entity::find_by_id(event.task_id).one(&app.db).await? {
            Some(task) => task.into(),
            None => return Ok(Vec::new()),
        },
    };
    let mut wanted = recipients(&event.kind, &task, &changes);
    wanted.retain(|id| Some(*id) != event.actor_id);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mentioned = ["pic_id", "supervisor_id"]
        .iter()
        .filter_map(|field| changes.get(*field))
        .flat_map(|change| [change.get("old"), change.get("new")])
        .filter_map(|value| value.and_then(Value::as_i64));
    let people = load_users(app, wanted.iter().copied().chain(event.actor_id).chain(mentioned).collect()).await?;
    let details = Details {
        task_id: task.id,
        task_name: task.name.clone(),
        actor: event.actor_id.and_then(|id| people.get(&id)).map(|user| user.display_name.clone()),
        changes: change_lines(&changes, &people),
        deadline: task.deadline,
    };
    let recipients: Vec<&users::Model> = wanted.iter().filter_map(|id| people.get(id)).collect();
    let source = format!("event:{}", event.event_id);
    deliver(
        app,
        &Delivery { source: &source, kind: &event.kind, event_id: Some(event.event_id), details: &details },
        &recipients,
    )
    .await
}

async fn load_users(app: &AppContext, ids: Vec<i64>) -> Result<HashMap<i64, users::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found = users::Entity::find().filter(users::Column::Id.is_in(ids)).all(&app.db).await?;
    Ok(found.into_iter().map(|user| (user.id, user)).collect())
}

fn change_lines(changes: &serde_json::Map<String, Value>, people: &HashMap<i64, users::Model>) -> Vec<ChangeLine> {
    const ORDER: [&str; 7] = ["name", "status", "priority", "deadline", "pic_id", "supervisor_id", "contents"];
    let text = |field: &str, value: Option<&Value>| -> Option<String> {
        let value = value.filter(|value| !value.is_null())?;
        if field.ends_with("_id") {
            let id = value.as_i64()?;
            return Some(people.get(&id).map(|user| user.display_name.clone()).unwrap_or_else(|| format!("#{id}")));
        }
        match value {
            Value::String(text) => Some(text.chars().take(500).collect()),
            other => Some(other.to_string()),
        }
    };
    ORDER
        .iter()
        .filter_map(|field| changes.get(*field).map(|change| (*field, change)))
        .map(|(field, change)| ChangeLine {
            field: field.trim_end_matches("_id").to_owned(),
            old: text(field, change.get("old")),
            new: text(field, change.get("new")),
        })
        .collect()
}

/// One reason to notify: where it came from and what it says.
pub(crate) struct Delivery<'a> {
    /// Unique per cause: `event:<id>`, `due_soon:<task>:<deadline>`, …
    pub source: &'a str,
    /// Notification kind.
    pub kind: &'a str,
    /// The task event behind it.
    pub event_id: Option<i64>,
    /// What it says.
    pub details: &'a Details,
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
    let mut rows = Vec::new();
    let mut instant = Vec::new();
    for user in recipients.iter().filter(|user| !user.disabled) {
        let row = |channel: &str, status: &str| notifications::ActiveModel {
            user_id: Set(user.id),
            source: Set(delivery.source.to_owned()),
            event_id: Set(delivery.event_id),
            task_id: Set(Some(delivery.details.task_id)),
            kind: Set(delivery.kind.to_owned()),
            channel: Set(channel.to_owned()),
            status: Set(status.to_owned()),
            attempts: Set(0),
            last_error: Set(None),
            details: Set(details.clone()),
            created_at: Set(now),
            sent_at: Set((channel == IN_APP).then_some(now)),
            read_at: Set(None),
            ..Default::default()
        };
        rows.push(row(IN_APP, status::DELIVERED));
        match NotificationPrefs::from_stored(&user.notification_prefs).email_for(delivery.kind) {
            Some(EmailDelivery::Instant) => {
                rows.push(row(EMAIL, status::PENDING));
                instant.push(user.id);
            }
            Some(EmailDelivery::DailyDigest) => rows.push(row(EMAIL, status::DIGEST)),
            Some(EmailDelivery::Off) | None => {}
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
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
    // A job for every email meant to go now, including those an earlier, interrupted
    // delivery wrote without enqueueing: a job whose email went out already does nothing.
    instant
        .into_iter()
        .map(|user_id| NewJob::of(&email::SendEmail { source: delivery.source.to_owned(), user_id }))
        .collect()
}

/// Counts a user's unread in-app notifications.
pub async fn unread_count(app: &AppContext, user_id: i64) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(user_id))
        .filter(notifications::Column::Channel.eq(IN_APP))
        .filter(notifications::Column::ReadAt.is_null())
        .count(&app.db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> TaskSnapshot {
        TaskSnapshot {
            id: 1,
            name: "t".into(),
            status: "pending".into(),
            deadline: None,
            pic_id: Some(10),
            supervisor_id: Some(20),
            creator_id: Some(30),
        }
    }

    #[test]
    fn each_kind_reaches_the_people_it_concerns() {
        let none = serde_json::Map::new();
        assert_eq!(recipients("task.created", &task(), &none), vec![10, 20]);
        assert_eq!(recipients("task.status_changed", &task(), &none), vec![30, 10, 20]);
        assert_eq!(recipients("task.deleted", &task(), &none), vec![10, 20]);
        assert_eq!(recipients("task.updated", &task(), &none), vec![10]);
        let reassigned = json!({"pic_id": {"old": 11, "new": 10}});
        assert_eq!(recipients("task.assigned", &task(), reassigned.as_object().unwrap()), vec![10, 11, 20]);
        assert!(recipients("task.unknown", &task(), &none).is_empty());
    }

    #[test]
    fn a_person_in_two_roles_is_notified_once() {
        let mut both = task();
        both.supervisor_id = Some(10);
        assert_eq!(recipients("task.created", &both, &serde_json::Map::new()), vec![10]);
    }
}
