//! A task as the API shows it and as task events record it.

use chrono::{DateTime, Utc};
use sea_orm::{EntityTrait, FromQueryResult, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::tasks;

use super::fields::{Priority, TaskStatus};

/// A task as the API shows it, and as an event records it right after the change (its last
/// state on deletion).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Task id.
    pub id: i64,
    /// Title.
    pub name: String,
    /// Free text.
    pub contents: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// How urgent.
    pub priority: Priority,
    /// When it is due.
    pub deadline: Option<DateTime<Utc>>,
    /// Person in charge.
    pub pic_id: Option<i64>,
    /// Supervisor.
    pub supervisor_id: Option<i64>,
    /// Creator (null once their account is deleted).
    pub creator_id: Option<i64>,
    /// Version for `If-Match`.
    pub version: i32,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
    /// When it became done, while done.
    pub completed_at: Option<DateTime<Utc>>,
    /// When work on it first started (it first moved to `in_progress`).
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

/// The columns of a task that [`TaskView`] shows and a list's sort keys, in the order of
/// [`ShownTask`]'s fields. Lists read only these: not the search text (as long as the name and
/// contents together) nor the deadline kept for reports.
pub const SHOWN_COLUMNS: [tasks::Column; 16] = [
    tasks::Column::Id,
    tasks::Column::Name,
    tasks::Column::Contents,
    tasks::Column::Status,
    tasks::Column::Priority,
    tasks::Column::Deadline,
    tasks::Column::PicId,
    tasks::Column::SupervisorId,
    tasks::Column::CreatorId,
    tasks::Column::Version,
    tasks::Column::CreatedAt,
    tasks::Column::UpdatedAt,
    tasks::Column::CompletedAt,
    tasks::Column::StartedAt,
    tasks::Column::UrgencyKey,
    tasks::Column::DeadlineKey,
];

/// Tasks with only the columns a view shows.
pub(super) fn shown() -> sea_orm::Select<tasks::Entity> {
    tasks::Entity::find().select_only().columns(SHOWN_COLUMNS)
}

/// A task's [`SHOWN_COLUMNS`] as the database holds them.
#[derive(Clone, Debug, FromQueryResult)]
pub struct ShownTask {
    /// Task id.
    pub id: i64,
    /// Title.
    pub name: String,
    /// Free text.
    pub contents: String,
    /// Stored status.
    pub status: String,
    /// Stored priority rank.
    pub priority: i16,
    /// Deadline (UTC).
    pub deadline: Option<chrono::NaiveDateTime>,
    /// Person in charge.
    pub pic_id: Option<i64>,
    /// Supervisor.
    pub supervisor_id: Option<i64>,
    /// Creator.
    pub creator_id: Option<i64>,
    /// Version.
    pub version: i32,
    /// Created at (UTC).
    pub created_at: chrono::NaiveDateTime,
    /// Last changed at (UTC).
    pub updated_at: chrono::NaiveDateTime,
    /// Became done at (UTC).
    pub completed_at: Option<chrono::NaiveDateTime>,
    /// Work started at (UTC).
    pub started_at: Option<chrono::NaiveDateTime>,
    /// The priority sort's stored key.
    pub urgency_key: i64,
    /// The deadline sort's stored key.
    pub deadline_key: i64,
}

impl From<ShownTask> for TaskView {
    fn from(task: ShownTask) -> Self {
        Self {
            id: task.id,
            status: TaskStatus::from_stored(&task.status),
            priority: Priority::from_rank(task.priority),
            name: task.name,
            contents: task.contents,
            deadline: task.deadline.map(|at| at.and_utc()),
            pic_id: task.pic_id,
            supervisor_id: task.supervisor_id,
            creator_id: task.creator_id,
            version: task.version,
            created_at: task.created_at.and_utc(),
            updated_at: task.updated_at.and_utc(),
            completed_at: task.completed_at.map(|at| at.and_utc()),
            started_at: task.started_at.map(|at| at.and_utc()),
        }
    }
}

impl From<tasks::Model> for TaskView {
    fn from(task: tasks::Model) -> Self {
        ShownTask {
            id: task.id,
            name: task.name,
            contents: task.contents,
            status: task.status,
            priority: task.priority,
            deadline: task.deadline,
            pic_id: task.pic_id,
            supervisor_id: task.supervisor_id,
            creator_id: task.creator_id,
            version: task.version,
            created_at: task.created_at,
            updated_at: task.updated_at,
            completed_at: task.completed_at,
            started_at: task.started_at,
            urgency_key: task.urgency_key,
            deadline_key: task.deadline_key,
        }
        .into()
    }
}
