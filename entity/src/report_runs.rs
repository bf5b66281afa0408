//! Scheduled report runs: one per closed period, so replicas schedule each period once.

use sea_orm::entity::prelude::*;

/// One row of `report_runs`: unique on (`period`, `first_day`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "report_runs")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `weekly` or `monthly`.
    pub period: String,
    /// The period's first day.
    pub first_day: Date,
    /// The run's cursor: reports exist for every active user up to this id.
    pub last_user_id: i64,
    /// How many report jobs it enqueued.
    pub enqueued: i32,
    /// When the run began.
    pub started_at: DateTime,
    /// When every report of the period was enqueued.
    pub finished_at: Option<DateTime>,
}

/// Relations of `report_runs` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
