//! The transactional outbox: one immutable row per change to a task.

use sea_orm::entity::prelude::*;

/// One row of `task_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_events")]
pub struct Model {
    /// Surrogate key, the event id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The task it is about (no foreign key: history outlives the task).
    pub task_id: i64,
    /// The task's version right after this event; orders one task's events.
    pub seq: i32,
    /// Who made the change; null once that account is deleted.
    pub actor_id: Option<i64>,
    /// `task.created`, `task.updated`, `task.status_changed`, `task.assigned`, `task.deleted`.
    pub kind: String,
    /// What changed, as JSON.
    pub payload: Json,
    /// When it happened.
    pub created_at: DateTime,
    /// When the outbox relay handed it to the events queue.
    pub published_at: Option<DateTime>,
    /// When it was written to the long-term archive.
    pub archived_at: Option<DateTime>,
    /// The task's state right after this event (the columns below), so reports can ask what
    /// stood where at any instant: its PIC.
    pub pic_id: Option<i64>,
    /// Its status (`pending`, `in_progress`, `done`).
    pub status: Option<String>,
    /// Its priority rank (1 = low … 4 = urgent).
    pub priority: Option<i16>,
    /// Its deadline.
    pub deadline: Option<DateTime>,
    /// When the task was created.
    pub task_created_at: Option<DateTime>,
    /// When work on it first started.
    pub started_at: Option<DateTime>,
    /// When it last became done, while done.
    pub completed_at: Option<DateTime>,
    /// When the task's next event replaced this state (null while it is the latest).
    pub superseded_at: Option<DateTime>,
    /// The deadline the task had when it last became done, while done (on time or late).
    pub completed_due: Option<DateTime>,
    /// The PIC before this event (null for a task's first event).
    pub prev_pic_id: Option<i64>,
    /// The status before this event (null for a task's first event).
    pub prev_status: Option<String>,
}

/// Relations of `task_events` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
