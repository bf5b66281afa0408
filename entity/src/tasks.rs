//! A unit of user work.

use sea_orm::entity::prelude::*;

/// One row of `tasks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    /// Surrogate key (the seed's `Task_id`).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Short title.
    pub name: String,
    /// Free text.
    pub contents: String,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
    /// 1 = low, 2 = medium, 3 = high, 4 = urgent (numeric so it sorts).
    pub priority: i16,
    /// When it is due, if ever.
    pub deadline: Option<DateTime>,
    /// Person in charge (assignee).
    pub pic_id: Option<i64>,
    /// Who oversees it.
    pub supervisor_id: Option<i64>,
    /// Who created it; null once that account is deleted.
    pub creator_id: Option<i64>,
    /// Optimistic-concurrency version; equals the sequence number of its latest event.
    pub version: i32,
    /// When it was created.
    pub created_at: DateTime,
    /// When it last changed.
    pub updated_at: DateTime,
    /// When it last became done; null while not done.
    pub completed_at: Option<DateTime>,
    /// The deadline it had when it last became done, while done.
    pub completed_due: Option<DateTime>,
    /// When work on it first started (it first moved to `in_progress`).
    pub started_at: Option<DateTime>,
}

/// Relations of `tasks` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
