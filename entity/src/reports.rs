//! Stored weekly and monthly reports.

use sea_orm::entity::prelude::*;

/// One row of `reports`: unique on (`subject`, `period`, `first_day`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    /// Surrogate key, the report id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Whose report it is, as the unique key spells it: `user:<id>` or `team`.
    pub subject: String,
    /// `me` or `team`.
    pub scope: String,
    /// The user a personal report is about (null for team reports; rows go with the account).
    pub user_id: Option<i64>,
    /// `weekly` or `monthly`.
    pub period: String,
    /// The period's first day in the deployment's time zone.
    pub first_day: Date,
    /// The period's first instant.
    pub period_start: DateTime,
    /// The first instant after the period.
    pub period_end: DateTime,
    /// `pending`, `ready` or `failed`.
    pub status: String,
    /// The report itself (figures, previous, series, top_open, members), once ready.
    pub body: Option<Json>,
    /// Why generating it failed.
    pub error: Option<String>,
    /// Made by the schedule when its period closed; such reports are emailed once.
    pub scheduled: bool,
    /// When the report email was handed to the email queue.
    pub emailed_at: Option<DateTime>,
    /// When it was last asked for.
    pub requested_at: DateTime,
    /// When its figures were computed.
    pub generated_at: Option<DateTime>,
}

/// Relations of `reports` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
