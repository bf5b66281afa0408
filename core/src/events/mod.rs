//! Task events: every change to a task is an event written in the same transaction as the
//! change (the outbox), published to the events queue by the relay, and handled there.
//!
//! The wire format (what `task_events.payload` holds and the events queue carries) is
//! `{"task": {…the task after the change…}, "changes": {"field": {"old": …, "new": …}}}`;
//! events written before they carried the task have no `task`.

pub mod relay;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tasklane_entity::task_events;
use tasklane_jobs::{Job, NewJob};

use crate::queues;
use crate::tasks::fields::{Priority, TaskStatus};
use crate::tasks::view::TaskView;

/// What happened to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// It was created.
    #[serde(rename = "task.created")]
    Created,
    /// Its name, contents, priority or deadline changed.
    #[serde(rename = "task.updated")]
    Updated,
    /// Its status changed.
    #[serde(rename = "task.status_changed")]
    StatusChanged,
    /// Its PIC or supervisor changed.
    #[serde(rename = "task.assigned")]
    Assigned,
    /// It was deleted.
    #[serde(rename = "task.deleted")]
    Deleted,
}

impl EventKind {
    /// The stored and wire spelling, e.g. `task.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "task.created",
            Self::Updated => "task.updated",
            Self::StatusChanged => "task.status_changed",
            Self::Assigned => "task.assigned",
            Self::Deleted => "task.deleted",
        }
    }
}

/// One field's value before and after a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    /// Before.
    pub old: T,
    /// After.
    pub new: T,
}

impl<T: PartialEq> Change<T> {
    /// The change from `old` to `new`, or none when they are equal.
    pub fn between(old: T, new: T) -> Option<Self> {
        (old != new).then_some(Self { old, new })
    }
}

/// What one event changed; absent fields did not change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Changes {
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Change<String>>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<Change<String>>,
    /// Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Change<TaskStatus>>,
    /// Priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Change<Priority>>,
    /// Deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Change<Option<DateTime<Utc>>>>,
    /// Person in charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pic_id: Option<Change<Option<i64>>>,
    /// Supervisor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisor_id: Option<Change<Option<i64>>>,
}

impl Changes {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What reports need of a task at one moment, stored beside each event as the state right
/// after it: with it, "whose was this task, and where did it stand, at instant T" is one
/// indexed query over the events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// Person in charge.
    pub pic_id: Option<i64>,
    /// Status.
    pub status: TaskStatus,
    /// Priority.
    pub priority: Priority,
    /// Deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// When it first moved to `in_progress`.
    pub started_at: Option<DateTime<Utc>>,
    /// When it last became done, while done.
    pub completed_at: Option<DateTime<Utc>>,
    /// The deadline it had when it last became done, while done.
    pub completed_due: Option<DateTime<Utc>>,
}

impl TaskState {
    /// The state `task` shows; `completed_due` is the deadline it had when it last became
    /// done (the task row keeps it).
    pub fn of(task: &TaskView, completed_due: Option<DateTime<Utc>>) -> Self {
        Self {
            pic_id: task.pic_id,
            status: task.status,
            priority: task.priority,
            deadline: task.deadline,
            created_at: task.created_at,
            started_at: task.started_at,
            completed_at: task.completed_at,
            completed_due: completed_due.filter(|_| task.status == TaskStatus::Done),
        }
    }

    /// The state after `changes` were made at `at`: a task's first move to `in_progress`
    /// starts it, a move to done completes it, and a move away from done forgets the completion.
    pub fn after(&self, changes: &Changes, at: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        if let Some(pic) = &changes.pic_id {
            next.pic_id = pic.new;
        }
        if let Some(priority) = &changes.priority {
            next.priority = priority.new;
        }
        if let Some(deadline) = &changes.deadline {
            next.deadline = deadline.new;
        }
        if let Some(status) = &changes.status {
            next.status = status.new;
            if status.new == TaskStatus::InProgress && next.started_at.is_none() {
                next.started_at = Some(at);
            }
            (next.completed_at, next.completed_due) = match (status.old, status.new) {
                (TaskStatus::Done, TaskStatus::Done) => (self.completed_at, self.completed_due),
                (_, TaskStatus::Done) => (Some(at), next.deadline),
                _ => (None, None),
            };
        }
        next
    }

