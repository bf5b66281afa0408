//! Notifications: one message to one recipient on one channel.

use sea_orm::entity::prelude::*;

/// One row of `notifications`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The recipient (rows go with the account).
    pub user_id: i64,
    /// What caused it, unique per recipient and channel: `event:<id>`, `due_soon:<task>:<deadline>`, …
    pub source: String,
    /// The task event behind it, when there is one.
    pub event_id: Option<i64>,
    /// The task it is about (no foreign key: notifications outlive the task).
    pub task_id: Option<i64>,
    /// `task.created`, `task.assigned`, …, `task.due_soon`, `task.overdue`.
    pub kind: String,
    /// `in_app` or `email`.
    pub channel: String,
    /// `delivered` (in-app), `pending`, `digest`, `sent` or `failed` (email).
    pub status: String,
    /// Delivery attempts made (email).
    pub attempts: i32,
    /// Why the last delivery attempt failed.
    pub last_error: Option<String>,
    /// What the message says, rendered per language when shown or sent.
    pub details: Json,
    /// When it was created.
    pub created_at: DateTime,
    /// When it was delivered (email sent, in-app written).
    pub sent_at: Option<DateTime>,
    /// When the recipient marked it read (in-app).
    pub read_at: Option<DateTime>,
    /// Who is sending its email now: a worker's claim token (email).
    pub claimed_by: Option<String>,
    /// Until when that claim holds; after it, another worker may take the email over.
    pub claimed_until: Option<DateTime>,
}

/// Relations of `notifications`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The recipient.
    #[sea_orm(belongs_to = "super::users::Entity", from = "Column::UserId", to = "super::users::Column::Id")]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
