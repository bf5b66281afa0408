//! Failed sign-in counters per account and per client address, shared by every API replica.

use sea_orm::entity::prelude::*;

/// One row of `sign_in_throttle`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_throttle")]
pub struct Model {
    /// `account:<email>` or `address:<ip>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Failures counted in the current window.
    pub failures: i32,
    /// When the current window started.
    pub window_started_at: DateTime,
}

/// Relations of `sign_in_throttle` (none).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