    /// The row values that record this state beside an event, after `before` (none for a
    /// task's first event).
    pub fn record(&self, before: Option<&TaskState>, event: &mut task_events::ActiveModel) {
        use sea_orm::ActiveValue::Set;
        event.prev_pic_id = Set(before.and_then(|state| state.pic_id));
        event.prev_status = Set(before.map(|state| state.status.as_str().to_owned()));
        event.completed_due = Set(self.completed_due.map(crate::stored));
        event.pic_id = Set(self.pic_id);
        event.status = Set(Some(self.status.as_str().to_owned()));
        event.priority = Set(Some(self.priority.rank()));
        event.deadline = Set(self.deadline.map(crate::stored));
        event.task_created_at = Set(Some(crate::stored(self.created_at)));
        event.started_at = Set(self.started_at.map(crate::stored));
        event.completed_at = Set(self.completed_at.map(crate::stored));
    }
}

/// What an event says: the task as it stood afterwards, and what changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPayload {
    /// The task right after the change; absent in events written before events carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskView>,
    /// What changed (nothing for creations and deletions).
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub changes: Changes,
}

/// A task event as carried on the events queue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskEventJob {
    /// Event id (the deduplication key of everything done because of it).
    pub event_id: i64,
    /// The task.
    pub task_id: i64,
    /// The task's sequence number at this event; orders one task's events.
    pub seq: i32,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor_id: Option<i64>,
    /// The task afterwards and what changed.
    pub payload: EventPayload,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Job for TaskEventJob {
    const KIND: &'static str = "task.event";
    const QUEUE: &'static str = queues::EVENTS;

    fn dedup_key(&self) -> Option<String> {
        Some(dedup_key(self.event_id))
    }
}

impl TaskEventJob {
    /// The job that carries a stored event, copied as stored: the relay never interprets
    /// events, so one this build cannot read is still published, and dead-lettered by its
    /// handler where an operator sees it, instead of holding up the outbox.
    pub fn outbound(event: task_events::Model) -> NewJob {
        NewJob {
            queue: Self::QUEUE.to_owned(),
            kind: Self::KIND.to_owned(),
            version: Self::VERSION,
            dedup_key: Some(dedup_key(event.id)),
            payload: serde_json::json!({
                "event_id": event.id,
                "task_id": event.task_id,
                "seq": event.seq,
                "kind": event.kind,
                "actor_id": event.actor_id,
                "payload": event.payload,
                "created_at": event.created_at.and_utc(),
            }),
        }
    }
}

fn dedup_key(event_id: i64) -> String {
    format!("event:{event_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_written_by_the_previous_release_decode() {
        // As `tasks` wrote them before events were typed: the whole task view, and changes.
        let stored = serde_json::json!({
            "changes": { "status": { "old": "pending", "new": "done" }, "pic_id": { "old": null, "new": 7 } },
            "task": {
                "id": 3, "name": "Report", "contents": "x", "status": "done", "priority": "high",
                "deadline": "2026-12-24T23:59:59Z", "pic_id": 7, "supervisor_id": null, "creator_id": 1,
                "version": 3, "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-26T10:00:00Z",
                "completed_at": "2026-11-26T10:00:00Z"
            }
        });
        let payload: EventPayload = serde_json::from_value(stored).unwrap();
        let task = payload.task.unwrap();
        assert_eq!((task.status, task.priority, task.pic_id), (TaskStatus::Done, Priority::High, Some(7)));
        assert_eq!(payload.changes.status, Some(Change { old: TaskStatus::Pending, new: TaskStatus::Done }));
        assert_eq!(payload.changes.pic_id, Some(Change { old: None, new: Some(7) }));
        let before_snapshots: EventPayload = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(before_snapshots.task.is_none() && before_snapshots.changes.is_empty());
        let job = serde_json::json!({
            "event_id": 9, "task_id": 3, "seq": 2, "kind": "task.status_changed", "actor_id": 1,
            "payload": { "changes": { "status": { "old": "pending", "new": "done" } } },
            "created_at": "2026-11-26T10:00:00Z"
        });
        let job = TaskEventJob::decode(1, job).unwrap();
        assert_eq!(job.kind, EventKind::StatusChanged);
        let stored = task_events::Model {
            id: 9,
            task_id: 3,
            seq: 2,
            actor_id: Some(1),
            kind: "task.status_changed".into(),
            payload: serde_json::json!({ "changes": { "status": { "old": "pending", "new": "done" } } }),
            created_at: "2026-11-26T10:00:00Z".parse::<DateTime<Utc>>().unwrap().naive_utc(),
            published_at: None,
            archived_at: None,
            pic_id: None,
            status: None,
            priority: None,
            deadline: None,
            task_created_at: None,
            started_at: None,
            completed_at: None,
            superseded_at: None,
            completed_due: None,
            prev_pic_id: None,
            prev_status: None,
        };
        let outbound = TaskEventJob::outbound(stored);
        assert_eq!(outbound.dedup_key, job.dedup_key());
        assert_eq!(TaskEventJob::decode(outbound.version, outbound.payload).unwrap(), job);
    }
}
