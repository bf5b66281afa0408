//! A signed-in session: one refresh-token family and the access tokens minted from it.

use sea_orm::entity::prelude::*;

/// One row of `sessions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// Random, URL-safe identifier carried in access tokens as `sid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Whose session it is.
    pub user_id: i64,
    /// When it started.
    pub created_at: DateTime,
    /// Set when signed out or when refresh-token reuse was detected.
    pub revoked_at: Option<DateTime>,
}

/// Relations of `sessions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The session's user (loaded with it on every authenticated request).
    #[sea_orm(belongs_to = "super::users::Entity", from = "Column::UserId", to = "super::users::Column::Id")]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
