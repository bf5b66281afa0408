//! A task as the API shows it and as task events record it.

use chrono::{DateTime, Utc};
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

impl From<tasks::Model> for TaskView {
    fn from(task: tasks::Model) -> Self {
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
